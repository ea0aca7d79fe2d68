using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>Variant options for MobileNets. Every property left null keeps the default of the named architecture.</summary>
    public sealed class MobileNetOptions : ModelOptions
    {
        /// <summary>α: every layer's width is multiplied by it (rounded to a multiple of 8); 1 is the standard network.</summary>
        public double? WidthMultiplier { get; set; }
    }

    /// <summary>What every MobileNet definition has: the width multiplier, dropout, classes, input channels and seed.</summary>
    public abstract record MobileNetDefinition : INetworkDefinition
    {
        /// <summary>α, the width multiplier.</summary>
        public double WidthMultiplier { get; init; } = 1.0;

        /// <summary>Dropout before the head (torchvision's 0.2).</summary>
        public double DropRate { get; init; } = 0.2;

        /// <summary>Classifier outputs; 0 builds the network without its head.</summary>
        public int NumClasses { get; init; } = 1000;

        /// <summary>Input channels.</summary>
        public int InChannels { get; init; } = 3;

        /// <summary>Seed for weight initialisation (null: TorchSharp's global generator).</summary>
        public long? Seed { get; init; }

        /// <summary>The outputs at reductions 2, 4, 8, 16 and 32: channels and reduction.</summary>
        public abstract IReadOnlyList<StageInfo> Stages { get; }

        /// <summary>A width of the standard network scaled by α and rounded as torchvision rounds it.</summary>
        public int Channels(int width) => Divisible(width * WidthMultiplier);

        /// <summary>
        /// The nearest multiple of <paramref name="divisor"/>, at least <paramref name="divisor"/>, and never more than 10 % below the
        /// exact width (torchvision's <c>_make_divisible</c>).
        /// </summary>
        internal static int Divisible(double width, int divisor = 8)
        {
            int rounded = Math.Max(divisor, (int)(width + divisor / 2.0) / divisor * divisor);
            return rounded < 0.9 * width ? rounded + divisor : rounded;
        }

        /// <summary>A copy of <paramref name="definition"/> with every non-null option applied.</summary>
        internal static T With<T>(T definition, ModelOptions? options)
            where T : MobileNetDefinition
        {
            if (options is null) return definition;
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
            MobileNetDefinition result = definition with { DropRate = options.DropRate ?? definition.DropRate, Seed = options.Seed ?? definition.Seed };
            if (options is MobileNetOptions m) result = result with { WidthMultiplier = m.WidthMultiplier ?? definition.WidthMultiplier };
            return (T)result;
        }

        /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
        public void Validate()
        {
            if (!(WidthMultiplier > 0) || double.IsInfinity(WidthMultiplier)) throw new ArgumentException($"WidthMultiplier must be positive (got {WidthMultiplier}).");
            if (NumClasses < 0) throw new ArgumentException($"NumClasses must be at least 1, or 0 for a backbone without head (got {NumClasses}).");
            if (InChannels < 1) throw new ArgumentException($"InChannels must be at least 1 (got {InChannels}).");
            ModelOptions.CheckProbability(DropRate, nameof(DropRate));
        }
    }

    /// <summary>A complete description of one MobileNetV2 (Sandler et al. 2018).</summary>
    public sealed record MobileNetV2Definition : MobileNetDefinition
    {
        /// <summary>The inverted residual stages of the paper's Table 2: expansion t, width c, repeats n and first stride s.</summary>
        internal static readonly (int Expansion, int Width, int Repeats, int Stride)[] Settings =
        {
            (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
        };

        /// <summary>Channels of the stem convolution: 32·α, rounded.</summary>
        public int StemChannels => Channels(32);

        /// <summary>Channels of the last 1×1 convolution, which the classifier reads: 1280·max(α, 1), rounded.</summary>
        public int LastChannels => Divisible(1280 * Math.Max(1.0, WidthMultiplier));

        /// <summary>Returns a copy with every non-null option applied.</summary>
        public MobileNetV2Definition With(ModelOptions? options) => With(this, options);

        /// <inheritdoc />
        public override IReadOnlyList<StageInfo> Stages
        {
            get
            {
                var stages = new List<StageInfo>();
                int channels = Channels(Settings[0].Width), reduction = 2;
                foreach (var (_, width, _, stride) in Settings)
                {
                    if (stride == 2) stages.Add(new StageInfo(channels, reduction));
                    reduction *= stride;
                    channels = Channels(width);
                }

                stages.Add(new StageInfo(LastChannels, reduction));
                return stages;
            }
        }
    }
}
