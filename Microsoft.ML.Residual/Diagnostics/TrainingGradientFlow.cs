using System;
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
