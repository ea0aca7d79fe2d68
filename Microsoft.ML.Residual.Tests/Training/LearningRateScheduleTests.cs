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
        Assert.AreEqual(0.1, schedule.At(0), 1e-12);
        Assert.AreEqual(0.05, schedule.At(50), 1e-12);
        Assert.IsTrue(schedule.At(99) < 1e-4);
        Assert.IsTrue(Enumerable.Range(1, 99).All(s => schedule.At(s) <= schedule.At(s - 1)), "monotone decreasing");
    }

    [TestMethod]
    public void Warmup_RampsLinearlyToThePeakThenFollowsTheSchedule()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions { Epochs = 10, LearningRate = 0.2, WarmupEpochs = 2, Schedule = LearningRateScheduleKind.Constant }, stepsPerEpoch: 5);
        Assert.AreEqual(0.02, schedule.At(0), 1e-12);
        Assert.AreEqual(0.1, schedule.At(4), 1e-12);
        Assert.AreEqual(0.2, schedule.At(9), 1e-12);
        Assert.AreEqual(0.2, schedule.At(30), 1e-12);
    }

    [TestMethod]
    public void OneCycle_RisesFromATwentyFifthToThePeakAtThirtyPercentThenAnneals()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions { Epochs = 10, LearningRate = 1.0, Schedule = LearningRateScheduleKind.OneCycle }, stepsPerEpoch: 10);
        Assert.AreEqual(1.0 / 25, schedule.At(0), 1e-12);
        Assert.AreEqual(1.0, schedule.At(30), 1e-12);
        Assert.AreEqual(1e-4, schedule.At(99), 1e-9);
        Assert.AreEqual(30, Enumerable.Range(0, 100).OrderByDescending(s => schedule.At(s)).First());
    }

    [TestMethod]
    public void Step_MultipliesByGammaAtEachMilestone()
    {
        var schedule = new LearningRateSchedule(new TrainingOptions
        {
            Epochs = 9, LearningRate = 1.0, Schedule = LearningRateScheduleKind.Step, StepMilestones = new[] { 3, 6 }, StepGamma = 0.5,
        }, stepsPerEpoch: 2);
        Assert.AreEqual(1.0, schedule.At(5), 1e-12);
        Assert.AreEqual(0.5, schedule.At(6), 1e-12);
        Assert.AreEqual(0.25, schedule.At(12), 1e-12);
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
