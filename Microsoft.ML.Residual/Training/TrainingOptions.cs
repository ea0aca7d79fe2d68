using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>The optimiser.</summary>
    public enum OptimizerKind
    {
        /// <summary>Stochastic gradient descent with momentum (optionally Nesterov).</summary>
        Sgd,

        /// <summary>Adam with decoupled weight decay (Loshchilov &amp; Hutter).</summary>
        AdamW,
    }

    /// <summary>How the learning rate moves over training.</summary>
    public enum LearningRateScheduleKind
    {
        /// <summary>The base rate throughout (after warm-up).</summary>
        Constant,

        /// <summary>Half a cosine from the base rate to zero (after warm-up).</summary>
        Cosine,

        /// <summary>Smith's one-cycle: cosine up from base/25 to the base rate over the first 30 %, then cosine down to base/10⁴.</summary>
        OneCycle,

        /// <summary>Multiplied by <see cref="TrainingOptions.StepGamma"/> at each epoch in <see cref="TrainingOptions.StepMilestones"/>.</summary>
        Step,
    }

    /// <summary>The metric that decides the best epoch and early stopping.</summary>
    public enum MonitoredMetric
    {
        /// <summary>Validation accuracy (higher is better).</summary>
        ValidationAccuracy,

        /// <summary>Validation cross-entropy (lower is better).</summary>
        ValidationLoss,

        /// <summary>Training loss (lower is better); used when there is no validation data.</summary>
        TrainingLoss,

        /// <summary>Validation mean intersection-over-union (higher is better), for segmentation.</summary>
        ValidationMeanIoU,
    }

    /// <summary>Options of the training loop (<see cref="TrainingLoop"/>).</summary>
    public sealed class TrainingOptions
    {
        /// <summary>Passes over the training data.</summary>
        public int Epochs { get; set; } = 10;

        /// <summary>The optimiser.</summary>
        public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;

        /// <summary>Peak (base) learning rate.</summary>
        public double LearningRate { get; set; } = 0.05;

        /// <summary>SGD momentum.</summary>
        public double Momentum { get; set; } = 0.9;

        /// <summary>Nesterov momentum for SGD.</summary>
        public bool Nesterov { get; set; }

        /// <summary>Weight decay (L2 for SGD, decoupled for AdamW).</summary>
        public double WeightDecay { get; set; } = 5e-4;

        /// <summary>Also decay one-dimensional parameters (BatchNorm γ/β and biases); off by default, as is usual.</summary>
        public bool DecayNormsAndBiases { get; set; }

        /// <summary>The schedule.</summary>
        public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.Cosine;

        /// <summary>Linear warm-up from 0 to the base rate over this many epochs (fractions allowed); not used by one-cycle.</summary>
        public double WarmupEpochs { get; set; }

        /// <summary>Epochs at which a step schedule multiplies the rate by <see cref="StepGamma"/>.</summary>
        public IReadOnlyList<int> StepMilestones { get; set; } = Array.Empty<int>();

        /// <summary>The step schedule's factor.</summary>
        public double StepGamma { get; set; } = 0.1;

        /// <summary>Label smoothing ε of the cross-entropy loss.</summary>
        public double LabelSmoothing { get; set; }

        /// <summary>Clip the global gradient norm to this value (null: no clipping).</summary>
        public double? GradientClipNorm { get; set; }

        /// <summary>
        /// Train only the classifier head for this many epochs first (the backbone's parameters frozen and its
        /// BatchNorm layers in eval mode, so their running statistics stay those of the pretrained weights), then
        /// train everything with the backbone at <see cref="BackboneLearningRateFactor"/> times the rate. The schedule
        /// (with its warm-up) starts again when the backbone unfreezes: fastai's <c>fine_tune</c> recipe. Needs the
        /// trainer's head prefix. Default 0 (no frozen phase).
        /// </summary>
        public int FreezeBackboneEpochs { get; set; }

        /// <summary>
        /// Learning-rate factor of every parameter outside the classifier head (discriminative learning rates, e.g.
        /// 0.1 when fine-tuning pretrained weights). Needs the trainer's head prefix to differ from 1. Default 1.
        /// </summary>
        public double BackboneLearningRateFactor { get; set; } = 1.0;

        /// <summary>
        /// Mixup (Zhang et al.): each batch is blended with a shuffled copy of itself, weight λ ~ Beta(α, α), and the
        /// loss is blended likewise. 0 turns it off; 0.2–0.4 is usual. Default 0.
        /// </summary>
        public double MixupAlpha { get; set; }

        /// <summary>
        /// CutMix (Yun et al.): a random box of each image is pasted from a shuffled copy of the batch, its area
        /// 1 − λ with λ ~ Beta(α, α), and the loss is blended by the pasted area (per-pixel targets, N×H×W masks, get the same
        /// box pasted and are the one target). 0 turns it off; 1 is usual. With
        /// <see cref="MixupAlpha"/> as well, each batch uses one of the two at random. Default 0.
        /// </summary>
        public double CutMixAlpha { get; set; }

        /// <summary>The metric for the best epoch and early stopping.</summary>
        public MonitoredMetric Monitor { get; set; } = MonitoredMetric.ValidationAccuracy;

        /// <summary>Stop after this many epochs without improvement of <see cref="Monitor"/> (null: never stop early).</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>At the end, put back the weights of the best epoch (by <see cref="Monitor"/>).</summary>
        public bool RestoreBestWeights { get; set; } = true;

        /// <summary>A directory for a checkpoint after every epoch (written atomically); training resumes from it. Null: none.</summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>
        /// Channels-last memory layout (NHWC strides, same shapes), so that libtorch picks its channels-last convolution kernels
        /// through the whole network: the image batches and the convolution weights, as PyTorch's
        /// <c>model.to(memory_format=torch.channels_last)</c> with channels-last inputs; the weights get their usual layout back
        /// when training ends. Null (the default): the choice measured per device: channels-last on the CPU (oneDNN's kernels:
        /// DenseNet-121 about 30 % and ResNet-50 about 12 % faster at 64² on 2 cores; with grey images only the weights can
        /// carry the layout, docs/performance.md); on CUDA the default layout (this library has not measured channels-last on a
        /// GPU yet). True: channels-last on every device (on CUDA, cuDNN's NHWC kernels, which suit tensor cores in half
        /// precision). False: the default layout everywhere. Results equal the default layout's up to floating-point rounding.
        /// </summary>
        public bool? ChannelsLast { get; set; }

        /// <summary>
        /// The number format of the library's networks' convolutions and matrix products in training and validation (mixed
        /// precision: weights, normalisation and losses stay float32; float16 adds dynamic loss scaling). The trained weights and
        /// the exported model are float32 in every case. Default <see cref="TrainingPrecision.Float32"/>.
        /// </summary>
        public TrainingPrecision Precision { get; set; } = TrainingPrecision.Float32;

        /// <summary>
        /// On NVIDIA GPUs from Ampere on: let float32 convolutions (cuDNN) and matrix products (cuBLAS) compute with TF32
        /// tensor cores (10-bit mantissa products, float32 sums), as <c>torch.backends.cudnn.allow_tf32</c> and
        /// <c>torch.backends.cuda.matmul.allow_tf32</c> do, for the duration of training; the previous settings come back
        /// afterwards. Null (the default) leaves libtorch's settings as they are (PyTorch's defaults: TF32 on for
        /// convolutions, off for matrix products). No effect on the CPU.
        /// </summary>
        public bool? AllowTf32 { get; set; }

        /// <summary>
        /// Gradient accumulation: the gradients of this many consecutive batches are summed (each batch's loss divided by the
        /// group's size) before one optimiser step, so that the step sees the gradient of a batch this many times larger, as with
        /// timm's <c>--grad-accum-steps</c> or fastai's <c>GradientAccumulation</c>. The schedule counts optimiser steps; an epoch's
        /// last group may be shorter. BatchNorm still normalises each batch with its own statistics and updates its running
        /// statistics once per batch, so only networks without BatchNorm reach exactly the weights of the larger batch.
        /// Default 1 (a step per batch).
        /// </summary>
        public int GradientAccumulationSteps { get; set; } = 1;

        /// <summary>
        /// An exponential moving average of the weights (timm's <c>--model-ema</c>): after every optimiser step each averaged
        /// parameter becomes d·average + (1 − d)·parameter, and buffers (BatchNorm statistics) are copied. Validation, the best
        /// epoch and the returned (and so exported) model use the averaged weights; the training loss is that of the trained ones.
        /// Checkpoints keep both. Typical values: 0.999 for a few thousand steps, 0.9998 for ImageNet-length runs. Null (the
        /// default): no average.
        /// </summary>
        public double? ModelEmaDecay { get; set; }

        /// <summary>
        /// Warm the average's decay up (TensorFlow's <c>ExponentialMovingAverage</c> with <c>num_updates</c>): at the t-th step,
        /// counted from 0, d = min(<see cref="ModelEmaDecay"/>, (1 + t)/(10 + t)), so that the first steps' random weights fade out
        /// quickly in short runs. Default true.
        /// </summary>
        public bool ModelEmaWarmup { get; set; } = true;

        /// <summary>Seeds TorchSharp's generator (dropout, stochastic depth); with a seeded data order CPU runs repeat exactly.</summary>
        public long? Seed { get; set; }

        /// <summary>
        /// Pause after this epoch (between 1 and <see cref="Epochs"/>): the schedule still spans <see cref="Epochs"/>, the
        /// checkpoint directory keeps the state, and training again with a later value resumes there (a sweep's
        /// successive-halving rungs). Null: train all epochs.
        /// </summary>
        internal int? StopAfterEpoch { get; set; }

        internal TrainingOptions Clone() => (TrainingOptions)MemberwiseClone();

        /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
        public void Validate()
        {
            void Check(bool valid, string name, object value, string rule)
            {
                if (!valid) throw new ArgumentException($"TrainingOptions.{name} = {value}: {rule}.", name);
            }

            Check(Epochs >= 1, nameof(Epochs), Epochs, "train for at least one epoch");
            Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be positive and finite");
            Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
            Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be non-negative");
            Check(WarmupEpochs >= 0 && WarmupEpochs < Epochs, nameof(WarmupEpochs), WarmupEpochs, "must be non-negative and shorter than training");
            Check(StepGamma > 0, nameof(StepGamma), StepGamma, "must be positive");
            Check(StepMilestones.All(m => m > 0 && m < Epochs), nameof(StepMilestones), string.Join(",", StepMilestones), "milestones are epochs in (0, Epochs)");
            Check(LabelSmoothing >= 0 && LabelSmoothing < 1, nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 1)");
            Check(GradientClipNorm is null || GradientClipNorm > 0, nameof(GradientClipNorm), GradientClipNorm!, "must be positive");
            Check(FreezeBackboneEpochs >= 0 && FreezeBackboneEpochs < Epochs, nameof(FreezeBackboneEpochs), FreezeBackboneEpochs, "must be non-negative and leave at least one epoch to train everything");
            Check(BackboneLearningRateFactor > 0 && double.IsFinite(BackboneLearningRateFactor), nameof(BackboneLearningRateFactor), BackboneLearningRateFactor, "must be positive and finite");
            Check(MixupAlpha >= 0 && double.IsFinite(MixupAlpha), nameof(MixupAlpha), MixupAlpha, "must be 0 (off) or positive");
            Check(CutMixAlpha >= 0 && double.IsFinite(CutMixAlpha), nameof(CutMixAlpha), CutMixAlpha, "must be 0 (off) or positive");
            Check(StopAfterEpoch is null || (StopAfterEpoch >= 1 && StopAfterEpoch <= Epochs), nameof(StopAfterEpoch), StopAfterEpoch!, "must be an epoch in [1, Epochs]");
            Check(Enum.IsDefined(Precision), nameof(Precision), Precision, "Float32, BFloat16 or Float16");
            Check(GradientAccumulationSteps >= 1, nameof(GradientAccumulationSteps), GradientAccumulationSteps, "must be at least 1 (1: a step per batch)");
            Check(ModelEmaDecay is null || (ModelEmaDecay > 0 && ModelEmaDecay < 1), nameof(ModelEmaDecay), ModelEmaDecay!, "must be in (0, 1), e.g. 0.999, or null for no average");
            Check(EarlyStoppingPatience is null || EarlyStoppingPatience >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience!, "must be at least 1");
        }
    }
}
