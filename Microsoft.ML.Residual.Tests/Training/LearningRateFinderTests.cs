using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class LearningRateFinderTests
{
    private const int BatchSize = 10;

    private static nn.Module<Tensor, Tensor> SmallNetwork() =>
        ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 5 });

    private static TrainingOptions Options() => new() { Epochs = 1, LearningRate = 0.1, Seed = 3 };

    // A smoothed curve from rates 1e-6 to 1e2, 81 points (10 a decade): flat at 2.3 up to 1e-4, falling linearly in log10(rate)
    // to 0.3 at 1e-1 (the minimum), then rising steeply.
    private static List<LearningRatePoint> Curve(Func<double, double> lossAt) =>
        Enumerable.Range(0, 81).Select(i => Math.Pow(10, -6 + i / 10.0)).Select(rate => new LearningRatePoint(rate, lossAt(rate), lossAt(rate))).ToList();

    private static double Descending(double rate)
    {
        double decade = Math.Log10(rate);
        return decade <= -4 ? 2.3 : decade <= -1 ? 2.3 - 2.0 * (decade + 4) / 3 : 0.3 + 5 * (decade + 1);
    }

    [TestMethod]
    public void Suggestions_OfACurveThatFallsThenRises_AreReadFromItsDescent()
    {
        var result = new LearningRateFinderResult(Curve(Descending), stoppedEarly: false);

        Assert.AreEqual(0.1, result.Minimum!.Value, 1e-9);
        Assert.AreEqual(0.01, result.MinimumOverTen!.Value, 1e-10);
        // The descent starts where the loss has fallen by 5 % of its fall of 2.0 (0.1 below 2.3): at 10^-3.85 the loss is 2.2,
        // so the last point above 2.2 is 10^-3.9; the valley is halfway in log10 between it and the minimum, 10^-2.45.
        Assert.AreEqual(Math.Pow(10, -2.45), result.Valley!.Value, 1e-9);
        Assert.AreEqual(result.Valley, result.Suggested);
        // Linear in log10(rate): every point of the descent is equally steep; the first is where the slope is steepest.
        double steepest = Math.Log10(result.Steepest!.Value);
        Assert.IsTrue(steepest > -4 && steepest < -1, $"the steepest point 10^{steepest} is on the descent");
    }

    [TestMethod]
    public void Suggestions_AreNotMovedByANoisyFirstBatch()
    {
        var clean = new LearningRateFinderResult(Curve(Descending), stoppedEarly: false);
        var points = Curve(Descending);
        points[0] = points[0] with { Loss = 9, SmoothedLoss = 9 };   // one bad batch, which the bias-corrected average takes whole
        var noisy = new LearningRateFinderResult(points, stoppedEarly: false);

        Assert.AreEqual(clean.Valley, noisy.Valley);
        Assert.AreEqual(clean.Steepest, noisy.Steepest);
        Assert.AreEqual(clean.Minimum, noisy.Minimum);
    }

    [TestMethod]
    public void Suggestions_OfACurveThatNeverFalls_AreNull()
    {
        var result = new LearningRateFinderResult(Curve(rate => 2.3 + rate), stoppedEarly: true);

        Assert.IsNull(result.Suggested);
        Assert.IsNull(result.Minimum);
        Assert.IsNull(result.Steepest);
        Assert.AreEqual(81, result.Points.Count);
    }

    [TestMethod]
    public void FindLearningRate_SweepsGeometricRatesAndPutsEveryWeightAndBufferBackExactly()
    {
        using var data = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var finder = new LearningRateFinderOptions { StartLearningRate = 1e-5, EndLearningRate = 0.1, Steps = 12, Smoothing = 0.9, StopFactor = 1e6 };

        LearningRateFinderResult result = new TrainingLoop(model, Options()).FindLearningRate(e => data.Epoch(e, BatchSize), finder);

        // 12 steps over two epochs of 6 batches; rates from 1e-5 to 0.1, each 10^(4/11) times the one before.
        Assert.AreEqual(12, result.Points.Count);
        Assert.IsFalse(result.StoppedEarly);
        Assert.AreEqual(1e-5, result.Points[0].LearningRate, 1e-18);
        Assert.AreEqual(0.1, result.Points[^1].LearningRate, 1e-12);
        for (int i = 1; i < 12; i++)
            Assert.AreEqual(Math.Pow(10, 4.0 / 11), result.Points[i].LearningRate / result.Points[i - 1].LearningRate, 1e-9);
        // The bias-corrected average starts at the first loss, then weighs the losses 0.1, 0.09, 0.081, … from the newest.
        Assert.AreEqual(result.Points[0].Loss, result.Points[0].SmoothedLoss, 1e-12);
        double expected = (0.9 * 0.1 * result.Points[0].Loss + 0.1 * result.Points[1].Loss) / (1 - 0.81);
        Assert.AreEqual(expected, result.Points[1].SmoothedLoss, 1e-9);
        Assert.IsTrue(result.Points.All(p => double.IsFinite(p.Loss) && p.Loss > 0));

        foreach (var (key, value) in model.state_dict())
            Assert.IsTrue(value.equal(before[key]).all().item<bool>(), $"{key} was not put back");
    }

    [TestMethod]
    public void FindLearningRate_StopsOnceTheSmoothedLossPassesTheStopFactorTimesItsLowest()
    {
        using var data = new TrainingTestData(60, 12, seed: 1);
        int step = 0;
        // Losses 1, 1, …, then 5 at the 8th step: with no smoothing, 5 > 4 × 1 stops the sweep there.
        var trainer = new TrainingLoop(SmallNetwork(), Options())
        {
            Loss = (logits, targets, _) => logits.sum().Times(0).Plus(++step == 8 ? 5 : 1),
        };

        LearningRateFinderResult result = trainer.FindLearningRate(e => data.Epoch(e, BatchSize),
            new LearningRateFinderOptions { Steps = 20, Smoothing = 0, StopFactor = 4 });

        Assert.IsTrue(result.StoppedEarly);
        Assert.AreEqual(8, result.Points.Count, "the step that passed the factor is recorded, and nothing after it");
        Assert.AreEqual(5, result.Points[^1].Loss);
        Assert.IsNull(result.Suggested, "a loss that never fell suggests nothing");
    }

    [TestMethod]
    public void FindLearningRate_StopsAtANaNLossAndPutsTheWeightsBack()
    {
        using var data = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

        LearningRateFinderResult result = new TrainingLoop(model, Options()).FindLearningRate(
            e => data.EpochWithNaNBatch(e, BatchSize, nanBatch: 3), new LearningRateFinderOptions { Steps = 20 });

        Assert.IsTrue(result.StoppedEarly);
        Assert.AreEqual(3, result.Points.Count);
        foreach (var (key, value) in model.state_dict())
            Assert.IsTrue(value.equal(before[key]).all().item<bool>(), $"{key} was not put back");
    }

    [TestMethod]
    [DataRow(0.0, 1.0, 100, 0.98, 4.0, "StartLearningRate")]
    [DataRow(1e-3, 1e-3, 100, 0.98, 4.0, "EndLearningRate")]
    [DataRow(1e-7, 10.0, 4, 0.98, 4.0, "Steps")]
    [DataRow(1e-7, 10.0, 100, 1.0, 4.0, "Smoothing")]
    [DataRow(1e-7, 10.0, 100, 0.98, 1.0, "StopFactor")]
    public void InvalidFinderOptions_AreRejectedNamingTheOption(double start, double end, int steps, double smoothing, double stopFactor, string option)
    {
        var finder = new LearningRateFinderOptions { StartLearningRate = start, EndLearningRate = end, Steps = steps, Smoothing = smoothing, StopFactor = stopFactor };
        var error = Assert.ThrowsExactly<ArgumentException>(() => new TrainingLoop(SmallNetwork(), Options()).FindLearningRate(_ => Array.Empty<(Tensor, Tensor)>(), finder));
        StringAssert.Contains(error.Message, "LearningRateFinderOptions." + option);
    }
}
