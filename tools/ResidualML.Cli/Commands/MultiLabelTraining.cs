using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Datasets;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// 'train --multi-label': images with any number of labels, from a CSV of <c>path,label1;label2</c> lines (an empty label field:
    /// no label), a random share held out for validation and the per-label thresholds tuned on it; writes model.zip and metrics.json.
    /// </summary>
    internal static class MultiLabelTraining
    {
        public const string LabelsColumn = "Labels";

        public static int Run(CommandLine line, CliContext context, int seed, ImageClassifierOptions shared)
        {
            string dataset = line.RequiredPath("dataset", "a .csv file of path,label1;label2 lines");
            foreach (string singleLabelOnly in new[] { "class-balance", "loss", "freeze-epochs", "validation-dataset" })
                if (line.Has(singleLabelOnly)) throw new UsageException($"--{singleLabelOnly} applies to single-label training, not to --multi-label.");
            if (!File.Exists(dataset) || !dataset.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--dataset {dataset}: --multi-label reads a .csv file of path,label1;label2 lines (labels separated by ';').");
            double fraction = line.Number("validation-fraction", 0.01, 0.9) ?? 0.2;
            // Labels trimmed and empty ones dropped ("cat; dog" and "cat;dog" are the same two labels).
            IReadOnlyList<LabeledImage> all = ImageSources.Labeled(dataset, "dataset", allowEmptyLabels: true)
                .Select(i => new LabeledImage { ImagePath = i.ImagePath, Label = string.Join(";", i.Label.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) })
                .ToList();
            int[] order = Enumerable.Range(0, all.Count).ToArray();
            new Random(seed).Shuffle(order);
            int held = Math.Clamp((int)Math.Round(all.Count * fraction), 1, Math.Max(1, all.Count - 1));
            if (all.Count < 2) throw new InvalidDataException($"--dataset {dataset}: lists {all.Count} image; training and validation need at least two.");
            var validation = order.Take(held).OrderBy(i => i).Select(i => all[i]).ToList();
            var train = order.Skip(held).OrderBy(i => i).Select(i => all[i]).ToList();

            MLContext ml = CommonOptions.Context(line, seed);
            IDataView trainRows = ClassificationModel.Rows(ml, train), validationRows = ClassificationModel.Rows(ml, validation);
            ITransformer images = ClassificationModel.LoadImages(ml).Fit(trainRows);
            ITransformer labels = ml.Transforms.Text.TokenizeIntoWords(LabelsColumn, ClassificationModel.LabelColumn, separators: new[] { ';' })
                .Append(ml.Transforms.Conversion.MapValueToKey(LabelsColumn)).Fit(trainRows);
            var output = new OutputFiles(line.OutputFolder());
            var display = new TrainingDisplay(context.Console);
            var options = new MultiLabelClassifierOptions
            {
                Architecture = shared.Architecture, ImageWidth = shared.ImageWidth, ImageHeight = shared.ImageHeight, BatchSize = shared.BatchSize,
                PretrainedWeightsPath = shared.PretrainedWeightsPath, Seed = seed, Precision = shared.Precision, Epochs = shared.Epochs,
                LearningRate = shared.LearningRate, CheckpointDirectory = shared.CheckpointDirectory, CancellationToken = context.Cancellation,
                GradientAccumulationSteps = shared.GradientAccumulationSteps, ModelEmaDecay = shared.ModelEmaDecay,
                LabelColumnName = LabelsColumn, TuneThresholds = true,
                ValidationSet = labels.Transform(images.Transform(validationRows)), Progress = display.Epochs, BatchProgress = display.Batches,
            };
            context.Console.MarkupLine(Markup.Escape($"Training {options.Architecture} at {options.ImageWidth}x{options.ImageHeight} on {train.Count} images with several labels each, validating on {validation.Count}"));
            ITransformer classifier = display.Show($"{options.Architecture}, {options.Epochs} epochs",
                () => ml.MultiLabelClassification().ImageClassifier(options).Fit(labels.Transform(images.Transform(trainRows))));

            // The saved model scores image paths: image loading, then the classifier.
            ITransformer model = images.Append(classifier);
            MultiLabelMetrics metrics = ml.MultiLabelClassification().Evaluate(model.Transform(labels.Transform(validationRows)), LabelsColumn);
            output.Model("model.zip", ml, model, trainRows.Schema);
            output.TrainingCurves(display.History);
            output.Json("metrics.json", new JsonObject
            {
                ["task"] = "multi-label-image-classification",
                ["architecture"] = options.Architecture,
                ["imageSize"] = options.ImageWidth,
                ["precision"] = options.Precision.ToString(),
                ["gradientAccumulationSteps"] = options.GradientAccumulationSteps,
                ["modelEmaDecay"] = options.ModelEmaDecay,
                ["dataset"] = dataset,
                ["trainingImages"] = train.Count,
                ["validationImages"] = validation.Count,
                // The thresholds were tuned on these images, so the thresholded figures below are optimistic; the mAP does not use them.
                ["thresholdsTunedOnValidationImages"] = true,
                ["validation"] = new JsonObject
                {
                    ["meanAveragePrecision"] = Finite(metrics.MeanAveragePrecision),
                    ["microF1"] = Finite(metrics.MicroF1),
                    ["macroF1"] = Finite(metrics.MacroF1),
                    ["subsetAccuracy"] = metrics.SubsetAccuracy,
                    ["hammingLoss"] = metrics.HammingLoss,
                    ["labels"] = new JsonArray(metrics.PerLabel.Select(l => (JsonNode)new JsonObject
                    {
                        ["label"] = l.Name, ["support"] = l.Support, ["precision"] = l.Precision, ["recall"] = Finite(l.Recall),
                        ["f1"] = Finite(l.F1), ["averagePrecision"] = Finite(l.AveragePrecision),
                    }).ToArray()),
                },
                ["epochs"] = OutputFiles.EpochsJson(display.History),
            });
            context.Console.MarkupLine(Markup.Escape(
                $"Validation: mean average precision {metrics.MeanAveragePrecision:P1}, micro F1 {metrics.MicroF1:P1}, exact label sets {metrics.SubsetAccuracy:P1} "
                + $"(F1 and exact sets with thresholds tuned on these images, so optimistic). Wrote {output.Folder}"));
            return 0;
        }

        // JSON has no NaN: a figure undefined for the data (e.g. a label no validation image has) is null.
        private static JsonNode? Finite(double value) => double.IsFinite(value) ? JsonValue.Create(value) : null;
    }
}
