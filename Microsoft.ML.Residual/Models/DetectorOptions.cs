using System;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Options of the one-stage detectors (<c>retinanet_resnet50_fpn</c>, <c>fcos_resnet50_fpn</c>, …). Every property left
    /// null keeps the named model's default: torchvision's layout, a 256-channel feature pyramid and four convolutions per head
    /// tower. <see cref="Backbone"/> and <see cref="BackboneOptions"/> choose and configure the backbone when
    /// <see cref="ResidualModels.Create"/> builds it; <see cref="FpnChannels"/> and <see cref="HeadConvolutions"/> shrink the
    /// pyramid and the heads (small images, CPU training). An option the detectors do not use throws an
    /// <see cref="ArgumentException"/> naming it.
    /// </summary>
    /// <remarks>
    /// <see cref="ModelOptions.DropRate"/> does not apply (torchvision's heads have no dropout): leave it null or 0.
    /// <see cref="ModelOptions.Seed"/> seeds TorchSharp's generator before the backbone and then the pyramid and the heads
    /// are initialised.
    /// </remarks>
    public sealed class DetectorOptions : ModelOptions
    {
        /// <summary>The default <see cref="FpnChannels"/> (torchvision's).</summary>
        public const int DefaultFpnChannels = 256;

        /// <summary>The default <see cref="HeadConvolutions"/> (torchvision's).</summary>
        public const int DefaultHeadConvolutions = 4;

        /// <summary>The most groups of the FCOS heads' group normalisation (torchvision's 32).</summary>
        public const int MaxGroupNormGroups = 32;

        /// <summary>
        /// The backbone: any registered classifier whose network exposes its stages (<see cref="IStageEncoder"/>) with at least
        /// three of them, the last three halving the resolution one after another ("resnet18", "resnet50", a network registered
        /// with <see cref="ResidualModels.Register"/>). It is built without its classifier (numClasses 0). Null keeps the named
        /// model's (<see cref="ModelInfo.Encoder"/> of its card: resnet50 for <c>retinanet_resnet50_fpn</c>).
        /// </summary>
        public string? Backbone { get; set; }

        /// <summary>
        /// The options of the backbone, passed to its factory (for ResNets a <see cref="ResNetOptions"/>). Null keeps the
        /// backbone's defaults.
        /// </summary>
        public ModelOptions? BackboneOptions { get; set; }

        /// <summary>
        /// Channels of every pyramid level P3–P7 and of the head towers (default 256). For FCOS, whose towers normalise in
        /// min(32, FpnChannels) groups, it must be a multiple of 32 when it is 32 or more.
        /// </summary>
        public int? FpnChannels { get; set; }

        /// <summary>3×3 convolutions (each followed by ReLU; for FCOS by GroupNorm and ReLU) in each head tower, 0 or more (default 4).</summary>
        public int? HeadConvolutions { get; set; }

        /// <summary>A shallow copy (the caller may then change it without touching the user's object).</summary>
        internal DetectorOptions Clone() => (DetectorOptions)MemberwiseClone();

        /// <summary>Copies a plain <see cref="ModelOptions"/> (or null) into detector options.</summary>
        internal static DetectorOptions From(ModelOptions? options) => options switch
        {
            null => new DetectorOptions(),
            DetectorOptions detector => detector,
            _ => new DetectorOptions { DropRate = options.DropRate, Seed = options.Seed },
        };

        /// <summary>The options without the backbone's choice (what the detector's constructor receives).</summary>
        internal DetectorOptions WithoutBackbone()
        {
            DetectorOptions copy = Clone();
            copy.Backbone = null;
            copy.BackboneOptions = null;
            return copy;
        }

        /// <summary>GroupNorm groups of a tower of <paramref name="channels"/> channels: min(32, channels).</summary>
        internal static int GroupNormGroups(int channels) => Math.Min(MaxGroupNormGroups, channels);

        /// <summary>Checks the options that shape the pyramid and the heads.</summary>
        internal static void Check(DetectorOptions options, DetectorKind kind, int numClasses)
        {
            if (numClasses < 1)
                throw new ArgumentException($"numClasses must be at least 1 for a detector (got {numClasses}): the object classes, without a background class.", nameof(numClasses));
            if (options.DropRate is double rate && rate != 0)
            {
                throw new ArgumentException(
                    $"ModelOptions.DropRate = {rate}: the detectors have no dropout (torchvision's RetinaNet and FCOS heads have none). Leave it null or 0.",
                    nameof(options));
            }

            if (options.FpnChannels is int channels)
            {
                if (channels < 1)
                    throw new ArgumentException($"DetectorOptions.FpnChannels must be at least 1 (got {channels}).", nameof(options));
                int groups = GroupNormGroups(channels);
                if (kind == DetectorKind.Fcos && channels % groups != 0)
                {
                    throw new ArgumentException(
                        $"DetectorOptions.FpnChannels = {channels}: the FCOS head towers normalise in min(32, FpnChannels) = {groups} groups, which must divide the "
                        + $"channels. Use fewer than 32 channels or a multiple of 32 (e.g. {channels / groups * groups} or {(channels / groups + 1) * groups}).",
                        nameof(options));
                }
            }

            if (options.HeadConvolutions is int convolutions && convolutions < 0)
                throw new ArgumentException($"DetectorOptions.HeadConvolutions must be 0 or more (got {convolutions}).", nameof(options));
        }
    }
}
