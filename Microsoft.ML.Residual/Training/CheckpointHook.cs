namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Checkpoints with exact resume (<see cref="TrainingOptions.CheckpointDirectory"/>): the latest checkpoint's epoch before
    /// the optimiser exists, then its weights, optimiser and loss-scaler state, moving average of the weights, history and (with
    /// <see cref="TrainingOptions.RestoreBestWeights"/>) best weights; after each epoch a new checkpoint, with the best weights
    /// when the epoch is the best.
    /// </summary>
    internal sealed class CheckpointHook : TrainingHook
    {
        private readonly CheckpointStore store;

        /// <summary>Creates the hook over <paramref name="store"/>.</summary>
        public CheckpointHook(CheckpointStore store) => this.store = store;

        /// <inheritdoc/>
        public override void BeforeOptimizer(TrainingState state) => state.CheckpointEpoch = store.LatestEpoch();

        /// <inheritdoc/>
        public override void BeforeRun(TrainingState state)
        {
            bool averaging = state.Options.ModelEmaDecay is not null;
            if (state.CheckpointEpoch is null || store.TryLoadLatest(state.Model, state.Optimizer, state.Scaler, averaging) is not { } resumed) return;
            state.History.AddRange(resumed.History);
            state.StartEpoch = resumed.Epoch + 1;
            state.Step = resumed.Epoch * state.StepsPerEpoch;
            state.AveragedWeights = resumed.AveragedWeights;
            if (state.Options.RestoreBestWeights) state.BestWeights = store.LoadBestWeights(resumed.History);
        }

        /// <inheritdoc/>
        public override void AfterEpoch(TrainingState state) =>
            store.Save(state.Model, state.Optimizer, state.Epoch, state.History,
                state.Report.IsBest && state.Options.RestoreBestWeights ? state.BestWeights : null, state.Scaler, state.AveragedWeights);
    }
}
