using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>The gradient flow of a network being trained: <see cref="Epoch"/> 0 before the first step, then after each epoch.</summary>
    /// <param name="Epoch">0 at initialisation (or at the loaded weights), then the epoch just finished.</param>
    /// <param name="Report">The measurement on the fixed probe batch.</param>
    public sealed record GradientFlowEpoch(int Epoch, GradientFlowReport Report);

    /// <summary>
    /// Measures <see cref="GradientFlow"/> on one fixed, already normalised batch while a trainer runs: call
    /// <see cref="MeasureNow"/> before training and pass <see cref="AfterEachEpoch"/> on as the trainer's progress.
    /// </summary>
    internal sealed class TrainingGradientFlow : IDisposable
    {
        private readonly nn.Module<Tensor, Tensor> model;
        private readonly Tensor images;
        private readonly Tensor labels;
        private readonly IProgress<GradientFlowEpoch> receiver;

        public TrainingGradientFlow(nn.Module<Tensor, Tensor> model, Tensor normalisedImages, Tensor labels, IProgress<GradientFlowEpoch> receiver)
        {
            this.model = model;
            images = normalisedImages.detach().clone().DetachFromDisposeScope();
            this.labels = labels.detach().clone().DetachFromDisposeScope();
            this.receiver = receiver;
        }

        /// <summary>
        /// A probe on the first batch of <paramref name="batches"/> (images and class-index targets, N or N×H×W), moved to
        /// <paramref name="device"/> and normalised by <paramref name="normalise"/> as in training.
        /// </summary>
        public static TrainingGradientFlow OnFirstBatch(nn.Module<Tensor, Tensor> model, IEnumerable<(Tensor Images, Tensor Targets)> batches,
            Func<Tensor, Tensor> normalise, Device device, IProgress<GradientFlowEpoch> receiver)
        {
            using var scope = NewDisposeScope();
            var (images, targets) = batches.First();
            try
            {
                return new TrainingGradientFlow(model, normalise(images.to(device)), targets.to(device), receiver);
            }
            finally
            {
                images.Dispose();
                targets.Dispose();
            }
        }

        public void MeasureNow(int epoch) => receiver.Report(new GradientFlowEpoch(epoch, GradientFlow.Measure(model, images, labels, BatchNormStatistics.Batch)));

        /// <summary>Measures after each epoch, then passes the epoch's report on to <paramref name="next"/>.</summary>
        public IProgress<EpochReport> AfterEachEpoch(IProgress<EpochReport> next) => new CallbackProgress<EpochReport>(report =>
        {
            MeasureNow(report.Epoch);
            next.Report(report);
        });

        public void Dispose()
        {
            images.Dispose();
            labels.Dispose();
        }
    }
}
