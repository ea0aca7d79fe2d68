using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.IO;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// What the classification commands share: images as rows of ImagePath (and Label), the model file (image loading plus the
    /// classifier, so it scores from paths alone), its class names, and ML.NET's evaluation of it.
    /// </summary>
    internal static class ClassificationModel
    {
        public const string PathColumn = "ImagePath";
        public const string ImageColumn = "Image";
        public const string LabelColumn = "Label";

        /// <summary>One row of input: the image file, and its class when known.</summary>
        public sealed class Row
        {
            public string ImagePath { get; set; } = string.Empty;

            public string Label { get; set; } = string.Empty;
        }

        public static IDataView Rows(MLContext ml, IEnumerable<LabeledImage> images) =>
            ml.Data.LoadFromEnumerable(images.Select(i => new Row { ImagePath = i.ImagePath, Label = i.Label }).ToList());

        public static IDataView Rows(MLContext ml, IEnumerable<string> paths) =>
            ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }).ToList());

        public static IEstimator<ITransformer> LoadImages(MLContext ml) => ml.Transforms.LoadImages(ImageColumn, imageFolder: null, PathColumn);

        /// <summary>Loads a model.zip; <paramref name="expected"/> says which one to give when the file is missing or unreadable.</summary>
        public static ITransformer Load(MLContext ml, string path, string expected = "the model.zip that 'residualml train' wrote")
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"--model {path}: no such file. Give {expected}.");
            try
            {
                return ml.Model.LoadChecked(path, out _);
            }
            catch (InvalidModelException e)
            {
                throw new InvalidDataException($"--model {path}: {e.Message} Give {expected}.", e);
            }
        }

        /// <summary>The class names of a classifier, in the order of its Score vector.</summary>
        public static string[] Classes(ITransformer model, DataViewSchema input, string modelPath)
        {
            DataViewSchema output;
            try
            {
                output = model.GetOutputSchema(input);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                throw new InvalidDataException($"--model {modelPath}: the model does not score image paths ({e.Message}). Give a model.zip that 'residualml train' or 'sweep' wrote.", e);
            }

            if (output.GetColumnOrNull("PredictedLabel") is not { } predicted || !predicted.HasKeyValues())
                throw new InvalidDataException($"--model {modelPath}: the model has no PredictedLabel column with class names; it is not an image classifier (for segmentation use 'residualml segment').");
            VBuffer<ReadOnlyMemory<char>> names = default;
            predicted.GetKeyValues(ref names);
            return names.DenseValues().Select(n => n.ToString()).ToArray();
        }

        /// <summary>Fails, naming them, when images are labelled with classes the model does not have.</summary>
        public static void CheckKnownClasses(IReadOnlyList<LabeledImage> images, string[] classes, string source)
        {
            var known = new HashSet<string>(classes, StringComparer.Ordinal);
            var unknown = images.Where(i => !known.Contains(i.Label)).GroupBy(i => i.Label, StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
                throw new InvalidDataException(
                    $"{source}: the model was not trained on the class(es) {string.Join(", ", unknown.Select(g => $"'{g.Key}' ({g.Count()} images, e.g. {g.First().ImagePath})"))}; "
                    + $"it knows {string.Join(", ", classes.Select(c => $"'{c}'"))}. Remove those images or train a model that has them.");
        }

        /// <summary>ML.NET's multiclass evaluation of <paramref name="model"/> on <paramref name="images"/>, whose labels must be classes of the model.</summary>
        public static MulticlassClassificationMetrics Evaluate(MLContext ml, ITransformer model, IReadOnlyList<LabeledImage> images, string[] classes, string source)
        {
            CheckKnownClasses(images, classes, source);
            IDataView classList = ml.Data.LoadFromEnumerable(classes.Select(c => new Row { Label = c }).ToList());
            // The evaluator needs the labels as keys in the order of the model's classes.
            IDataView keyData = ml.Transforms.SelectColumns(LabelColumn).Fit(classList).Transform(classList);
            ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey(LabelColumn, keyData: keyData).Fit(classList);
            IDataView scored = labelKeys.Transform(model.Transform(Rows(ml, images)));
            return ml.MulticlassClassification.Evaluate(scored, LabelColumn, "Score", "PredictedLabel");
        }
    }
}
