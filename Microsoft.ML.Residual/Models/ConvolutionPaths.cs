using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Runs every convolution of the library's networks, after <see cref="ConvolutionKernels.EnsureCorrect"/> has made sure
    /// libtorch computes convolutions right on this machine, and the fastest way libtorch offers for the input's shape. When
    /// the convolution produces a single output pixel per image (the last stage of an ImageNet-stem network on 32² images: a
    /// 3×3 convolution, padding 1, over a 1×1 map), every kernel tap outside the input only multiplies padding zeros.
    /// libtorch's convolution still computes all of them (9× the work for a 3×3 kernel); here the visible part of the kernel
    /// meets the input in one matrix product. The result is the same convolution up to float rounding, its gradients flow
    /// into the same <c>weight</c> (the taps that see only padding get zero gradient, as they do in the convolution), and the
    /// module, its state-dict keys and its ONNX export are unchanged. The matrix-product path calls the functional
    /// operations, so forward hooks registered on the <see cref="Conv2d"/> module do not run for single-pixel outputs.
    /// Inside an <see cref="Autocast"/> scope the convolution computes in the scope's half-precision type (its output too).
    /// </summary>
    internal static class ConvolutionPaths
    {
        /// <summary>The convolution's output for <paramref name="input"/> (N, C, H, W).</summary>
        public static Tensor Convolve(this Conv2d convolution, Tensor input)
        {
            ConvolutionKernels.EnsureCorrect();
            bool single = IsSingleOutputPixel(convolution, input, out long rowStart, out long rowEnd, out long columnStart, out long columnEnd);
            if (!single && Autocast.ComputeType is null) return convolution.call(input);
            if (!single && (convolution.padding_mode != PaddingModes.Zeros || convolution.padding_type.HasValue))
                return convolution.call(Autocast.ToFloat32(input)); // not zero-padded by numbers: float32, as the module computes it
            if (!single)
            {
                return nn.functional.conv2d(Autocast.ToCompute(input), Autocast.ToCompute(convolution.weight!),
                    convolution.bias is null ? null : Autocast.ToCompute(convolution.bias), convolution.stride, convolution.padding,
                    convolution.dilation, convolution.groups);
            }

            // Input rows [rowStart, rowEnd) meet kernel rows [rowStart + padding, rowEnd + padding); columns likewise.
            long padRows = convolution.padding![0], padColumns = convolution.padding[1];
            Tensor weight = Autocast.ToCompute(convolution.weight!);
            input = Autocast.ToCompute(input);
            long outChannels = weight.shape[0];
            long batch = input.shape[0];
            using Tensor visibleInput = input[.., .., TensorIndex.Slice(rowStart, rowEnd), TensorIndex.Slice(columnStart, columnEnd)];
            using Tensor visibleWeight = weight[.., .., TensorIndex.Slice(rowStart + padRows, rowEnd + padRows),
                TensorIndex.Slice(columnStart + padColumns, columnEnd + padColumns)];
            using Tensor inputMatrix = visibleInput.reshape(batch, -1);
            // A contiguous copy: libtorch's matrix product is several times slower on the kernel's strided view.
            using Tensor weightMatrix = visibleWeight.reshape(outChannels, -1).contiguous();
            using Tensor product = nn.functional.linear(inputMatrix, weightMatrix,
                convolution.bias is null ? null : Autocast.ToCompute(convolution.bias));
            return product.reshape(batch, outChannels, 1, 1);
        }

        /// <summary><c>conv2d(input, weight, bias)</c> with zero padding, once libtorch's convolutions are known to be right here.</summary>
        public static Tensor Convolve(Tensor input, Tensor weight, Tensor? bias, long[] stride, long[] padding, long[] dilation,
            long groups = 1)
        {
            ConvolutionKernels.EnsureCorrect();
            return nn.functional.conv2d(Autocast.ToCompute(input), Autocast.ToCompute(weight), bias is null ? null : Autocast.ToCompute(bias),
                stride, padding, dilation, groups);
        }

        // True for an ordinary (zero-padded, ungrouped, undilated) convolution whose output is 1×1, with the input window
        // that the single output pixel sees.
        private static bool IsSingleOutputPixel(Conv2d convolution, Tensor input, out long rowStart, out long rowEnd,
            out long columnStart, out long columnEnd)
        {
            rowStart = rowEnd = columnStart = columnEnd = 0;
            if (convolution.transposed || convolution.groups != 1 || convolution.padding_mode != PaddingModes.Zeros) return false;
            if (convolution.padding_type.HasValue || input.dim() != 4) return false;
            long[]? kernel = convolution.kernel_size, stride = convolution.stride, dilation = convolution.dilation,
                padding = convolution.padding;
            if (kernel is null || stride is null || dilation is null || padding is null) return false;
            if (kernel.Length != 2 || stride.Length != 2 || dilation.Length != 2 || padding.Length != 2) return false;
            if (dilation[0] != 1 || dilation[1] != 1) return false;

            long height = input.shape[2], width = input.shape[3];
            long outHeight = (height + 2 * padding[0] - kernel[0]) / stride[0] + 1;
            long outWidth = (width + 2 * padding[1] - kernel[1]) / stride[1] + 1;
            if (outHeight != 1 || outWidth != 1) return false;

            // The one output pixel sees input rows [-padding, kernel - padding) clipped to the map; columns likewise.
            rowStart = System.Math.Max(0, -padding[0]);
            rowEnd = System.Math.Min(height, kernel[0] - padding[0]);
            columnStart = System.Math.Max(0, -padding[1]);
            columnEnd = System.Math.Min(width, kernel[1] - padding[1]);
            return rowEnd > rowStart && columnEnd > columnStart;
        }
    }
}
