using System;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Batch normalisation over (N, C, H, W) with the numerics, defaults (ε = 1e-5, momentum 0.1) and state-dict keys of
    /// <c>torch.nn.BatchNorm2d</c>: <c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c>,
    /// <c>num_batches_tracked</c>. It replaces TorchSharp's <c>nn.BatchNorm2d</c>, whose training step counts batches with
    /// <c>num_batches_tracked.add_(1)</c>: that passes libtorch a temporary <see cref="TorchSharp.Scalar"/> the garbage
    /// collector may free during the call, which crashes training at random (docs/reliability.md). Here the count is
    /// advanced with Scalars that live as long as the process.
    /// </summary>
    public sealed class BatchNormalization2d : BatchNorm
    {
        /// <summary>Creates the layer for <paramref name="features"/> channels, with learnable scale and shift and running statistics.</summary>
        /// <param name="features">Channels (C).</param>
        /// <param name="eps">Added to the variance before its square root.</param>
        /// <param name="momentum">Weight of the newest batch in the running statistics.</param>
        public BatchNormalization2d(long features, double eps = 1e-5, double momentum = 0.1)
            : base(features, eps, momentum, affine: true, track_running_stats: true, device: null, dtype: null, name: "BatchNorm2d")
        {
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor input)
        {
            ValidateInputDimensions(input);
            input = Autocast.ToFloat32(input); // normalisation computes in float32 under mixed precision, as PyTorch's autocast does
            double averagingFactor = momentum ?? 0.0;
            if (training && track_running_stats && num_batches_tracked is not null)
            {
                num_batches_tracked.Increment();
                // A cumulative average (momentum null) needs the count on the host, as torch.nn.BatchNorm2d does.
                if (momentum is null) averagingFactor = 1.0 / num_batches_tracked.item<long>();
            }

            bool batchStatistics = training || (running_mean is null && running_var is null);
            bool runningStatistics = !training || track_running_stats;
            return F.batch_norm(input, runningStatistics ? running_mean : null, runningStatistics ? running_var : null, weight, bias, batchStatistics, averagingFactor, eps);
        }

        /// <inheritdoc />
        protected override void ValidateInputDimensions(Tensor input)
        {
            if (input.ndim != 4)
                throw new ArgumentException($"BatchNorm2d expects a 4-D input (N, C, H, W) but got {input.ndim} dimensions.", nameof(input));
        }
    }
}
