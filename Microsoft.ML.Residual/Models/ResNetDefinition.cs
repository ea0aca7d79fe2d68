using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A complete description of one ResNet-family network: the architecture (blocks, depths, widths,
    /// groups) and every variant choice. <see cref="ResidualModels"/> holds one per name; build your own
    /// for architectures the registry does not name.
    /// </summary>
    public sealed record ResNetDefinition : INetworkDefinition
    {
        /// <summary>The block each stage repeats.</summary>
        public ResidualBlockKind Block { get; init; } = ResidualBlockKind.Basic;

        /// <summary>Number of blocks per stage, e.g. {2, 2, 2, 2} for ResNet-18.</summary>
        public IReadOnlyList<int> Layers { get; init; } = new[] { 2, 2, 2, 2 };

        /// <summary>Base width ("planes") per stage before expansion, e.g. {64, 128, 256, 512}.</summary>
        public IReadOnlyList<int> StageWidths { get; init; } = new[] { 64, 128, 256, 512 };

        /// <summary>Output channels of the stem convolution.</summary>
        public int StemWidth { get; init; } = 64;

        /// <summary>Groups of the bottleneck's 3×3 convolution (ResNeXt cardinality).</summary>
        public int Groups { get; init; } = 1;

        /// <summary>Bottleneck width per group at the first stage (64 = ResNet, 128 = Wide ResNet-50-2, 4 = ResNeXt-32x4d).</summary>
        public int WidthPerGroup { get; init; } = 64;

        /// <summary>Classifier outputs; 0 builds the network without its classifier (a backbone that returns pooled features).</summary>
        public int NumClasses { get; init; } = 1000;

        /// <summary>Input channels (3 for RGB).</summary>
        public int InChannels { get; init; } = 3;

        /// <summary>The stem.</summary>
        public StemKind Stem { get; init; } = StemKind.ImageNet;

        /// <summary>Pre-activation (ResNet v2) blocks.</summary>
        public bool PreActivation { get; init; }

        /// <summary>Shortcut option.</summary>
        public ShortcutOption Shortcut { get; init; } = ShortcutOption.B;

        /// <summary>How branch and shortcut combine.</summary>
        public SkipConnection Skip { get; init; } = SkipConnection.Identity;

        /// <summary>α, the factor on the residual branch.</summary>
        public double ResidualScale { get; init; } = 1.0;

        /// <summary>β: the identity path is multiplied by (1 − β).</summary>
        public double IdentityDecay { get; init; }

        /// <summary>Zero-initialise the end of every residual branch.</summary>
        public bool ZeroInitResidual { get; init; }

        /// <summary>Dropout before the classifier.</summary>
        public double DropRate { get; init; }

        /// <summary>Stochastic depth rate of the last block.</summary>
        public double DropPathRate { get; init; }

        /// <summary>Initial bias of Highway gates.</summary>
        public double HighwayGateBias { get; init; } = -1.0;

        /// <summary>Seed for weight initialisation (null: TorchSharp's global generator).</summary>
        public long? Seed { get; init; }

        /// <summary>Channel expansion of the block: 1 for basic, 4 for bottleneck.</summary>
        public int Expansion => Block == ResidualBlockKind.Bottleneck ? 4 : 1;

        /// <summary>The stem's output, then each stage's: channels and reduction (the stem and its pooling halve twice, unless CIFAR's).</summary>
        public IReadOnlyList<StageInfo> Stages
        {
            get
            {
                int stem = Stem == StemKind.Cifar ? 1 : 2;
                return new[] { new StageInfo(StemWidth, stem) }
                    .Concat(StageWidths.Select((width, stage) => new StageInfo(width * Expansion, stem * stem << stage))).ToList();
            }
        }

        /// <summary>The module path of the convolution that sees the image.</summary>
        public string FirstConvolution => Stem == StemKind.Deep ? "conv1.0" : "conv1";

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public ResNetDefinition With(ModelOptions? options)
        {
            if (options is null) return this;
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
            var result = this with
            {
                DropRate = options.DropRate ?? DropRate,
                Seed = options.Seed ?? Seed,
            };
            if (options is not ResNetOptions r) return result;
            ModelOptions.CheckProbability(r.DropPathRate, nameof(ResNetOptions.DropPathRate));
            return result with
            {
                ZeroInitResidual = r.ZeroInitResidual ?? ZeroInitResidual,
                Stem = r.Stem ?? Stem,
                PreActivation = r.PreActivation ?? PreActivation,
                Shortcut = r.Shortcut ?? Shortcut,
                Skip = r.Skip ?? Skip,
                ResidualScale = r.ResidualScale ?? ResidualScale,
                IdentityDecay = r.IdentityDecay ?? IdentityDecay,
                DropPathRate = r.DropPathRate ?? DropPathRate,
                HighwayGateBias = r.HighwayGateBias ?? HighwayGateBias,
            };
        }

        /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
        public void Validate()
        {
            if (Layers.Count == 0 || Layers.Count != StageWidths.Count)
                throw new ArgumentException($"Layers ({Layers.Count} stages) and StageWidths ({StageWidths.Count}) must be non-empty and of equal length.");
            if (Layers.Any(n => n < 1)) throw new ArgumentException("Every stage needs at least one block (Layers).");
            if (StageWidths.Any(w => w < 1) || StemWidth < 1) throw new ArgumentException("Widths must be positive.");
            if (Stem == StemKind.Deep && StemWidth < 2) throw new ArgumentException($"The deep stem halves StemWidth in its first convolutions; StemWidth must be at least 2 (got {StemWidth}).");
            if (NumClasses < 0) throw new ArgumentException($"NumClasses must be at least 1, or 0 for a backbone without classifier (got {NumClasses}).");
            if (InChannels < 1) throw new ArgumentException($"InChannels must be at least 1 (got {InChannels}).");
            if (Groups < 1 || WidthPerGroup < 1) throw new ArgumentException("Groups and WidthPerGroup must be positive.");
            if (Groups != 1 && Block == ResidualBlockKind.Basic)
                throw new ArgumentException("Grouped convolutions (Groups > 1) need Bottleneck blocks, as in torchvision.");
            if (WidthPerGroup != 64 && Block == ResidualBlockKind.Basic)
                throw new ArgumentException("WidthPerGroup other than 64 needs Bottleneck blocks, as in torchvision.");
            ModelOptions.CheckProbability(DropRate, nameof(DropRate));
            ModelOptions.CheckProbability(DropPathRate, nameof(DropPathRate));
            if (double.IsNaN(ResidualScale) || double.IsInfinity(ResidualScale)) throw new ArgumentException("ResidualScale must be finite.");
            if (double.IsNaN(IdentityDecay) || IdentityDecay < 0 || IdentityDecay > 1)
                throw new ArgumentException("IdentityDecay (β) must be in [0, 1].");
        }
    }
}
