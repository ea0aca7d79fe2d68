using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>How a U-Net decoder block doubles the resolution of its input.</summary>
    public enum UNetUpsampling
    {
        /// <summary>
        /// A learned 2×2 transposed convolution with stride 2 (the U-Net paper's "up-convolution"). In <c>unet</c> it
        /// also halves the channels; in the encoder U-Nets it keeps them.
        /// </summary>
        TransposedConvolution,

        /// <summary>
        /// Bilinear interpolation ×2 (<c>align_corners = false</c>). In <c>unet</c> a 1×1 convolution then halves the
        /// channels; in the encoder U-Nets the interpolation has no parameters.
        /// </summary>
        Bilinear,

        /// <summary>
        /// Nearest-neighbour interpolation ×2 (segmentation_models_pytorch's default). In <c>unet</c> a 1×1 convolution
        /// then halves the channels; in the encoder U-Nets the interpolation has no parameters.
        /// </summary>
        Nearest,
    }

    /// <summary>
    /// Options of the U-Net family (<c>unet</c>, <c>unet_resnet18</c>, …). Every property left null keeps the
    /// named model's default. <see cref="Depth"/> and <see cref="BaseWidth"/> shape the classic <c>unet</c>;
    /// <see cref="Encoder"/> makes <c>unet</c> an encoder U-Net over any registered backbone (the names
    /// <c>unet_resnet18</c>, … are <c>unet</c> with their encoder set); <see cref="DecoderChannels"/> and
    /// <see cref="EncoderOptions"/> shape the encoder U-Nets; setting an option on a
    /// model it does not apply to throws an <see cref="ArgumentException"/> naming it.
    /// </summary>
    /// <remarks>
    /// <see cref="ModelOptions.DropRate"/> adds (element-wise) dropout to the deepest feature map, the end of the
    /// contracting path where the U-Net paper puts it, before the decoder reads it.
    /// <see cref="ModelOptions.Seed"/> seeds TorchSharp's generator before any weight is initialised.
    /// </remarks>
    public sealed class UNetOptions : ModelOptions
    {
        /// <summary>Classic <c>unet</c> only: the number of 2×2 max-pool downsamplings (default 4; inputs are padded to a multiple of 2^Depth).</summary>
        public int? Depth { get; set; }

        /// <summary>Classic <c>unet</c> only: channels of the first level (default 64); each deeper level doubles them.</summary>
        public int? BaseWidth { get; set; }

        /// <summary>How decoder blocks upsample: <c>TransposedConvolution</c> for <c>unet</c>, <c>Nearest</c> for the encoder U-Nets by default.</summary>
        public UNetUpsampling? Upsampling { get; set; }

        /// <summary>Encoder U-Nets only: output channels of each decoder block, deepest first (default 256, 128, 64, 32, 16).</summary>
        public IReadOnlyList<int>? DecoderChannels { get; set; }

        /// <summary>
        /// Make every decoder block residual: its two 3×3 convolutions get a shortcut (a 1×1 convolution and
        /// BatchNorm where the channel count changes) that is added before the last ReLU. Default false.
        /// </summary>
        public bool? DecoderResidual { get; set; }

        /// <summary>
        /// With <c>unet</c>: the encoder, any registered classifier whose network exposes its stages
        /// (<see cref="IStageEncoder"/>) — "resnet34", "resnet50d", "densenet121", or a network registered with
        /// <see cref="ResidualModels.Register"/>; the decoder is then built over its stages. Null: the classic U-Net. The names
        /// <c>unet_resnet18</c>, <c>unet_resnet34</c>, <c>unet_resnet50</c> and <c>unet_densenet121</c> are <c>unet</c>
        /// with this set, and take no other encoder.
        /// </summary>
        public string? Encoder { get; set; }

        /// <summary>
        /// Encoder U-Nets only: the options of the encoder, passed to its factory (for the ResNet encoders a
        /// <see cref="ResNetOptions"/>: pre-activation, CIFAR stem, zero-init residuals, …). Null keeps the encoder's defaults.
        /// </summary>
        public ModelOptions? EncoderOptions { get; set; }

        /// <summary>A shallow copy (the caller may then set <see cref="ModelOptions.Seed"/> without touching the user's object).</summary>
        internal UNetOptions Clone() => (UNetOptions)MemberwiseClone();

        /// <summary>Copies a plain <see cref="ModelOptions"/> (or null) into U-Net options.</summary>
        internal static UNetOptions From(ModelOptions? options) => options switch
        {
            null => new UNetOptions(),
            UNetOptions unet => unet,
            _ => new UNetOptions { DropRate = options.DropRate, Seed = options.Seed },
        };

        internal UNetOptions WithoutEncoder()
        {
            var copy = (UNetOptions)MemberwiseClone();
            copy.Encoder = null;
            copy.EncoderOptions = null;
            return copy;
        }

        internal static void CheckCounts(int inChannels, int numClasses)
        {
            if (inChannels < 1)
                throw new ArgumentException($"inChannels must be at least 1 (got {inChannels}); use 3 for RGB, 1 for grayscale.", nameof(inChannels));
            if (numClasses < 1)
                throw new ArgumentException($"numClasses must be at least 1 for a U-Net (got {numClasses}): it is the number of output channels (classes per pixel).", nameof(numClasses));
        }

        internal static void CheckDecoderChannels(IReadOnlyList<int> channels)
        {
            if (channels.Count == 0)
                throw new ArgumentException("UNetOptions.DecoderChannels is empty: give one output width per decoder block, e.g. { 256, 128, 64, 32, 16 }.", nameof(DecoderChannels));
            if (channels.Any(c => c < 1))
                throw new ArgumentException($"UNetOptions.DecoderChannels must all be at least 1 (got {{ {string.Join(", ", channels)} }}).", nameof(DecoderChannels));
        }
    }
}
