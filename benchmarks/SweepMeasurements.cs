using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Sweeps;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The `sweeps` mode (issue 23, item 3): a time-budgeted sweep on a dataset of the recipes benchmark (textures5-48 by
    /// default), once per variant, as a user would run it, with a fifth of the training images held out for validation.
    /// Two search spaces: the sweep's default space (no SetSearchSpace: the rate, decay and smoothing around the default
    /// recipe) for the dataset's architecture and epochs, as the recipes benchmark trains it; and a space of architectures
    /// (ResNet-20 or pre-activation ResNet-18, the learning rate log-uniform over the default optimiser's range, batch 32 or
    /// 64, at most 6 epochs a trial). Reports the trials run, those stopped at their first rung, and the best model's test
    /// macro accuracy; every sweep is appended to a JSON-lines file.
    /// </summary>
    internal static class SweepMeasurements
    {
        // Each variant: its tuner, the epochs of its first rung (null: no rungs), whether it sweeps the default space, and
        // whether the best configuration is refitted on all the training images (within the same budget).
        private static readonly (string Name, Func<SweepTuner> Tuner, int? FirstRung, bool DefaultSpace, bool Refit)[] Variants =
        {
            ("default space, successive halving, rungs from 1 epoch", () => SweepTuner.SuccessiveHalvingWith(reductionFactor: 3, minEpochs: 1), 1, true, false),
            ("default space, successive halving, rungs from 3 epochs", () => SweepTuner.SuccessiveHalvingWith(reductionFactor: 3, minEpochs: 3), 3, true, false),
            ("default space, random search", () => SweepTuner.Random, null, true, false),
            ("default space, refit, successive halving", () => SweepTuner.SuccessiveHalving, 1, true, true),
            ("default space, refit, random search", () => SweepTuner.Random, null, true, true),
            ("architectures, successive halving, rungs 1-3-6 epochs", () => SweepTuner.SuccessiveHalvingWith(reductionFactor: 3, minEpochs: 1), 1, false, false),
            ("architectures, successive halving, rungs 2-6 epochs", () => SweepTuner.SuccessiveHalvingWith(reductionFactor: 3, minEpochs: 2), 2, false, false),
            ("architectures, random search, 6 epochs each", () => SweepTuner.Random, null, false, false),
        };

        public static List<string> Run(bool quick, uint seconds, string datasetName, string? only, string resultsPath)
        {
            RecipeDatasets.Dataset dataset = RecipeDatasets.All(quick, Array.Empty<string>()).FirstOrDefault(d => d.Name == datasetName)
                ?? throw new ArgumentException($"--dataset {datasetName}: not a generated dataset of the recipes benchmark.");
            var rows = new List<string>
            {
                $"| {dataset.Name}, {seconds} s sweep | trials | stopped at the first rung | epochs trained | best trial (validation) | seconds in all (refit) | best model, test macro accuracy |",
                "|---|---|---|---|---|---|---|",
            };
            // The images are made once; each sweep gets its own MLContext, so that every variant starts from the same seed.
            var dataContext = new MLContext(seed: 1);
            var (trainRows, testRows) = dataset.Load(dataContext);
            ITransformer labels = dataContext.Transforms.Conversion.MapValueToKey("Label").Fit(trainRows);
            IDataView train = labels.Transform(trainRows), test = labels.Transform(testRows);
            foreach (var (name, makeTuner, firstRung, defaultSpace, refit) in Variants)
            {
                if (only != null && !only.Split(';').Any(v => name.StartsWith(v.Trim(), StringComparison.OrdinalIgnoreCase))) continue;
                var ml = new MLContext(seed: 1);
                var baseOptions = new ImageClassifierOptions
                {
                    LabelColumnName = "Label", ImageColumnName = nameof(RecipeDatasets.Row.Image), ImageWidth = dataset.Size, ImageHeight = dataset.Size,
                    Architecture = dataset.Architecture,
                };
                var experiment = ml.ResidualSweep().ImageClassification(baseOptions)
                    .SetTuner(makeTuner())
                    .SetTrainingTimeInSeconds(seconds)
                    .SetOptimizingMetric("MacroAccuracy")
                    .SetRefitOnAllData(refit);
                if (defaultSpace)
                {
                    experiment.SetMaxEpochsPerTrial(quick ? 2 : dataset.Epochs);
                }
                else
                {
                    experiment.SetSearchSpace(s => s
                            .Choice("Architecture", "resnet20", "preact_resnet18")
                            .LogUniform("LearningRate", 3e-4, 3e-3)
                            .Choice("BatchSize", 32, 64))
                        .SetMaxEpochsPerTrial(quick ? 2 : 6);
                }

                Console.WriteLine($"{dataset.Name}: {name} for {seconds} s");
                var clock = Stopwatch.StartNew();
                SweepResult result = experiment.Run(train, validationFraction: 0.2);
                double elapsed = clock.Elapsed.TotalSeconds;
                int stoppedAtFirst = result.Trials.Count(t => t.Status == TrialStatus.Pruned && t.Epochs == firstRung);
                double? testAccuracy = result.BestModel is ITransformer best ? ml.MulticlassClassification.Evaluate(best.Transform(test)).MacroAccuracy : null;
                foreach (TrialResult trial in result.Trials.OrderBy(t => t.Id))
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  trial {trial.Id}: {trial.Status}, {trial.Epochs} epochs, validation {trial.Metric:F3}, {string.Join(", ", trial.Parameters.Select(p => $"{p.Key} {p.Value}"))}"));
                string bestTrial = result.BestTrial is TrialResult winner
                    ? string.Create(CultureInfo.InvariantCulture, $"{winner.Metric:F3} ({string.Join(", ", winner.Parameters.Select(p => $"{p.Key} {p.Value}"))}, {winner.Epochs} epochs)")
                    : "none";
                rows.Add(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {result.Trials.Count} | {(firstRung is null ? "—" : stoppedAtFirst.ToString(CultureInfo.InvariantCulture))} | {result.TotalEpochs} | {bestTrial} | {elapsed:F0}{(result.RefitTime is TimeSpan r ? $" ({r.TotalSeconds:F0})" : "")} | {(testAccuracy is double a ? a.ToString("F3", CultureInfo.InvariantCulture) : "—")} |"));
                Console.WriteLine(rows[^1]);
                string line = JsonSerializer.Serialize(new
                {
                    dataset = dataset.Name, description = dataset.Description, variant = name, budgetSeconds = seconds, seconds = Math.Round(elapsed, 1), refitSeconds = result.RefitTime is TimeSpan refitTime ? Math.Round(refitTime.TotalSeconds, 1) : (double?)null,
                    trials = result.Trials.Count, stoppedAtFirstRung = stoppedAtFirst, totalEpochs = result.TotalEpochs, bestValidation = result.BestTrial?.Metric,
                    testMacroAccuracy = testAccuracy,
                    every = result.Trials.OrderBy(t => t.Id).Select(t => new { t.Id, status = t.Status.ToString(), t.Epochs, validation = t.Metric, parameters = t.Parameters.ToDictionary(p => p.Key, p => Convert.ToString(p.Value, CultureInfo.InvariantCulture)) }),
                });
                File.AppendAllText(resultsPath, line + Environment.NewLine);
            }

            return rows;
        }
    }
}
