using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Sweeps;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml sweep: an AutoML-style search over architectures and hyperparameters for an image classifier; writes the best
    /// model (model.zip), trials.csv, metrics.json, sweep.png and the best trial's curves and confusion matrix.
    /// </summary>
    internal sealed class SweepCommand : ICommand
    {
        private const int Shown = 10;

        private static readonly IReadOnlyDictionary<string, SweepTuner> Tuners = new Dictionary<string, SweepTuner>
        {
            ["successive-halving"] = SweepTuner.SuccessiveHalving,
            ["random"] = SweepTuner.Random,
            ["grid"] = SweepTuner.Grid,
            ["tree-parzen"] = SweepTuner.TreeParzen,
        };

        public string Name => "sweep";

        public string Summary => "Search architectures and hyperparameters for the best classifier within a time budget; writes the best model.zip, trials.csv and plots.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml sweep --dataset ./flowers --minutes 30",
            "residualml sweep --dataset ./flowers --architectures resnet18,resnet34,densenet121 --tuner tree-parzen --trials 12",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = TrainingImages.Options.Concat(new OptionSpec[]
        {
            new("minutes", "M", "time budget (default 10; the trial running at the end is stopped)"),
            new("trials", "N", "stop after this many trials (default: only the time budget)"),
            new("epochs", "N", "most epochs per trial (default 10)"),
            new("architectures", "A,B,...", "architectures to try (default resnet18,resnet34,preact_resnet18)"),
            new("tuner", "NAME", "successive-halving (default), random, grid or tree-parzen"),
            new("metric", "NAME", "what to maximise: MacroAccuracy (default), MicroAccuracy, LogLossReduction; or LogLoss, minimised"),
            ClassifierCommandOptions.ImageSize,
            CommonOptions.Seed, CommonOptions.Gpu, CommonOptions.Output,
        }).ToArray();

        public int Run(CommandLine line, CliContext context)
        {
            double minutes = line.Number("minutes", 0.01, 100_000) ?? 10;
            int? maxTrials = line.Has("trials") ? line.Integer("trials", 1, 1, 100_000) : null;
            int epochs = line.Integer("epochs", 10, 1, 100_000);
            string[] architectures = line.List("architectures", new[] { "resnet18", "resnet34", "preact_resnet18" });
            SweepTuner tuner = line.Choice("tuner", SweepTuner.SuccessiveHalving, Tuners);
            string metricName = line.Text("metric") ?? "MacroAccuracy";
            int size = ClassifierCommandOptions.ImageSizeOf(line);
            int seed = CommonOptions.SeedOf(line);
            MLContext ml = CommonOptions.Context(line, seed);
            var display = new TrainingDisplay(context.Console);
            var baseOptions = new ImageClassifierOptions { ImageWidth = size, ImageHeight = size, Seed = seed, BatchProgress = display.Batches };
            ImageSweepExperiment experiment = ml.ResidualSweep().ImageClassification(baseOptions);
            // The library's default space (rate, decay and smoothing around the default recipe) and the architectures.
            experiment.SetSearchSpace(experiment.DefaultSearchSpace().Choice("Architecture", architectures))
                .SetTuner(tuner)
                .SetMaxEpochsPerTrial(epochs)
                .SetTrainingTimeInSeconds((uint)Math.Max(1, Math.Round(minutes * 60)))
                .SetSeed(seed);
            try
            {
                experiment.SetOptimizingMetric(metricName);
            }
            catch (ArgumentException e)
            {
                throw new UsageException($"--metric {metricName}: {e.Message.Split(" (Parameter", 2)[0]}");
            }

            if (maxTrials is int n) experiment.SetMaxTrials(n);
            TrainingImages data = TrainingImages.Read(line, seed);
            var output = new OutputFiles(line.OutputFolder());
            string[] classes = data.Classes;

            context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"Sweeping {string.Join(", ", architectures)} with {tuner.Name} for {minutes:G4} min{(maxTrials is int t ? $" or {t} trials" : string.Empty)}, up to {epochs} epochs per trial, "
                + $"on {data.Train.Count} training and {data.Validation.Count} validation images of {classes.Length} classes at {size}x{size}")));
            var (trainRows, images, trainView, validationView) = data.Views(ml);
            SweepResult result = display.Show("sweep", () => experiment.Run(trainView, validationView, new TrialPrinter(context.Console), context.Cancellation));

            output.Save("trials.csv", result.SaveTrialsCsv);
            PrintLeaderboard(context.Console, result);
            var json = new JsonObject
            {
                ["task"] = "image-classification-sweep",
                ["tuner"] = tuner.Name,
                ["optimizingMetric"] = result.OptimizingMetric,
                ["stopReason"] = result.StopReason.ToString(),
                ["seconds"] = Math.Round(result.Elapsed.TotalSeconds, 1),
                ["classes"] = new JsonArray(classes.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["trials"] = new JsonArray(result.Trials.Select(TrialJson).ToArray()),
            };
            output.SweepChart(result);
            if (result.BestModel is not ITransformer best || result.BestTrial is not TrialResult winner)
            {
                output.Json("metrics.json", json);
                Summaries.Files(context.Console, output);
                throw new InvalidOperationException(
                    $"No trial finished within the budget ({result.Trials.Count} started, stopped: {result.StopReason}); give it more time with --minutes, or fewer --epochs. The trials are in {output.PathOf("trials.csv")}.");
            }

            ITransformer model = images.Append(best);
            MulticlassClassificationMetrics metrics = data.SaveTrained(ml, output, model, trainRows.Schema, winner.History);
            json["bestTrial"] = winner.Id;
            json["validation"] = OutputFiles.ClassificationJson(metrics, classes);
            output.Json("metrics.json", json);
            context.Console.MarkupLine(Markup.Escape($"Best model: trial {winner.Id} after {winner.Epochs} epoch(s) ({TrialPrinter.Describe(winner)})"));
            Summaries.Classification(context.Console, metrics, classes, "Validation, best model");
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static JsonNode TrialJson(TrialResult t)
        {
            var parameters = new JsonObject();
            foreach (var (name, value) in t.Parameters)
                parameters[name] = value switch
                {
                    double d => JsonValue.Create(d),
                    int i => JsonValue.Create(i),
                    _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
                };
            var metrics = new JsonObject();
            foreach (var (name, value) in t.Metrics) metrics[name] = OutputFiles.Finite(value);
            return new JsonObject
            {
                ["id"] = t.Id, ["status"] = t.Status.ToString(), ["parameters"] = parameters, ["metrics"] = metrics,
                ["epochs"] = t.Epochs, ["seconds"] = Math.Round(t.Seconds, 2), ["error"] = t.Error,
            };
        }

        private static void PrintLeaderboard(IAnsiConsole console, SweepResult result)
        {
            console.WriteLine();
            console.MarkupLine(Markup.Escape($"Leaderboard: {result.Trials.Count} trials, {result.TotalEpochs} epochs in {TrainingDisplay.Duration(result.Elapsed)} (stopped: {result.StopReason})"));
            var table = new Table().AddColumn("rank").AddColumn("trial").AddColumn("status").AddColumn("epochs")
                .AddColumn(new TableColumn(result.OptimizingMetric).RightAligned()).AddColumn("parameters");
            foreach (var (trial, rank) in result.Leaderboard.Take(Shown).Select((t, i) => (t, i + 1)))
                table.AddRow(rank.ToString(CultureInfo.InvariantCulture), trial.Id.ToString(CultureInfo.InvariantCulture), trial.Status.ToString(),
                    trial.Epochs.ToString(CultureInfo.InvariantCulture), trial.Metric!.Value.ToString("F4", CultureInfo.InvariantCulture), Markup.Escape(TrialPrinter.Describe(trial)));
            console.Write(table);
            if (result.Leaderboard.Count > Shown) console.MarkupLine(Markup.Escape($"... and {result.Leaderboard.Count - Shown} more in trials.csv"));
            foreach (TrialResult failed in result.Trials.Where(t => t.Status == TrialStatus.Failed))
                console.MarkupLine(Markup.Escape($"trial {failed.Id} failed: {failed.Error}"));
        }

        /// <summary>A line per trial run as it ends.</summary>
        private sealed class TrialPrinter : IProgress<TrialResult>
        {
            private readonly IAnsiConsole console;

            public TrialPrinter(IAnsiConsole console) => this.console = console;

            public void Report(TrialResult t) => console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"trial {t.Id}: {t.Status} after {t.Epochs} epoch(s), {(t.Metric is double m ? m.ToString("F4", CultureInfo.InvariantCulture) : "-")}, {t.Seconds:F1} s ({Describe(t)})")));

            public static string Describe(TrialResult trial) => string.Join(", ", trial.Parameters.Select(p =>
                $"{p.Key}={(p.Value is double d ? d.ToString("G3", CultureInfo.InvariantCulture) : Convert.ToString(p.Value, CultureInfo.InvariantCulture))}"));
        }
    }
}
