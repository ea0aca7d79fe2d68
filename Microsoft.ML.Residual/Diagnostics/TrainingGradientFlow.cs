using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>The gradient flow of a network being trained: before the first step, then after each epoch.</summary>
    /// <param name="Epoch">The epoch just finished; before the first step 0 (or, on a resume, the checkpoint's epoch).</param>
    /// <param name="Report">The measurement on the fixed probe batch.</param>
    public sealed record GradientFlowEpoch(int Epoch, GradientFlowReport Report);

    /// <summary>
    /// A training hook that measures <see cref="GradientFlow"/> on one fixed, already normalised batch: before the first step
    /// and after each epoch (before the epoch is judged, saved and reported). Add it to <see cref="TrainingLoop"/>'s hooks.
    /// </summary>
    internal sealed class TrainingGradientFlow : TrainingHook, IDisposable
    {
        private readonly nn.Module<Tensor, Tensor> model;
        private readonly Tensor images;
        private readonly Tensor labels;
        private readonly IProgress<GradientFlowEpoch> receiver;
        private readonly BatchNormStatistics statistics;

        /// <summary>A probe on copies of <paramref name="normalisedImages"/> and <paramref name="labels"/>, batch norm as <paramref name="statistics"/> says.</summary>
        public TrainingGradientFlow(nn.Module<Tensor, Tensor> model, Tensor normalisedImages, Tensor labels, IProgress<GradientFlowEpoch> receiver,
            BatchNormStatistics statistics = BatchNormStatistics.Batch)
        {
            this.statistics = statistics;
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

        /// <inheritdoc/>
        public override void BeforeRun(TrainingState state) => Measure(state.StartEpoch - 1);

        /// <inheritdoc/>
        public override void AfterEpoch(TrainingState state) => Measure(state.Epoch);

        private void Measure(int epoch) => receiver.Report(new GradientFlowEpoch(epoch, GradientFlow.Measure(model, images, labels, statistics)));

        public void Dispose()
        {
            images.Dispose();
            labels.Dispose();
        }
    }
}
