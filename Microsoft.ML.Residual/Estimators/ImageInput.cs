using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.IO;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// The part every image estimator shares: the input column (an MLImage column or a float pixel vector),
    /// the ML.NET transforms that turn images into pixel vectors for both training and scoring, and the output
    /// schema declared through equivalent ML.NET estimators (SchemaShape columns cannot be built outside ML.NET).
    /// </summary>
    internal static class ImageInput
    {
        /// <summary>Prefix of the temporary columns our chains add and drop.</summary>
        public const string Prefix = "__ResidualML.";

        /// <summary>The column the chains feed to ONNX Runtime when the input is an MLImage column.</summary>
        public const string PixelColumn = Prefix + "Pixels";

        /// <summary>
        /// The MLContext the estimators build ML.NET's public transforms with: always a fresh one (a saved model does not
        /// depend on it). The caller's environment keeps the log and the device settings, which the estimators pass to
        /// <c>ApplyOnnxModel</c> explicitly. The user's own MLContext would not do: ML.NET falls back to its GpuDeviceId
        /// when the GPU argument is null, and then fails on ONNX Runtime's CPU package even with FallbackToCpu. Its temporary
        /// folder, where <c>ApplyOnnxModel</c> keeps model files, is this process's <see cref="ScoringModelFiles.Folder"/>.
        /// </summary>
        public static MLContext TransformContext(int? seed) => new(seed) { TempFilePath = ScoringModelFiles.Folder };

        /// <summary>The image column, or an error naming it and listing the columns there are.</summary>
        public static DataViewSchema.Column RequireColumn(DataViewSchema schema, string name) =>
            schema.GetColumnOrNull(name)
            ?? throw new ArgumentException($"The input has no image column '{name}'. Columns: {string.Join(", ", schema.Select(c => c.Name))}.", "input");

        /// <summary>
        /// For an MLImage column: ResizeImages → ExtractPixels (CHW, 0–255) into <see cref="PixelColumn"/>, fitted on
        /// <paramref name="input"/>; for a pixel vector: nothing, and the column itself. <paramref name="resizing"/>: how the image
        /// becomes width×height (ML.NET's default, a centred crop of the scaled image, or a detector's Fill, which keeps every box).
        /// </summary>
        public static (ITransformer? Transform, string Column) PixelPipeline(
            MLContext ml, IDataView input, string imageColumn, int width, int height, ImageResizingEstimator.ResizingKind resizing = ImageResizingEstimator.ResizingKind.IsoCrop)
        {
            if (RequireColumn(input.Schema, imageColumn).Type is not ImageDataViewType) return (null, imageColumn);
            string resized = Prefix + "Resized";
            var estimator = ml.Transforms.ResizeImages(resized, width, height, imageColumn, resizing)
                .Append(ml.Transforms.ExtractPixels(PixelColumn, resized))
                .Append(ml.Transforms.DropColumns(resized));
            return (estimator.Fit(input), PixelColumn);
        }

        /// <summary>
        /// What training reads, for an MLImage column: ResizeImages alone, fitted on <paramref name="input"/>, into a
        /// resized image column, which the batch readers turn into pixels themselves (the same values ExtractPixels gives,
        /// at a thirtieth of its cost, on their worker threads); for a pixel vector: nothing, and the column itself.
        /// </summary>
        public static (ITransformer? Transform, string Column) TrainingImages(
            MLContext ml, IDataView input, string imageColumn, int width, int height, ImageResizingEstimator.ResizingKind resizing = ImageResizingEstimator.ResizingKind.IsoCrop)
        {
            if (RequireColumn(input.Schema, imageColumn).Type is not ImageDataViewType) return (null, imageColumn);
            string resized = Prefix + "Resized";
            return (ml.Transforms.ResizeImages(resized, width, height, imageColumn, resizing).Fit(input), resized);
        }

        /// <summary>
        /// The training and validation data through <paramref name="transform"/>: <paramref name="input"/> and
        /// <paramref name="validationSet"/>, or else a seeded held-out <paramref name="fraction"/> of <paramref name="input"/>
        /// (which then shrinks to the rest); null for no validation.
        /// </summary>
        /// <remarks>
        /// The split comes before the transform: ML.NET's split draws a random number per row in order, which one thread
        /// must do, so a transform below it would run on one thread; above it, the readers' threads each run the transform.
        /// </remarks>
        public static (IDataView Training, IDataView? Validation) SplitValidation(
            MLContext ml, IDataView input, ITransformer? transform, IDataView? validationSet, double fraction, int seed)
        {
            IDataView Through(IDataView data) => transform?.Transform(data) ?? data;
            if (validationSet != null) return (Through(input), Through(validationSet));
            if (fraction <= 0) return (Through(input), null);
            var split = ml.Data.TrainTestSplit(input, fraction, seed: seed);
            return (Through(split.TrainSet), Through(split.TestSet));
        }

        /// <summary>
        /// Runs <paramref name="train"/>; when it fails on an MLImage column (ML.NET's parallel cursors report a failed image
        /// load without its row), rescans the images and names the row that cannot be read.
        /// </summary>
        public static void NamingUnreadableImages(Action train, bool imageColumn, IDataView input, string column, IDataView? validation)
        {
            try
            {
                train();
            }
            catch (InvalidOperationException e) when (imageColumn && e is not TrainingDivergedException
                && FindUnreadableImage(input, column, validation) is { } unreadable)
            {
                throw new InvalidOperationException(unreadable, e);
            }
        }

        /// <summary>
        /// Reads every image of the MLImage column <paramref name="imageColumn"/> one row at a time and describes the
        /// first that cannot be loaded or is missing (naming the data, column and row), or returns null when all load.
        /// </summary>
        public static string? FindUnreadableImage(IDataView input, string imageColumn, IDataView? validation)
        {
            foreach (var (data, name) in new[] { (input, "training data"), (validation, "ValidationSet") })
            {
                if (data?.Schema.GetColumnOrNull(imageColumn) is not { Type: ImageDataViewType } column) continue;
                // The row's text columns (e.g. the ImagePath that LoadImages read) say which file it is.
                DataViewSchema.Column[] texts = data.Schema.Where(c => !c.IsHidden && c.Type is TextDataViewType).Take(3).ToArray();
                using DataViewRowCursor cursor = data.GetRowCursor(texts.Append(column));
                ValueGetter<MLImage> getter = cursor.GetGetter<MLImage>(column);
                MLImage image = null!;
                while (cursor.MoveNext())
                {
                    try
                    {
                        getter(ref image);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        Exception inner = e;
                        while (inner.InnerException != null) inner = inner.InnerException;
                        return $"Image column '{imageColumn}' of the {name}, row {cursor.Position}{Describe(cursor, texts)}: the image could not be read ({inner.Message}). "
                            + "Check that the file exists and is a readable image, or filter the row out.";
                    }

                    // LoadImages gives no image for an empty path.
                    if (image is null || image.Width <= 0 || image.Height <= 0)
                        return $"Image column '{imageColumn}' of the {name}, row {cursor.Position}{Describe(cursor, texts)}: there is no image (an empty path, or an empty image). "
                            + "Give the row an image path, or filter the row out.";
                }
            }

            return null;
        }

        private static string Describe(DataViewRow row, DataViewSchema.Column[] texts)
        {
            var values = new List<string>();
            foreach (DataViewSchema.Column text in texts)
            {
                ReadOnlyMemory<char> value = default;
                row.GetGetter<ReadOnlyMemory<char>>(text)(ref value);
                values.Add($"{text.Name} = {value}");
            }

            return values.Count == 0 ? string.Empty : $" ({string.Join(", ", values)})";
        }

        /// <summary>
        /// The input schema plus <paramref name="vectorOutput"/> (a float vector) and each (output, source) copy,
        /// as an equivalent chain of ML.NET estimators declares them.
        /// </summary>
        public static SchemaShape DeclareOutputs(
            MLContext ml, SchemaShape input, string imageColumn, string vectorOutput, params (string Output, string Source)[] copies)
        {
            SchemaShape.Column image = input.FirstOrDefault(c => c.Name == imageColumn);
            if (image.Name is null)
                throw new ArgumentException($"The input has no image column '{imageColumn}'. Columns: {string.Join(", ", input.Select(c => c.Name))}.", nameof(input));
            IEstimator<ITransformer> shape = new EstimatorChain<ITransformer>();
            string source = imageColumn;
            if (image.ItemType is ImageDataViewType)
            {
                shape = shape.Append(ml.Transforms.ExtractPixels(PixelColumn, imageColumn));
                source = PixelColumn;
            }

            shape = shape.Append(ml.Transforms.Concatenate(vectorOutput, source));
            foreach (var (output, copied) in copies) shape = shape.Append(ml.Transforms.CopyColumns(output, copied));
            if (source != imageColumn) shape = shape.Append(ml.Transforms.DropColumns(source));
            return shape.GetOutputSchema(input);
        }
    }
}
