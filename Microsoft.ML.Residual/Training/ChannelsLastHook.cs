using System;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// <see cref="TrainingOptions.ChannelsLast"/>: convolution weights (before the optimiser exists, so that its state takes the
    /// same layout) and every image batch laid out channels-last, so that libtorch runs its channels-last kernels through the
    /// whole network. Both, because libtorch picks a convolution's layout from its input or its weight, and it runs a one-channel
    /// batch (grey images), which is contiguous in both layouts, in the default layout: then only the weights carry it.
    /// </summary>
    internal sealed class ChannelsLastHook : TrainingHook
    {
        private IDisposable? weights;

        /// <inheritdoc/>
        public override void BeforeOptimizer(TrainingState state) => weights = ChannelsLastLayout.EnterForWeights(state.Model);

        /// <inheritdoc/>
        public override void BeforeBatch(TrainingState state, TrainingBatch batch)
        {
            if (batch.Images.dim() == 4) batch.Images = ChannelsLastLayout.Of(batch.Images);
        }

        /// <inheritdoc/>
        public override void Cleanup(TrainingState state) => weights?.Dispose();
    }
}
