using System;
using System.Threading;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual
{
    /// <summary>Options of the residual image classifiers (<c>ml.Transforms.ResNetClassifier</c> and relatives).</summary>
    public sealed class ImageClassifierOptions : ITrainingRunOptions
    {
        /// <summary>Any classifier name in <see cref="ResidualModels.Names"/> (e.g. "resnet18", "resnet20", "densenet121").</summary>
        public string Architecture { get; set; } = "resnet18";

        /// <summary>The label: a key-type column (use <c>MapValueToKey</c>).</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>An <c>MLImage</c> column (resized to <see cref="ImageWidth"/>×<see cref="ImageHeight"/>), or a float vector C×H×W of 0–255 from <c>ExtractPixels</c>.</summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>Width the network sees.</summary>
        public int ImageWidth { get; set; } = 224;

        /// <summary>Height the network sees.</summary>
        public int ImageHeight { get; set; } = 224;

        /// <summary>The probabilities column.</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>The predicted class (key type with the label's key values).</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>Passes over the training data.</summary>
        public int Epochs { get; set; } = 10;

        /// <summary>Images per step.</summary>
        public int BatchSize { get; set; } = 32;

        /// <summary>Seed for weights, data order and augmentation (reproducible on CPU).</summary>
        public int Seed { get; set; } = 1;

        /// <summary>Peak learning rate (null: 0.002 for AdamW, 0.05 for SGD; docs/training.md shows how they were chosen).</summary>
        public double? LearningRate { get; set; }

        /// <summary>The optimiser (default AdamW).</summary>
        public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

        /// <summary>SGD momentum.</summary>
        public double Momentum { get; set; } = 0.9;

        /// <summary>Nesterov momentum for SGD.</summary>
        public bool Nesterov { get; set; }

        /// <summary>Weight decay, not applied to BatchNorm parameters and biases (null: 0.05 for AdamW, 5e-4 for SGD).</summary>
        public double? WeightDecay { get; set; }

        /// <summary>The learning-rate schedule (default one-cycle; docs/training.md shows how it was chosen).</summary>
        public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.OneCycle;

        /// <summary>
        /// Linear warm-up in epochs (fractions allowed) for the schedules other than one-cycle, which warms up by itself;
        /// null: one epoch when training for more than two, else none.
        /// </summary>
        public double? WarmupEpochs { get; set; }

        /// <summary>Epochs at which <see cref="LearningRateScheduleKind.Step"/> multiplies the rate by <see cref="StepGamma"/>.</summary>
        public int[] StepMilestones { get; set; } = Array.Empty<int>();

        /// <summary>The step schedule's factor.</summary>
        public double StepGamma { get; set; } = 0.1;

        /// <summary>Label smoothing of the loss.</summary>
        public double LabelSmoothing { get; set; }

        /// <summary>Clip the global gradient norm to this value (null: no clipping).</summary>
        public double? GradientClipNorm { get; set; }

        /// <summary>Mixup's α (0: off; 0.2–0.4 is usual): batches are blended with a shuffled copy, λ ~ Beta(α, α).</summary>
        public double MixupAlpha { get; set; }

        /// <summary>CutMix's α (0: off; 1 is usual): a random box is pasted from a shuffled copy; with mixup as well, one of the two per batch.</summary>
        public double CutMixAlpha { get; set; }

        /// <summary>
        /// A state dict (<c>.safetensors</c>, or PyTorch <c>.pth</c>/<c>.pt</c>) with torchvision's key names for
        /// <see cref="Architecture"/>, e.g. ImageNet weights. Training starts from it; the classifier head is replaced
        /// (freshly initialised) when its class count differs from the label's. The stem is then the architecture's own
        /// unless <see cref="Stem"/> says otherwise, and pixels are normalised with ImageNet's mean and deviation, as
        /// torchvision's weights expect.
        /// </summary>
        public string? PretrainedWeightsPath { get; set; }

        /// <summary>
        /// Continue training a model saved by <c>ml.Model.Save</c> (a model.zip holding this estimator's output, or the
        /// <c>.onnx</c> file of <c>OnnxExporter</c>): the weights are read back from the ONNX graph's initializers. The
        /// architecture must be the same. When the classes are the same (in any key order) the head is kept, its rows
        /// put in the new key order; otherwise it is replaced.
        /// </summary>
        public string? ResumeFromModelPath { get; set; }

        /// <summary>
        /// Train only the classifier head for this many epochs first (backbone frozen, its BatchNorm statistics kept),
        /// then everything with the backbone at <see cref="BackboneLearningRateFactor"/> times the rate; the schedule
        /// restarts at the unfreeze (fastai's <c>fine_tune</c>). Must be less than <see cref="Epochs"/>. Default 0.
        /// </summary>
        public int FreezeBackboneEpochs { get; set; }

        /// <summary>
        /// Learning-rate factor of the backbone relative to the head (discriminative learning rates). Null: 0.1 when
        /// starting from <see cref="PretrainedWeightsPath"/> or <see cref="ResumeFromModelPath"/>, 1 otherwise.
        /// </summary>
        public double? BackboneLearningRateFactor { get; set; }

        /// <summary>
        /// The stem for ResNets and DenseNets: null chooses the CIFAR stem (3×3, no pooling) for images of at most 32 pixels
        /// a side and the architecture's own otherwise (the ImageNet stem for torchvision's networks), or the architecture's
        /// own with pretrained weights.
        /// </summary>
        public StemKind? Stem { get; set; }

        /// <summary>
        /// Training-time augmentation (null: none, because a flip changes the class of some images; set
        /// <see cref="ImageAugmentation.Cifar"/>, <see cref="ImageAugmentation.ImageNet"/> or your own where flips and crops keep the class).
        /// </summary>
        public ImageAugmentation? Augmentation { get; set; }

        /// <summary>Keep decoded training images in memory after the first epoch.</summary>
        public bool CacheInMemory { get; set; } = true;

        /// <summary>
        /// Mixed precision: the number format of the network's convolutions and matrix products in training and validation
        /// (see <see cref="Training.TrainingPrecision"/>). The model that <c>Fit</c> returns and saves is float32 in every case.
        /// Default <see cref="Training.TrainingPrecision.Float32"/>.
        /// </summary>
        public Training.TrainingPrecision Precision { get; set; } = Training.TrainingPrecision.Float32;

        /// <summary>
        /// On NVIDIA GPUs from Ampere on: TF32 tensor cores for float32 convolutions and matrix products while training
        /// (see <see cref="Training.TrainingOptions.AllowTf32"/>). Null (the default) leaves libtorch's settings as they are.
        /// </summary>
        public bool? AllowTf32 { get; set; }

        /// <summary>
        /// Channels-last memory layout of the batches and convolution weights while training (see
        /// <see cref="Training.TrainingOptions.ChannelsLast"/>). Null (the default): on the CPU, the default layout on CUDA;
        /// true: on every device; false: never.
        /// </summary>
        public bool? ChannelsLast { get; set; }

        /// <summary>
        /// Threads that read, decode and augment images at once (see <see cref="ImageBatchOptions.Workers"/>); results do
        /// not depend on it. Default: half the processor count, 1 to 8.
        /// </summary>
        public int Workers { get; set; } = ImageBatchOptions.DefaultWorkers;

        /// <summary>Data for per-epoch validation (same columns as the training data), or null.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>
        /// Without a <see cref="ValidationSet"/>: hold out this fraction of the training rows (a seeded random split) for
        /// per-epoch validation, early stopping and the best epoch. 0 (default): no validation.
        /// </summary>
        public double ValidationFraction { get; set; }

        /// <summary>Stop after this many epochs without improvement of <see cref="EarlyStoppingMetric"/> (needs validation data).</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>The validation metric that chooses the best epoch (whose weights are kept) and drives early stopping.</summary>
        public MonitoredMetric EarlyStoppingMetric { get; set; } = MonitoredMetric.ValidationAccuracy;

        /// <summary>A directory for per-epoch checkpoints; training resumes from it.</summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>Receives a report after every epoch.</summary>
        public IProgress<EpochReport>? Progress { get; set; }

        /// <summary>Receives a report after every training batch (for live progress bars); keep the handler quick.</summary>
        public IProgress<BatchReport>? BatchProgress { get; set; }

        /// <summary>
        /// Receives the gradient flow (<see cref="Diagnostics.GradientFlow"/>, BatchNorm on batch statistics as in training) on one
        /// fixed batch — the first of the validation data, or of the training data — before the first step (epoch 0) and after
        /// every epoch. Each measurement costs about one training step.
        /// </summary>
        public IProgress<Diagnostics.GradientFlowEpoch>? GradientFlowProgress { get; set; }

        /// <summary>Cancels training between batches.</summary>
        public CancellationToken CancellationToken { get; set; }

        // A sweep's successive-halving rung: pause after this epoch (the schedule still spans Epochs); see TrainingOptions.
        internal int? StopAfterEpoch { get; set; }

        int? ITrainingRunOptions.StopAfterEpoch
        {
            get => StopAfterEpoch;
            set => StopAfterEpoch = value;
        }

        internal ImageClassifierOptions Clone() => (ImageClassifierOptions)MemberwiseClone();
    }
}
