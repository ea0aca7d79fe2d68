using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// RegNet (Radosavovic et al. 2020): a 3×3 stride-2 stem, four stages of residual bottlenecks with group convolutions (and
    /// squeeze-and-excitation in RegNetY) whose widths and depths follow from a few design parameters, average pooling and a
    /// linear head. torchvision's structure and state-dict names (<c>stem</c>, <c>trunk_output.block1.block1-0.…</c>,
    /// <c>fc</c>), so its weights load.
    /// </summary>
    public sealed class RegNet : ClassifierNetwork
    {
        private readonly ConvNormActivation stem;
        private readonly Sequential[] stages;

        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public RegNet(RegNetDefinition definition) : base(nameof(RegNet), definition)
        {
            Definition = definition;
            stem = new ConvNormActivation(definition.InChannels, definition.StemWidth, 3, 2, Activation.Relu);
            register_module("stem", stem);
            var trunk = new List<(string, nn.Module<Tensor, Tensor>)>();
            int width = definition.StemWidth;
            var settings = definition.StageSettings;
            for (int s = 0; s < settings.Count; s++)
            {
                var (stageWidth, depth, groupWidth) = settings[s];
                var blocks = new (string, nn.Module<Tensor, Tensor>)[depth];
                for (int b = 0; b < depth; b++)
                {
                    blocks[b] = ($"block{s + 1}-{b}", new RegNetBottleneck(b == 0 ? width : stageWidth, stageWidth, b == 0 ? 2 : 1, groupWidth,
                        definition.BottleneckRatio, definition.SqueezeRatio));
                }

                trunk.Add(($"block{s + 1}", nn.Sequential(blocks)));
                width = stageWidth;
            }

            stages = trunk.Select(t => (Sequential)t.Item2).ToArray();
            register_module("trunk_output", nn.Sequential(trunk.ToArray()));
            RegisterHead("fc", definition.NumClasses, definition.DropRate);

            InitialiseWeights();
        }

        /// <summary>The definition this network was built from.</summary>
        public RegNetDefinition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "fc.";

        /// <summary>The stem's output (reduction 2) and each stage's (4, 8, 16, 32).</summary>
        public override IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
        {
            if (ops is null) throw new ArgumentNullException(nameof(ops));
            var outputs = new List<T>(stages.Length + 1) { ops.Call(stem, input) };
            foreach (Sequential stage in stages) outputs.Add(ops.Call(stage, outputs[^1]));
            return outputs;
        }

        // torchvision's initialisation: convolutions N(0, 2 / (k²·outputs)), BatchNorm at one and zero, the head N(0, 0.01) with zero bias.
        private void InitialiseWeights()
        {
            using var noGrad = torch.no_grad();
            foreach (var (_, module) in named_modules())
            {
                switch (module)
                {
                    case Conv2d conv:
                        nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut);
                        break;
                    case BatchNorm norm:
                        norm.weight!.Fill(1.0);
                        norm.bias!.zero_();
                        break;
                    case Linear linear:
                        nn.init.normal_(linear.weight!, 0, 0.01);
                        linear.bias?.zero_();
                        break;
                }
            }
        }
    }

    /// <summary>
    /// RegNet's residual bottleneck: <c>f</c> = 1×1 (<c>a</c>), 3×3 group convolution with the stride (<c>b</c>), squeeze-and-excitation
    /// (<c>se</c>, RegNetY), 1×1 without activation (<c>c</c>); a 1×1 projection (<c>proj</c>) where the width or resolution changes;
    /// ReLU after the sum. torchvision's <c>ResBottleneckBlock</c> and its names.
    /// </summary>
    public sealed class RegNetBottleneck : ResidualBlock
    {
        private readonly Sequential transform;
        private readonly ConvNormActivation? projection;

        /// <summary>
        /// Creates a block from <paramref name="inputWidth"/> to <paramref name="outputWidth"/> channels whose 3×3 convolution has
        /// groups of <paramref name="groupWidth"/> channels on a bottleneck of <paramref name="bottleneckRatio"/> × the output width;
        /// with a <paramref name="squeezeRatio"/>, squeeze-and-excitation to that fraction of the input width.
        /// </summary>
        public RegNetBottleneck(int inputWidth, int outputWidth, int stride, int groupWidth, double bottleneckRatio, double? squeezeRatio)
            : base(nameof(RegNetBottleneck))
        {
            int bottleneck = (int)Math.Round(outputWidth * bottleneckRatio);
            var layers = new List<(string, nn.Module<Tensor, Tensor>)>
            {
                ("a", new ConvNormActivation(inputWidth, bottleneck, 1, 1, Activation.Relu)),
                ("b", new ConvNormActivation(bottleneck, bottleneck, 3, stride, Activation.Relu, groups: bottleneck / groupWidth)),
            };
            if (squeezeRatio is double ratio && ratio > 0)
                layers.Add(("se", new SqueezeExcitation(bottleneck, (int)Math.Round(ratio * inputWidth), Activation.Relu, hardGate: false)));
            layers.Add(("c", new ConvNormActivation(bottleneck, outputWidth, 1, 1, Activation.None)));
            if (inputWidth != outputWidth || stride != 1)
            {
                projection = new ConvNormActivation(inputWidth, outputWidth, 1, stride, Activation.None);
                register_module("proj", projection);
            }

            transform = nn.Sequential(layers.ToArray());
            register_module("f", transform);
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            var (branch, shortcut) = ops.Fork(input);
            T residual = ops.Call(transform, branch);
            return ops.Relu(ops.Residual(residual, projection is null ? shortcut : ops.Call(projection, shortcut)));
        }
    }

    /// <summary>
    /// A complete description of one RegNet by the design space's parameters: block i of <see cref="Depth"/> gets the width
    /// w₀ + wₐ·i, snapped to w₀·wₘᵏ for a whole k and to a multiple of 8; consecutive blocks of one width form a stage.
    /// </summary>
    public sealed record RegNetDefinition : INetworkDefinition
    {
        /// <summary>d: the number of blocks.</summary>
        public int Depth { get; init; } = 16;

        /// <summary>w₀: the first block's width (a multiple of 8).</summary>
        public int InitialWidth { get; init; } = 48;

        /// <summary>wₐ: how fast the width grows per block.</summary>
        public double WidthSlope { get; init; } = 27.89;

        /// <summary>wₘ: the ratio between the widths of consecutive stages (above 1).</summary>
        public double WidthMultiplier { get; init; } = 2.09;

        /// <summary>g: channels per group of the 3×3 convolutions.</summary>
        public int GroupWidth { get; init; } = 8;

        /// <summary>b: the bottleneck's width relative to the block's output.</summary>
        public double BottleneckRatio { get; init; } = 1.0;

        /// <summary>Squeeze-and-excitation to this fraction of the block's input width (RegNetY: 0.25), or null for none (RegNetX).</summary>
        public double? SqueezeRatio { get; init; } = 0.25;

        /// <summary>The stem's output channels.</summary>
        public int StemWidth { get; init; } = 32;

        /// <summary>Dropout before the head (torchvision's RegNets have none).</summary>
        public double DropRate { get; init; }

        /// <summary>Classifier outputs; 0 builds the network without its head.</summary>
        public int NumClasses { get; init; } = 1000;

        /// <summary>Input channels.</summary>
        public int InChannels { get; init; } = 3;

        /// <summary>Seed for weight initialisation (null: TorchSharp's global generator).</summary>
        public long? Seed { get; init; }

        /// <summary>torchvision's RegNets by name (<c>regnet_y_400mf</c> … <c>regnet_y_128gf</c>, <c>regnet_x_400mf</c> … <c>regnet_x_32gf</c>).</summary>
        public static IReadOnlyDictionary<string, RegNetDefinition> Torchvision { get; } = new Dictionary<string, RegNetDefinition>(StringComparer.OrdinalIgnoreCase)
        {
            ["regnet_y_400mf"] = Y(16, 48, 27.89, 2.09, 8),
            ["regnet_y_800mf"] = Y(14, 56, 38.84, 2.4, 16),
            ["regnet_y_1_6gf"] = Y(27, 48, 20.71, 2.65, 24),
            ["regnet_y_3_2gf"] = Y(21, 80, 42.63, 2.66, 24),
            ["regnet_y_8gf"] = Y(17, 192, 76.82, 2.19, 56),
            ["regnet_y_16gf"] = Y(18, 200, 106.23, 2.48, 112),
            ["regnet_y_32gf"] = Y(20, 232, 115.89, 2.53, 232),
            ["regnet_y_128gf"] = Y(27, 456, 160.83, 2.52, 264),
            ["regnet_x_400mf"] = X(22, 24, 24.48, 2.54, 16),
            ["regnet_x_800mf"] = X(16, 56, 35.73, 2.28, 16),
            ["regnet_x_1_6gf"] = X(18, 80, 34.01, 2.25, 24),
            ["regnet_x_3_2gf"] = X(25, 88, 26.31, 2.25, 48),
            ["regnet_x_8gf"] = X(23, 80, 49.56, 2.88, 120),
            ["regnet_x_16gf"] = X(22, 216, 55.59, 2.1, 128),
            ["regnet_x_32gf"] = X(23, 320, 69.86, 2.0, 168),
        };

        /// <summary>
        /// Each stage's output width, number of blocks and group width, computed as torchvision computes them (in float32, so the
        /// rounding agrees), with widths adjusted so the bottleneck divides into whole groups.
        /// </summary>
        public IReadOnlyList<(int Width, int Depth, int GroupWidth)> StageSettings
        {
            get
            {
                Validate();
                float slope = (float)WidthSlope, start = InitialWidth, logMultiplier = (float)Math.Log(WidthMultiplier);
                var widths = new int[Depth];
                for (int i = 0; i < Depth; i++)
                {
                    float width = i * slope + start;
                    float step = MathF.Round(MathF.Log(width / start) / logMultiplier);
                    widths[i] = (int)(MathF.Round(start * MathF.Pow((float)WidthMultiplier, step) / 8) * 8);
                }

                var stages = new List<(int Width, int Depth, int GroupWidth)>();
                for (int i = 0; i < Depth;)
                {
                    int end = i;
                    while (end < Depth && widths[end] == widths[i]) end++;
                    int bottleneck = (int)(widths[i] * BottleneckRatio);
                    int groupWidth = Math.Min(GroupWidth, bottleneck);
                    stages.Add(((int)(MobileNetDefinition.Divisible(bottleneck, groupWidth) / BottleneckRatio), end - i, groupWidth));
                    i = end;
                }

                return stages;
            }
        }

        /// <summary>The stem's output (reduction 2) and each stage's (reductions 4, 8, …).</summary>
        public IReadOnlyList<StageInfo> Stages =>
            StageSettings.Select((s, i) => new StageInfo(s.Width, 4 << i)).Prepend(new StageInfo(StemWidth, 2)).ToList();

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public RegNetDefinition With(ModelOptions? options)
        {
            if (options is null) return this;
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
            return this with { DropRate = options.DropRate ?? DropRate, Seed = options.Seed ?? Seed };
        }

        /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
        public void Validate()
        {
            if (Depth < 1) throw new ArgumentException($"Depth must be at least 1 (got {Depth}).");
            if (InitialWidth < 8 || InitialWidth % 8 != 0) throw new ArgumentException($"InitialWidth must be a positive multiple of 8 (got {InitialWidth}).");
            if (!(WidthSlope >= 0) || double.IsInfinity(WidthSlope)) throw new ArgumentException($"WidthSlope must be 0 or more (got {WidthSlope}).");
            if (!(WidthMultiplier > 1) || double.IsInfinity(WidthMultiplier)) throw new ArgumentException($"WidthMultiplier must be above 1 (got {WidthMultiplier}).");
            if (GroupWidth < 1) throw new ArgumentException($"GroupWidth must be at least 1 (got {GroupWidth}).");
            if (!(BottleneckRatio > 0) || double.IsInfinity(BottleneckRatio)) throw new ArgumentException($"BottleneckRatio must be positive (got {BottleneckRatio}).");
            if (SqueezeRatio is double ratio && !(ratio > 0 && ratio <= 1)) throw new ArgumentException($"SqueezeRatio must be in (0, 1], or null for none (got {ratio}).");
            if (StemWidth < 1) throw new ArgumentException($"StemWidth must be at least 1 (got {StemWidth}).");
            if (NumClasses < 0) throw new ArgumentException($"NumClasses must be at least 1, or 0 for a backbone without head (got {NumClasses}).");
            if (InChannels < 1) throw new ArgumentException($"InChannels must be at least 1 (got {InChannels}).");
            ModelOptions.CheckProbability(DropRate, nameof(DropRate));
        }

        private static RegNetDefinition Y(int depth, int w0, double wa, double wm, int group) =>
            new() { Depth = depth, InitialWidth = w0, WidthSlope = wa, WidthMultiplier = wm, GroupWidth = group, SqueezeRatio = 0.25 };

        private static RegNetDefinition X(int depth, int w0, double wa, double wm, int group) =>
            new() { Depth = depth, InitialWidth = w0, WidthSlope = wa, WidthMultiplier = wm, GroupWidth = group, SqueezeRatio = null };
    }
}
