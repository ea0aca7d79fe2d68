using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// One level of a U-Net: an optional ×2 upsampling of the input, an optional concatenation with a skip
    /// (<c>[upsampled, skip]</c> along the channels, in that order: <see cref="Merge"/>, which the U-Net calls), then
    /// two 3×3 convolution → BatchNorm → ReLU steps, optionally residual (the block's own forward, on the merged features). State-dict names: <c>up</c> (when the upsampling has parameters),
    /// <c>conv1, bn1, conv2, bn2</c>, and <c>shortcut.0</c> (1×1 convolution), <c>shortcut.1</c> (BatchNorm) for a
    /// residual block whose input and output widths differ.
    /// </summary>
    internal sealed class UNetBlock : ResidualBlock
    {
        private readonly nn.Module<Tensor, Tensor>? up;
        private readonly InterpolationMode? interpolation;
        private readonly Conv2d conv1;
        private readonly BatchNormalization2d bn1;
        private readonly Conv2d conv2;
        private readonly BatchNormalization2d bn2;
        private readonly Sequential? shortcut;
        private readonly bool residual;

        /// <param name="inChannels">Channels of the block's main input (before upsampling).</param>
        /// <param name="skipChannels">Channels of the skip concatenated after upsampling; 0 for none.</param>
        /// <param name="outChannels">Channels the block outputs.</param>
        /// <param name="residual">Add a shortcut around the two convolutions.</param>
        /// <param name="upsampling">Null: no upsampling. Otherwise how to double the resolution.</param>
        /// <param name="upChannels">
        /// Channels after upsampling (default <paramref name="inChannels"/>). When they differ from the input's, a
        /// transposed convolution maps them directly; an interpolation is preceded by a 1×1 convolution (with
        /// bias) at the low resolution, which equals convolving after interpolating because both are linear and
        /// interpolation weights sum to one.
        /// </param>
        public UNetBlock(int inChannels, int skipChannels, int outChannels, bool residual, UNetUpsampling? upsampling = null, int? upChannels = null)
            : base(nameof(UNetBlock))
        {
            int upOut = upChannels ?? inChannels;
            switch (upsampling)
            {
                case null:
                    upOut = inChannels;
                    break;
                case UNetUpsampling.TransposedConvolution:
                    up = nn.ConvTranspose2d(inChannels, upOut, 2, stride: 2);
                    break;
                default:
                    interpolation = upsampling == UNetUpsampling.Bilinear ? InterpolationMode.Bilinear : InterpolationMode.Nearest;
                    if (upOut != inChannels) up = nn.Conv2d(inChannels, upOut, 1);
                    break;
            }

            Upsamples = upsampling != null;
            SkipChannels = skipChannels;
            OutChannels = outChannels;
            this.residual = residual;
            int convIn = upOut + skipChannels;
            conv1 = nn.Conv2d(convIn, outChannels, 3, padding: 1, bias: false);
            bn1 = new BatchNormalization2d(outChannels);
            conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1, bias: false);
            bn2 = new BatchNormalization2d(outChannels);
            if (up != null) register_module("up", up);
            register_module("conv1", conv1);
            register_module("bn1", bn1);
            register_module("conv2", conv2);
            register_module("bn2", bn2);
            Conv2d? projection = null;
            if (residual && convIn != outChannels)
            {
                projection = nn.Conv2d(convIn, outChannels, 1, bias: false);
                shortcut = nn.Sequential(projection, new BatchNormalization2d(outChannels));
                register_module("shortcut", shortcut);
            }

            // As the ResNets: Kaiming-normal (fan-out, ReLU gain) for the convolutions BatchNorm follows; the
            // upsampling convolution keeps PyTorch's default initialisation. BatchNorm starts at γ = 1, β = 0.
            using var noGrad = torch.no_grad();
            foreach (Conv2d? conv in new[] { conv1, conv2, projection })
            {
                if (conv != null) nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
            }
        }

        /// <summary>Whether the block doubles the resolution of its input.</summary>
        public bool Upsamples { get; }

        /// <summary>Channels of the skip the block concatenates (0: none).</summary>
        public int SkipChannels { get; }

        /// <summary>Channels the block outputs.</summary>
        public int OutChannels { get; }

        /// <summary>Upsamples <paramref name="input"/> (if the block does) and concatenates <paramref name="skip"/>: what the block's convolutions read.</summary>
        public T Merge<T>(IOperations<T> ops, T input, T? skip)
            where T : class
        {
            T x = input;
            if (up != null) x = ops.Call(up, x);
            if (interpolation is InterpolationMode mode) x = ops.Upsample(x, 2, 2, mode);
            if (skip is null) return x;
            long[] shape = ops.Shape(x), skipShape = ops.Shape(skip);
            if (shape[2] != skipShape[2] || shape[3] != skipShape[3])
            {
                throw new InvalidOperationException(
                    $"A U-Net decoder block produced {shape[2]}×{shape[3]} features but its skip is {skipShape[2]}×{skipShape[3]}. "
                    + "The encoder's stage outputs must have exactly the sizes its StageReductions declare for inputs that are multiples of the total reduction.");
            }

            return ops.Concat(new[] { x, skip }, 1);
        }

        /// <summary>The two convolution steps (and the shortcut) applied to <paramref name="input"/>, the merged features.</summary>
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            var (branch, identity) = residual ? ops.Fork(input) : (input, input);
            T h = ops.Relu(ops.Call(bn1, ops.Call(conv1, branch)));
            h = ops.Call(bn2, ops.Call(conv2, h));
            if (residual) h = ops.Residual(h, shortcut is null ? identity : ops.Call(shortcut, identity));
            return ops.Relu(h);
        }
    }

    /// <summary>The pad-then-crop rule shared by the U-Nets.</summary>
    internal static class SegmentationPadding
    {
        /// <summary>
        /// Pads the bottom and right of <paramref name="input"/> up to the next multiple of <paramref name="multiple"/>
        /// by reflection (mirroring, as the U-Net paper extrapolates missing context), or, when either side is not
        /// longer than its padding (reflection impossible), by replicating the edges of both.
        /// </summary>
        public static T PadToMultiple<T>(IOperations<T> ops, T input, int multiple)
            where T : class
        {
            long[] shape = ops.Shape(input);
            if (shape.Length != 4)
            {
                throw new ArgumentException(
                    $"A U-Net expects a batch of images N×C×H×W (4 dimensions), got shape [{string.Join(", ", shape)}]; add the batch dimension with unsqueeze(0).",
                    nameof(input));
            }

            long padHeight = (multiple - shape[2] % multiple) % multiple;
            long padWidth = (multiple - shape[3] % multiple) % multiple;
            if (padHeight == 0 && padWidth == 0) return input;
            PaddingModes mode = padHeight < shape[2] && padWidth < shape[3] ? PaddingModes.Reflect : PaddingModes.Replicate;
            return ops.Pad(input, new[] { 0, padWidth, 0, padHeight }, mode);
        }

        /// <summary>Crops the top-left <paramref name="height"/> × <paramref name="width"/> of <paramref name="output"/>.</summary>
        public static T Crop<T>(IOperations<T> ops, T output, long height, long width)
            where T : class
        {
            if (ops.Shape(output)[2] != height) output = ops.Slice(output, 2, 0, height);
            if (ops.Shape(output)[3] != width) output = ops.Slice(output, 3, 0, width);
            return output;
        }
    }
}
