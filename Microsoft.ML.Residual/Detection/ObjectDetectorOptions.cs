using System;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// Options of the object detector (<c>ml.Detection().ObjectDetector(...)</c>, <c>ml.Transforms.ObjectDetector(...)</c>): the shared
    /// training settings of <see cref="ImageTrainerOptions"/> and the detector's own. Defaults: retinanet_resnet50_fpn at 512×512, batch 4,
    /// cosine schedule; AdamW at 1e-4 with a pretrained backbone and 1e-3 without (SGD 0.01), weight decay 1e-4; flips and scale jitter.
    /// </summary>
    public sealed class ObjectDetectorOptions : ImageTrainerOptions
    {
        /// <summary>Creates the options with the detector's defaults.</summary>
        public ObjectDetectorOptions() : base("retinanet_resnet50_fpn", 512, 4, LearningRateScheduleKind.Cosine)
        {
        }

        /// <summary>Options of the network (its backbone, FPN channels, head convolutions); null keeps the architecture's defaults.</summary>
        public DetectorOptions? ModelOptions { get; set; }

        /// <summary>The objects' classes: a vector of keys, one per object (<c>MapValueToKey</c> over a vector of class names).</summary>
        public string LabelColumnName { get; set; } = "Labels";

        /// <summary>The objects' boxes: a vector of Single, x1, y1, x2, y2 in pixels of the original image for each object, in the labels' order.</summary>
        public string BoxColumnName { get; set; } = "Boxes";

        /// <summary>
        /// A numeric column with each original image's width in pixels, with <see cref="ImageHeightColumnName"/>. Needed when the image column's
        /// images differ in size (ML.NET's image type does not give each image's size to the scoring graph); the dataset loaders write
        /// <c>Width</c> and <c>Height</c>. Null: the images' size is the image column's (a fixed-size image type), or the pixel vector's.
        /// </summary>
        public string? ImageWidthColumnName { get; set; }

        /// <summary>As <see cref="ImageWidthColumnName"/>, the height.</summary>
        public string? ImageHeightColumnName { get; set; }

        /// <summary>Output: the detections' classes, a vector of keys with the label's key values.</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>Output: the detections' scores (0–1), best first.</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>Output: the detections' boxes, 4 values each (x1, y1, x2, y2 in pixels of the original image).</summary>
        public string PredictedBoundingBoxColumnName { get; set; } = "PredictedBoundingBoxes";

        /// <summary>Detections scoring at most this are dropped (null: the architecture's, 0.05 for RetinaNet and 0.2 for FCOS, as torchvision).</summary>
        public double? ScoreThreshold { get; set; }

        /// <summary>A box overlapping a better-scored box of its class by more than this IoU is dropped (null: 0.5 for RetinaNet, 0.6 for FCOS).</summary>
        public double? NmsThreshold { get; set; }

        /// <summary>The most detections per image (null: 300 for RetinaNet, 100 for FCOS).</summary>
        public int? MaxDetections { get; set; }

        /// <summary>Box-aware augmentation of the training images (null: horizontal flips and scale jitter, <see cref="DetectionAugmentation"/>'s defaults).</summary>
        public DetectionAugmentation? BoxAugmentation { get; set; }

        /// <summary>
        /// A torchvision state dict (.safetensors or .pth) of the backbone's classifier (e.g. resnet50 ImageNet weights for
        /// "retinanet_resnet50_fpn"): loaded into the backbone; the feature pyramid and heads start fresh.
        /// </summary>
        public string? PretrainedBackboneWeightsPath { get; set; }

        /// <summary>The metric that chooses the best epoch and drives early stopping: validation loss (the default) or training loss.</summary>
        public DetectorMetric EarlyStoppingMetric { get; set; } = DetectorMetric.ValidationLoss;

        private protected override double DefaultLearningRate => Optimizer == OptimizerKind.AdamW ? (StartsFromTrainedWeights ? 1e-4 : 1e-3) : 0.01;

        private protected override double DefaultWeightDecay => 1e-4;

        private protected override bool StartsFromTrainedWeights => PretrainedBackboneWeightsPath != null;

        private protected override MonitoredMetric Monitor => EarlyStoppingMetric switch
        {
            DetectorMetric.ValidationLoss => MonitoredMetric.ValidationLoss,
            DetectorMetric.TrainingLoss => MonitoredMetric.TrainingLoss,
            _ => throw new ArgumentException($"ObjectDetectorOptions.EarlyStoppingMetric = {EarlyStoppingMetric}: not a DetectorMetric.", "options"),
        };
    }

    /// <summary>The metric by which a detector picks its best epoch and stops early.</summary>
    public enum DetectorMetric
    {
        /// <summary>Validation loss (lower is better).</summary>
        ValidationLoss,

        /// <summary>Training loss (lower is better); what is used when there is no validation data.</summary>
        TrainingLoss,
    }
}
