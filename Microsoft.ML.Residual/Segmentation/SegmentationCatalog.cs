using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>
    /// Segmentation on an <see cref="MLContext"/>, training and evaluation together: <c>ml.Segmentation().UNet(...)</c>
    /// and <c>ml.Segmentation().Evaluate(...)</c>.
    /// </summary>
    public sealed class SegmentationCatalog
    {
        internal SegmentationCatalog(MLContext context) => Context = context;

        internal MLContext Context { get; }

        /// <summary>A U-Net segmenter (the estimator <c>ml.Transforms.UNetSegmenter</c> gives): per-pixel <c>PredictedMask</c> and <c>MaskScore</c>.</summary>
        public UNetSegmenterEstimator UNet(SegmenterOptions options) => new(Context, options);

        /// <summary>A U-Net segmenter with the common settings; every other one keeps its <see cref="SegmenterOptions"/> default.</summary>
        /// <param name="numClasses">Classes of the masks, background included.</param>
        /// <param name="maskColumnName">The true masks (an image of class indices, or a vector of H×W indices or keys).</param>
        /// <param name="imageColumnName">An <c>MLImage</c> column, or pixels as a float vector C×H×W of 0–255.</param>
        /// <param name="encoder">The encoder: any registered classifier backbone, e.g. resnet34 or resnet50d.</param>
        /// <param name="epochs">Passes over the training data.</param>
        /// <param name="imageWidth">Width the network sees; masks must have it.</param>
        /// <param name="imageHeight">Height the network sees; masks must have it.</param>
        public UNetSegmenterEstimator UNet(int numClasses, string maskColumnName = "Mask", string imageColumnName = "Image", string encoder = "resnet18",
            int epochs = 10, int imageWidth = 224, int imageHeight = 224) =>
            UNet(new SegmenterOptions
            {
                NumClasses = numClasses, MaskColumnName = maskColumnName, ImageColumnName = imageColumnName, Architecture = "unet",
                ModelOptions = new UNetOptions { Encoder = encoder }, Epochs = epochs, ImageWidth = imageWidth, ImageHeight = imageHeight,
            });

        /// <summary>
        /// Compares predicted masks with true masks pixel by pixel and returns IoU, Dice and pixel accuracy per class and overall.
        /// </summary>
        /// <param name="data">Scored data, e.g. <c>model.Transform(test)</c>.</param>
        /// <param name="labelColumnName">
        /// The true mask: an image whose pixel value is the class index (resized to the prediction's size by nearest neighbour), a
        /// vector of H×W class indices (Byte, UInt16, UInt32, Int32, Int64, or whole-number Single), or a vector of H×W keys (key k is
        /// class k − 1, key 0 is ignored).
        /// </param>
        /// <param name="predictedColumnName">
        /// The predicted mask: a known-size vector of class indices (UInt32 or key; the number types above are accepted too) whose
        /// dimensions end with [H, W] (any leading dimensions must be 1). A vector with a single dimension N is read as 1×N (or as the
        /// label's H×W when the label is a vector with those dimensions), and then the label must be a vector of N values too.
        /// </param>
        /// <param name="numClasses">
        /// The number of classes; a class index of at least this in truth or prediction is an error. When null it is inferred as
        /// 1 + the largest class index in truth or prediction over the counted (not ignored) pixels; classes above every index seen
        /// are then missing from the metrics, so give it when you know it.
        /// </param>
        /// <param name="ignoreIndex">A true-mask value that marks pixels left out of the metrics (e.g. 255 for VOC's borders).</param>
        /// <exception cref="ArgumentException">A column is missing or has a type that cannot hold a mask, or the sizes do not fit.</exception>
        /// <exception cref="InvalidOperationException">
        /// The data has no rows; a row's mask cannot be read, has the wrong length or a bad value; a class index is at least
        /// <paramref name="numClasses"/>; or, with <paramref name="numClasses"/> null, every pixel is ignored. Messages name the column,
        /// the row and the pixel.
        /// </exception>
        public SegmentationMetrics Evaluate(IDataView data, string labelColumnName = "Mask", string predictedColumnName = "PredictedMask",
            int? numClasses = null, int? ignoreIndex = null)
        {
            if (data is null) throw new ArgumentNullException(nameof(data));
            if (labelColumnName is null) throw new ArgumentNullException(nameof(labelColumnName));
            if (predictedColumnName is null) throw new ArgumentNullException(nameof(predictedColumnName));
            if (numClasses is int n && n < 1)
                throw new ArgumentOutOfRangeException(nameof(numClasses), n, "The number of classes must be at least 1, or null to infer it from the data.");

            var label = Find(data.Schema, labelColumnName, "true mask", nameof(labelColumnName));
            var predicted = Find(data.Schema, predictedColumnName, "predicted mask", nameof(predictedColumnName));
            var (height, width) = PredictionSize(label, predicted);
            MaskColumn.CheckType(label, height, width);
            MaskColumn.CheckType(predicted, height, width);

            var counts = new ConfusionCounts(numClasses ?? 2, fixedSize: numClasses is not null);
            long ignored = 0, rows = 0;
            using (var cursor = data.GetRowCursor(label.Index == predicted.Index ? new[] { label } : new[] { label, predicted }))
            {
                var readTruth = MaskColumn.CreateReader(cursor, label, height, width, ignoreIndex);
                var readPrediction = MaskColumn.CreateReader(cursor, predicted, height, width);
                while (cursor.MoveNext())
                {
                    long row = cursor.Position;
                    rows++;
                    int[] truth = readTruth(row), prediction = readPrediction(row);
                    for (int i = 0; i < truth.Length; i++)
                    {
                        int t = truth[i], p = prediction[i];
                        if (p < 0)
                            throw new InvalidOperationException(
                                $"Predicted mask column '{predicted.Name}', row {row}, pixel (x {i % width}, y {i / width}): the key is 0 (missing); " +
                                "a prediction must give every pixel a class.");
                        CheckClass(numClasses, predicted.Name, "predicted", row, i, width, p);
                        if (t < 0)
                        {
                            ignored++;
                            continue;
                        }

                        CheckClass(numClasses, label.Name, "true", row, i, width, t);
                        counts.Add(t, p);
                    }
                }
            }

            if (rows == 0)
                throw new InvalidOperationException($"The data view has no rows; there is nothing to evaluate in columns '{label.Name}' and '{predicted.Name}'.");
            if (numClasses is null && counts.Classes == 0)
                throw new InvalidOperationException(
                    $"Every pixel of mask column '{label.Name}' is ignored, so the number of classes cannot be inferred and no metric can be computed. " +
                    "Check the ignore index, or give numClasses.");
            return SegmentationMetrics.FromConfusionMatrix(counts.ToMatrix(numClasses), ignored);
        }

        private static void CheckClass(int? numClasses, string column, string role, long row, int pixel, int width, int value)
        {
            if (numClasses is int n && value >= n)
                throw new InvalidOperationException(
                    $"Mask column '{column}', row {row}, pixel (x {pixel % width}, y {pixel / width}): the {role} class {value} is not below numClasses {n}. " +
                    "Raise numClasses, mark the value with the ignore index, or fix the mask.");
        }

        private static DataViewSchema.Column Find(DataViewSchema schema, string name, string role, string parameter)
        {
            if (schema.GetColumnOrNull(name) is { IsHidden: false } column) return column;
            var names = schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'");
            throw new ArgumentException(
                $"The data view has no {role} column '{name}'. Its columns are: {string.Join(", ", names)}. Pass the name of the {role} column.",
                parameter);
        }

        /// <summary>The mask size H×W, from the predicted column's dimensions.</summary>
        private static (int Height, int Width) PredictionSize(DataViewSchema.Column label, DataViewSchema.Column predicted)
        {
            if (predicted.Type is not VectorDataViewType { IsKnownSize: true } vector)
                throw new ArgumentException(
                    $"Predicted mask column '{predicted.Name}' has type {predicted.Type}; it must be a known-size vector of class indices " +
                    "(UInt32 or key) with dimensions [H, W], as the segmenter writes.");
            var dims = vector.Dimensions;
            if (dims.Length >= 2)
            {
                int height = dims[dims.Length - 2], width = dims[dims.Length - 1];
                if ((long)height * width != vector.Size)
                    throw new ArgumentException(
                        $"Predicted mask column '{predicted.Name}' has dimensions [{string.Join(", ", dims.ToArray())}]; a mask holds one class per pixel, " +
                        "so every dimension before [H, W] must be 1. Take the class (argmax) over any class dimension first.");
                return (height, width);
            }

            switch (label.Type)
            {
                case ImageDataViewType:
                    throw new ArgumentException(
                        $"Predicted mask column '{predicted.Name}' is a vector of {vector.Size} values without [H, W] dimensions, so the true mask " +
                        $"images of column '{label.Name}' cannot be resized to it. Give the predicted vector type the dimensions [H, W].");
                case VectorDataViewType labelVector when labelVector.Dimensions.Length >= 2 && labelVector.Size == vector.Size:
                    var labelDims = labelVector.Dimensions;
                    return (labelDims[labelDims.Length - 2], labelDims[labelDims.Length - 1]);
                default:
                    return (1, vector.Size);
            }
        }

        /// <summary>A confusion matrix that grows with the largest class seen, unless its size is fixed.</summary>
        private sealed class ConfusionCounts
        {
            private readonly bool fixedSize;
            private long[,] matrix;

            public ConfusionCounts(int capacity, bool fixedSize)
            {
                this.fixedSize = fixedSize;
                matrix = new long[capacity, capacity];
            }

            /// <summary>1 + the largest class added (truth or prediction); 0 before the first.</summary>
            public int Classes { get; private set; }

            public void Add(int truth, int predicted)
            {
                int needed = Math.Max(truth, predicted) + 1;
                if (needed > Classes)
                {
                    if (!fixedSize && needed > matrix.GetLength(0)) matrix = Resize(matrix, Math.Max(needed, 2 * matrix.GetLength(0)));
                    Classes = needed;
                }

                matrix[truth, predicted]++;
            }

            public long[,] ToMatrix(int? numClasses) => Resize(matrix, numClasses ?? Classes);

            private static long[,] Resize(long[,] source, int size)
            {
                var result = new long[size, size];
                int copy = Math.Min(size, source.GetLength(0));
                for (int t = 0; t < copy; t++)
                    for (int p = 0; p < copy; p++)
                        result[t, p] = source[t, p];
                return result;
            }
        }
    }
}
