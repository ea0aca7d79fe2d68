using System;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Classification
{
    /// <summary>
    /// Options of the multi-label image classifier (<c>ml.MultiLabelClassification().ImageClassifier</c>): images with any number
    /// of labels (tags), each label a yes/no decision with its own probability. The shared training settings of
    /// <see cref="ImageTrainerOptions"/> and the task's own; the defaults are the single-label classifier's (resnet18, 224×224,
    /// batch 32, one-cycle, AdamW at 0.002 with weight decay 0.05, no augmentation).
    /// </summary>
    public sealed class MultiLabelClassifierOptions : ImageTrainerOptions
    {
        /// <summary>Creates the options with the defaults.</summary>
        public MultiLabelClassifierOptions() : base("resnet18", 224, 32, LearningRateScheduleKind.OneCycle)
        {
        }

        /// <summary>
        /// The labels of each image: a vector of keys (e.g. <c>ml.Transforms.Text.TokenizeIntoWords("Labels", separators: new[] { ';' })</c>
        /// then <c>MapValueToKey("Labels")</c>; a row may have none), or a known-size Boolean vector with one slot per label.
        /// </summary>
        public string LabelColumnName { get; set; } = "Labels";

        /// <summary>The probability of each label (a float vector, one slot per label in the label column's key order).</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>The predicted labels: a Boolean vector, true for each label whose probability reaches its threshold.</summary>
        public string PredictedLabelsColumnName { get; set; } = "PredictedLabels";

        /// <summary>The probability from which a label is predicted, for every label (unless tuned). Default 0.5.</summary>
        public float Threshold { get; set; } = 0.5f;

        /// <summary>
        /// One threshold per label (in the label column's key order) instead of <see cref="Threshold"/>, e.g. lower for a label that
        /// must not be missed; null (the default): <see cref="Threshold"/> for every label. Not with <see cref="TuneThresholds"/>.
        /// </summary>
        public System.Collections.Generic.IReadOnlyList<float>? Thresholds { get; set; }

        /// <summary>
        /// After training, choose each label's threshold to maximise its F1 on the validation data (<see cref="ImageTrainerOptions.ValidationSet"/>
        /// or <see cref="ImageTrainerOptions.ValidationFraction"/>); a label without positive validation images keeps <see cref="Threshold"/>.
        /// The thresholds are written into the model. Default false.
        /// </summary>
        public bool TuneThresholds { get; set; }

        /// <summary>The loss: binary cross-entropy per label (the default) or the sigmoid focal loss (<see cref="ImageTrainerOptions.FocalGamma"/>); <see cref="ImageTrainerOptions.ClassWeights"/> weigh the labels.</summary>
        public ClassificationLoss Loss { get; set; } = ClassificationLoss.CrossEntropy;

        /// <summary>
        /// A state dict (<c>.safetensors</c>, or PyTorch <c>.pth</c>) with torchvision's key names for the architecture, e.g. ImageNet
        /// weights: training starts from it with a new head (one output per label), the architecture's own stem and ImageNet's pixel statistics.
        /// </summary>
        public string? PretrainedWeightsPath { get; set; }

        /// <summary>The stem for ResNets and DenseNets: null chooses the CIFAR stem for images of at most 32 pixels a side (without pretrained weights), the architecture's own otherwise.</summary>
        public StemKind? Stem { get; set; }

        /// <summary>The metric that chooses the best epoch (whose weights are kept) and drives early stopping: the validation loss (the default) or the training loss.</summary>
        public MultiLabelMetric EarlyStoppingMetric { get; set; } = MultiLabelMetric.ValidationLoss;

        private protected override double DefaultLearningRate => Optimizer == OptimizerKind.AdamW ? 2e-3 : 0.05;

        private protected override double DefaultWeightDecay => Optimizer == OptimizerKind.AdamW ? 0.05 : 5e-4;

        private protected override bool StartsFromTrainedWeights => PretrainedWeightsPath != null;

        private protected override MonitoredMetric Monitor => EarlyStoppingMetric switch
        {
            MultiLabelMetric.ValidationLoss => MonitoredMetric.ValidationLoss,
            MultiLabelMetric.TrainingLoss => MonitoredMetric.TrainingLoss,
            _ => throw new ArgumentException($"MultiLabelClassifierOptions.EarlyStoppingMetric = {EarlyStoppingMetric}: not a MultiLabelMetric.", "options"),
        };
    }

    /// <summary>The metric by which a multi-label classifier picks its best epoch and stops early.</summary>
    public enum MultiLabelMetric
    {
        /// <summary>Validation loss (lower is better).</summary>
        ValidationLoss,

        /// <summary>Training loss (lower is better); what is used when there is no validation data.</summary>
        TrainingLoss,
    }
}
