using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// One level of a U-Net: an optional ×2 upsampling of the input, an optional concatenation with a skip
    /// (<c>[upsampled, skip]</c> along the channels, in that order), then two 3×3 convolution → BatchNorm → ReLU
    /// steps, optionally residual. State-dict names: <c>up</c> (when the upsampling has parameters),
    /// <c>conv1, bn1, conv2, bn2</c>, and <c>shortcut.0</c> (1×1 convolution), <c>shortcut.1</c> (BatchNorm) for a
    /// residual block whose input and output widths differ.
    /// </summary>
    internal sealed class UNetBlock : nn.Module
    {
        private readonly nn.Module<Tensor, Tensor>? up;
        private readonly InterpolationMode? interpolation;
        private readonly Conv2d conv1;
        private readonly BatchNormalization2d bn1;
        private readonly Conv2d conv2;
        private readonly BatchNormalization2d bn2;
        private readonly Sequential? shortcut;
        private readonly bool residual;

        /// <summary>Children are registered explicitly (see <see cref="ExplicitModule"/>).</summary>
        protected override void RegisterComponents()
        {
        }

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

        /// <summary>Upsamples <paramref name="input"/> (if the block does), concatenates <paramref name="skip"/> and applies the convolutions.</summary>
        public Tensor Forward(Tensor input, Tensor? skip)
        {
            ConvolutionKernels.EnsureCorrect(); // before the upsampling convolution, which does not run through ConvolutionPaths
            Tensor x = input;
            if (interpolation is InterpolationMode mode)
            {
                if (up != null) x = Autocast.Call(up, x);
                x = nn.functional.interpolate(x, scale_factor: new[] { 2.0, 2.0 }, mode: mode, align_corners: mode == InterpolationMode.Bilinear ? false : null);
            }
            else if (up != null)
            {
                x = Autocast.Call(up, x);
            }

            if (skip is not null)
            {
                if (x.shape[2] != skip.shape[2] || x.shape[3] != skip.shape[3])
                {
                    throw new InvalidOperationException(
                        $"A U-Net decoder block produced {x.shape[2]}×{x.shape[3]} features but its skip is {skip.shape[2]}×{skip.shape[3]}. "
                        + "The encoder's stage outputs must have exactly the sizes its StageReductions declare for inputs that are multiples of the total reduction.");
                }

                x = torch.cat(new[] { x, skip }, 1);
            }

            if (InputProbe is { } probe) x = probe(x);
            return Convolutions(x);
        }

        /// <summary>
        /// Set by the diagnostics: receives the features the convolutions read (after upsampling and concatenation) and returns
        /// the tensor to use in their place, so that the gradient at the block's input can be read from it.
        /// </summary>
        internal Func<Tensor, Tensor>? InputProbe { get; set; }

        /// <summary>
        /// Set by the diagnostics: a residual block's branch and shortcut then read two views of the convolutions' input, which
        /// are passed to this callback (branch view, shortcut view).
        /// </summary>
        internal Action<Tensor, Tensor>? PathProbe { get; set; }

        /// <summary>Whether the block adds a shortcut around its convolutions.</summary>
        internal bool Residual => residual;

        /// <summary>
        /// The block after its upsampling and concatenation: the two convolution steps (and the shortcut) applied to
        /// <paramref name="x"/>, the concatenated features.
        /// </summary>
        internal Tensor Convolutions(Tensor x)
        {
            var (branchInput, identityInput) = ResNetBlock.SplitForProbe(x, residual ? PathProbe : null);

            Tensor h = nn.functional.relu(bn1.call(conv1.Convolve(branchInput)), inplace: true);
            h = bn2.call(conv2.Convolve(h));
            if (residual) h = h.PlusInPlace(shortcut is null ? identityInput : Autocast.Call(shortcut, identityInput));
            return nn.functional.relu(h, inplace: true);
        }

        /// <summary>Emits <see cref="Forward"/> (called by the owning U-Net, whose scope names the children).</summary>
        public GraphValue ExportGraph(IGraphBuilder graph, GraphValue input, GraphValue? skip)
        {
            GraphValue x = input;
            if (up != null) x = graph.Call(up, x);
            if (interpolation is InterpolationMode mode) x = graph.Upsample(x, 2, 2, mode);
            if (skip is not null) x = graph.Concat(new[] { x, skip }, 1);
            GraphValue h = graph.Relu(graph.Call(bn1, graph.Call(conv1, x)));
            h = graph.Call(bn2, graph.Call(conv2, h));
            if (residual) h = graph.Add(h, shortcut is null ? x : graph.Call(shortcut, x));
            return graph.Relu(h);
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
        public static Tensor PadToMultiple(Tensor input, int multiple)
        {
            if (input.dim() != 4)
            {
                throw new ArgumentException(
                    $"A U-Net expects a batch of images N×C×H×W (4 dimensions), got shape [{string.Join(", ", input.shape)}]; add the batch dimension with unsqueeze(0).",
                    nameof(input));
            }

            (long[]? pads, PaddingModes mode) = PaddingFor(input.shape[2], input.shape[3], multiple);
            return pads is null ? input : nn.functional.pad(input, pads, mode);
        }

        /// <summary>Emits <see cref="PadToMultiple(Tensor, int)"/> for the example's (static) spatial size.</summary>
        public static GraphValue PadToMultiple(IGraphBuilder graph, GraphValue input, int multiple)
        {
            (long[]? pads, PaddingModes mode) = PaddingFor(input.Shape[2], input.Shape[3], multiple);
            return pads is null ? input : graph.Pad(input, pads, mode);
        }

        // PyTorch-order pads (left, right, top, bottom) up to the next multiple, and the mode; null pads: none needed.
        private static (long[]? Pads, PaddingModes Mode) PaddingFor(long height, long width, int multiple)
        {
            long padHeight = (multiple - height % multiple) % multiple;
            long padWidth = (multiple - width % multiple) % multiple;
            if (padHeight == 0 && padWidth == 0) return (null, PaddingModes.Zeros);
            PaddingModes mode = padHeight < height && padWidth < width ? PaddingModes.Reflect : PaddingModes.Replicate;
            return (new[] { 0, padWidth, 0, padHeight }, mode);
        }

        /// <summary>Emits <see cref="Crop(Tensor, long, long)"/>.</summary>
        public static GraphValue Crop(IGraphBuilder graph, GraphValue output, long height, long width)
        {
            if (output.Shape[2] != height) output = graph.Slice(output, 2, 0, height);
            if (output.Shape[3] != width) output = graph.Slice(output, 3, 0, width);
            return output;
        }

        /// <summary>Crops the top-left <paramref name="height"/> × <paramref name="width"/> of <paramref name="output"/>.</summary>
        public static Tensor Crop(Tensor output, long height, long width)
        {
            if (output.shape[2] == height && output.shape[3] == width) return output;
            return output.narrow(2, 0, height).narrow(3, 0, width);
        }
    }
}
