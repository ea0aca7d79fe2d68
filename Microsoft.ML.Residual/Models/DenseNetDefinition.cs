using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Variant options for the DenseNet family. Every property left null keeps the default of the named
    /// architecture.
    /// </summary>
    public sealed class DenseNetOptions : ModelOptions, IStemOptions
    {
        /// <summary>k: channels each dense layer adds.</summary>
        public int? GrowthRate { get; set; }

        /// <summary>Dense layers per dense block, e.g. {6, 12, 24, 16} for DenseNet-121.</summary>
        public IReadOnlyList<int>? BlockConfig { get; set; }

        /// <summary>Channels of the stem convolution.</summary>
        public int? InitFeatures { get; set; }

        /// <summary>
        /// The "B" of DenseNet-BC: each layer's 1×1 bottleneck has <c>BottleneckSize × k</c> channels
        /// (torchvision's <c>bn_size</c>, default 4). 0 removes the bottleneck (BN → ReLU → 3×3 conv only).
        /// </summary>
        public int? BottleneckSize { get; set; }

        /// <summary>The "C" of DenseNet-BC, θ: transitions keep <c>floor(θ·m)</c> of m channels. torchvision fixes 0.5; 1 = no compression.</summary>
        public double? Compression { get; set; }

        /// <summary>
        /// Recompute each layer's concatenation, BN, ReLU and bottleneck convolution in the backward pass
        /// instead of keeping them (Pleiss et al. 2017): memory grows linearly, not quadratically, with depth,
        /// at the cost of extra compute. Results and gradients are the same.
        /// </summary>
        public bool? MemoryEfficient { get; set; }

        /// <summary>The stem: ImageNet (7×7/2 conv, BN, ReLU, 3×3/2 max pool) or CIFAR (one 3×3 conv).</summary>
        public StemKind? Stem { get; set; }
    }

    /// <summary>A complete description of one DenseNet (Huang et al. 2017).</summary>
    public sealed record DenseNetDefinition : INetworkDefinition
    {
        /// <summary>k: channels each dense layer adds.</summary>
        public int GrowthRate { get; init; } = 32;

        /// <summary>Dense layers per dense block.</summary>
        public IReadOnlyList<int> BlockConfig { get; init; } = new[] { 6, 12, 24, 16 };

        /// <summary>Channels of the stem convolution.</summary>
        public int InitFeatures { get; init; } = 64;

        /// <summary>Bottleneck width factor (0 = no bottleneck).</summary>
        public int BottleneckSize { get; init; } = 4;

        /// <summary>Transition compression θ in (0, 1].</summary>
        public double Compression { get; init; } = 0.5;

        /// <summary>Dropout after every dense layer (torchvision's <c>drop_rate</c>).</summary>
        public double DropRate { get; init; }

        /// <summary>Classifier outputs; 0 builds the network without its classifier.</summary>
        public int NumClasses { get; init; } = 1000;

        /// <summary>Input channels.</summary>
        public int InChannels { get; init; } = 3;

        /// <summary>Recompute concatenation and bottleneck in backward.</summary>
        public bool MemoryEfficient { get; init; }

        /// <summary>The stem.</summary>
        public StemKind Stem { get; init; } = StemKind.ImageNet;

        /// <summary>Seed for weight initialisation (null: TorchSharp's global generator).</summary>
        public long? Seed { get; init; }

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public DenseNetDefinition With(ModelOptions? options)
        {
            if (options is null) return this;
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
            var result = this with { DropRate = options.DropRate ?? DropRate, Seed = options.Seed ?? Seed };
            if (options is not DenseNetOptions d) return result;
            return result with
            {
                GrowthRate = d.GrowthRate ?? GrowthRate,
                BlockConfig = d.BlockConfig?.ToArray() ?? BlockConfig,
                InitFeatures = d.InitFeatures ?? InitFeatures,
                BottleneckSize = d.BottleneckSize ?? BottleneckSize,
                Compression = d.Compression ?? Compression,
                MemoryEfficient = d.MemoryEfficient ?? MemoryEfficient,
                Stem = d.Stem ?? Stem,
            };
        }

        /// <summary>The stem's output, then each dense block's: channels and reduction (the ImageNet stem and its pooling halve twice).</summary>
        public IReadOnlyList<StageInfo> Stages
        {
            get
            {
                int stem = Stem == StemKind.ImageNet ? 2 : 1;
                return new[] { new StageInfo(InitFeatures, stem) }
                    .Concat(BlockOutputChannels().Select((channels, block) => new StageInfo(channels, stem * stem << block))).ToList();
            }
        }

        /// <summary>Channels after each dense block (before its transition), first to last.</summary>
        public IReadOnlyList<int> BlockOutputChannels()
        {
            var result = new List<int>();
            int channels = InitFeatures;
            for (int i = 0; i < BlockConfig.Count; i++)
            {
                channels += BlockConfig[i] * GrowthRate;
                result.Add(channels);
                if (i < BlockConfig.Count - 1) channels = TransitionOutput(channels);
            }

            return result;
        }

        /// <summary>Channels a transition keeps of <paramref name="inputChannels"/>: floor(θ·m).</summary>
        public int TransitionOutput(int inputChannels) => (int)Math.Floor(Compression * inputChannels);

        /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
        public void Validate()
        {
            if (GrowthRate < 1) throw new ArgumentException($"GrowthRate must be at least 1 (got {GrowthRate}).");
            if (BlockConfig.Count == 0 || BlockConfig.Any(n => n < 1))
                throw new ArgumentException("BlockConfig needs at least one dense block, each with at least one layer.");
            if (InitFeatures < 1) throw new ArgumentException($"InitFeatures must be at least 1 (got {InitFeatures}).");
            if (BottleneckSize < 0) throw new ArgumentException($"BottleneckSize must be 0 (no bottleneck) or positive (got {BottleneckSize}).");
            if (double.IsNaN(Compression) || Compression <= 0 || Compression > 1)
                throw new ArgumentException($"Compression (θ) must be in (0, 1] (got {Compression}).");
            if (NumClasses < 0) throw new ArgumentException($"NumClasses must be at least 1, or 0 for a backbone without classifier (got {NumClasses}).");
            if (InChannels < 1) throw new ArgumentException($"InChannels must be at least 1 (got {InChannels}).");
            if (Stem is not (StemKind.ImageNet or StemKind.Cifar))
                throw new ArgumentException($"DenseNets have the ImageNet or the CIFAR stem, not {Stem}.");
            ModelOptions.CheckProbability(DropRate, nameof(DropRate));
            int channels = InitFeatures;
            for (int i = 0; i < BlockConfig.Count - 1; i++)
            {
                channels = TransitionOutput(channels + BlockConfig[i] * GrowthRate);
                if (channels < 1) throw new ArgumentException($"Compression {Compression} leaves transition {i + 1} without channels.");
            }
        }
    }
}
