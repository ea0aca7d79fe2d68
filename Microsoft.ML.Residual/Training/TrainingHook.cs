using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// One concern of <see cref="TrainingLoop.Train"/> (freeze phases, best epoch, checkpoints, layout, mixing, gradient flow),
    /// called at fixed points of the run. Hooks are called in their order before the epochs, at an epoch's start and before a
    /// batch, and in the reverse order after an epoch, after the run and in the cleanup, as nested scopes are left.
    /// </summary>
    internal abstract class TrainingHook
    {
        /// <summary>Before the optimiser exists; <see cref="TrainingState.CheckpointEpoch"/> may be set here and read by later hooks.</summary>
        public virtual void BeforeOptimizer(TrainingState state) { }

        /// <summary>Before the first epoch: the optimiser and loss scaler exist (e.g. to resume from a checkpoint).</summary>
        public virtual void BeforeRun(TrainingState state) { }

        /// <summary>At the start of <see cref="TrainingState.Epoch"/>, after <c>model.train()</c>; the hook may replace the optimiser.</summary>
        public virtual void BeforeEpoch(TrainingState state) { }

        /// <summary>Before the forward pass of a training or validation batch: may replace its images, loss and accuracy labels.</summary>
        public virtual void BeforeBatch(TrainingState state, TrainingBatch batch) { }

        /// <summary>After each optimiser step (a step skipped by float16 loss scaling included); <see cref="TrainingState.Step"/> counts it.</summary>
        public virtual void AfterStep(TrainingState state) { }

        /// <summary>After the epoch's training batches, before validation (also when there is none).</summary>
        public virtual void BeforeValidation(TrainingState state) { }

        /// <summary>After an epoch, whose report is <see cref="TrainingState.Report"/> (replaceable); may set <see cref="TrainingState.Stop"/>.</summary>
        public virtual void AfterEpoch(TrainingState state) { }

        /// <summary>After the last epoch of a run that did not throw.</summary>
        public virtual void AfterRun(TrainingState state) { }

        /// <summary>Always, at the end of the run (also when it threw, even before this hook's <see cref="BeforeOptimizer"/>).</summary>
        public virtual void Cleanup(TrainingState state) { }
    }

    /// <summary>
    /// A batch on the training device as the step computes it: the network reads <see cref="Images"/>, <see cref="Loss"/> turns
    /// its logits into the loss, and accuracy counts its predictions against <see cref="Labels"/>.
    /// </summary>
    internal sealed class TrainingBatch
    {
        /// <summary>A batch whose loss is <paramref name="lossOf"/> of the logits against <paramref name="labels"/>.</summary>
        public TrainingBatch(Tensor images, Tensor labels, bool training, Func<Tensor, Tensor, Tensor> lossOf)
        {
            Images = images;
            Labels = labels;
            Training = training;
            LossOf = lossOf;
            Loss = logits => lossOf(logits, labels);
        }

        /// <summary>Whether the batch trains (false: validation).</summary>
        public bool Training { get; }

        /// <summary>The task's loss of logits against targets (with the batch's label smoothing).</summary>
        public Func<Tensor, Tensor, Tensor> LossOf { get; }

        /// <summary>The network's input.</summary>
        public Tensor Images { get; set; }

        /// <summary>The targets accuracy is counted against.</summary>
        public Tensor Labels { get; set; }

        /// <summary>The loss of the network's logits.</summary>
        public Func<Tensor, Tensor> Loss { get; set; }
    }

    /// <summary>What the training loop and its hooks share during one run.</summary>
    internal sealed class TrainingState
    {
        /// <summary>Creates the state of a run.</summary>
        public TrainingState(nn.Module<Tensor, Tensor> model, TrainingOptions options, long stepsPerEpoch)
        {
            Model = model;
            Options = options;
            StepsPerEpoch = stepsPerEpoch;
        }

        /// <summary>The network trained.</summary>
        public nn.Module<Tensor, Tensor> Model { get; }

        /// <summary>The loop's options.</summary>
        public TrainingOptions Options { get; }

        /// <summary>Optimiser steps per epoch (batches per epoch, or fewer with <see cref="TrainingOptions.GradientAccumulationSteps"/>).</summary>
        public long StepsPerEpoch { get; }

        /// <summary>The epoch of the checkpoint the run resumes after (null: none).</summary>
        public int? CheckpointEpoch { get; set; }

        /// <summary>Whether the backbone is frozen now (the optimiser the loop creates then trains the rest alone).</summary>
        public bool BackboneFrozen { get; set; }

        /// <summary>The optimiser (set by the loop before <see cref="TrainingHook.BeforeRun"/>; a hook that replaces it disposes the old one).</summary>
        public TrainingOptimizer Optimizer { get; set; } = null!;

        /// <summary>The float16 loss scaler, or null.</summary>
        public DynamicLossScaler? Scaler { get; set; }

        /// <summary>The first epoch of this run (after a resume, the checkpoint's epoch + 1).</summary>
        public int StartEpoch { get; set; } = 1;

        /// <summary>The current epoch (1-based).</summary>
        public int Epoch { get; set; }

        /// <summary>Optimiser steps done (after a resume, the checkpoint's).</summary>
        public long Step { get; set; }

        /// <summary>Every epoch's report, including those before a resume.</summary>
        public List<EpochReport> History { get; } = new List<EpochReport>();

        /// <summary>The report of the epoch just ended (the last of <see cref="History"/>).</summary>
        public EpochReport Report
        {
            get => History[^1];
            set => History[^1] = value;
        }

        /// <summary>The best epoch so far (0: none).</summary>
        public int BestEpoch { get; set; }

        /// <summary>Set to end training after the current epoch (early stopping).</summary>
        public bool Stop { get; set; }

        /// <summary>The moving average of the weights (<see cref="TrainingOptions.ModelEmaDecay"/>) by state-dict key, or null; a resume may set it first.</summary>
        public Dictionary<string, Tensor>? AveragedWeights { get; set; }

        /// <summary>Whether the best epoch's weights were put back at the end (<see cref="TrainingOptions.RestoreBestWeights"/>).</summary>
        public bool RestoredBestWeights { get; set; }

        /// <summary>A copy of the best epoch's weights and buffers (<see cref="TrainingOptions.RestoreBestWeights"/>), or null.</summary>
        public Dictionary<string, Tensor>? BestWeights { get; set; }
    }
}
