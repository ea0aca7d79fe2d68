// Sweep: "find me the best image model in two minutes". An AutoML-style sweep over architectures and
// hyperparameters on built-in generated images, with successive halving; prints the leaderboard, scores
// the best model on a held-out test set, and writes trials.csv and best-model.zip.
//
//   dotnet run --project samples/Sweep [-- --seconds 120 --epochs 6 --tuner SuccessiveHalving|Random|Grid|TreeParzen
//                                         --architectures resnet20,resnet32,plain20]
using System;
using System.Globalization;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Sweeps;
using Microsoft.ML.Residual;

uint seconds = uint.Parse(Argument("--seconds", "120"), CultureInfo.InvariantCulture);
int epochs = int.Parse(Argument("--epochs", "6"), CultureInfo.InvariantCulture);
string tunerName = Argument("--tuner", "SuccessiveHalving");
string[] architectures = Argument("--architectures", "resnet20,resnet32,plain20").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
SweepTuner tuner = tunerName switch
{
    "SuccessiveHalving" => SweepTuner.SuccessiveHalving,
    "Random" => SweepTuner.Random,
    "Grid" => SweepTuner.Grid,
    "TreeParzen" => SweepTuner.TreeParzen,
    _ => throw new ArgumentException($"--tuner {tunerName}: use SuccessiveHalving, Random, Grid or TreeParzen."),
};

var ml = new MLContext(seed: 1);
IDataView trainRows = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 600, seed: 1));
IDataView validationRows = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 200, seed: 2));
IDataView testRows = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 300, seed: 3));

// One label mapping for all three sets, so that keys mean the same class everywhere.
ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(trainRows);
IDataView train = labelKeys.Transform(trainRows), validation = labelKeys.Transform(validationRows), test = labelKeys.Transform(testRows);

Console.WriteLine($"Sweeping {string.Join(", ", architectures)} with {tuner.Name} for {seconds} s, up to {epochs} epochs per trial, "
    + $"on 600 training and 200 validation images ({TextureDataset.Size}x{TextureDataset.Size}, {TextureDataset.Classes.Length} classes)");
var experiment = ml.ResidualSweep()
    .ImageClassification(labelColumnName: "Label", imageColumnName: "Image", imageWidth: TextureDataset.Size, imageHeight: TextureDataset.Size)
    .SetSearchSpace(s => s
        .Choice("Architecture", architectures)
        .LogUniform("LearningRate", 3e-4, 3e-3)
        .Choice("BatchSize", 32, 64)
        .Uniform("LabelSmoothing", 0.0, 0.2))
    .SetTuner(tuner)
    .SetMaxEpochsPerTrial(epochs)
    .SetTrainingTimeInSeconds(seconds)
    .SetOptimizingMetric("MacroAccuracy");

var progress = new TrialPrinter();
SweepResult result = experiment.Run(train, validation, progress);

Console.WriteLine($"\nLeaderboard ({result.Trials.Count} trials, {result.TotalEpochs} epochs in {result.Elapsed.TotalSeconds:F0} s; stopped: {result.StopReason})");
Console.WriteLine($"{"rank",4}  {"trial",5}  {"status",-9}  {"epochs",6}  {"macro acc.",10}  {"seconds",7}  parameters");
foreach (var (trial, rank) in result.Leaderboard.Select((t, i) => (t, i + 1)))
{
    Console.WriteLine($"{rank,4}  {trial.Id,5}  {trial.Status,-9}  {trial.Epochs,6}  {trial.Metric,10:P1}  {trial.Seconds,7:F1}  "
        + TrialPrinter.Describe(trial));
}

foreach (TrialResult failed in result.Trials.Where(t => t.Status == TrialStatus.Failed))
    Console.WriteLine($"trial {failed.Id} failed: {failed.Error}");

result.SaveTrialsCsv("trials.csv");
Console.WriteLine($"\nEvery trial: {System.IO.Path.GetFullPath("trials.csv")}");
if (result.BestModel is not ITransformer best || result.BestTrial is not TrialResult winner)
{
    Console.WriteLine("No trial finished within the budget; give it more time (--seconds).");
    return 1;
}

MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(best.Transform(test));
Console.WriteLine($"Best: trial {winner.Id} ({TrialPrinter.Describe(winner)}), "
    + $"{winner.Epochs} epochs; test macro accuracy {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
ml.Model.Save(labelKeys.Append(best), trainRows.Schema, "best-model.zip");
Console.WriteLine($"Best model saved to {System.IO.Path.GetFullPath("best-model.zip")}");
return metrics.MacroAccuracy > 0.5 ? 0 : 1;

string Argument(string name, string fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

/// <summary>Prints each trial as it ends a training run.</summary>
internal sealed class TrialPrinter : IProgress<TrialResult>
{
    public void Report(TrialResult t) => Console.WriteLine(
        $"trial {t.Id,3}: {t.Status,-9} after {t.Epochs} epoch(s), macro accuracy {(t.Metric is double m ? m.ToString("P1", CultureInfo.InvariantCulture) : "-")}, "
        + $"{t.Seconds:F1} s  ({Describe(t)})");

    public static string Describe(TrialResult trial) => string.Join(", ", trial.Parameters.Select(p =>
        $"{p.Key}={(p.Value is double d ? d.ToString("G3", CultureInfo.InvariantCulture) : Convert.ToString(p.Value, CultureInfo.InvariantCulture))}"));
}
