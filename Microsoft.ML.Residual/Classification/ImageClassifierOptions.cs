using System;
using System.Threading;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual
{
    /// <summary>Options of the residual image classifiers (<c>ml.Transforms.ResNetClassifier</c> and relatives).</summary>
    public sealed class ImageClassifierOptions
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

        /// <summary>Peak learning rate (default: 0.05 for SGD, 0.001 for AdamW).</summary>
        public double? LearningRate { get; set; }

        /// <summary>The optimiser.</summary>
        public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;

        /// <summary>Weight decay.</summary>
        public double WeightDecay { get; set; } = 5e-4;

        /// <summary>The learning-rate schedule.</summary>
        public LearningRateScheduleKind Schedule { get; set; } = LearningRateScheduleKind.Cosine;

        /// <summary>Label smoothing of the loss.</summary>
        public double LabelSmoothing { get; set; }

        /// <summary>
        /// The stem for ResNets: null chooses the CIFAR stem (3×3, no pooling) for images of at most 64 pixels a side
        /// and the ImageNet stem otherwise.
        /// </summary>
        public StemKind? Stem { get; set; }

        /// <summary>Training-time augmentation (null: flip plus padded crop for images of at most 64 pixels, flip only otherwise).</summary>
        public ImageAugmentation? Augmentation { get; set; }

        /// <summary>Keep decoded training images in memory after the first epoch.</summary>
        public bool CacheInMemory { get; set; } = true;

        /// <summary>Data for per-epoch validation (same columns as the training data), or null.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Stop after this many epochs without validation improvement (needs <see cref="ValidationSet"/>).</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>A directory for per-epoch checkpoints; training resumes from it.</summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>Receives a report after every epoch.</summary>
        public IProgress<EpochReport>? Progress { get; set; }

        /// <summary>Cancels training between batches.</summary>
        public CancellationToken CancellationToken { get; set; }
    }
}
