using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// <see cref="TrainingOptions.FreezeBackboneEpochs"/> (fastai's <c>fine_tune</c>): the backbone frozen, its batch norm on its
    /// running statistics, for the first epochs (decided by the checkpoint's epoch on a resume); then everything trains with a
    /// new optimiser (the schedule restarts by itself). The backbone is unfrozen at the end.
    /// </summary>
    internal sealed class FreezePhasesHook : TrainingHook
    {
        private readonly BackboneParameters backbone;
        private readonly int frozenEpochs;
        private readonly Func<bool, TrainingOptimizer> createOptimizer;

        /// <summary>Creates the hook; <paramref name="createOptimizer"/> makes an optimiser for the backbone frozen or not.</summary>
        public FreezePhasesHook(BackboneParameters backbone, int frozenEpochs, Func<bool, TrainingOptimizer> createOptimizer)
        {
            this.backbone = backbone;
            this.frozenEpochs = frozenEpochs;
            this.createOptimizer = createOptimizer;
        }

        /// <inheritdoc/>
        public override void BeforeOptimizer(TrainingState state)
        {
            state.BackboneFrozen = frozenEpochs > 0 && (state.CheckpointEpoch ?? 0) < frozenEpochs;
            backbone.SetFrozen(state.BackboneFrozen);
        }

        /// <inheritdoc/>
        public override void BeforeEpoch(TrainingState state)
        {
            if (state.BackboneFrozen && state.Epoch > frozenEpochs)
            {
                // fine_tune's second phase: everything trains, with a new optimiser and a restarted schedule.
                state.BackboneFrozen = false;
                backbone.SetFrozen(false);
                state.Optimizer.Dispose();
                state.Optimizer = createOptimizer(false);
            }

            if (state.BackboneFrozen) backbone.SetBatchNormEval();
        }

        /// <inheritdoc/>
        public override void Cleanup(TrainingState state) => backbone.SetFrozen(false);
    }

    /// <summary>The backbone of a network by state-dict prefix: the head's (everything else is backbone) or the backbone's own.</summary>
    internal sealed class BackboneParameters
    {
        private readonly nn.Module model;
        private readonly string? headPrefix;
        private readonly string? backbonePrefix;

        /// <summary>Names the backbone by <paramref name="headPrefix"/> or <paramref name="backbonePrefix"/> (neither: no backbone).</summary>
        public BackboneParameters(nn.Module model, string? headPrefix, string? backbonePrefix)
        {
            this.model = model;
            this.headPrefix = headPrefix;
            this.backbonePrefix = backbonePrefix;
        }

        /// <summary>Whether a prefix names a backbone.</summary>
        public bool Defined => headPrefix != null || backbonePrefix != null;

        /// <summary>Whether the parameter or module <paramref name="name"/> belongs to the backbone.</summary>
        public bool IsBackbone(string name) =>
            backbonePrefix != null ? (name + ".").StartsWith(backbonePrefix, StringComparison.Ordinal)
            : headPrefix != null && !(name + ".").StartsWith(headPrefix, StringComparison.Ordinal);

        /// <summary>Frozen backbone parameters get no gradients (so no update and no backward pass through their weights).</summary>
        public void SetFrozen(bool frozen)
        {
            if (!Defined) return;
            foreach (var (name, parameter) in model.named_parameters())
                if (IsBackbone(name)) parameter.requires_grad = !frozen;
        }

        /// <summary>While the backbone is frozen its BatchNorm layers normalise with, and keep, their running statistics.</summary>
        public void SetBatchNormEval()
        {
            foreach (var (name, module) in model.named_modules())
                if (name.Length > 0 && IsBackbone(name) && module is BatchNorm) module.eval();
        }
    }
}
