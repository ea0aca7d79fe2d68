using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Sweeps;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Tests.Training;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Sweeps;

[TestClass]
public sealed class ImageSweepExperimentTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>Small texture data: training and validation rows with the label mapped to keys once for both.</summary>
    internal static (MLContext Ml, IDataView Train, IDataView Validation) Data(int trainRows = 96, int validationRows = 48)
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(trainRows, seed: 1));
        IDataView validation = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(validationRows, seed: 2));
        ITransformer keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        return (ml, keys.Transform(train), keys.Transform(validation));
    }

    /// <summary>Base options for tiny, quick trials: 16×16 pixels, no augmentation.</summary>
    internal static ImageClassifierOptions Tiny() => new()
    {
        Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, BatchSize = 32, Seed = 3,
        Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0 },
    };

    private static ImageSweepExperiment Experiment(MLContext ml, SweepTuner tuner, int epochs, int trials) =>
        ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s
                .Choice("Architecture", "resnet20", "plain20")
                .LogUniform("LearningRate", 1e-2, 2e-1)
                .Uniform("LabelSmoothing", 0.0, 0.2))
            .SetTuner(tuner)
            .SetMaxEpochsPerTrial(epochs)
            .SetMaxTrials(trials)
            .SetSeed(5);

    [TestMethod]
    public void RandomSweep_RecordsEveryTrialAndItsBestModelScoresLikeTheSameOptionsTrainedDirectly()
    {
        var (ml, train, validation) = Data();
        SweepResult result = Experiment(ml, SweepTuner.Random, epochs: 2, trials: 3).Run(train, validation);

        Assert.AreEqual(SweepStopReason.SearchFinished, result.StopReason);
        Assert.AreEqual(3, result.Trials.Count);
        foreach (TrialResult trial in result.Trials)
        {
            Assert.AreEqual(TrialStatus.Completed, trial.Status, trial.ToString());
            Assert.AreEqual(2, trial.Epochs);
            CollectionAssert.AreEquivalent(new[] { "Architecture", "LearningRate", "LabelSmoothing" }, trial.Parameters.Keys.ToArray());
            Assert.IsInstanceOfType<string>(trial.Parameters["Architecture"]);
            Assert.IsTrue((double)trial.Parameters["LearningRate"] is >= 1e-2 and <= 2e-1);
            Assert.IsTrue(trial.Metric is >= 0 and <= 1, "MacroAccuracy is the default metric");
            Assert.AreEqual(trial.Metric, trial.Metrics["MacroAccuracy"]);
            Assert.IsTrue(trial.Metrics.ContainsKey("LogLoss") && trial.Seconds > 0 && trial.History.Count == 2);
        }

        TrialResult best = result.BestTrial!;
        Assert.AreEqual(result.Trials.Max(t => t.Metric), best.Metric);
        Assert.AreSame(result.Leaderboard[0].Parameters, result.Trials[best.Id - 1].Parameters);
        Assert.AreEqual(result.Trials.Sum(t => t.Epochs), result.TotalEpochs);

        // A user trains the winning configuration directly with the same seed and validation data: the same model.
        ImageClassifierOptions direct = Tiny();
        direct.Architecture = (string)best.Parameters["Architecture"];
        direct.LearningRate = (double)best.Parameters["LearningRate"];
        direct.LabelSmoothing = (double)best.Parameters["LabelSmoothing"];
        direct.Epochs = 2;
        direct.Seed = 5;
        direct.ValidationSet = validation;
        ITransformer model = ml.Transforms.ResNetClassifier(direct).Fit(train);
        float[][] expected = Scores(model, validation), actual = Scores(result.BestModel!, validation);
        for (int row = 0; row < expected.Length; row++)
            CollectionAssert.AreEqual(expected[row], actual[row], $"row {row}: the sweep's best model scores like the directly trained one");
        // The sweep scored the trial with the same evaluator, model and rows: the same computation.
        Assert.AreEqual(best.Metric!.Value, ml.MulticlassClassification.Evaluate(result.BestModel!.Transform(validation)).MacroAccuracy);
    }

    [TestMethod]
    public void SuccessiveHalving_TrainsFewerEpochsThanRandomSearch_AndItsFullyTrainedTrialsEqualUninterruptedOnes()
    {
        var (ml, train, validation) = Data();
        SweepResult random = Experiment(ml, SweepTuner.Random, epochs: 4, trials: 6).Run(train, validation);
        SweepResult halving = Experiment(ml, SweepTuner.SuccessiveHalvingWith(reductionFactor: 2, minEpochs: 1), epochs: 4, trials: 6).Run(train, validation);

        Assert.AreEqual(24, random.TotalEpochs, "random search trains every trial fully");
        Assert.IsTrue(halving.TotalEpochs < random.TotalEpochs, $"successive halving trained {halving.TotalEpochs} epochs");
        Assert.AreEqual(6, halving.Trials.Count);
        Assert.IsTrue(halving.Trials.Any(t => t.Status == TrialStatus.Pruned && t.Epochs < 4), "poor configurations stop early");
        var full = halving.Trials.Where(t => t.Epochs == 4).ToList();
        Assert.IsTrue(full.Count >= 1 && full.All(t => t.Status == TrialStatus.Completed), "at least one trial trains fully");

        // Both tuners draw the same configurations from the same seed; a trial continued rung after rung from its
        // checkpoints ends exactly where the uninterrupted run does.
        foreach (TrialResult trial in full)
        {
            TrialResult same = random.Trials[trial.Id - 1];
            CollectionAssert.AreEqual(same.Parameters.Values.ToArray(), trial.Parameters.Values.ToArray());
            // Bit for bit: the checkpoints hold every weight and optimiser state exactly, so the models and their scores agree.
            Assert.AreEqual(same.Metrics["LogLoss"], trial.Metrics["LogLoss"], $"trial {trial.Id}");
            Assert.AreEqual(same.Metric, trial.Metric);
        }
    }

    [TestMethod]
    public void DivergingConfiguration_IsRecordedAsFailed_AndTheSweepGoesOn()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        ImageClassifierOptions options = Tiny();
        options.BatchSize = 16; // more steps per epoch, so that this rate blows the loss up within the one epoch
        SweepResult result = ml.ResidualSweep().ImageClassification(options)
            .SetSearchSpace(s => s.Choice("LearningRate", 1e12, 0.05))
            .SetTuner(SweepTuner.Grid)
            .SetMaxEpochsPerTrial(1)
            .Run(train, validation);

        Assert.AreEqual(2, result.Trials.Count);
        TrialResult diverged = result.Trials[0], fine = result.Trials[1];
        Assert.AreEqual(TrialStatus.Failed, diverged.Status);
        StringAssert.Contains(diverged.Error, "loss became");
        Assert.IsNull(diverged.Metric);
        Assert.AreEqual(TrialStatus.Completed, fine.Status);
        Assert.AreEqual(fine.Id, result.BestTrial!.Id);
        Assert.IsNotNull(result.BestModel);
    }

    [TestMethod]
    public void Cancellation_ReturnsTheTrialsSoFarAndTheBestModelSoFar()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        using var cancel = new CancellationTokenSource();
        var reported = new List<TrialResult>();
        var progress = new SynchronousProgress<TrialResult>(t =>
        {
            reported.Add(t);
            if (t.Status == TrialStatus.Completed) cancel.Cancel();
        });

        SweepResult result = Experiment(ml, SweepTuner.Random, epochs: 2, trials: 10).Run(train, validation, progress, cancel.Token);

        Assert.AreEqual(SweepStopReason.Cancelled, result.StopReason);
        Assert.AreEqual(1, result.Trials.Count, "no trial starts after the cancellation");
        Assert.AreEqual(TrialStatus.Completed, result.Trials[0].Status);
        Assert.AreEqual(1, result.BestTrial!.Id);
        Assert.AreEqual(32, result.BestModel!.Transform(validation).GetColumn<float[]>("Score").Count());
        Assert.AreEqual(1, reported.Count);
    }

    [TestMethod]
    public void CancellationDuringATrial_StopsItBetweenBatchesAndRecordsItAsCancelled()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        using var cancel = new CancellationTokenSource();
        ImageClassifierOptions options = Tiny();
        options.Progress = new SynchronousProgress<EpochReport>(_ => cancel.Cancel()); // after the first epoch of the first trial
        SweepResult result = ml.ResidualSweep().ImageClassification(options)
            .SetSearchSpace(s => s.LogUniform("LearningRate", 0.01, 0.1))
            .SetTuner(SweepTuner.Random).SetMaxEpochsPerTrial(3).SetMaxTrials(3)
            .Run(train, validation, cancellationToken: cancel.Token);

        Assert.AreEqual(SweepStopReason.Cancelled, result.StopReason);
        TrialResult only = result.Trials.Single();
        Assert.AreEqual(TrialStatus.Cancelled, only.Status);
        Assert.AreEqual(1, only.History.Count, "the epoch it finished is in its history");
        Assert.IsNull(result.BestModel, "nothing was scored");
        Assert.IsNull(result.BestTrial);
    }

    [TestMethod]
    public void TimeBudget_StopsTheSweep_OnlyTheLastTrialIsCutShort()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        const uint budget = 4;
        SweepResult result = ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s.LogUniform("LearningRate", 0.01, 0.1))
            .SetTuner(SweepTuner.Random)
            .SetMaxEpochsPerTrial(2)
            .SetTrainingTimeInSeconds(budget)
            .Run(train, validation);

        // Nothing here depends on how fast the machine is: the random tuner never runs out of configurations, so only the
        // budget can end the sweep, and it interrupts at most the trial that was running then. How many trials fit in the
        // budget and how long the sweep ran past it vary with speed and load, so neither is asserted.
        Assert.AreEqual(SweepStopReason.TimeBudget, result.StopReason);
        Assert.IsTrue(result.Trials.Take(result.Trials.Count - 1).All(t => t.Status == TrialStatus.Completed), "only the last trial is cut short");
    }

    [TestMethod]
    public void SameSeed_RepeatsTheSweepExactly()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        SweepResult first = Experiment(ml, SweepTuner.TreeParzen, epochs: 1, trials: 4).Run(train, validation);
        SweepResult second = Experiment(ml, SweepTuner.TreeParzen, epochs: 1, trials: 4).Run(train, validation);
        for (int i = 0; i < 4; i++)
        {
            CollectionAssert.AreEqual(first.Trials[i].Parameters.Values.ToArray(), second.Trials[i].Parameters.Values.ToArray(), $"trial {i + 1}");
            Assert.AreEqual(first.Trials[i].Metrics["LogLoss"], second.Trials[i].Metrics["LogLoss"], $"trial {i + 1}");
        }
    }

    [TestMethod]
    public void ProgressAndLog_ReportEveryTrial()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Source.Contains("ResidualSweep", StringComparison.Ordinal)) lock (messages) messages.Add(e.Message); };
        var reported = new List<TrialResult>();
        Experiment(ml, SweepTuner.Random, epochs: 1, trials: 2).Run(train, validation, new SynchronousProgress<TrialResult>(reported.Add));

        CollectionAssert.AreEqual(new[] { 1, 2 }, reported.Select(t => t.Id).ToArray());
        Assert.IsTrue(messages.Any(m => m.Contains("trial 1", StringComparison.Ordinal) && m.Contains("MacroAccuracy", StringComparison.Ordinal)), string.Join("\n", messages));
        Assert.IsTrue(messages.Any(m => m.Contains("Sweep ended", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void SaveTrialsCsv_WritesOneRowPerTrialWithParametersMetricsAndErrors()
    {
        var (ml, train, validation) = Data(trainRows: 64, validationRows: 32);
        SweepResult result = ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s.Choice("LearningRate", 1e12, 0.05).Choice("BatchSize", 16))
            .SetTuner(SweepTuner.Grid).SetMaxEpochsPerTrial(1)
            .Run(train, validation);
        string path = ModelTestSupport.TempFile(TestContext, ".csv");
        result.SaveTrialsCsv(path);

        string[] lines = File.ReadAllLines(path);
        Assert.AreEqual(3, lines.Length);
        Assert.AreEqual("Trial,Status,LearningRate,BatchSize,MacroAccuracy,MicroAccuracy,LogLoss,LogLossReduction,Epochs,Seconds,Error", lines[0]);
        StringAssert.StartsWith(lines[1], "1,Failed,1000000000000,16,,,,,0,");
        StringAssert.Contains(lines[1], "loss became");
        string[] fields = lines[2].Split(',');
        Assert.AreEqual("Completed", fields[1]);
        Assert.AreEqual(result.Trials[1].Metrics["MacroAccuracy"], double.Parse(fields[4], System.Globalization.CultureInfo.InvariantCulture));
        Assert.IsFalse(File.Exists(path + ".tmp"));
    }

    [TestMethod]
    public void SegmentationSweep_RanksUNetsByMeanIoUAndItsBestModelAddsPredictedMasks()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Segmentation.UNetSegmenterTests.Shapes(32, seed: 1));
        IDataView validation = ml.Data.LoadFromEnumerable(Segmentation.UNetSegmenterTests.Shapes(16, seed: 2));
        SweepResult result = ml.ResidualSweep()
            .Segmentation(new SegmenterOptions
            {
                Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 2, BaseWidth = 8 },
                NumClasses = 3, ImageWidth = 32, ImageHeight = 32, BatchSize = 16,
            })
            .SetSearchSpace(s => s.LogUniform("LearningRate", 1e-3, 3e-2).Choice("Loss", "CrossEntropy", "CrossEntropyDice"))
            .SetTuner(SweepTuner.Random).SetMaxEpochsPerTrial(2).SetMaxTrials(2)
            .Run(train, validation);

        Assert.AreEqual("MeanIoU", result.OptimizingMetric);
        Assert.AreEqual(2, result.Trials.Count);
        foreach (TrialResult trial in result.Trials)
        {
            Assert.AreEqual(TrialStatus.Completed, trial.Status, trial.ToString());
            Assert.IsInstanceOfType<SegmentationLoss>(trial.Parameters["Loss"], "a string choice becomes the option's enum member");
            Assert.IsTrue(trial.Metric is >= 0 and <= 1 && trial.Metrics.ContainsKey("PixelAccuracy") && trial.Metrics.ContainsKey("MeanDice"));
        }

        Assert.AreEqual(result.Trials.Max(t => t.Metric), result.BestTrial!.Metric);
        SegmentationMetrics metrics = ml.Segmentation().Evaluate(result.BestModel!.Transform(validation), numClasses: 3);
        // The sweep scored the trial with the same evaluator, model and rows: the same computation.
        Assert.AreEqual(result.BestTrial.Metric!.Value, metrics.MeanIoU);
    }

    [TestMethod]
    public void TheDocumentedCalls_CheckEverythingUpFrontAndACancelledRunReturnsNoTrials()
    {
        // The calls exactly as the documentation shows them (architectures too large to train in a test; the token is
        // cancelled before the first trial, after the search space, options and columns have been checked).
        var (ml, train, validation) = Data(trainRows: 32, validationRows: 16);
        var experiment = ml.ResidualSweep()
            .ImageClassification(labelColumnName: "Label", imageColumnName: "Image", imageWidth: 32, imageHeight: 32)
            .SetSearchSpace(s => s
                .Choice("Architecture", "resnet20", "preact_resnet18", "densenet_bc_100_12")
                .LogUniform("LearningRate", 1e-3, 1e-1)
                .Choice("BatchSize", 32, 64)
                .Uniform("LabelSmoothing", 0.0, 0.2))
            .SetTuner(SweepTuner.SuccessiveHalving)
            .SetMaxEpochsPerTrial(8)
            .SetTrainingTimeInSeconds(300)
            .SetOptimizingMetric("MacroAccuracy");
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var result = experiment.Run(train, validation, progress: null, cancellationToken: cancelled.Token);

        Assert.AreEqual(SweepStopReason.Cancelled, result.StopReason);
        Assert.AreEqual(0, result.Trials.Count);
        Assert.IsNull(result.BestModel);
        Assert.IsNull(result.BestTrial);
    }

    [TestMethod]
    public void ValidationFractionAndGpuWithFallback_HoldOutRowsAndTrainOnTheCpu()
    {
        var (ml, train, _) = Data(trainRows: 64, validationRows: 16);
        ml.GpuDeviceId = 0;
        ml.FallbackToCpu = true;
        var reported = new List<TrialResult>();
        SweepResult result = ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s.Choice("BatchSize", 16))
            .SetTuner(SweepTuner.Grid).SetMaxEpochsPerTrial(1)
            .Run(train, validationFraction: 0.25, new SynchronousProgress<TrialResult>(reported.Add));

        TrialResult trial = result.Trials.Single();
        Assert.AreEqual(TrialStatus.Completed, trial.Status, trial.ToString());
        Assert.IsTrue(trial.History.Single().ValidationAccuracy is >= 0 and <= 1, "the held-out rows validate every epoch");
        Assert.AreEqual(64, result.BestModel!.Transform(train).GetColumn<float[]>("Score").Count());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.ResidualSweep().ImageClassification(Tiny()).Run(train, validationFraction: 1.0));
    }

    [TestMethod]
    public void SweepHoldingOutItsOwnValidation_RefitsTheBestConfigurationOnTheWholeDataLikeADirectFit()
    {
        var (ml, data, probe) = Data(trainRows: 64, validationRows: 16);
        ImageSweepExperiment Sweep() => ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s.Choice("LearningRate", 0.02, 0.05)).SetTuner(SweepTuner.Grid).SetMaxEpochsPerTrial(2).SetSeed(5);

        SweepResult searched = Sweep().SetRefitOnAllData(false).Run(data, validationFraction: 0.25);
        SweepResult refitted = Sweep().Run(data, validationFraction: 0.25);

        Assert.IsNull(searched.RefitTime, "SetRefitOnAllData(false)");
        Assert.IsNotNull(refitted.RefitTime);
        Assert.AreEqual(searched.BestTrial!.Id, refitted.BestTrial!.Id, "the search is the same; the refit only replaces the model");
        Assert.AreEqual(searched.BestTrial.Metric, refitted.BestTrial.Metric);

        // The winning configuration trained directly on all 64 rows, without validation, for the epochs per trial.
        ImageClassifierOptions direct = Tiny();
        direct.LearningRate = (double)refitted.BestTrial.Parameters["LearningRate"];
        direct.Epochs = 2;
        direct.Seed = 5;
        direct.ValidationFraction = 0;
        ITransformer model = ml.Transforms.ResNetClassifier(direct).Fit(data);
        float[][] expected = Scores(model, probe), actual = Scores(refitted.BestModel!, probe), trialModel = Scores(searched.BestModel!, probe);
        for (int row = 0; row < expected.Length; row++)
            CollectionAssert.AreEqual(expected[row], actual[row], $"row {row}: the refitted model is the direct fit on all the data");
        Assert.IsTrue(Enumerable.Range(0, expected.Length).Any(row => !expected[row].SequenceEqual(trialModel[row])), "the trial's own model saw only three quarters of the rows");

        Assert.IsNull(Sweep().Run(data, probe).RefitTime, "given its validation data, a sweep cannot refit and does not by default");
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Sweep().SetRefitOnAllData().Run(data, probe));
        StringAssert.Contains(error.Message, "Run(data, validationFraction)");
    }

    [TestMethod]
    public void UnknownOption_IsRejectedNamingItAndTheOptionsThatExist()
    {
        var ml = new MLContext(seed: 1);
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification().SetSearchSpace(s => s.LogUniform("LearningRat", 1e-3, 1e-1)));
        StringAssert.Contains(error.Message, "'LearningRat'");
        StringAssert.Contains(error.Message, "LearningRate");
        Assert.IsFalse(error.Message.Contains("LabelColumnName", StringComparison.Ordinal), "column names are not hyperparameters");

        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification().SetSearchSpace(s => s.Choice("Epochs", 1, 2)));
        StringAssert.Contains(error.Message, "set by the sweep itself");
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification().SetSearchSpace(s => s.Uniform("Architecture", 0, 1)));
        StringAssert.Contains(error.Message, "use Choice");
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification().SetSearchSpace(s => s.Choice("Optimizer", "Adam")));
        StringAssert.Contains(error.Message, "AdamW");
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification().SetSearchSpace(s => s.Choice("BatchSize", 16.5)));
        StringAssert.Contains(error.Message, "whole numbers");
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification().SetOptimizingMetric("Accuracy"));
        StringAssert.Contains(error.Message, "MacroAccuracy");
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().Segmentation().SetOptimizingMetric("MacroAccuracy"));
        StringAssert.Contains(error.Message, "MeanIoU");
    }

    [TestMethod]
    public void MisspeltArchitectureOrMissingColumn_FailsBeforeAnyTrialNamingIt()
    {
        var (ml, train, validation) = Data(trainRows: 32, validationRows: 16);
        ImageSweepExperiment Sweep(params string[] architectures) => ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s.Choice("Architecture", architectures)).SetMaxTrials(2).SetMaxEpochsPerTrial(1);

        var error = Assert.ThrowsExactly<ArgumentException>(() => Sweep("resnet20", "resnet_20").Run(train, validation));
        StringAssert.Contains(error.Message, "'Architecture' = resnet_20");
        error = Assert.ThrowsExactly<ArgumentException>(() => Sweep("resnet20", "unet").Run(train, validation));
        StringAssert.Contains(error.Message, "not a classifier");

        IDataView unkeyed = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(16, seed: 3));
        error = Assert.ThrowsExactly<ArgumentException>(() => Sweep("resnet20").Run(train, unkeyed));
        StringAssert.Contains(error.Message, "validation data's label column 'Label'");
        StringAssert.Contains(error.Message, "MapValueToKey");
        IDataView renamed = ml.Transforms.CopyColumns("Picture", "Image").Fit(train).Transform(train);
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification(imageColumnName: "Photo").SetSearchSpace(s => s.Choice("BatchSize", 8)).SetMaxTrials(1).Run(renamed, validation));
        StringAssert.Contains(error.Message, "no image column 'Photo'");
    }

    [TestMethod]
    public void SweepWithoutSearchSpace_SearchesRateDecayAndSmoothingAroundTheResolvedDefaults()
    {
        var (ml, train, validation) = Data(trainRows: 32, validationRows: 16);
        SweepResult result = ml.ResidualSweep().ImageClassification(Tiny()).SetTuner(SweepTuner.Random).SetMaxTrials(3).SetMaxEpochsPerTrial(1).Run(train, validation);

        Assert.AreEqual(3, result.Trials.Count);
        foreach (TrialResult trial in result.Trials)
        {
            Assert.AreEqual(TrialStatus.Completed, trial.Status, trial.ToString());
            CollectionAssert.AreEquivalent(new[] { "LearningRate", "WeightDecay", "LabelSmoothing" }, trial.Parameters.Keys.ToArray(), "the architecture stays the base options'");
            // AdamW's defaults: rate 2e-3 (a third to three times), decay 0.05 (a fifth to five times).
            Assert.IsTrue((double)trial.Parameters["LearningRate"] is >= 2e-3 / 3 and <= 6e-3, trial.ToString());
            Assert.IsTrue((double)trial.Parameters["WeightDecay"] is >= 0.01 - 1e-12 and <= 0.25 + 1e-12, trial.ToString());
            Assert.IsTrue((double)trial.Parameters["LabelSmoothing"] is 0.0 or 0.1, trial.ToString());
        }

        Assert.AreEqual(3, result.Trials.Select(t => t.Parameters["LearningRate"]).Distinct().Count(), "the rate is drawn for each trial");
    }

    [TestMethod]
    public void DefaultSearchSpace_FollowsTheOptimiserAndTheOptionsTheUserSet()
    {
        var ml = new MLContext(seed: 1);
        var environment = (Microsoft.ML.Runtime.IHostEnvironment)ml;
        string Space(ImageClassifierOptions options) =>
            string.Join("; ", new Microsoft.ML.Residual.Sweeps.ClassificationSweepTask(environment, ml, options).DefaultSearchSpace().Parameters);

        StringAssert.Contains(Space(new ImageClassifierOptions { Optimizer = OptimizerKind.Sgd }), ParameterText("LearningRate", 0.05 / 3, 0.15));
        StringAssert.Contains(Space(new ImageClassifierOptions { Optimizer = OptimizerKind.Sgd }), ParameterText("WeightDecay", 1e-4, 2.5e-3));
        StringAssert.Contains(Space(new ImageClassifierOptions { LearningRate = 0.01, WeightDecay = 0.02 }), ParameterText("LearningRate", 0.01 / 3, 0.03));
        StringAssert.Contains(Space(new ImageClassifierOptions { LearningRate = 0.01, WeightDecay = 0.02 }), ParameterText("WeightDecay", 0.004, 0.1));
        Assert.IsFalse(Space(new ImageClassifierOptions { WeightDecay = 0 }).Contains("WeightDecay"), "no decay to search around");

        string segmenter = string.Join("; ", new Microsoft.ML.Residual.Sweeps.SegmentationSweepTask(environment, ml, new SegmenterOptions()).DefaultSearchSpace().Parameters);
        StringAssert.Contains(segmenter, ParameterText("LearningRate", 1e-3 / 3, 3e-3));
        StringAssert.Contains(segmenter, ParameterText("WeightDecay", 2e-5, 5e-4));
        Assert.IsFalse(segmenter.Contains("LabelSmoothing"));
    }

    private static string ParameterText(string name, double min, double max) =>
        Microsoft.ML.Residual.Sweeps.SearchParameter.Range(name, min, max, logarithmic: true).ToString();

    [TestMethod]
    public void SweepWithoutBound_IsRejectedSayingWhatToSet()
    {
        var (ml, train, validation) = Data(trainRows: 32, validationRows: 16);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.ResidualSweep().ImageClassification(Tiny())
            .SetSearchSpace(s => s.LogUniform("LearningRate", 0.01, 0.1)).SetTuner(SweepTuner.Random).Run(train, validation));
        StringAssert.Contains(error.Message, "SetTrainingTimeInSeconds");
        Assert.ThrowsExactly<ArgumentException>(() => ml.ResidualSweep().ImageClassification(new ImageClassifierOptions { CheckpointDirectory = "x" }));
        Assert.ThrowsExactly<ArgumentNullException>(() => ml.ResidualSweep().ImageClassification(Tiny()).SetSearchSpace(s => s.Choice("BatchSize", 8)).SetMaxTrials(1).Run(train, null!));
    }

    private static float[][] Scores(ITransformer model, IDataView data) => model.Transform(data).GetColumn<float[]>("Score").ToArray();
}
