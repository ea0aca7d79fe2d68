using System;
using Microsoft.ML.Residual.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Mixed precision for the library's networks, in the manner of PyTorch's autocast (TorchSharp has none): inside
    /// <see cref="Enter(TrainingPrecision)"/> on a thread, every convolution and linear layer of the library's modules casts its input, weight
    /// and bias to the half-precision type and computes in it; batch normalisation casts its input back to float32; other
    /// operations run in the type of their input (a residual sum of float32 and half is float32). The weights themselves stay
    /// float32 ("master weights"): the casts are part of the autograd graph, so gradients arrive in float32. Outside a scope
    /// nothing changes, so scoring, export and diagnostics compute in float32.
    /// </summary>
    internal static class Autocast
    {
        [ThreadStatic]
        private static ScalarType? computeType;

        /// <summary>The half-precision type convolutions compute in on this thread, or null outside a scope.</summary>
        public static ScalarType? ComputeType => computeType;

        /// <summary>
        /// Starts mixed precision on this thread for <paramref name="precision"/> (nothing for float32); disposing the result
        /// restores what was in force before.
        /// </summary>
        public static IDisposable Enter(TrainingPrecision precision) => new Scope(precision switch
        {
            TrainingPrecision.Float32 => null,
            TrainingPrecision.BFloat16 => ScalarType.BFloat16,
            TrainingPrecision.Float16 => ScalarType.Float16,
            _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Float32, BFloat16 or Float16."),
        });

        /// <summary>Starts mixed precision on this thread in <paramref name="computeType"/> (null: float32), as <see cref="ComputeType"/> names it.</summary>
        public static IDisposable Enter(ScalarType? computeType) => computeType switch
        {
            null or ScalarType.BFloat16 or ScalarType.Float16 => new Scope(computeType),
            _ => throw new ArgumentOutOfRangeException(nameof(computeType), computeType, "BFloat16, Float16 or null."),
        };

        /// <summary>A float32 <paramref name="tensor"/> in the scope's compute type; anything else unchanged.</summary>
        public static Tensor ToCompute(Tensor tensor) =>
            computeType is ScalarType half && tensor.dtype == ScalarType.Float32 ? tensor.to_type(half) : tensor;

        /// <summary><paramref name="tensor"/> in float32 if it is half precision; otherwise unchanged.</summary>
        public static Tensor ToFloat32(Tensor tensor) =>
            tensor.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? tensor.to_type(ScalarType.Float32) : tensor;

        /// <summary>The linear layer applied to <paramref name="input"/>, in the compute type inside a scope.</summary>
        public static Tensor Apply(this Linear linear, Tensor input)
        {
            if (computeType is null) return linear.call(input);
            return nn.functional.linear(ToCompute(input), ToCompute(linear.weight!), linear.bias is null ? null : ToCompute(linear.bias));
        }

        /// <summary>
        /// <paramref name="module"/> applied to <paramref name="input"/>; inside a scope its convolutions and linear layers
        /// (also those inside a <see cref="Sequential"/>) compute in the compute type. Outside a scope, <c>module.call(input)</c>.
        /// </summary>
        public static Tensor Call(nn.Module<Tensor, Tensor> module, Tensor input)
        {
            if (computeType is null) return module.call(input);
            switch (module)
            {
                case Conv2d convolution:
                    return convolution.Convolve(input);
                case ConvTranspose2d transposed:
                    ConvolutionKernels.EnsureCorrect();
                    return nn.functional.conv_transpose2d(ToCompute(input), ToCompute(transposed.weight!),
                        transposed.bias is null ? null : ToCompute(transposed.bias), transposed.stride, transposed.padding,
                        transposed.output_padding, transposed.dilation, transposed.groups);
                case Linear linear:
                    return linear.Apply(input);
                case Sequential sequence:
                    Tensor x = input;
                    foreach (var child in sequence.children())
                        x = Call(child as nn.Module<Tensor, Tensor> ?? throw new InvalidOperationException($"{child.GetName()} is not a tensor-to-tensor module."), x);
                    return x;
                default:
                    return module.call(input);
            }
        }

        private sealed class Scope : IDisposable
        {
            private readonly ScalarType? previous;
            private bool disposed;

            public Scope(ScalarType? type)
            {
                previous = computeType;
                computeType = type;
            }

            public void Dispose()
            {
                if (disposed) return;
                disposed = true;
                computeType = previous;
            }
        }
    }
}
