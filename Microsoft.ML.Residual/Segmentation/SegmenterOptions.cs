using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>The per-pixel loss of <see cref="SegmenterOptions.Loss"/>.</summary>
    public enum SegmentationLoss
    {
        /// <summary>Cross-entropy per pixel, with optional <see cref="Estimators.ImageTrainerOptions.ClassWeights"/>.</summary>
        CrossEntropy,

        /// <summary>Soft Dice loss, 1 − mean Dice over the classes (over the foreground class only when there are two).</summary>
        Dice,

        /// <summary>Cross-entropy plus Dice.</summary>
        CrossEntropyDice,

        /// <summary>Focal loss (Lin et al.): cross-entropy down-weighted by (1 − p)^γ for well-classified pixels.</summary>
        Focal,
    }

    /// <summary>
    /// Options of the U-Net segmenter (<c>ml.Transforms.UNetSegmenter</c>): the shared training settings of
    /// <see cref="ImageTrainerOptions"/> (the backbone is the encoder) and the segmenter's own. Defaults: unet_resnet18,
    /// 256×256, batch 8, cosine schedule; AdamW at 0.001 (SGD 0.05), weight decay 1e-4; horizontal flips.
    /// </summary>
    public sealed class SegmenterOptions : ImageTrainerOptions
    {
        /// <summary>Creates the options with the segmenter's defaults.</summary>
        public SegmenterOptions() : base("unet_resnet18", 256, 8, LearningRateScheduleKind.Cosine)
        {
        }

        /// <summary>
        /// Options of the network (depth and width of the classic U-Net, decoder channels, the encoder's options such as a
        /// CIFAR stem for small images, …); null keeps the architecture's defaults. <see cref="Estimators.ImageTrainerOptions.Seed"/> applies unless it sets its own.
        /// </summary>
        public UNetOptions? ModelOptions { get; set; }

        /// <summary>
        /// The true masks: an <c>MLImage</c> whose pixel value is the class index (resized with nearest neighbour), or a
        /// vector of H×W class indices (UInt32, Byte, UInt16, Int32, Int64, integral Single), or of keys (key k is class k − 1, key 0 is ignored).
        /// </summary>
        public string MaskColumnName { get; set; } = "Mask";

        /// <summary>Classes, background included (2 for a binary task).</summary>
        public int NumClasses { get; set; } = 2;

        /// <summary>The predicted class of each pixel: a UInt32 vector of H×W.</summary>
        public string PredictedMaskColumnName { get; set; } = "PredictedMask";

        /// <summary>The per-class probabilities of each pixel: a float vector of NumClasses×H×W.</summary>
        public string MaskScoreColumnName { get; set; } = "MaskScore";

        /// <summary>The loss.</summary>
        public SegmentationLoss Loss { get; set; } = SegmentationLoss.CrossEntropy;

        /// <summary>A mask value that marks pixels to ignore in the loss and the metrics (e.g. 255 for unlabelled borders), or null.</summary>
        public int? IgnoreIndex { get; set; }

        /// <summary>
        /// A torchvision state dict (.safetensors or .pth) of the encoder's classifier (e.g. resnet18 ImageNet weights for
        /// "unet_resnet18"): loaded into the encoder; the decoder starts fresh.
        /// </summary>
        public string? PretrainedEncoderWeightsPath { get; set; }

        private protected override double DefaultLearningRate => Optimizer == OptimizerKind.AdamW ? 1e-3 : 0.05;

        private protected override double DefaultWeightDecay => 1e-4;

        private protected override bool StartsFromTrainedWeights => PretrainedEncoderWeightsPath != null;

        /// <summary>
        /// The metric that chooses the best epoch (whose weights are kept) and drives early stopping: validation mean IoU
        /// (the default), validation loss, or the training loss.
        /// </summary>
        public SegmenterMetric EarlyStoppingMetric { get; set; } = SegmenterMetric.ValidationMeanIoU;

        private protected override MonitoredMetric Monitor => EarlyStoppingMetric switch
        {
            SegmenterMetric.ValidationLoss => MonitoredMetric.ValidationLoss,
            SegmenterMetric.TrainingLoss => MonitoredMetric.TrainingLoss,
            SegmenterMetric.ValidationMeanIoU => MonitoredMetric.ValidationMeanIoU,
            _ => throw new ArgumentException($"SegmenterOptions.EarlyStoppingMetric = {EarlyStoppingMetric}: not a SegmenterMetric.", "options"),
        };

        internal SegmenterOptions Clone()
        {
            var copy = (SegmenterOptions)MemberwiseClone();
            copy.ModelOptions = ModelOptions?.Clone();
            return copy;
        }
    }

    /// <summary>The metric by which a segmenter picks its best epoch and stops early.</summary>
    public enum SegmenterMetric
    {
        /// <summary>Validation mean intersection-over-union over the classes present (higher is better).</summary>
        ValidationMeanIoU,

        /// <summary>Validation loss (lower is better).</summary>
        ValidationLoss,

        /// <summary>Training loss (lower is better); what is used when there is no validation data.</summary>
        TrainingLoss,
    }
}
