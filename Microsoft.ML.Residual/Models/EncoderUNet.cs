using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>What one decoder block of an <see cref="EncoderUNet"/> does.</summary>
    /// <param name="Upsamples">Whether the block doubles the resolution before concatenating.</param>
    /// <param name="SkipStage">Index of the encoder stage it concatenates (into <see cref="IStageEncoder.StageChannels"/>), or null for none.</param>
    /// <param name="Reduction">Downsampling factor of the block's output relative to the (padded) input; 1 = input resolution.</param>
    /// <param name="OutChannels">Channels the block outputs.</param>
    public sealed record UNetDecoderStep(bool Upsamples, int? SkipStage, int Reduction, int OutChannels);

    /// <summary>
    /// A U-Net decoder over any backbone that exposes its stages (<see cref="IStageEncoder"/>), in the layout of
    /// segmentation_models_pytorch: the encoder's deepest stage enters the decoder, every other stage is a skip,
    /// each entry of <see cref="UNetOptions.DecoderChannels"/> is one decoder block (upsample ×2, concatenate the
    /// skip of the same resolution, two 3×3 convolution → BatchNorm → ReLU steps), and a 3×3 convolution
    /// (<c>segmentation_head</c>) maps the last block's channels to the classes at the input resolution.
    /// </summary>
    /// <remarks>
    /// <para><b>Which block upsamples and which skip it takes.</b> The decoder starts at the deepest stage's
    /// reduction R. Each block upsamples ×2 (R ← R/2) unless the features are already at the input resolution
    /// (R = 1) or an unused skip at the current resolution R is waiting (an encoder that keeps the resolution
    /// between two stages, such as a CIFAR-stem ResNet whose stem and first stage are both at 1/1); it then
    /// concatenates the deepest unused stage whose reduction equals R, if any. So blocks beyond the available skips
    /// get none and never upsample beyond the input resolution; stages whose reduction no block reaches are not
    /// used as skips. If the last block still ends at R &gt; 1 (fewer blocks than halvings), the head's logits are
    /// upsampled bilinearly to the input size. <see cref="DecoderSteps"/> lists the outcome.</para>
    /// <para><b>State-dict names.</b> <c>encoder.*</c> is the encoder's own state dict (for a ResNet the
    /// torchvision names: <c>encoder.conv1.weight</c>, <c>encoder.layer1.0.conv1.weight</c>, …);
    /// <c>decoder.{i}</c> are the blocks, deepest first, each with <c>up</c> (only for
    /// <see cref="UNetUpsampling.TransposedConvolution"/>), <c>conv1, bn1, conv2, bn2</c> and, for residual blocks,
    /// <c>shortcut.0/1</c>; <c>segmentation_head</c> is the final convolution. <c>conv1</c> reads
    /// <c>[upsampled, skip]</c> channels in that order.</para>
    /// <para>Sides that are not multiples of the deepest stage's reduction (<see cref="SizeMultiple"/>, 32 for
    /// ImageNet ResNets) are padded at the bottom and right by reflection (by edge replication when a side is not
    /// longer than its padding, where reflection is impossible), and the output is cropped back.</para>
    /// </remarks>
    public sealed class EncoderUNet : ResidualModule, ISegmentationModel, IStateDictKeyUpgrade
    {
        private readonly nn.Module<Tensor, Tensor> encoder;
        private readonly IStageEncoder stages;
        private readonly ModuleList<UNetBlock> decoder;
        private readonly Dropout? dropout;
        private readonly Conv2d head;
        private readonly int finalReduction;

        /// <summary>The default <see cref="UNetOptions.DecoderChannels"/>: 256, 128, 64, 32, 16.</summary>
        public static IReadOnlyList<int> DefaultDecoderChannels { get; } = new[] { 256, 128, 64, 32, 16 };

        /// <summary>
        /// The state-dict prefixes of everything but the encoder (<c>"decoder."</c>, <c>"segmentation_head."</c>).
        /// Pass them as <c>StateDictLoadOptions.SkipPrefixes</c> to load encoder weights strictly.
        /// </summary>
        public static IReadOnlyList<string> DecoderPrefixes { get; } = new[] { "decoder.", "segmentation_head." };

        /// <summary>Builds the decoder around an encoder.</summary>
        /// <param name="encoder">
        /// A module that implements <see cref="IStageEncoder"/>, e.g. a <see cref="ResNet"/> built with
        /// <c>NumClasses = 0</c>. It is registered as <c>encoder</c>; only <see cref="IStageEncoder.ForwardStages"/> is called.
        /// </param>
        /// <param name="numClasses">Output channels: one logit per class and pixel.</param>
        /// <param name="options">
        /// <see cref="UNetOptions.DecoderChannels"/> (default <see cref="DefaultDecoderChannels"/>),
        /// <see cref="UNetOptions.Upsampling"/> (default <see cref="UNetUpsampling.Nearest"/>),
        /// <see cref="UNetOptions.DecoderResidual"/>, <see cref="ModelOptions.DropRate"/> and
        /// <see cref="ModelOptions.Seed"/> (seeds the decoder's initialisation; the encoder is already built).
        /// <see cref="UNetOptions.Depth"/>, <see cref="UNetOptions.BaseWidth"/>, <see cref="UNetOptions.Encoder"/> and <see cref="UNetOptions.EncoderOptions"/> must be null.
        /// </param>
        /// <exception cref="ArgumentException">The encoder does not expose its stages, or an option is out of range or does not apply.</exception>
        public EncoderUNet(nn.Module<Tensor, Tensor> encoder, int numClasses, UNetOptions? options = null) : base(nameof(EncoderUNet))
        {
            if (encoder is null) throw new ArgumentNullException(nameof(encoder));
            if (encoder is not IStageEncoder stageEncoder)
            {
                throw new ArgumentException(
                    $"The encoder ({encoder.GetType().Name}) does not implement IStageEncoder, so its stage feature maps cannot feed a U-Net decoder. "
                    + "Use a backbone that implements it (ResNet does) or implement IStageEncoder on yours.",
                    nameof(encoder));
            }

            options ??= new UNetOptions();
            if (options.Encoder != null || options.EncoderOptions != null)
            {
                throw new ArgumentException(
                    "UNetOptions.Encoder and EncoderOptions choose and configure the encoder when ResidualModels.Create builds it; this constructor receives "
                    + "an encoder that is already built. Leave them null and configure the encoder you pass in.",
                    nameof(options));
            }

            CheckOptions(options);
            UNetOptions.CheckCounts(1, numClasses);
            IReadOnlyList<int> channels = stageEncoder.StageChannels;
            IReadOnlyList<int> reductions = stageEncoder.StageReductions;
            CheckStages(encoder, channels, reductions);
            if (options.Seed is long seed) torch.manual_seed(seed);

            this.encoder = encoder;
            stages = stageEncoder;
            NumClasses = numClasses;
            DecoderChannels = (options.DecoderChannels ?? DefaultDecoderChannels).ToArray();
            Upsampling = options.Upsampling ?? UNetUpsampling.Nearest;
            DecoderResidual = options.DecoderResidual ?? false;
            int deepest = channels.Count - 1;
            SizeMultiple = reductions[deepest];

            // The rule of the remarks: upsample unless at full resolution or a skip at this resolution waits; then
            // take the deepest unused skip at the block's resolution.
            var used = new bool[deepest];
            int FindSkip(int reduction)
            {
                for (int stage = deepest - 1; stage >= 0; stage--)
                {
                    if (!used[stage] && reductions[stage] == reduction) return stage;
                }

                return -1;
            }

            var blocks = new List<UNetBlock>();
            var steps = new List<UNetDecoderStep>();
            int current = reductions[deepest];
            int inChannels = channels[deepest];
            foreach (int outChannels in DecoderChannels)
            {
                int skip = FindSkip(current);
                bool upsample = skip < 0 && current > 1;
                if (upsample)
                {
                    current /= 2;
                    skip = FindSkip(current);
                }

                if (skip >= 0) used[skip] = true;
                blocks.Add(new UNetBlock(inChannels, skip >= 0 ? channels[skip] : 0, outChannels, DecoderResidual, upsample ? Upsampling : null));
                steps.Add(new UNetDecoderStep(upsample, skip >= 0 ? skip : null, current, outChannels));
                inChannels = outChannels;
            }

            finalReduction = current;
            DecoderSteps = steps;
            decoder = nn.ModuleList(blocks.ToArray());
            head = nn.Conv2d(inChannels, numClasses, 3, padding: 1);
            register_module("encoder", encoder);
            if (options.DropRate is double rate && rate > 0)
            {
                dropout = nn.Dropout(rate);
                register_module("dropout", dropout);
            }

            register_module("decoder", decoder);
            register_module("segmentation_head", head);
        }

        /// <summary>The encoder (registered as <c>encoder</c>); freeze its parameters to train the decoder alone.</summary>
        public nn.Module<Tensor, Tensor> Encoder => encoder;

        /// <summary>
        /// Passes <c>encoder.*</c> keys through the encoder's own <see cref="IStateDictKeyUpgrade"/> (for example
        /// DenseNet's old-style layer names), so legacy encoder checkpoints load through <see cref="EncoderKeyMap"/>.
        /// </summary>
        public string UpgradeKey(string key)
        {
            const string prefix = "encoder.";
            if (encoder is not IStateDictKeyUpgrade upgrade || !key.StartsWith(prefix, StringComparison.Ordinal)) return key;
            return prefix + upgrade.UpgradeKey(key.Substring(prefix.Length));
        }

        /// <inheritdoc />
        public int NumClasses { get; }

        /// <summary>Output channels of each decoder block, deepest first.</summary>
        public IReadOnlyList<int> DecoderChannels { get; }

        /// <summary>What each decoder block does: whether it upsamples, which stage it concatenates, its resolution.</summary>
        public IReadOnlyList<UNetDecoderStep> DecoderSteps { get; }

        /// <summary>How decoder blocks upsample.</summary>
        public UNetUpsampling Upsampling { get; }

        /// <summary>Whether the decoder blocks are residual.</summary>
        public bool DecoderResidual { get; }

        /// <inheritdoc />
        public string HeadPrefix => "segmentation_head.";

        /// <summary>The deepest stage's reduction (e.g. 32 for an ImageNet ResNet).</summary>
        public int SizeMultiple { get; }

        /// <summary>
        /// Maps the keys of a plain classifier checkpoint of the encoder's architecture (e.g. a torchvision
        /// <c>resnet18</c> state dict) to this model's keys: <c>k → "encoder." + k</c>, and drops the classifier's keys
        /// (returns null for them). Use it as <c>StateDictLoadOptions.MapKey</c>:
        /// <code>
        /// StateDict.Load(unet, "resnet18.pth", strict: true, new StateDictLoadOptions
        /// {
        ///     MapKey = EncoderUNet.EncoderKeyMap(),
        ///     SkipPrefixes = EncoderUNet.DecoderPrefixes.ToList(),   // the decoder and head are not in the file
        /// });
        /// </code>
        /// </summary>
        /// <param name="encoderClassifierPrefix">
        /// State-dict prefix of the checkpoint's classifier (<c>"fc."</c> for ResNets, <c>"classifier."</c> for
        /// torchvision DenseNets); null keeps every key.
        /// </param>
        /// <exception cref="ArgumentException"><paramref name="encoderClassifierPrefix"/> is empty (it would drop every key).</exception>
        public static Func<string, string?> EncoderKeyMap(string? encoderClassifierPrefix = "fc.")
        {
            if (encoderClassifierPrefix is { Length: 0 })
            {
                throw new ArgumentException(
                    "encoderClassifierPrefix is empty, which would drop every key; pass the classifier's prefix (\"fc.\") or null to keep every key.",
                    nameof(encoderClassifierPrefix));
            }

            return key => encoderClassifierPrefix != null && key.StartsWith(encoderClassifierPrefix, StringComparison.Ordinal)
                ? null
                : "encoder." + key;
        }

        /// <summary>Per-pixel logits, <c>N × NumClasses × H × W</c>, for an <c>N × C × H × W</c> input of any size.</summary>
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            T x = SegmentationPadding.PadToMultiple(ops, input, SizeMultiple);
            IReadOnlyList<T> features = ops.CallStages(encoder, x);
            if (features.Count != stages.StageChannels.Count)
            {
                throw new InvalidOperationException(
                    $"The encoder {encoder.GetType().Name} returned {features.Count} stage outputs but declares {stages.StageChannels.Count} (StageChannels).");
            }

            T y = features[features.Count - 1];
            if (dropout != null) y = ops.Call(dropout, y);
            for (int i = 0; i < DecoderSteps.Count; i++)
            {
                int? skip = DecoderSteps[i].SkipStage;
                y = ops.Call(decoder[i], decoder[i].Merge(ops, y, skip is int stage ? features[stage] : null));
            }

            T logits = ops.Call(head, y);
            if (finalReduction > 1) logits = ops.Upsample(logits, finalReduction, finalReduction, InterpolationMode.Bilinear);
            long[] shape = ops.Shape(input);
            return SegmentationPadding.Crop(ops, logits, shape[2], shape[3]);
        }

        /// <summary>Rejects the options that shape the classic U-Net and checks the decoder's.</summary>
        internal static void CheckOptions(UNetOptions options)
        {
            if (options.Depth != null || options.BaseWidth != null)
            {
                string name = options.Depth != null ? nameof(UNetOptions.Depth) : nameof(UNetOptions.BaseWidth);
                throw new ArgumentException(
                    $"UNetOptions.{name} shapes the classic 'unet'. An encoder U-Net's depth and widths come from its encoder and from "
                    + "DecoderChannels (one decoder block per entry): leave Depth and BaseWidth null.",
                    nameof(options));
            }

            if (options.DecoderChannels != null) UNetOptions.CheckDecoderChannels(options.DecoderChannels);
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
        }

        private static void CheckStages(nn.Module encoder, IReadOnlyList<int> channels, IReadOnlyList<int> reductions)
        {
            string name = encoder.GetType().Name;
            if (channels.Count == 0 || channels.Count != reductions.Count)
            {
                throw new ArgumentException(
                    $"The encoder {name} declares {channels.Count} StageChannels and {reductions.Count} StageReductions; a U-Net needs at least one stage and one reduction per stage.",
                    nameof(encoder));
            }

            for (int i = 0; i < channels.Count; i++)
            {
                if (channels[i] < 1)
                    throw new ArgumentException($"The encoder {name} declares {channels[i]} channels for stage {i}; every stage needs at least one.", nameof(encoder));
                int r = reductions[i];
                if (r < 1 || (r & (r - 1)) != 0)
                    throw new ArgumentException($"The encoder {name} declares reduction {r} for stage {i}; a U-Net decoder needs powers of two (1, 2, 4, …).", nameof(encoder));
                if (i > 0 && r < reductions[i - 1])
                    throw new ArgumentException($"The encoder {name} declares reductions {string.Join(", ", reductions)}; they must not decrease from the first stage to the last.", nameof(encoder));
            }
        }
    }
}
