using System;
using Microsoft.ML.Residual.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// The running sums of a training or validation pass, kept on the model's device: the loss times the images of each
    /// batch, the correct predictions and the labelled targets. Adding a batch queues device work and never waits for it;
    /// <see cref="Read"/> copies the three sums to the host at once, the one point where the host waits for the device.
    /// </summary>
    internal sealed class DeviceTotals : IDisposable
    {
        private readonly Tensor loss, correct, labelled;

        /// <summary>Zero sums on <paramref name="device"/>.</summary>
        public DeviceTotals(Device device)
        {
            loss = zeros(Array.Empty<long>(), dtype: ScalarType.Float64, device: device);
            correct = zeros(Array.Empty<long>(), dtype: ScalarType.Int64, device: device);
            labelled = zeros(Array.Empty<long>(), dtype: ScalarType.Int64, device: device);
        }

        /// <summary>
        /// Adds a batch: its mean loss (a 0-d tensor) weighted by <paramref name="images"/>, the predictions equal to their
        /// targets, and the targets that are labelled (≥ 0; −1 marks an ignored target).
        /// </summary>
        public void Add(Tensor batchLoss, long images, Tensor predicted, Tensor targets)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            loss.PlusScaledInPlace(batchLoss.detach().to_type(ScalarType.Float64), images);
            correct.PlusInPlace(predicted.eq(targets).sum());
            labelled.PlusInPlace(targets.NotBelow(0).sum());
        }

        /// <summary>The sums on the host (one copy of three values; the host waits for the queued device work).</summary>
        public (double LossSum, long Correct, long Labelled) Read()
        {
            using var scope = NewDisposeScope();
            Tensor all = stack(new[] { loss, correct.to_type(ScalarType.Float64), labelled.to_type(ScalarType.Float64) }).cpu();
            double[] values = all.data<double>().ToArray();
            return (values[0], (long)values[1], (long)values[2]);
        }

        /// <inheritdoc />
        public void Dispose()
        {
            loss.Dispose();
            correct.Dispose();
            labelled.Dispose();
        }
    }
}
