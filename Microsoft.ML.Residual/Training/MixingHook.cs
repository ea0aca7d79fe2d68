using Microsoft.ML.Residual.Models;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Mixup and CutMix (<see cref="TrainingOptions.MixupAlpha"/>, <see cref="TrainingOptions.CutMixAlpha"/>): each training
    /// batch is blended with a permutation of itself, and its loss blends the two targets' losses with the same weight (CutMix on
    /// masks pastes into the mask too, which is then the one target); accuracy counts against the dominant targets.
    /// </summary>
    internal sealed class MixingHook : TrainingHook
    {
        private BatchMixing? mixing;

        /// <inheritdoc/>
        public override void BeforeEpoch(TrainingState state) => mixing = BatchMixing.Create(state.Options, state.Epoch);

        /// <inheritdoc/>
        public override void BeforeBatch(TrainingState state, TrainingBatch batch)
        {
            if (!batch.Training || mixing?.Mix(batch.Images, batch.Labels) is not { } mixed) return;
            var (labels, lossOf) = (batch.Labels, batch.LossOf);
            batch.Images = mixed.Images;
            batch.Loss = mixed.Lambda == 0 ? logits => lossOf(logits, mixed.OtherLabels)
                : logits => lossOf(logits, labels).Times(mixed.Lambda).Plus(lossOf(logits, mixed.OtherLabels).Times(1 - mixed.Lambda));
            batch.Labels = mixed.Lambda < 0.5 ? mixed.OtherLabels : labels;
        }
    }
}
