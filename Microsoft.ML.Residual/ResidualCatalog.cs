using System;
using System.Reflection;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Featurization;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Residual
{
    /// <summary>The ML.NET catalog entry points of ResidualML.</summary>
    public static class ResidualCatalog
    {
        /// <summary>
        /// Saves <paramref name="model"/> as <c>ml.Model.Save</c> does, but whole or not at all: into a temporary file in the
        /// same folder, flushed to the disk, then renamed over <paramref name="filePath"/>. A crash, a full disk or an error
        /// while saving leaves an existing file as it was (and no temporary file behind, except after a crash).
        /// </summary>
        /// <param name="catalog">ml.Model.</param>
        /// <param name="model">The fitted pipeline.</param>
        /// <param name="inputSchema">The schema of the data the pipeline reads (as for <c>ml.Model.Save</c>).</param>
        /// <param name="filePath">The model file to create or replace (usually model.zip).</param>
        public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string filePath)
        {
            if (catalog is null) throw new ArgumentNullException(nameof(catalog));
            if (string.IsNullOrWhiteSpace(filePath)) throw new ArgumentException("Give the model file's path.", nameof(filePath));
            string? folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(filePath));
            if (folder != null && !System.IO.Directory.Exists(folder))
                throw new System.IO.DirectoryNotFoundException($"Cannot save the model to '{filePath}': the folder '{folder}' does not exist. Create it first.");
            IO.AtomicFile.Write(filePath, temporary => catalog.Save(model, inputSchema, temporary));
        }

        /// <summary>
        /// Loads a model file as <c>ml.Model.Load</c> does, but every failure names the file: ML.NET's own errors for a
        /// truncated or damaged model.zip (a <c>FormatException</c>, or an <c>InvalidOperationException</c> "Error during class
        /// instantiation" around ONNX Runtime's error) do not.
        /// </summary>
        /// <param name="catalog">ml.Model.</param>
        /// <param name="filePath">The model file (model.zip).</param>
        /// <param name="inputSchema">The schema of the data the model reads.</param>
        /// <exception cref="System.IO.FileNotFoundException">There is no such file.</exception>
        /// <exception cref="IO.InvalidModelException">
        /// The file is truncated or damaged, is not a model, or was saved by a newer ML.NET or ONNX Runtime; the message names it.
        /// </exception>
        public static ITransformer LoadChecked(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema)
        {
            if (catalog is null) throw new ArgumentNullException(nameof(catalog));
            if (string.IsNullOrWhiteSpace(filePath)) throw new ArgumentException("Give the model file's path.", nameof(filePath));
            string full = System.IO.Path.GetFullPath(filePath);
            if (!System.IO.File.Exists(full))
                throw new System.IO.FileNotFoundException($"Model file '{full}' does not exist.", full);
            try
            {
                return catalog.Load(full, out inputSchema);
            }
            catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException or UnauthorizedAccessException))
            {
                Exception cause = e;
                while (cause.InnerException != null) cause = cause.InnerException;
                throw new IO.InvalidModelException(
                    $"Model file '{full}' cannot be loaded: {cause.Message.TrimEnd('.')} ({cause.GetType().Name}). It is truncated or damaged, is not a model saved by "
                    + $"ml.Model.Save, or was saved by a newer ML.NET or ONNX Runtime than this application uses (ML.NET {typeof(MLContext).Assembly.GetName().Version}). "
                    + "Copy or save it again, or load it with the versions that saved it.", full, e);
            }
        }

        /// <summary>
        /// Writes a copy of the saved model <paramref name="modelPath"/> whose ResidualML graph is made for scoring as
        /// <paramref name="options"/> say: BatchNorm folded, test-time augmentation, float16 or INT8 (calibrated on
        /// <see cref="Estimators.ScoringOptions.CalibrationSet"/>: rows the model scores, e.g. the training data). The copy has
        /// the same columns and scores with ML.NET and ONNX Runtime like the original.
        /// </summary>
        /// <param name="catalog">ml.Model.</param>
        /// <param name="modelPath">A model.zip saved from a ResidualML estimator (float32).</param>
        /// <param name="outputPath">The model file to write (atomically); not <paramref name="modelPath"/>.</param>
        /// <param name="options">What to make of the graph.</param>
        /// <exception cref="ArgumentException">A setting is wrong, or the model holds no float32 ResidualML graph; the message says which.</exception>
        public static void SaveForScoring(this ModelOperationsCatalog catalog, string modelPath, string outputPath, Estimators.ScoringOptions options)
        {
            if (catalog is null) throw new ArgumentNullException(nameof(catalog));
            Estimators.SavedModelScoring.Convert(catalog, modelPath, outputPath, options ?? throw new ArgumentNullException(nameof(options)));
        }

        /// <summary>A ResNet-family image classifier (any ResNet name in <c>ResidualModels.Names</c>).</summary>
        public static ImageClassifierEstimator ResNetClassifier(this TransformsCatalog catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, "resnet");

        /// <summary>A ResNet-family image classifier with the most common settings.</summary>
        public static ImageClassifierEstimator ResNetClassifier(
            this TransformsCatalog catalog, string labelColumnName = "Label", string imageColumnName = "Image", string architecture = "resnet18",
            int epochs = 10, int imageWidth = 224, int imageHeight = 224, int batchSize = 32) =>
            ResNetClassifier(catalog, SimpleOptions(labelColumnName, imageColumnName, architecture, epochs, imageWidth, imageHeight, batchSize));

        /// <summary>
        /// An image classifier of any registered architecture (<c>ResidualModels.Names</c>: the ResNet and DenseNet families, and
        /// networks registered with <c>ResidualModels.Register</c>).
        /// </summary>
        public static ImageClassifierEstimator ImageClassifier(this TransformsCatalog catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, requiredFamily: null);

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

        /// <summary>An image classifier of any registered architecture, from the multiclass trainers catalog.</summary>
        public static ImageClassifierEstimator ImageClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, requiredFamily: null);

        /// <summary>An image classifier of any registered architecture with the most common settings, from the multiclass trainers catalog.</summary>
        public static ImageClassifierEstimator ImageClassifier(
            this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, string labelColumnName = "Label", string imageColumnName = "Image",
            string architecture = "resnet18", int epochs = 10, int imageWidth = 224, int imageHeight = 224, int batchSize = 32) =>
            ImageClassifier(catalog, SimpleOptions(labelColumnName, imageColumnName, architecture, epochs, imageWidth, imageHeight, batchSize));

        /// <summary>The DenseNet classifier, from the multiclass trainers catalog.</summary>
        public static ImageClassifierEstimator DenseNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ImageClassifierOptions options) =>
            new(ContextOf(catalog), options, "densenet");

        /// <summary>
        /// The learning-rate finder for an image classifier (fastai's <c>lr_find</c>): a short training sweep of
        /// <paramref name="data"/> with the network, data pipeline and optimiser <paramref name="options"/> describe (any
        /// ResNet or DenseNet name), at a learning rate growing geometrically; returns the loss curve and the suggested rate
        /// for <see cref="Estimators.ImageTrainerOptions.LearningRate"/>. Nothing is fitted.
        /// </summary>
        /// <param name="catalog">The transforms catalog.</param>
        /// <param name="data">The training data, as for the classifier's <c>Fit</c>.</param>
        /// <param name="options">The classifier's options (its LearningRate is not used).</param>
        /// <param name="finder">The sweep's range and length (null: 1e-7 to 10 over 100 steps).</param>
        public static Training.LearningRateFinderResult FindLearningRate(
            this TransformsCatalog catalog, IDataView data, ImageClassifierOptions options, Training.LearningRateFinderOptions? finder = null) =>
            new ImageClassifierEstimator(ContextOf(catalog), options, requiredFamily: null).FindLearningRate(data, finder);

        /// <summary>A U-Net segmenter: per-pixel <c>PredictedMask</c> (UInt32 H×W) and <c>MaskScore</c> (probabilities) from images and masks.</summary>
        public static UNetSegmenterEstimator UNetSegmenter(this TransformsCatalog catalog, SegmenterOptions options) =>
            new(ContextOf(catalog), options);

        /// <summary>Multi-label image classification: <c>ml.MultiLabelClassification().ImageClassifier(...)</c> and <c>.Evaluate(...)</c>.</summary>
        public static MultiLabelClassificationCatalog MultiLabelClassification(this MLContext ml) =>
            new(ml ?? throw new ArgumentNullException(nameof(ml)));

        /// <summary>
        /// Segmentation in one place, as ML.NET's task catalogs are: <c>ml.Segmentation().UNet(...)</c> trains,
        /// <c>ml.Segmentation().Evaluate(scored)</c> measures.
        /// </summary>
        public static SegmentationCatalog Segmentation(this MLContext ml) =>
            new(ml ?? throw new ArgumentNullException(nameof(ml)));

        /// <summary>
        /// Object detection in one place: <c>ml.Detection().ObjectDetector(...)</c> trains a RetinaNet or FCOS detector,
        /// <c>ml.Detection().Evaluate(scored)</c> measures COCO-style mAP.
        /// </summary>
        public static Detection.DetectionCatalog Detection(this MLContext ml) =>
            new(ml ?? throw new ArgumentNullException(nameof(ml)));

        /// <summary>An object detector: per image, <c>PredictedLabel</c> (keys), <c>Score</c> and <c>PredictedBoundingBoxes</c> from images, label keys and boxes.</summary>
        public static Detection.ObjectDetectorEstimator ObjectDetector(this TransformsCatalog catalog, Detection.ObjectDetectorOptions options) =>
            new(ContextOf(catalog), options);

        private static ImageClassifierOptions SimpleOptions(
            string labelColumnName, string imageColumnName, string architecture, int epochs, int imageWidth, int imageHeight, int batchSize) => new()
            {
                LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, Architecture = architecture, Epochs = epochs,
                ImageWidth = imageWidth, ImageHeight = imageHeight, BatchSize = batchSize,
            };

        // ML.NET hands catalogs the MLContext's environment through an internal interface (see MlNetInternals).
        private static IHostEnvironment ContextOf(object catalog) => Interop.MlNetInternals.EnvironmentOf(catalog);
    }
}
