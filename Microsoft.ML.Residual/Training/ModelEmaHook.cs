using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// The exponential moving average of the weights (<see cref="TrainingOptions.ModelEmaDecay"/>): kept on the training device,
    /// moved after every optimiser step, swapped into the model for validation and the epoch's judgement (best epoch), swapped
    /// out before the checkpoint (which stores both), and left in the model at the end unless the best epoch's (averaged) weights
    /// were put back. Placed after the checkpoint hook, so that a resume has set <see cref="TrainingState.AveragedWeights"/> first,
    /// and before the best-epoch hook, so that the latter judges the averaged weights.
    /// </summary>
    internal sealed class ModelEmaHook : TrainingHook
    {
        private readonly double decay;
        private readonly bool warmup;
        private readonly List<(Tensor Average, Tensor Value, bool Averaged)> pairs = new();
        private Dictionary<string, Tensor>? trained;

        /// <summary>Creates the hook for an average with <paramref name="decay"/>, warmed up or not.</summary>
        public ModelEmaHook(double decay, bool warmup)
        {
            this.decay = decay;
            this.warmup = warmup;
        }

        /// <summary>The decay of the update after <paramref name="steps"/> earlier ones.</summary>
        internal static double DecayAt(double decay, bool warmup, long steps) => warmup ? Math.Min(decay, (1.0 + steps) / (10.0 + steps)) : decay;

        /// <inheritdoc/>
        public override void BeforeRun(TrainingState state)
        {
            state.AveragedWeights ??= TrainingLoop.Snapshot(state.Model);
            var parameters = state.Model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);
            foreach (var (key, value) in state.Model.state_dict())
            {
                if (!state.AveragedWeights.TryGetValue(key, out Tensor? average))
                    throw new InvalidOperationException($"The checkpoint's averaged weights lack '{key}'. Delete the checkpoint directory to start afresh.");
                // Parameters are averaged; buffers (BatchNorm's running statistics and counters) follow the trained model.
                pairs.Add((average, parameters.TryGetValue(key, out Tensor? parameter) ? parameter : value, parameter is not null && value.is_floating_point()));
            }
        }

        /// <inheritdoc/>
        public override void AfterStep(TrainingState state)
        {
            double d = DecayAt(decay, warmup, state.Step - 1);
            using var noGrad = no_grad();
            foreach (var (average, value, averaged) in pairs)
            {
                if (averaged) average.MoveTowardsInPlace(value, 1.0 - d);
                else average.copy_(value);
            }
        }

        /// <inheritdoc/>
        public override void BeforeValidation(TrainingState state)
        {
            trained = TrainingLoop.Snapshot(state.Model);
            TrainingLoop.Restore(state.Model, state.AveragedWeights!);
        }

        /// <inheritdoc/>
        public override void AfterEpoch(TrainingState state) => PutTrainedBack(state);

        /// <inheritdoc/>
        public override void AfterRun(TrainingState state)
        {
            if (!state.RestoredBestWeights) TrainingLoop.Restore(state.Model, state.AveragedWeights!);
        }

        /// <inheritdoc/>
        public override void Cleanup(TrainingState state)
        {
            PutTrainedBack(state);   // a run stopped during validation keeps the weights of its last step
            pairs.Clear();
            TrainingLoop.Dispose(state.AveragedWeights);
            state.AveragedWeights = null;
        }

        private void PutTrainedBack(TrainingState state)
        {
            if (trained is null) return;
            TrainingLoop.Restore(state.Model, trained);
            TrainingLoop.Dispose(trained);
            trained = null;
        }
    }
}
