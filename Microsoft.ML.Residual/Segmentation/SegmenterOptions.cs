using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual
{
    /// <summary>The per-pixel loss of <see cref="SegmenterOptions.Loss"/>.</summary>
    public enum SegmentationLoss
    {
        /// <summary>Cross-entropy per pixel, with optional <see cref="SegmenterOptions.ClassWeights"/>.</summary>
        CrossEntropy,

        /// <summary>Soft Dice loss, 1 − mean Dice over the classes (over the foreground class only when there are two).</summary>
        Dice,

        /// <summary>Cross-entropy plus Dice.</summary>
        CrossEntropyDice,

        /// <summary>Focal loss (Lin et al.): cross-entropy down-weighted by (1 − p)^γ for well-classified pixels.</summary>
        Focal,
    }

    /// <summary>Options of the U-Net segmenter (<c>ml.Transforms.UNetSegmenter</c>).</summary>
    public sealed class SegmenterOptions : ITrainingRunOptions
    {
        /// <summary>Any U-Net name in <see cref="ResidualModels.Names"/> ("unet", "unet_resnet18", "unet_resnet34", "unet_resnet50", "unet_densenet121").</summary>
        public string Architecture { get; set; } = "unet_resnet18";

        /// <summary>
        /// Options of the network (depth and width of the classic U-Net, decoder channels, the encoder's options such as a
        /// CIFAR stem for small images, …); null keeps the architecture's defaults. <see cref="Seed"/> applies unless it sets its own.
        /// </summary>
        public UNetOptions? ModelOptions { get; set; }

        /// <summary>An <c>MLImage</c> column (resized to <see cref="ImageWidth"/>×<see cref="ImageHeight"/>), or a float vector C×H×W of 0–255.</summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>
        /// The true masks: an <c>MLImage</c> whose pixel value is the class index (resized with nearest neighbour), or a
        /// vector of H×W class indices (UInt32, Byte, UInt16, Int32, Int64, integral Single), or of keys (key k is class k − 1, key 0 is ignored).
        /// </summary>
        public string MaskColumnName { get; set; } = "Mask";

        /// <summary>Classes, background included (2 for a binary task).</summary>
        public int NumClasses { get; set; } = 2;

        /// <summary>Width the network sees.</summary>
        public int ImageWidth { get; set; } = 256;

        /// <summary>Height the network sees.</summary>
        public int ImageHeight { get; set; } = 256;

        /// <summary>The predicted class of each pixel: a UInt32 vector of H×W.</summary>
        public string PredictedMaskColumnName { get; set; } = "PredictedMask";

        /// <summary>The per-class probabilities of each pixel: a float vector of NumClasses×H×W.</summary>
        public string MaskScoreColumnName { get; set; } = "MaskScore";

        /// <summary>Passes over the training data.</summary>
        public int Epochs { get; set; } = 10;

        /// <summary>Images per step.</summary>
        public int BatchSize { get; set; } = 8;

        /// <summary>Seed for weights, data order and augmentation (reproducible on CPU).</summary>
        public int Seed { get; set; } = 1;

        /// <summary>The loss.</summary>
        public SegmentationLoss Loss { get; set; } = SegmentationLoss.CrossEntropy;

        /// <summary>Per-class weights of the cross-entropy and focal losses (length <see cref="NumClasses"/>), or null.</summary>
        public IReadOnlyList<float>? ClassWeights { get; set; }

        /// <summary>A mask value that marks pixels to ignore in the loss and the metrics (e.g. 255 for unlabelled borders), or null.</summary>
        public int? IgnoreIndex { get; set; }

        /// <summary>γ of the focal loss.</summary>
        public double FocalGamma { get; set; } = 2.0;

        /// <summary>Peak learning rate (default: 0.001 for AdamW, 0.05 for SGD).</summary>
        public double? LearningRate { get; set; }

        /// <summary>The optimiser (default AdamW).</summary>
        public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

        /// <summary>Weight decay (not on BatchNorm parameters and biases).</summary>
        public double WeightDecay { get; set; } = 1e-4;

        /// <summary>The learning-rate schedule.</summary>
        public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.Cosine;

        /// <summary>Linear warm-up in epochs; null: one epoch when training for more than two, else none.</summary>
        public double? WarmupEpochs { get; set; }

        /// <summary>Clip the global gradient norm to this value (null: no clipping).</summary>
        public double? GradientClipNorm { get; set; }

        /// <summary>
        /// Geometric augmentation applied to image and mask together: flip, random-resized crop (scale), pad + crop.
        /// Null: horizontal flip. Policies (TrivialAugment) are not supported for segmentation.
        /// </summary>
        public ImageAugmentation? Augmentation { get; set; }

        /// <summary>Keep decoded images and masks in memory after the first epoch.</summary>
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

        /// <summary>Validation data with the same columns, or null.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Without a <see cref="ValidationSet"/>: the fraction of training rows held out for validation (0: none).</summary>
        public double ValidationFraction { get; set; }

        /// <summary>Stop after this many epochs without validation mean-IoU improvement; the best epoch's weights are kept.</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>
        /// A torchvision state dict (.safetensors or .pth) of the encoder's classifier (e.g. resnet18 ImageNet weights for
        /// "unet_resnet18"): loaded into the encoder; the decoder starts fresh.
        /// </summary>
        public string? PretrainedEncoderWeightsPath { get; set; }

        /// <summary>Train the decoder only for this many epochs first (encoder frozen, its BatchNorm statistics kept).</summary>
        public int FreezeEncoderEpochs { get; set; }

        /// <summary>Learning-rate factor of the encoder (null: 0.1 with pretrained encoder weights, 1 otherwise).</summary>
        public double? EncoderLearningRateFactor { get; set; }

        /// <summary>A directory for per-epoch checkpoints; fitting again with it resumes.</summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>Receives a report after every epoch (with the validation mean IoU).</summary>
        public IProgress<EpochReport>? Progress { get; set; }

        /// <summary>Receives a report after every training batch (for live progress bars); keep the handler quick.</summary>
        public IProgress<BatchReport>? BatchProgress { get; set; }

        /// <summary>
        /// Receives the gradient flow (<see cref="Diagnostics.GradientFlow"/>, per-pixel cross-entropy, BatchNorm on batch
        /// statistics as in training) on one fixed batch — the first of the validation data, or of the training data — before
        /// the first step (epoch 0) and after every epoch. Each measurement costs about one training step.
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

        internal SegmenterOptions Clone()
        {
            var copy = (SegmenterOptions)MemberwiseClone();
            copy.ModelOptions = ModelOptions?.Clone();
            return copy;
        }
    }
}
