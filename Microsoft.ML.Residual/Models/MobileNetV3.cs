using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// MobileNetV3 (Howard et al. 2019), large and small: inverted residual blocks with 3×3 or 5×5 depthwise convolutions,
    /// squeeze-and-excitation in some, ReLU or hard-swish, and a two-layer classifier. torchvision's structure and state-dict
    /// names (<c>features.0</c>, <c>features.N.block.…</c>, <c>classifier.0</c>, <c>classifier.3</c>), so its weights load.
    /// </summary>
    public sealed class MobileNetV3 : SequentialFeaturesNetwork
    {
        // torchvision's BatchNorm for MobileNetV3.
        private const double NormEps = 1e-3, NormMomentum = 0.01;

        private readonly Linear preClassifier;

        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public MobileNetV3(MobileNetV3Definition definition)
            : base(nameof(MobileNetV3), Layers(definition), definition.Stages, definition.LastChannels)
        {
            Definition = definition;
            // classifier.0 (linear), .1 (hard-swish), .2 (dropout), .3 (the head): only the head is left out without classes.
            preClassifier = nn.Linear(definition.Stages[^1].Channels, definition.LastChannels);
            HeadDropRate = definition.DropRate;
            var layers = new List<(string, nn.Module<Tensor, Tensor>)> { ("0", preClassifier) };
            if (definition.NumClasses > 0)
            {
                Head = nn.Linear(definition.LastChannels, definition.NumClasses);
                layers.Add(("2", nn.Dropout(HeadDropRate)));
                layers.Add(("3", Head));
            }

            register_module("classifier", nn.Sequential(layers.ToArray()));
            InitialiseWeights();
        }

        /// <summary>The definition this network was built from.</summary>
        public MobileNetV3Definition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "classifier.3.";

        internal override T FeaturesFromPooled<T>(IOperations<T> ops, T pooled) => Activations.HardSwish(ops, ops.Call(preClassifier, pooled));

        // The hard-swish stem, the blocks and the last 1×1 convolution to six times the last block's width, each with its stride.
        private static List<(nn.Module<Tensor, Tensor>, int)> Layers(MobileNetV3Definition definition)
        {
            Prepared(definition);
            var blocks = definition.Blocks;
            var layers = new List<(nn.Module<Tensor, Tensor>, int)>
            {
                (new ConvNormActivation(definition.InChannels, blocks[0].Input, 3, 2, Activation.HardSwish, eps: NormEps, momentum: NormMomentum), 2),
            };
            foreach (MobileNetV3Definition.BlockSetting block in blocks) layers.Add((Block(block), block.Stride));
            layers.Add((new ConvNormActivation(blocks[^1].Output, definition.Stages[^1].Channels, 1, 1, Activation.HardSwish, eps: NormEps, momentum: NormMomentum), 1));
            return layers;
        }

        // torchvision's block.N: the 1×1 expansion where the width changes, the depthwise convolution, squeeze-and-excitation
        // (a quarter of the expanded width, rounded to 8) where the setting has it, and the 1×1 projection without activation.
        private static InvertedResidual Block(MobileNetV3Definition.BlockSetting block)
        {
            Activation activation = block.HardSwish ? Activation.HardSwish : Activation.Relu;
            var layers = new List<nn.Module<Tensor, Tensor>>();
            if (block.Expanded != block.Input) layers.Add(new ConvNormActivation(block.Input, block.Expanded, 1, 1, activation, eps: NormEps, momentum: NormMomentum));
            layers.Add(new ConvNormActivation(block.Expanded, block.Expanded, block.Kernel, block.Stride, activation, groups: block.Expanded, eps: NormEps, momentum: NormMomentum));
            if (block.SqueezeExcitation) layers.Add(new SqueezeExcitation(block.Expanded, MobileNetDefinition.Divisible(block.Expanded / 4)));
            layers.Add(new ConvNormActivation(block.Expanded, block.Output, 1, 1, Activation.None, eps: NormEps, momentum: NormMomentum));
            return new InvertedResidual("block", layers, residual: block.Stride == 1 && block.Input == block.Output);
        }
    }

    /// <summary>The two MobileNetV3 sizes of Howard et al. 2019.</summary>
    public enum MobileNetV3Size
    {
        /// <summary>15 blocks, 960 channels before pooling, a 1280-wide classifier layer.</summary>
        Large,

        /// <summary>11 blocks, 576 channels before pooling, a 1024-wide classifier layer.</summary>
        Small,
    }

    /// <summary>A complete description of one MobileNetV3.</summary>
    public sealed record MobileNetV3Definition : MobileNetDefinition
    {
        /// <summary>One block: input, kernel, expanded and output widths, squeeze-and-excitation, hard-swish (else ReLU), stride.</summary>
        public sealed record BlockSetting(int Input, int Kernel, int Expanded, int Output, bool SqueezeExcitation, bool HardSwish, int Stride);

        // The paper's Tables 1 and 2 at width 1, as torchvision lists them.
        private static readonly BlockSetting[] LargeBlocks =
        {
            new(16, 3, 16, 16, false, false, 1), new(16, 3, 64, 24, false, false, 2), new(24, 3, 72, 24, false, false, 1),
            new(24, 5, 72, 40, true, false, 2), new(40, 5, 120, 40, true, false, 1), new(40, 5, 120, 40, true, false, 1),
            new(40, 3, 240, 80, false, true, 2), new(80, 3, 200, 80, false, true, 1), new(80, 3, 184, 80, false, true, 1),
            new(80, 3, 184, 80, false, true, 1), new(80, 3, 480, 112, true, true, 1), new(112, 3, 672, 112, true, true, 1),
            new(112, 5, 672, 160, true, true, 2), new(160, 5, 960, 160, true, true, 1), new(160, 5, 960, 160, true, true, 1),
        };

        private static readonly BlockSetting[] SmallBlocks =
        {
            new(16, 3, 16, 16, true, false, 2), new(16, 3, 72, 24, false, false, 2), new(24, 3, 88, 24, false, false, 1),
            new(24, 5, 96, 40, true, true, 2), new(40, 5, 240, 40, true, true, 1), new(40, 5, 240, 40, true, true, 1),
            new(40, 5, 120, 48, true, true, 1), new(48, 5, 144, 48, true, true, 1), new(48, 5, 288, 96, true, true, 2),
            new(96, 5, 576, 96, true, true, 1), new(96, 5, 576, 96, true, true, 1),
        };

        /// <summary>Large or small.</summary>
        public MobileNetV3Size Size { get; init; } = MobileNetV3Size.Large;

        /// <summary>The blocks with every width scaled by α and rounded as torchvision rounds it.</summary>
        public IReadOnlyList<BlockSetting> Blocks => (Size == MobileNetV3Size.Large ? LargeBlocks : SmallBlocks)
            .Select(b => b with { Input = Channels(b.Input), Expanded = Channels(b.Expanded), Output = Channels(b.Output) }).ToList();

        /// <summary>The width of the classifier's first layer: 1280·α (large) or 1024·α (small), rounded.</summary>
        public int LastChannels => Channels(Size == MobileNetV3Size.Large ? 1280 : 1024);

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public MobileNetV3Definition With(ModelOptions? options) => With(this, options);

        /// <inheritdoc />
        public override IReadOnlyList<StageInfo> Stages
        {
            get
            {
                var blocks = Blocks;
                var stages = new List<StageInfo>();
                int channels = blocks[0].Input, reduction = 2;
                foreach (BlockSetting block in blocks)
                {
                    if (block.Stride == 2) stages.Add(new StageInfo(channels, reduction));
                    reduction *= block.Stride;
                    channels = block.Output;
                }

                stages.Add(new StageInfo(6 * channels, reduction));
                return stages;
            }
        }
    }
}
