using System;
using System.Reflection;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Residual
{
    /// <summary>The ML.NET catalog entry points of ResidualML.</summary>
    public static class ResidualCatalog
    {
        /// <summary>A ResNet-family image classifier (any ResNet name in <c>ResidualModels.Names</c>).</summary>
        public static ImageClassifierEstimator ResNetClassifier(this TransformsCatalog catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, "resnet");

        /// <summary>A ResNet-family image classifier with the most common settings.</summary>
        public static ImageClassifierEstimator ResNetClassifier(
            this TransformsCatalog catalog, string labelColumnName = "Label", string imageColumnName = "Image", string architecture = "resnet18",
            int epochs = 10, int imageWidth = 224, int imageHeight = 224, int batchSize = 32) =>
            ResNetClassifier(catalog, new ImageClassifierOptions
            {
                LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, Architecture = architecture, Epochs = epochs,
                ImageWidth = imageWidth, ImageHeight = imageHeight, BatchSize = batchSize,
            });

        /// <summary>A DenseNet image classifier (densenet121/161/169/201, densenet_bc_*).</summary>
        public static ImageClassifierEstimator DenseNetClassifier(this TransformsCatalog catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, "densenet");

        /// <summary>
        /// Image features for ML.NET trainers: the pooled penultimate layer of <paramref name="architecture"/> (any ResNet or
        /// DenseNet name), with weights from <paramref name="weightsPath"/> (safetensors or .pth with torchvision names; the
        /// classifier head in the file is ignored), or random weights when null.
        /// </summary>
        public static ImageFeaturizerEstimator ResNetFeaturizer(
            this TransformsCatalog catalog, string outputColumnName, string imageColumnName, string architecture = "resnet50",
            string? weightsPath = null, int imageWidth = 224, int imageHeight = 224) =>
            new(ContextOf(catalog), outputColumnName, imageColumnName, architecture, weightsPath, imageWidth, imageHeight);

        /// <summary>The ResNet classifier, from the multiclass trainers catalog.</summary>
        public static ImageClassifierEstimator ResNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, "resnet");

        /// <summary>The DenseNet classifier, from the multiclass trainers catalog.</summary>
        public static ImageClassifierEstimator DenseNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, "densenet");

        /// <summary>A U-Net segmenter: per-pixel <c>PredictedMask</c> (UInt32 H×W) and <c>MaskScore</c> (probabilities) from images and masks.</summary>
        public static UNetSegmenterEstimator UNetSegmenter(this TransformsCatalog catalog, SegmenterOptions options) =>
            new(ContextOf(catalog), options);

        /// <summary>
        /// Sweeps over architectures and hyperparameters, AutoML-style:
        /// <c>ml.ResidualSweep().ImageClassification(...).SetSearchSpace(...).SetTuner(...).Run(train, validation)</c>.
        /// </summary>
        public static ResidualSweepCatalog ResidualSweep(this MLContext mlContext) =>
            new(mlContext ?? throw new ArgumentNullException(nameof(mlContext)));

        // ML.NET hands catalogs the MLContext's environment through an internal interface and offers extension
        // packages no public accessor; read it by reflection, with a clear error should ML.NET change it.
        private static readonly PropertyInfo? EnvironmentProperty =
            typeof(TransformsCatalog).Assembly.GetType("Microsoft.ML.Data.IInternalCatalog")?.GetProperty("Environment");

        private static IHostEnvironment ContextOf(object catalog)
        {
            if (catalog is null) throw new ArgumentNullException(nameof(catalog));
            return EnvironmentProperty?.GetValue(catalog) as IHostEnvironment
                ?? throw new InvalidOperationException(
                    $"Cannot reach the MLContext behind {catalog.GetType().Name} (this ML.NET version hides it differently). Please report this with your ML.NET version.");
        }
    }
}
