using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Sweeps;
using Microsoft.ML.Residual.Training;

namespace ResidualML.Cli
{
    /// <summary>
    /// The files a command leaves in its output folder. Every file is written to a temporary name in the same folder and then
    /// moved over the final name, so an interrupted run never leaves half a file where a good one was.
    /// </summary>
    internal sealed class OutputFiles
    {
        private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

        public OutputFiles(string folder)
        {
            Folder = folder;
            try
            {
                Directory.CreateDirectory(folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Cannot create the output folder '{folder}': {e.Message} Give another one with --output.", e);
            }
        }

        public string Folder { get; }

        /// <summary>The files written so far, for the summary at the end.</summary>
        public List<string> Written { get; } = new();

        public string PathOf(string name) => Path.Combine(Folder, name);

        public string Json(string name, JsonNode content) =>
            Save(name, temporary => File.WriteAllText(temporary, content.ToJsonString(Indented) + Environment.NewLine));

        public string Text(string name, string content) => Save(name, temporary => File.WriteAllText(temporary, content));

        public string Model(string name, MLContext ml, ITransformer model, DataViewSchema inputSchema) =>
            Save(name, temporary => ml.Model.Save(model, inputSchema, temporary));

        public string Chart(string name, LineChart chart) => Save(name, temporary => chart.Save(temporary), ".png");

        public string Chart(string name, ConfusionMatrixChart chart) => Save(name, temporary => chart.Save(temporary), ".png");

        /// <summary>The training curves of <paramref name="history"/>: loss.png, and accuracy.png or iou.png when there is one.</summary>
        public void TrainingCurves(IReadOnlyList<EpochReport> history)
        {
            if (history.Count == 0) return;
            double[] epochs = history.Select(r => (double)r.Epoch).ToArray();
            var loss = new LineChart { Title = "Loss", XLabel = "epoch", YLabel = "loss" }
                .Add("training", epochs, history.Select(r => r.TrainingLoss).ToArray());
            if (history.Any(r => r.ValidationLoss is not null))
                loss.Add("validation", epochs, history.Select(r => r.ValidationLoss ?? double.NaN).ToArray());
            Chart("loss.png", loss);
            if (history.Any(r => r.ValidationMeanIoU is not null))
            {
                Chart("iou.png", new LineChart { Title = "Validation mean IoU", XLabel = "epoch", YLabel = "mean IoU" }
                    .Add("validation", epochs, history.Select(r => r.ValidationMeanIoU ?? double.NaN).ToArray()));
                return;
            }

            var accuracy = new LineChart { Title = "Accuracy", XLabel = "epoch", YLabel = "accuracy" }
                .Add("training", epochs, history.Select(r => r.TrainingAccuracy).ToArray());
            if (history.Any(r => r.ValidationAccuracy is not null))
                accuracy.Add("validation", epochs, history.Select(r => r.ValidationAccuracy ?? double.NaN).ToArray());
            Chart("accuracy.png", accuracy);
        }

        /// <summary>sweep.png: each trial's validation metric (after its latest run), one colour per architecture.</summary>
        public void SweepChart(SweepResult result)
        {
            var scored = result.Trials.Where(t => t.Metric is not null).OrderBy(t => t.Id).ToList();
            if (scored.Count == 0) return;
            var trials = new LineChart
            {
                Title = $"Validation {result.OptimizingMetric} of each trial", XLabel = "trial", YLabel = result.OptimizingMetric, ConnectPoints = false,
            };
            foreach (var group in scored.GroupBy(t => Convert.ToString(t.Parameters.GetValueOrDefault("Architecture"), CultureInfo.InvariantCulture) ?? "trial"))
                trials.Add(group.Key, group.Select(t => (double)t.Id).ToArray(), group.Select(t => t.Metric!.Value).ToArray());
            Chart("sweep.png", trials);
        }

        public static JsonArray EpochsJson(IReadOnlyList<EpochReport> history) => new(history.Select(r => (JsonNode)new JsonObject
        {
            ["epoch"] = r.Epoch,
            ["trainingLoss"] = Finite(r.TrainingLoss),
            ["trainingAccuracy"] = Finite(r.TrainingAccuracy),
            ["validationLoss"] = Finite(r.ValidationLoss),
            ["validationAccuracy"] = Finite(r.ValidationAccuracy),
            ["validationMeanIoU"] = Finite(r.ValidationMeanIoU),
            ["learningRate"] = Finite(r.LearningRate),
            ["imagesPerSecond"] = Math.Round(r.ImagesPerSecond, 1),
            ["seconds"] = Math.Round(r.Elapsed.TotalSeconds, 2),
            ["gpuMemoryMegabytes"] = r.GpuMemoryMegabytes is double memory ? Math.Round(memory, 1) : null,
        }).ToArray());

        /// <summary>ML.NET's multiclass metrics, per class too, with the confusion matrix (rows: true class).</summary>
        public static JsonObject ClassificationJson(MulticlassClassificationMetrics metrics, IReadOnlyList<string> classes)
        {
            var counts = metrics.ConfusionMatrix.Counts;
            var perClass = new JsonObject();
            for (int c = 0; c < classes.Count; c++)
            {
                double truth = counts[c].Sum(), predicted = counts.Sum(row => row[c]), hit = counts[c][c];
                perClass[classes[c]] = new JsonObject
                {
                    ["images"] = truth,
                    ["recall"] = truth == 0 ? null : hit / truth,
                    ["precision"] = predicted == 0 ? null : hit / predicted,
                    ["logLoss"] = c < metrics.PerClassLogLoss.Count ? Finite(metrics.PerClassLogLoss[c]) : null,
                };
            }

            return new JsonObject
            {
                ["macroAccuracy"] = metrics.MacroAccuracy,
                ["microAccuracy"] = metrics.MicroAccuracy,
                ["logLoss"] = Finite(metrics.LogLoss),
                ["logLossReduction"] = Finite(metrics.LogLossReduction),
                ["topKAccuracy"] = metrics.TopKPredictionCount > 0 ? metrics.TopKAccuracy : null,
                ["perClass"] = perClass,
                ["confusionMatrix"] = new JsonObject
                {
                    ["classes"] = new JsonArray(classes.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                    ["counts"] = new JsonArray(counts.Select(row => (JsonNode)new JsonArray(row.Select(v => (JsonNode)JsonValue.Create((long)v)).ToArray())).ToArray()),
                },
            };
        }

        public void ConfusionMatrix(string name, MulticlassClassificationMetrics metrics, IReadOnlyList<string> classes) =>
            Chart(name, new ConfusionMatrixChart(classes, metrics.ConfusionMatrix.Counts));

        // JSON has no NaN or infinity; such a metric (e.g. log-loss with no images of a class) is written as null.
        public static double? Finite(double value) => double.IsFinite(value) ? value : null;

        /// <summary>The value, or null when it is missing, infinite or NaN (JSON has no such numbers).</summary>
        public static double? Finite(double? value) => value is double v && double.IsFinite(v) ? v : null;

        /// <summary>Writes <paramref name="name"/> through <paramref name="write"/>, which is given the temporary path to write.</summary>
        public string Save(string name, Action<string> write, string temporaryExtension = ".tmp")
        {
            string path = PathOf(name);
            string temporary = Path.Combine(Folder, $".{name}.{Environment.ProcessId}{temporaryExtension}");
            try
            {
                write(temporary);
                File.Move(temporary, path, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Cannot write '{path}': {e.Message}", e);
            }
            finally
            {
                if (File.Exists(temporary)) File.Delete(temporary);
            }

            Written.Add(path);
            return path;
        }
    }
}
