using System;
using System.Linq;
using System.Threading;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// The settings every image trainer shares — data, optimiser, schedule, fine-tuning phases, validation, checkpoints,
    /// hardware, progress — defined once. <see cref="ImageClassifierOptions"/> and <see cref="SegmenterOptions"/> add only
    /// their task's own (columns, loss, metrics) and its defaults.
    /// </summary>
    public abstract class ImageTrainerOptions
    {
        private protected ImageTrainerOptions(string architecture, int imageSize, int batchSize, LearningRateScheduleKind schedule)
        {
            Architecture = architecture;
            ImageWidth = imageSize;
            ImageHeight = imageSize;
            BatchSize = batchSize;
            Schedule = schedule;
        }

        /// <summary>A name in <see cref="ResidualModels.Names"/> of the task's kind (a classifier, or a segmenter).</summary>
        public string Architecture { get; set; }

        /// <summary>An <c>MLImage</c> column (resized to <see cref="ImageWidth"/>×<see cref="ImageHeight"/>), or a float vector C×H×W of 0–255 from <c>ExtractPixels</c>.</summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>Width the network sees.</summary>
        public int ImageWidth { get; set; }

        /// <summary>Height the network sees.</summary>
        public int ImageHeight { get; set; }

        /// <summary>Passes over the training data.</summary>
        public int Epochs { get; set; } = 10;

        /// <summary>Images per step.</summary>
        public int BatchSize { get; set; }

        /// <summary>Seed for weights, data order and augmentation (reproducible on CPU).</summary>
        public int Seed { get; set; } = 1;

        /// <summary>Peak learning rate (null: the task's default for the optimiser; docs/training.md shows how they were chosen).</summary>
        public double? LearningRate { get; set; }

        /// <summary>The optimiser (default AdamW).</summary>
        public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

        /// <summary>SGD momentum.</summary>
        public double Momentum { get; set; } = 0.9;

        /// <summary>Nesterov momentum for SGD.</summary>
        public bool Nesterov { get; set; }

        /// <summary>Weight decay, not applied to BatchNorm parameters and biases (null: the task's default for the optimiser).</summary>
        public double? WeightDecay { get; set; }

        /// <summary>The learning-rate schedule.</summary>
        public LearningRateScheduleKind Schedule { get; set; }

        /// <summary>
        /// Linear warm-up in epochs (fractions allowed) for the schedules other than one-cycle, which warms up by itself;
        /// null: one epoch when training for more than two, else none.
        /// </summary>
        public double? WarmupEpochs { get; set; }

        /// <summary>Epochs at which <see cref="LearningRateScheduleKind.Step"/> multiplies the rate by <see cref="StepGamma"/>.</summary>
        public int[] StepMilestones { get; set; } = Array.Empty<int>();

        /// <summary>The step schedule's factor.</summary>
        public double StepGamma { get; set; } = 0.1;

        /// <summary>Clip the global gradient norm to this value (null: no clipping).</summary>
        public double? GradientClipNorm { get; set; }

        /// <summary>
        /// Train only the head (a classifier's last layer, a U-Net's decoder) for this many epochs first, the backbone (the
        /// encoder) frozen with its BatchNorm statistics kept; then everything, the backbone at
        /// <see cref="BackboneLearningRateFactor"/> times the rate; the schedule restarts at the unfreeze (fastai's
        /// <c>fine_tune</c>). Must be less than <see cref="Epochs"/>. Default 0.
        /// </summary>
        public int FreezeBackboneEpochs { get; set; }

        /// <summary>
        /// Learning-rate factor of the backbone relative to the head (discriminative learning rates). Null: 0.1 when
        /// training starts from trained weights (pretrained or resumed), 1 otherwise.
        /// </summary>
        public double? BackboneLearningRateFactor { get; set; }

        /// <summary>
        /// Training-time augmentation. Null: the task's default — none for classifiers (a flip changes the class of some
        /// images; set <see cref="ImageAugmentation.Cifar"/>, <see cref="ImageAugmentation.ImageNet"/> or your own where
        /// flips and crops keep the class), horizontal flips for segmenters, which apply the geometry to image and mask
        /// together and refuse policies (TrivialAugment).
        /// </summary>
        public ImageAugmentation? Augmentation { get; set; }

        /// <summary>
        /// Label smoothing of the cross-entropy (0: off; 0.1 is usual): the target puts this share of its weight evenly on every
        /// class. For a segmenter, on every pixel; the Dice and focal losses refuse it.
        /// </summary>
        public double LabelSmoothing { get; set; }

        /// <summary>
        /// Per-class weights of the cross-entropy and focal losses, one per class in class-index order (a classifier's label keys,
        /// a segmenter's <c>NumClasses</c>), for imbalanced data: each row's (or pixel's) loss is multiplied by its class's weight and
        /// the mean is taken over the weights, as PyTorch's <c>cross_entropy(weight=…)</c> does. Null (the default): all 1.
        /// </summary>
        public System.Collections.Generic.IReadOnlyList<float>? ClassWeights { get; set; }

        /// <summary>γ of the focal loss (0 is the cross-entropy; 2, the default, is Lin et al.'s).</summary>
        public double FocalGamma { get; set; } = 2.0;

        /// <summary>
        /// Mixup's α (0: off; 0.2–0.4 is usual): batches are blended with a shuffled copy, λ ~ Beta(α, α), and so are the losses
        /// of the two targets (a segmenter's masks included).
        /// </summary>
        public double MixupAlpha { get; set; }

        /// <summary>
        /// CutMix's α (0: off; 1 is usual): a random box is pasted from a shuffled copy; with mixup as well, one of the two per
        /// batch. A classifier's loss is weighted by the box's share; a segmenter's masks get the same box pasted.
        /// </summary>
        public double CutMixAlpha { get; set; }

        /// <summary>
        /// Sum the gradients of this many batches before each optimiser step: the step of a batch this many times
        /// <see cref="BatchSize"/>, in the memory of one batch (see <see cref="TrainingOptions.GradientAccumulationSteps"/>;
        /// BatchNorm still sees each batch alone). Default 1.
        /// </summary>
        public int GradientAccumulationSteps { get; set; } = 1;

        /// <summary>
        /// Keep an exponential moving average of the weights with this decay and validate, choose the best epoch, return and
        /// export with it (see <see cref="TrainingOptions.ModelEmaDecay"/>); e.g. 0.999. Null (the default): off.
        /// </summary>
        public double? ModelEmaDecay { get; set; }

        /// <summary>Warm the average's decay up over the first steps (see <see cref="TrainingOptions.ModelEmaWarmup"/>). Default true.</summary>
        public bool ModelEmaWarmup { get; set; } = true;

        /// <summary>Keep decoded training images (and masks) in memory after the first epoch.</summary>
        public bool CacheInMemory { get; set; } = true;

        /// <summary>
        /// Mixed precision: the number format of the network's convolutions and matrix products in training and validation
        /// (see <see cref="TrainingPrecision"/>). The model that <c>Fit</c> returns and saves is float32 in every case.
        /// Default <see cref="TrainingPrecision.Float32"/>.
        /// </summary>
        public TrainingPrecision Precision { get; set; } = TrainingPrecision.Float32;

        /// <summary>
        /// On NVIDIA GPUs from Ampere on: TF32 tensor cores for float32 convolutions and matrix products while training
        /// (see <see cref="TrainingOptions.AllowTf32"/>). Null (the default) leaves libtorch's settings as they are.
        /// </summary>
        public bool? AllowTf32 { get; set; }

        /// <summary>
        /// Channels-last memory layout of the batches and convolution weights while training (see
        /// <see cref="TrainingOptions.ChannelsLast"/>). Null (the default): on the CPU, the default layout on CUDA;
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

        /// <summary>Stop after this many epochs without improvement of the task's validation metric; the best epoch's weights are kept.</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>A directory for per-epoch checkpoints; fitting again with it resumes.</summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>Receives a report after every epoch.</summary>
        public IProgress<EpochReport>? Progress { get; set; }

        /// <summary>Receives a report after every training batch (for live progress bars); keep the handler quick.</summary>
        public IProgress<BatchReport>? BatchProgress { get; set; }

        /// <summary>
        /// Receives the gradient flow (<see cref="Diagnostics.GradientFlow"/>, BatchNorm on batch statistics as in training) on one
        /// fixed batch — the first of the validation data, or of the training data — before the first step (epoch 0, or a resumed checkpoint's epoch) and after
        /// every epoch. Each measurement costs about one training step.
        /// </summary>
        public IProgress<Diagnostics.GradientFlowEpoch>? GradientFlowProgress { get; set; }

        /// <summary>Cancels training between batches.</summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>
        /// The saved model's scoring graph: BatchNorm folded (default), test-time augmentation, float16 or INT8 (calibrated on the
        /// training data unless <see cref="ScoringOptions.CalibrationSet"/> says otherwise); see docs/onnx.md.
        /// </summary>
        public ScoringOptions Scoring { get; set; } = new();

        // A sweep's successive-halving rung: pause after this epoch (the schedule still spans Epochs); see TrainingOptions.
        internal int? StopAfterEpoch { get; set; }

        /// <summary>The peak learning rate when <see cref="LearningRate"/> is null.</summary>
        private protected abstract double DefaultLearningRate { get; }

        /// <summary>The weight decay when <see cref="WeightDecay"/> is null.</summary>
        private protected abstract double DefaultWeightDecay { get; }

        /// <summary>Whether training starts from trained weights (the backbone then learns at a tenth of the rate by default).</summary>
        private protected abstract bool StartsFromTrainedWeights { get; }

        /// <summary>The validation metric that chooses the best epoch and drives early stopping.</summary>
        private protected abstract MonitoredMetric Monitor { get; }

        /// <summary>
        /// Checks what every task's estimator checks when it is made: <see cref="Architecture"/> names a registered model of
        /// <paramref name="task"/> (its card is returned), and the sizes, epochs, workers and validation fraction are in range.
        /// The message names the options class and the setting.
        /// </summary>
        internal ModelInfo CheckShared(ModelTask task)
        {
            string name = GetType().Name;
            void Check(bool valid, string option, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"{name}.{option} = {value}: {rule}.", "options");
            }

            ModelInfo? card = ResidualModels.Find(Architecture);
            string kind = task switch { ModelTask.Classifier => "classifier", ModelTask.Segmenter => "segmenter (a U-Net)", _ => "detector" };
            Check(card?.Task == task, nameof(Architecture), $"'{Architecture}'",
                $"not a {kind}; use one of: {string.Join(", ", ResidualModels.All.Where(m => m.Task == task).Select(m => m.Name))}");
            Check(Epochs >= 1, nameof(Epochs), Epochs, "train for at least one epoch");
            Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be positive");
            Check(ImageWidth >= 1 && ImageHeight >= 1, "ImageWidth/ImageHeight", $"{ImageWidth}×{ImageHeight}", "must be positive");
            if (card != null)
            {
                Check(ImageWidth >= card.MinimumInputSize && ImageHeight >= card.MinimumInputSize, "ImageWidth/ImageHeight", $"{ImageWidth}×{ImageHeight}",
                    $"{card.Name} needs images of at least {card.MinimumInputSize}×{card.MinimumInputSize}; set a larger size (the images are resized to it)");
            }

            Check(Workers >= 1 && Workers <= ImageBatchOptions.MaxWorkers, nameof(Workers), Workers, $"must be 1 to {ImageBatchOptions.MaxWorkers}");
            Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
            Check(ClassWeights is null || (ClassWeights.All(w => w >= 0 && float.IsFinite(w)) && ClassWeights.Any(w => w > 0)), nameof(ClassWeights),
                ClassWeights is null ? null : string.Join(", ", ClassWeights), "weights must be finite and non-negative, and not all 0");
            Check(FocalGamma >= 0 && double.IsFinite(FocalGamma), nameof(FocalGamma), FocalGamma, "must be non-negative");
            Check(Scoring is not null, nameof(Scoring), "null", "give scoring settings (new ScoringOptions() for the defaults)");
            Scoring!.Check($"{name}.{nameof(Scoring)}");
            if (Scoring.TestTimeAugmentation == TestTimeAugmentation.FlipAndCrops)
            {
                Check(task == ModelTask.Classifier, $"{nameof(Scoring)}.{nameof(ScoringOptions.TestTimeAugmentation)}", Scoring.TestTimeAugmentation,
                    "crops average a classifier's logits; a segmenter's output covers the whole image: use Flip");
                Check(card is null || Math.Min(ImageWidth, ImageHeight) * 7 / 8 >= card.MinimumInputSize, $"{nameof(Scoring)}.{nameof(ScoringOptions.TestTimeAugmentation)}",
                    Scoring.TestTimeAugmentation, $"the crops (7/8 of each side) are smaller than {Architecture}'s minimum input {card?.MinimumInputSize}; use Flip or larger images");
            }

            return card!;
        }

        /// <summary>The loop's options, every default resolved and every value checked (the message names this options class).</summary>
        internal TrainingOptions ToTrainingOptions()
        {
            var training = new TrainingOptions
            {
                Epochs = Epochs, Optimizer = Optimizer, Momentum = Momentum, Nesterov = Nesterov,
                WeightDecay = WeightDecay ?? DefaultWeightDecay, Schedule = Schedule, LearningRate = LearningRate ?? DefaultLearningRate,
                WarmupEpochs = WarmupEpochs ?? (Schedule != LearningRateScheduleKind.OneCycle && Epochs > 2 ? Math.Min(1, Epochs / 5.0) : 0),
                StepMilestones = StepMilestones, StepGamma = StepGamma, GradientClipNorm = GradientClipNorm,
                FreezeBackboneEpochs = FreezeBackboneEpochs,
                BackboneLearningRateFactor = BackboneLearningRateFactor ?? (StartsFromTrainedWeights ? 0.1 : 1.0),
                Monitor = Monitor, EarlyStoppingPatience = EarlyStoppingPatience, CheckpointDirectory = CheckpointDirectory, Seed = Seed,
                StopAfterEpoch = StopAfterEpoch, Precision = Precision, AllowTf32 = AllowTf32, ChannelsLast = ChannelsLast,
                LabelSmoothing = LabelSmoothing, MixupAlpha = MixupAlpha, CutMixAlpha = CutMixAlpha,
                GradientAccumulationSteps = GradientAccumulationSteps, ModelEmaDecay = ModelEmaDecay, ModelEmaWarmup = ModelEmaWarmup,
            };
            return EstimatorRuntime.Validated(training, GetType().Name);
        }
    }
}
