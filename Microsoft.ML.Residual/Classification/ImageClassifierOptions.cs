using System;
using System.Threading;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Classification
{
    /// <summary>
    /// Options of the residual image classifiers (<c>ml.Transforms.ResNetClassifier</c> and relatives): the shared training
    /// settings of <see cref="ImageTrainerOptions"/> and the classifier's own. Defaults: resnet18, 224×224, batch 32,
    /// one-cycle schedule; AdamW at 0.002 (SGD 0.05) with weight decay 0.05 (SGD 5e-4); no augmentation.
    /// </summary>
    public sealed class ImageClassifierOptions : ImageTrainerOptions
    {
        /// <summary>Creates the options with the classifier's defaults.</summary>
        public ImageClassifierOptions() : base("resnet18", 224, 32, LearningRateScheduleKind.OneCycle)
        {
        }

        /// <summary>The label: a key-type column (use <c>MapValueToKey</c>).</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The probabilities column.</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>The predicted class (key type with the label's key values).</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>
        /// A state dict (<c>.safetensors</c>, or PyTorch <c>.pth</c>/<c>.pt</c>) with torchvision's key names for
        /// <see cref="Estimators.ImageTrainerOptions.Architecture"/>, e.g. ImageNet weights. Training starts from it; the classifier head is replaced
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
        /// The stem for ResNets and DenseNets: null chooses the CIFAR stem (3×3, no pooling) for images of at most 32 pixels
        /// a side and the architecture's own otherwise (the ImageNet stem for torchvision's networks), or the architecture's
        /// own with pretrained weights.
        /// </summary>
        public StemKind? Stem { get; set; }

        /// <summary>The loss: cross-entropy (the default) or focal loss (<see cref="Estimators.ImageTrainerOptions.FocalGamma"/>), either weighted by <see cref="Estimators.ImageTrainerOptions.ClassWeights"/>.</summary>
        public ClassificationLoss Loss { get; set; } = ClassificationLoss.CrossEntropy;

        /// <summary>
        /// What to do about classes of very different sizes in the training data (see <see cref="Classification.ClassBalance"/>);
        /// the per-class recall of each validation epoch shows the effect. Default <see cref="ClassBalance.None"/>.
        /// </summary>
        public ClassBalance ClassBalance { get; set; } = ClassBalance.None;

        /// <summary>
        /// The metric that chooses the best epoch (whose weights are kept) and drives early stopping: validation accuracy
        /// (the default), validation loss, or the training loss.
        /// </summary>
        public ClassifierMetric EarlyStoppingMetric { get; set; } = ClassifierMetric.ValidationAccuracy;

        private protected override double DefaultLearningRate => Optimizer == OptimizerKind.AdamW ? 2e-3 : 0.05;

        private protected override double DefaultWeightDecay => Optimizer == OptimizerKind.AdamW ? 0.05 : 5e-4;

        private protected override bool StartsFromTrainedWeights => ResumeFromModelPath != null || PretrainedWeightsPath != null;

        private protected override MonitoredMetric Monitor => EarlyStoppingMetric switch
        {
            ClassifierMetric.ValidationLoss => MonitoredMetric.ValidationLoss,
            ClassifierMetric.TrainingLoss => MonitoredMetric.TrainingLoss,
            ClassifierMetric.ValidationAccuracy => MonitoredMetric.ValidationAccuracy,
            _ => throw new ArgumentException($"ImageClassifierOptions.EarlyStoppingMetric = {EarlyStoppingMetric}: not a ClassifierMetric.", "options"),
        };

        internal ImageClassifierOptions Clone() => (ImageClassifierOptions)MemberwiseClone();
    }

    /// <summary>The metric by which a classifier picks its best epoch and stops early.</summary>
    public enum ClassifierMetric
    {
        /// <summary>Validation accuracy (higher is better).</summary>
        ValidationAccuracy,

        /// <summary>Validation cross-entropy (lower is better).</summary>
        ValidationLoss,

        /// <summary>Training loss (lower is better); what is used when there is no validation data.</summary>
        TrainingLoss,
    }

    /// <summary>The loss of <see cref="ImageClassifierOptions.Loss"/>.</summary>
    public enum ClassificationLoss
    {
        /// <summary>Cross-entropy, with label smoothing if set.</summary>
        CrossEntropy,

        /// <summary>Focal loss over the softmax (Lin et al.): cross-entropy down-weighted by (1 − p)^γ for well-classified images.</summary>
        Focal,
    }

    /// <summary>How a classifier counters imbalanced classes (<see cref="ImageClassifierOptions.ClassBalance"/>).</summary>
    public enum ClassBalance
    {
        /// <summary>Train on the data as it is.</summary>
        None,

        /// <summary>
        /// Weigh the loss by class: n / (K·n_k) for a class with n_k of the n training rows and K classes present (scikit-learn's
        /// "balanced"), so every class carries the same total weight. Replaced by explicit <see cref="Estimators.ImageTrainerOptions.ClassWeights"/> if given.
        /// </summary>
        Weights,

        /// <summary>
        /// Balanced sampling: each epoch draws as many rows as the training data has, with replacement, every class equally likely
        /// (PyTorch's <c>WeightedRandomSampler</c> with weights 1/n_k): rare images are seen several times an epoch, common ones
        /// not all. Needs <see cref="Estimators.ImageTrainerOptions.CacheInMemory"/>.
        /// </summary>
        Sampling,
    }
}
