
namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Best-epoch tracking, early stopping (<see cref="TrainingOptions.EarlyStoppingPatience"/>) and
    /// <see cref="TrainingOptions.RestoreBestWeights"/>: marks each epoch's report best or not, keeps a copy of the best weights,
    /// stops when the patience runs out and puts the best weights back at the end. A resumed history is replayed first.
    /// </summary>
    internal sealed class BestEpochHook : TrainingHook
    {
        private readonly BestEpochTracker tracker;

        /// <summary>Creates the hook over <paramref name="tracker"/>.</summary>
        public BestEpochHook(BestEpochTracker tracker) => this.tracker = tracker;

        /// <inheritdoc/>
        public override void BeforeRun(TrainingState state)
        {
            foreach (EpochReport report in state.History) tracker.Observe(report);
            state.BestEpoch = tracker.BestEpoch;
            state.Stop |= tracker.ShouldStop;
        }

        /// <inheritdoc/>
        public override void AfterEpoch(TrainingState state)
        {
            bool improved = tracker.Observe(state.Report);
            state.Report = state.Report with { IsBest = improved };
            state.BestEpoch = tracker.BestEpoch;
            if (improved && state.Options.RestoreBestWeights)
            {
                TrainingLoop.Dispose(state.BestWeights);
                state.BestWeights = TrainingLoop.Snapshot(state.Model);
            }

            state.Stop |= tracker.ShouldStop && state.Epoch < state.Options.Epochs;
        }

        /// <inheritdoc/>
        public override void AfterRun(TrainingState state)
        {
            if (!state.Options.RestoreBestWeights || state.BestWeights == null) return;
            TrainingLoop.Restore(state.Model, state.BestWeights);
            state.RestoredBestWeights = true;
        }

        /// <inheritdoc/>
        public override void Cleanup(TrainingState state) => TrainingLoop.Dispose(state.BestWeights);
    }
}
