using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// ConvNeXt (Liu et al. 2022): a 4×4 stride-4 "patchify" stem, four stages of <see cref="ConvNeXtBlock"/>s with a LayerNorm
    /// and a 2×2 stride-2 convolution between stages, then average pooling, LayerNorm and the head. torchvision's structure and
    /// state-dict names (<c>features.0</c> stem, <c>features.1, 3, 5, 7</c> stages, <c>features.2, 4, 6</c> downsampling,
    /// <c>classifier.0</c> norm, <c>classifier.2</c> head), so its weights load.
    /// </summary>
    public sealed class ConvNeXt : SequentialFeaturesNetwork
    {
        private readonly ChannelLayerNorm headNorm;

        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public ConvNeXt(ConvNeXtDefinition definition)
            : base(nameof(ConvNeXt), Layers(definition), definition.Stages, definition.Widths[^1])
        {
            Definition = definition;
            // classifier.0 normalises the pooled features (torchvision's LayerNorm2d on N×C×1×1, the same numbers as over the
            // flattened N×C); .1 flattens; .2 is the head.
            headNorm = new ChannelLayerNorm(definition.Widths[^1], channelsFirst: false);
            HeadDropRate = definition.DropRate;
            var layers = new List<(string, nn.Module<Tensor, Tensor>)> { ("0", headNorm) };
            if (definition.NumClasses > 0)
            {
                Head = nn.Linear(definition.Widths[^1], definition.NumClasses);
                layers.Add(("2", Head));
            }

            register_module("classifier", nn.Sequential(layers.ToArray()));
            InitialiseWeights();
        }

        /// <summary>The definition this network was built from.</summary>
        public ConvNeXtDefinition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "classifier.2.";

        internal override T FeaturesFromPooled<T>(IOperations<T> ops, T pooled) => ops.Call(headNorm, pooled);

        // The stem (stride 4), then each stage's blocks and, between stages, LayerNorm and a 2×2 stride-2 convolution.
        private static List<(nn.Module<Tensor, Tensor>, int)> Layers(ConvNeXtDefinition definition)
        {
            Prepared(definition);
            var widths = definition.Widths;
            var layers = new List<(nn.Module<Tensor, Tensor>, int)>
            {
                (nn.Sequential(("0", nn.Conv2d(definition.InChannels, widths[0], 4, stride: 4)), ("1", new ChannelLayerNorm(widths[0], channelsFirst: true))), 4),
            };
            int total = definition.Depths.Sum(), index = 0;
            for (int stage = 0; stage < widths.Count; stage++)
            {
                // Block b of B drops its branch with probability DropPathRate·b/(B − 1) in training, as torchvision ramps it.
                var blocks = Enumerable.Range(0, definition.Depths[stage])
                    .Select(b => (b.ToString(), (nn.Module<Tensor, Tensor>)new ConvNeXtBlock(widths[stage], definition.LayerScale,
                        total > 1 ? definition.DropPathRate * index++ / (total - 1.0) : 0.0)))
                    .ToArray();
                layers.Add((nn.Sequential(blocks), 1));
                if (stage + 1 < widths.Count)
                {
                    layers.Add((nn.Sequential(("0", new ChannelLayerNorm(widths[stage], channelsFirst: true)), ("1", nn.Conv2d(widths[stage], widths[stage + 1], 2, stride: 2))), 2));
                }
            }

            return layers;
        }

        // torchvision's initialisation: convolutions and linear layers from N(0, 0.02²) truncated at ±2 (100 σ, so never in
        // practice: plain normal_ here, as TorchSharp 0.107's trunc_normal_ fills every element with the standard deviation),
        // zero biases; LayerNorm at one and zero; layer scales at their initial value.
        private void InitialiseWeights()
        {
            using var noGrad = torch.no_grad();
            foreach (var (_, module) in named_modules())
            {
                Tensor? weight = module switch { Conv2d conv => conv.weight, Linear linear => linear.weight, _ => null };
                if (weight is null) continue;
                nn.init.normal_(weight, 0, 0.02);
                (module as Conv2d)?.bias?.zero_();
                (module as Linear)?.bias?.zero_();
            }
        }
    }

    /// <summary>
    /// The ConvNeXt block: a 7×7 depthwise convolution, LayerNorm over the channels, a 4× wider linear layer, GELU, a linear
    /// layer back (the three on channels-last values), a learned per-channel scale and stochastic depth, added to the input.
    /// torchvision's <c>CNBlock</c> and its names: <c>block.0</c>, <c>block.2</c>, <c>block.3</c>, <c>block.5</c>, <c>layer_scale</c>.
    /// </summary>
    public sealed class ConvNeXtBlock : ResidualBlock
    {
        private readonly Conv2d depthwise;
        private readonly ChannelLayerNorm norm;
        private readonly Linear expand;
        private readonly Linear project;
        private readonly double dropPath;

        /// <summary>Creates a block of <paramref name="channels"/> channels whose scale starts at <paramref name="layerScale"/>.</summary>
        public ConvNeXtBlock(int channels, double layerScale, double dropPath) : base(nameof(ConvNeXtBlock))
        {
            depthwise = nn.Conv2d(channels, channels, 7, padding: 3, groups: channels);
            norm = new ChannelLayerNorm(channels, channelsFirst: false);
            expand = nn.Linear(channels, 4 * channels);
            project = nn.Linear(4 * channels, channels);
            // torchvision's Sequential also holds the two permutations (1, 6) and GELU (4), which have no parameters.
            register_module("block", nn.Sequential(("0", depthwise), ("2", norm), ("3", expand), ("5", project)));
            register_parameter("layer_scale", new Parameter(torch.empty(channels, 1, 1).Fill(layerScale)));
            this.dropPath = dropPath;
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            var (branch, shortcut) = ops.Fork(input);
            T x = ops.Permute(ops.Call(depthwise, branch), 0, 2, 3, 1);
            x = ops.Call(project, ops.Gelu(ops.Call(expand, ops.Call(norm, x))));
            x = ops.Scale(ops.Permute(x, 0, 3, 1, 2), OwnParameter("layer_scale"));
            return ops.Residual(ops.DropPath(x, dropPath, training), shortcut);
        }
    }

    /// <summary>
    /// Layer normalisation over the channels (ε = 10⁻⁶) with a learned <c>weight</c> and <c>bias</c>: of channels-last values
    /// (torchvision's <c>nn.LayerNorm</c> in a ConvNeXt block) or of N×C×H×W values, permuted to channels-last and back
    /// (torchvision's <c>LayerNorm2d</c>).
    /// </summary>
    public sealed class ChannelLayerNorm : ResidualModule
    {
        private const double Eps = 1e-6;
        private readonly bool channelsFirst;

        /// <summary>Creates the normalisation of <paramref name="channels"/> channels, the second dimension if <paramref name="channelsFirst"/>, else the last.</summary>
        public ChannelLayerNorm(int channels, bool channelsFirst) : base(nameof(ChannelLayerNorm))
        {
            register_parameter("weight", new Parameter(torch.ones(channels)));
            register_parameter("bias", new Parameter(torch.zeros(channels)));
            this.channelsFirst = channelsFirst;
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            Parameter weight = OwnParameter("weight"), bias = OwnParameter("bias");
            return channelsFirst
                ? ops.Permute(ops.LayerNorm(ops.Permute(input, 0, 2, 3, 1), weight, bias, Eps), 0, 3, 1, 2)
                : ops.LayerNorm(input, weight, bias, Eps);
        }
    }

    /// <summary>Variant options for ConvNeXt. Every property left null keeps the default of the named architecture.</summary>
    public sealed class ConvNeXtOptions : ModelOptions
    {
        /// <summary>Stochastic depth: the last block drops its branch with this probability in training, earlier ones proportionally less.</summary>
        public double? DropPathRate { get; set; }

        /// <summary>The initial value of every block's per-channel scale (10⁻⁶).</summary>
        public double? LayerScale { get; set; }
    }

    /// <summary>A complete description of one ConvNeXt.</summary>
    public sealed record ConvNeXtDefinition : INetworkDefinition
    {
        /// <summary>ConvNeXt-T: widths 96, 192, 384, 768; depths 3, 3, 9, 3; stochastic depth 0.1.</summary>
        public static ConvNeXtDefinition Tiny { get; } = new();

        /// <summary>ConvNeXt-S: widths 96, 192, 384, 768; depths 3, 3, 27, 3; stochastic depth 0.4.</summary>
        public static ConvNeXtDefinition Small { get; } = new() { Depths = new[] { 3, 3, 27, 3 }, DropPathRate = 0.4 };

        /// <summary>ConvNeXt-B: widths 128, 256, 512, 1024; depths 3, 3, 27, 3; stochastic depth 0.5.</summary>
        public static ConvNeXtDefinition Base { get; } = new() { Widths = new[] { 128, 256, 512, 1024 }, Depths = new[] { 3, 3, 27, 3 }, DropPathRate = 0.5 };

        /// <summary>ConvNeXt-L: widths 192, 384, 768, 1536; depths 3, 3, 27, 3; stochastic depth 0.5.</summary>
        public static ConvNeXtDefinition Large { get; } = new() { Widths = new[] { 192, 384, 768, 1536 }, Depths = new[] { 3, 3, 27, 3 }, DropPathRate = 0.5 };

        /// <summary>The channels of each stage.</summary>
        public IReadOnlyList<int> Widths { get; init; } = new[] { 96, 192, 384, 768 };

        /// <summary>The blocks of each stage.</summary>
        public IReadOnlyList<int> Depths { get; init; } = new[] { 3, 3, 9, 3 };

        /// <summary>The stochastic depth of the last block (earlier blocks' rise linearly from 0).</summary>
        public double DropPathRate { get; init; } = 0.1;

        /// <summary>The initial per-channel scale of each block's branch.</summary>
        public double LayerScale { get; init; } = 1e-6;

        /// <summary>Dropout before the head (torchvision's ConvNeXt has none).</summary>
        public double DropRate { get; init; }

        /// <summary>Classifier outputs; 0 builds the network without its head.</summary>
        public int NumClasses { get; init; } = 1000;

        /// <summary>Input channels.</summary>
        public int InChannels { get; init; } = 3;

        /// <summary>Seed for weight initialisation (null: TorchSharp's global generator).</summary>
        public long? Seed { get; init; }

        /// <summary>The stage outputs: each stage's width at reductions 4, 8, 16 and 32.</summary>
        public IReadOnlyList<StageInfo> Stages => Widths.Select((width, i) => new StageInfo(width, 4 << i)).ToList();

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public ConvNeXtDefinition With(ModelOptions? options)
        {
            if (options is null) return this;
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
            var result = this with { DropRate = options.DropRate ?? DropRate, Seed = options.Seed ?? Seed };
            if (options is ConvNeXtOptions c)
            {
                ModelOptions.CheckProbability(c.DropPathRate, nameof(ConvNeXtOptions.DropPathRate));
                result = result with { DropPathRate = c.DropPathRate ?? DropPathRate, LayerScale = c.LayerScale ?? LayerScale };
            }

            return result;
        }

        /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
        public void Validate()
        {
            if (Widths.Count == 0 || Widths.Count != Depths.Count)
                throw new ArgumentException($"Widths and Depths must list the same stages, at least one (got {Widths.Count} widths and {Depths.Count} depths).");
            if (Widths.Any(w => w < 1) || Depths.Any(d => d < 1)) throw new ArgumentException("Every stage needs a positive width and at least one block.");
            if (NumClasses < 0) throw new ArgumentException($"NumClasses must be at least 1, or 0 for a backbone without head (got {NumClasses}).");
            if (InChannels < 1) throw new ArgumentException($"InChannels must be at least 1 (got {InChannels}).");
            if (!double.IsFinite(LayerScale)) throw new ArgumentException($"LayerScale must be finite (got {LayerScale}).");
            ModelOptions.CheckProbability(DropRate, nameof(DropRate));
            ModelOptions.CheckProbability(DropPathRate, nameof(DropPathRate));
        }
    }
}
