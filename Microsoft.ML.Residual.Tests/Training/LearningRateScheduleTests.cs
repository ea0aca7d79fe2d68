using System;
using System.Linq;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class LearningRateScheduleTests
{
    [TestMethod]
    public void Cosine_StartsAtThePeakAndDecaysToNearZero()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions { Epochs = 10, LearningRate = 0.1, Schedule = LearningRateScheduleKind.Cosine }, stepsPerEpoch: 10);
        // peak·0.5·(1 + cos(π·s/S)) in float64: π, the product, the quotient, cos, the sum and the last product round, each
        // by ≤ u of a value no larger than the peak's scale (cos's slope is at most 1).
        double bound = Numerics.Float64Error(6, 0.1);
        Assert.AreEqual(0.1, schedule.At(0), bound);
        Assert.AreEqual(0.05, schedule.At(50), bound);
        Assert.IsTrue(schedule.At(99) < 1e-4);
        Assert.IsTrue(Enumerable.Range(1, 99).All(s => schedule.At(s) <= schedule.At(s - 1)), "monotone decreasing");
    }

    [TestMethod]
    public void Warmup_RampsLinearlyToThePeakThenFollowsTheSchedule()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions { Epochs = 10, LearningRate = 0.2, WarmupEpochs = 2, Schedule = LearningRateScheduleKind.Constant }, stepsPerEpoch: 5);
        // peak·(step + 1)/steps: a product and a quotient round, and so does the literal expected.
        double bound = Numerics.Float64Error(3, 0.2);
        Assert.AreEqual(0.02, schedule.At(0), bound);
        Assert.AreEqual(0.1, schedule.At(4), bound);
        Assert.AreEqual(0.2, schedule.At(9), bound);
        Assert.AreEqual(0.2, schedule.At(30), "the constant schedule returns the peak itself");
    }

    [TestMethod]
    public void OneCycle_RisesFromATwentyFifthToThePeakAtThirtyPercentThenAnneals()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions { Epochs = 10, LearningRate = 1.0, Schedule = LearningRateScheduleKind.OneCycle }, stepsPerEpoch: 10);
        // b + (a − b)·0.5·(1 + cos(π·t)), t a quotient, a and b quotients of the peak: at most 9 roundings of values ≤ 1.
        double bound = Numerics.Float64Error(9, 1.0);
        Assert.AreEqual(1.0 / 25, schedule.At(0), bound);
        Assert.AreEqual(1.0, schedule.At(30), bound);
        Assert.AreEqual(1e-4, schedule.At(99), bound);
        Assert.AreEqual(30, Enumerable.Range(0, 100).OrderByDescending(s => schedule.At(s)).First());
    }

    [TestMethod]
    public void Step_MultipliesByGammaAtEachMilestone()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions
        {
            Epochs = 9, LearningRate = 1.0, Schedule = LearningRateScheduleKind.Step, StepMilestones = new[] { 3, 6 }, StepGamma = 0.5,
        }, stepsPerEpoch: 2);
        // peak·γⁿ with γ = 0.5: powers of two, exact.
        Assert.AreEqual(1.0, schedule.At(5));
        Assert.AreEqual(0.5, schedule.At(6));
        Assert.AreEqual(0.25, schedule.At(12));
    }

    [TestMethod]
    public void InvalidOptions_NameTheOption()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new TrainingOptions { Epochs = 5, WarmupEpochs = 5 }.Validate());
        StringAssert.Contains(error.Message, "WarmupEpochs");
        error = Assert.ThrowsExactly<ArgumentException>(() => new TrainingOptions { LearningRate = double.NaN }.Validate());
        StringAssert.Contains(error.Message, "LearningRate");
    }
}
