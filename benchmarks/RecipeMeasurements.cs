using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The `recipes` mode (issue 23): on every dataset of <see cref="RecipeDatasets"/>, the test macro accuracy of the default
    /// recipe (a user sets only the architecture, epochs and image size), of the default with the learning-rate finder's
    /// suggestion, and of a seeded random search over optimiser, learning rate, schedule, warm-up, weight decay, label
    /// smoothing, augmentation and stem at the same epochs. Every run is appended to a JSON-lines file as it ends, so a long
    /// measurement keeps what it has measured; run again with the same file, it takes the runs found there (same dataset,
    /// size, epochs, run and recipe: the search is seeded, so trial k is the same recipe each time) and measures the rest.
    /// </summary>
    internal static class RecipeMeasurements
    {
        /// <summary>A training recipe: the options a search varies (null: the default).</summary>
        private sealed record Recipe(OptimizerKind Optimizer, double LearningRate, LearningRateScheduleKind Schedule, double WarmupEpochs, double WeightDecay,
            double LabelSmoothing, string Augmentation, StemKind? Stem)
        {
            public override string ToString() => string.Create(CultureInfo.InvariantCulture,
                $"{Optimizer} {LearningRate:G2} {Schedule}, warm-up {WarmupEpochs}, decay {WeightDecay:G2}, smoothing {LabelSmoothing}, {Augmentation}{(Stem is { } stem ? $", {stem} stem" : string.Empty)}");
        }

        private static readonly string[] Augmentations = { "none", "flip", "crop+flip", "trivial" };

        public static List<string> Run(bool quick, int trials, string? only, IEnumerable<string> idxFolders, string resultsPath, bool searchOnly)
        {
            Dictionary<string, Done> done = ReadDone(resultsPath);
            if (done.Count > 0) Console.WriteLine($"{done.Count} run(s) already in {resultsPath} are taken from there");
            var rows = new List<string>
            {
                $"| dataset | architecture, epochs | default | default, finder's rate | best of {trials} searched | default − best | best recipe | best recipe, other stem |",
                "|---|---|---|---|---|---|---|---|",
            };
            foreach (RecipeDatasets.Dataset dataset in RecipeDatasets.All(quick, idxFolders))
            {
                if (only != null && !only.Split(',').Contains(dataset.Name)) continue;
                Console.WriteLine($"{dataset.Name}: {dataset.Description}");
                var ml = new MLContext(seed: 1);
                var (train, test) = dataset.Load(ml);

                var random = new Random(11);
                double best = double.NegativeInfinity;
                Recipe? bestRecipe = null;
                for (int trial = 1; trial <= trials; trial++)
                {
                    Recipe recipe = Sample(random, dataset);
                    double accuracy = Measure(ml, dataset, train, test, recipe, null, $"trial {trial}", resultsPath, done);
                    if (accuracy > best)
                    {
                        best = accuracy;
                        bestRecipe = recipe;
                    }
                }

                // The stem is not searched (a CIFAR-stem trial costs up to 16x an ImageNet-stem one): the best recipe is run once
                // more with the other stem instead, which answers the stem question for this dataset at a fraction of the cost.
                double otherStem = double.NaN;
                if (bestRecipe is { Stem: StemKind searchedStem } && dataset.Size <= 64)
                    otherStem = Measure(ml, dataset, train, test, bestRecipe with { Stem = searchedStem == StemKind.ImageNet ? StemKind.Cifar : StemKind.ImageNet },
                        null, "best, other stem", resultsPath, done);

                double defaults = double.NaN, withFinder = double.NaN;
                double? suggested = null;
                if (!searchOnly)
                {
                    // The default runs are keyed by the recipe the defaults resolve to, so that changed defaults are measured anew.
                    string defaultRecipe = ml.Transforms.ResNetClassifier(Options(dataset, null)).DescribeRecipe();
                    Console.WriteLine($"  the default recipe: {defaultRecipe}");
                    defaults = Measure(ml, dataset, train, test, null, null, "default", resultsPath, done, defaultRecipe);
                    if (done.TryGetValue(Key(dataset, "finder", defaultRecipe), out Done? found))
                    {
                        suggested = found.LearningRate;
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  finder: suggested {suggested:G3} (from the results file)"));
                    }
                    else
                    {
                        var clock = Stopwatch.StartNew();
                        try
                        {
                            var result = ml.Transforms.FindLearningRate(ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train), Options(dataset, null));
                            suggested = result.Suggested;
                            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  finder: suggested {suggested:G3}, steepest {result.Steepest:G3}, minimum / 10 {result.MinimumOverTen:G3}"));
                            Record(dataset, "finder", defaultRecipe, suggested, double.NaN, clock.Elapsed.TotalSeconds, null, resultsPath);
                        }
                        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                        {
                            Record(dataset, "finder", defaultRecipe, null, double.NaN, clock.Elapsed.TotalSeconds, e.Message.Split('\n')[0], resultsPath);
                        }
                    }

                    if (suggested is double rate) withFinder = Measure(ml, dataset, train, test, null, rate, "default, finder's rate", resultsPath, done, defaultRecipe);
                }

                bool searched = bestRecipe != null;
                rows.Add(string.Create(CultureInfo.InvariantCulture,
                    $"| {dataset.Name} | {dataset.Architecture}, {dataset.Epochs} | {defaults:F3} | {(double.IsNaN(withFinder) ? "—" : $"{withFinder:F3} (rate {suggested:G2})")} | "
                    + $"{(searched ? $"{best:F3}" : "— (every trial failed)")} | {(searched && !double.IsNaN(defaults) ? $"{100 * (defaults - best):+0.0;-0.0} points" : "—")} | {bestRecipe} | "
                    + $"{(double.IsNaN(otherStem) ? "—" : $"{otherStem:F3}")} |"));
                Console.WriteLine(rows[^1]);
            }

            return rows;
        }

        private static ImageClassifierOptions Options(RecipeDatasets.Dataset dataset, Recipe? recipe, double? learningRate = null)
        {
            var options = new ImageClassifierOptions
            {
                Architecture = dataset.Architecture, Epochs = dataset.Epochs, ImageWidth = dataset.Size, ImageHeight = dataset.Size, LearningRate = learningRate,
            };
            if (recipe is null) return options;
            options.Optimizer = recipe.Optimizer;
            options.LearningRate = recipe.LearningRate;
            options.Schedule = recipe.Schedule;
            options.WarmupEpochs = recipe.WarmupEpochs;
            options.WeightDecay = recipe.WeightDecay;
            options.LabelSmoothing = recipe.LabelSmoothing;
            options.Stem = recipe.Stem;
            options.Augmentation = recipe.Augmentation switch
            {
                "none" => new ImageAugmentation(),
                "flip" => new ImageAugmentation { HorizontalFlipProbability = 0.5 },
                "crop+flip" => ImageAugmentation.Cifar(),
                _ => ImageAugmentation.TrivialAugment(),
            };
            return options;
        }

        // One recipe of the search space. The torchvision ResNets get the ImageNet stem (the CIFAR ResNets have one stem): the
        // best recipe is tried with the CIFAR stem afterwards.
        private static Recipe Sample(Random random, RecipeDatasets.Dataset dataset)
        {
            T Pick<T>(params T[] values) => values[random.Next(values.Length)];
            double LogUniform(double low, double high) => Math.Exp(Math.Log(low) + random.NextDouble() * (Math.Log(high) - Math.Log(low)));
            OptimizerKind optimizer = Pick(OptimizerKind.Sgd, OptimizerKind.AdamW);
            bool sgd = optimizer == OptimizerKind.Sgd;
            return new Recipe(
                optimizer,
                sgd ? LogUniform(0.01, 0.4) : LogUniform(2e-4, 5e-3),
                Pick(LearningRateScheduleKind.Cosine, LearningRateScheduleKind.OneCycle),
                Pick(0.0, 0.05, 0.1) * dataset.Epochs,   // warm-up: none, or a twentieth or a tenth of training
                sgd ? Pick(5e-5, 5e-4, 5e-3) : Pick(0.01, 0.05, 0.3),
                Pick(0.0, 0.1),
                Pick(Augmentations),
                dataset.Architecture is "resnet18" or "resnet34" or "resnet50" ? StemKind.ImageNet : null);
        }

        // One run; a default run (no recipe) names the recipe the defaults resolve to in `defaultRecipe`.
        private static double Measure(MLContext ml, RecipeDatasets.Dataset dataset, IDataView train, IDataView test, Recipe? recipe, double? learningRate, string what,
            string resultsPath, Dictionary<string, Done> done, string? defaultRecipe = null)
        {
            string? described = recipe?.ToString() ?? defaultRecipe;
            if (done.TryGetValue(Key(dataset, what, described), out Done? earlier))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {what}: {(earlier.MacroAccuracy is double value ? $"macro accuracy {value:F3}" : "failed")} (from the results file)"));
                return earlier.MacroAccuracy ?? double.NaN;
            }

            var clock = Stopwatch.StartNew();
            try
            {
                var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(Options(dataset, recipe, learningRate)));
                ITransformer model = pipeline.Fit(train);
                double accuracy = ml.MulticlassClassification.Evaluate(model.Transform(test)).MacroAccuracy;
                Record(dataset, what, described, learningRate, accuracy, clock.Elapsed.TotalSeconds, null, resultsPath);
                return accuracy;
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                // A diverged recipe is a result (chance accuracy for the search), not the end of the measurement.
                Record(dataset, what, described, learningRate, double.NaN, clock.Elapsed.TotalSeconds, e.Message.Split('\n')[0], resultsPath);
                return double.NaN;
            }
        }

        /// <summary>A run read back from the results file.</summary>
        private sealed record Done(double? MacroAccuracy, double? LearningRate);

        // What identifies a run: the dataset as generated (its description names its size and image counts), the epochs, the
        // run and the recipe.
        private static string Key(RecipeDatasets.Dataset dataset, string run, string? recipe) => $"{dataset.Description}|{dataset.Epochs}|{run}|{recipe}";

        private static Dictionary<string, Done> ReadDone(string resultsPath)
        {
            var done = new Dictionary<string, Done>(StringComparer.Ordinal);
            if (!File.Exists(resultsPath)) return done;
            foreach (string line in File.ReadLines(resultsPath))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                using JsonDocument json = JsonDocument.Parse(line);
                JsonElement root = json.RootElement;
                double? Number(string name) => root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;
                string? Text(string name) => root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
                if (Text("description") is not string description) continue; // written before runs were keyed
                done[$"{description}|{Number("epochs")}|{Text("run")}|{Text("recipe")}"] = new Done(Number("macroAccuracy"), Number("learningRate"));
            }

            return done;
        }

        private static void Record(RecipeDatasets.Dataset dataset, string what, string? recipe, double? learningRate, double accuracy, double seconds, string? error, string resultsPath)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {what}: {(error is null ? double.IsNaN(accuracy) ? "done" : $"macro accuracy {accuracy:F3}" : $"FAILED {error}")} in {seconds:F0} s{(recipe is null ? string.Empty : $" ({recipe})")}"));
            string line = JsonSerializer.Serialize(new
            {
                dataset = dataset.Name, description = dataset.Description, architecture = dataset.Architecture, epochs = dataset.Epochs, run = what, recipe,
                learningRate, macroAccuracy = double.IsNaN(accuracy) ? (double?)null : accuracy, seconds = Math.Round(seconds, 1), error,
            });
            File.AppendAllText(resultsPath, line + Environment.NewLine);
        }
    }
}
