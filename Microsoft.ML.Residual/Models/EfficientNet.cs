using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// EfficientNet B0–B4 (Tan and Le 2019): MobileNetV2's inverted residual blocks with SiLU, squeeze-and-excitation in every
    /// block and stochastic depth, scaled in width and depth per size; and EfficientNetV2-S (Tan and Le 2021), whose first
    /// stages use fused blocks (a full 3×3 convolution instead of expansion and depthwise convolution). torchvision's
    /// structure and state-dict names (<c>features.0</c> stem, <c>features.1</c> … stages of blocks
    /// <c>features.S.B.block.…</c>, the last convolution, <c>classifier.1</c>), so its weights load unchanged.
    /// </summary>
    public sealed class EfficientNet : SequentialFeaturesNetwork
    {
        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public EfficientNet(EfficientNetDefinition definition)
            : base(nameof(EfficientNet), Layers(definition), definition.Stages, definition.Stages[^1].Channels)
        {
            Definition = definition;
            HeadDropRate = definition.DropRate;
            if (definition.NumClasses > 0)
            {
                Head = nn.Linear(definition.Stages[^1].Channels, definition.NumClasses);
                register_module("classifier", nn.Sequential(("0", nn.Dropout(HeadDropRate)), ("1", Head)));
            }

            InitialiseWeights(uniformLinear: true);
        }

        /// <summary>The definition this network was built from.</summary>
        public EfficientNetDefinition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "classifier.1.";

        // The SiLU stem, one Sequential per stage, the last 1×1 convolution to four times the last stage's width; each with the
        // stride of its first block. Block b of B drops its branch with probability DropPathRate·b/B in training.
        private static List<(nn.Module<Tensor, Tensor>, int)> Layers(EfficientNetDefinition definition)
        {
            Prepared(definition);
            var stages = definition.Blocks;
            int total = stages.Sum(s => s.Repeats), index = 0;
            double eps = definition.NormEps;
            var layers = new List<(nn.Module<Tensor, Tensor>, int)> { (new ConvNormActivation(definition.InChannels, stages[0].Input, 3, 2, Activation.Silu, eps: eps), 2) };
            foreach (var stage in stages)
            {
                var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
                for (int i = 0; i < stage.Repeats; i++)
                {
                    int input = i == 0 ? stage.Input : stage.Output, stride = i == 0 ? stage.Stride : 1;
                    double dropPath = definition.DropPathRate * index++ / total;
                    blocks.Add((i.ToString(), stage.Fused ? FusedBlock(input, stage.Output, stage.Expansion, stage.Kernel, stride, dropPath, eps)
                        : Block(input, stage.Output, stage.Expansion, stage.Kernel, stride, dropPath, eps)));
                }

                layers.Add((nn.Sequential(blocks.ToArray()), stage.Stride));
            }

            layers.Add((new ConvNormActivation(stages[^1].Output, definition.Stages[^1].Channels, 1, 1, Activation.Silu, eps: eps), 1));
            return layers;
        }

        // torchvision's MBConv: the 1×1 expansion where the width changes, the depthwise convolution, squeeze-and-excitation to a
        // quarter of the block's input width, and the 1×1 projection without activation.
        private static InvertedResidual Block(int input, int output, int expansion, int kernel, int stride, double dropPath, double eps)
        {
            int expanded = MobileNetDefinition.Divisible(input * expansion);
            var layers = new List<nn.Module<Tensor, Tensor>>();
            if (expanded != input) layers.Add(new ConvNormActivation(input, expanded, 1, 1, Activation.Silu, eps: eps));
            layers.Add(new ConvNormActivation(expanded, expanded, kernel, stride, Activation.Silu, groups: expanded, eps: eps));
            layers.Add(new SqueezeExcitation(expanded, Math.Max(1, input / 4), Activation.Silu, hardGate: false));
            layers.Add(new ConvNormActivation(expanded, output, 1, 1, Activation.None, eps: eps));
            return new InvertedResidual("block", layers, residual: stride == 1 && input == output, dropPath);
        }

        // torchvision's FusedMBConv: a full convolution to the expanded width and a 1×1 projection, or, without expansion, one
        // convolution to the output width; no squeeze-and-excitation.
        private static InvertedResidual FusedBlock(int input, int output, int expansion, int kernel, int stride, double dropPath, double eps)
        {
            int expanded = MobileNetDefinition.Divisible(input * expansion);
            var layers = expanded == input
                ? new List<nn.Module<Tensor, Tensor>> { new ConvNormActivation(input, output, kernel, stride, Activation.Silu, eps: eps) }
                : new List<nn.Module<Tensor, Tensor>>
                {
                    new ConvNormActivation(input, expanded, kernel, stride, Activation.Silu, eps: eps),
                    new ConvNormActivation(expanded, output, 1, 1, Activation.None, eps: eps),
                };
            return new InvertedResidual("block", layers, residual: stride == 1 && input == output, dropPath);
        }
    }

    /// <summary>The two EfficientNet generations.</summary>
    public enum EfficientNetVersion
    {
        /// <summary>EfficientNet (B0 scaled in width and depth to B1 … B7).</summary>
        V1,

        /// <summary>EfficientNetV2-S: fused blocks in the first three stages, BatchNorm ε = 0.001, 1280 features.</summary>
        V2Small,
    }

    /// <summary>A complete description of one EfficientNet (B0 by default).</summary>
    public sealed record EfficientNetDefinition : MobileNetDefinition
    {
        /// <summary>
        /// One stage: expansion, kernel, first stride, input and output widths and blocks at width and depth 1, and whether its
        /// blocks are fused.
        /// </summary>
        public sealed record StageSetting(int Expansion, int Kernel, int Stride, int Input, int Output, int Repeats, bool Fused = false);

        // The paper's Table 1 (B0), as torchvision lists it.
        private static readonly StageSetting[] B0 =
        {
            new(1, 3, 1, 32, 16, 1), new(6, 3, 2, 16, 24, 2), new(6, 5, 2, 24, 40, 2), new(6, 3, 2, 40, 80, 3),
            new(6, 5, 1, 80, 112, 3), new(6, 5, 2, 112, 192, 4), new(6, 3, 1, 192, 320, 1),
        };

        // EfficientNetV2-S (Tan and Le 2021, Table 4), as torchvision lists it.
        private static readonly StageSetting[] V2S =
        {
            new(1, 3, 1, 24, 24, 2, true), new(4, 3, 2, 24, 48, 4, true), new(4, 3, 2, 48, 64, 4, true),
            new(4, 3, 2, 64, 128, 6), new(6, 3, 1, 128, 160, 9), new(6, 3, 2, 160, 256, 15),
        };

        /// <summary>The generation: B0 scaling (V1) or EfficientNetV2-S.</summary>
        public EfficientNetVersion Version { get; init; } = EfficientNetVersion.V1;

        /// <summary>BatchNorm's ε: torchvision's 1e-5 for V1, 1e-3 for V2.</summary>
        public double NormEps => Version == EfficientNetVersion.V1 ? 1e-5 : 1e-3;

        /// <summary>The depth multiplier: each stage has ⌈blocks·d⌉ blocks.</summary>
        public double DepthMultiplier { get; init; } = 1.0;

        /// <summary>Stochastic depth: the last block's drop probability; earlier blocks scale linearly from 0 (torchvision's 0.2).</summary>
        public double DropPathRate { get; init; } = 0.2;

        /// <summary>The stages with widths scaled by <see cref="MobileNetDefinition.WidthMultiplier"/> and depths by <see cref="DepthMultiplier"/>.</summary>
        public IReadOnlyList<StageSetting> Blocks => (Version == EfficientNetVersion.V1 ? B0 : V2S)
            .Select(s => s with { Input = Channels(s.Input), Output = Channels(s.Output), Repeats = (int)Math.Ceiling(s.Repeats * DepthMultiplier) }).ToList();

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public EfficientNetDefinition With(ModelOptions? options) => With(this, options);

        /// <inheritdoc />
        public override IReadOnlyList<StageInfo> Stages
        {
            get
            {
                var stages = new List<StageInfo>();
                var blocks = Blocks;
                int channels = blocks[0].Input, reduction = 2;
                foreach (StageSetting stage in blocks)
                {
                    if (stage.Stride == 2) stages.Add(new StageInfo(channels, reduction));
                    reduction *= stage.Stride;
                    channels = stage.Output;
                }

                stages.Add(new StageInfo(Version == EfficientNetVersion.V1 ? 4 * channels : 1280, reduction));
                return stages;
            }
        }
    }
}
