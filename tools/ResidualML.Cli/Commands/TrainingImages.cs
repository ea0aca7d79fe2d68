using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Datasets;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// The labelled images a classifier trains on (train, sweep): --dataset, held out class by class for validation or
    /// validated on --validation-dataset, checked for two or more classes; and their ML.NET views.
    /// </summary>
    internal sealed class TrainingImages
    {
        public static readonly OptionSpec[] Options =
        {
            new("dataset", "PATH", "a folder with one sub-folder of images per class, or a .csv file of path,label lines (required)"),
            new("validation-dataset", "PATH", "validate on these images instead of holding out part of --dataset"),
            new("validation-fraction", "F", "share of each class held out for validation (default 0.2)"),
        };

        private TrainingImages(string dataset, IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> validation, string[] classes)
        {
            Dataset = dataset;
            Train = train;
            Validation = validation;
            Classes = classes;
        }

        public string Dataset { get; }

        public IReadOnlyList<LabeledImage> Train { get; }

        public IReadOnlyList<LabeledImage> Validation { get; }

        /// <summary>The class names, sorted: the order of the model's keys and scores.</summary>
        public string[] Classes { get; }

        public static TrainingImages Read(CommandLine line, int seed)
        {
            string dataset = line.RequiredPath("dataset", "a folder with one sub-folder of images per class, or a CSV of path,label");
            double fraction = line.Number("validation-fraction", 0.01, 0.9) ?? 0.2;
            string? validationPath = line.PathOf("validation-dataset");
            IReadOnlyList<LabeledImage> all = ImageSources.Labeled(dataset, "dataset");
            var (train, validation) = validationPath != null
                ? (all, ImageSources.Labeled(validationPath, "validation-dataset"))
                : ImageFolder.StratifiedSplit(all, fraction, seed);
            string[] classes = train.Select(i => i.Label).Distinct(StringComparer.Ordinal).OrderBy(c => c, StringComparer.Ordinal).ToArray();
            if (classes.Length < 2)
                throw new InvalidDataException($"--dataset {dataset}: found only the class '{classes.FirstOrDefault()}'; a classifier needs images of at least two classes.");
            if (validation.Count == 0)
                throw new InvalidDataException($"--dataset {dataset}: too few images to hold any out for validation; add images, or give --validation-dataset.");
            ClassificationModel.CheckKnownClasses(validation, classes, $"--validation-dataset {validationPath}");
            return new TrainingImages(dataset, train, validation, classes);
        }

        /// <summary>
        /// Evaluates a trained model (image loading + classifier) on the validation images, then writes model.zip, the training
        /// curves of <paramref name="history"/> and the confusion matrix; returns the validation metrics.
        /// </summary>
        public MulticlassClassificationMetrics SaveTrained(MLContext ml, OutputFiles output, ITransformer model, DataViewSchema inputSchema, IReadOnlyList<EpochReport> history)
        {
            MulticlassClassificationMetrics metrics = ClassificationModel.Evaluate(ml, model, Validation, Classes, "validation images");
            output.Model("model.zip", ml, model, inputSchema);
            output.TrainingCurves(history);
            output.ConfusionMatrix("confusion-matrix.png", metrics, Classes);
            return metrics;
        }

        /// <summary>
        /// The views a classifier trains on: rows of ImagePath and Label, the image loader (the front of the saved model) and
        /// the label's keys (in class order), and the training and validation data with images loaded and labels as keys.
        /// </summary>
        public (IDataView TrainRows, ITransformer ImageLoader, IDataView Train, IDataView Validation) Views(MLContext ml)
        {
            IDataView trainRows = ClassificationModel.Rows(ml, Train.OrderBy(i => i.Label, StringComparer.Ordinal));
            ITransformer images = ClassificationModel.LoadImages(ml).Fit(trainRows);
            ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey(ClassificationModel.LabelColumn).Fit(trainRows);
            return (trainRows, images, labelKeys.Transform(images.Transform(trainRows)),
                labelKeys.Transform(images.Transform(ClassificationModel.Rows(ml, Validation))));
        }
    }
}
