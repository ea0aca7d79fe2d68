using System;
using System.Linq;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Estimators;

[TestClass]
public sealed class ImageTrainerOptionsTests
{
    [TestMethod]
    public void SharedSettings_ReachTheLoop_ForEveryTask()
    {
        foreach (ImageTrainerOptions options in new ImageTrainerOptions[] { new ImageClassifierOptions(), new SegmenterOptions() })
        {
            options.Optimizer = OptimizerKind.Sgd;
            options.Momentum = 0.8;
            options.Nesterov = true;
            options.Schedule = LearningRateScheduleKind.Step;
            options.StepMilestones = new[] { 3, 6 };
            options.StepGamma = 0.2;
            options.Epochs = 8;
            options.FreezeBackboneEpochs = 2;
            options.BackboneLearningRateFactor = 0.3;
            options.GradientClipNorm = 5;
            options.GradientAccumulationSteps = 4;
            options.ModelEmaDecay = 0.995;
            options.ModelEmaWarmup = false;
            TrainingOptions training = options.ToTrainingOptions();
            string task = options.GetType().Name;
            Assert.AreEqual(0.8, training.Momentum, task);
            Assert.IsTrue(training.Nesterov, task);
            CollectionAssert.AreEqual(new[] { 3, 6 }, training.StepMilestones.ToArray(), $"{task}: a step schedule gets its milestones");
            Assert.AreEqual(0.2, training.StepGamma, task);
            Assert.AreEqual(2, training.FreezeBackboneEpochs, task);
            Assert.AreEqual(0.3, training.BackboneLearningRateFactor, task);
            Assert.AreEqual(5.0, training.GradientClipNorm, task);
            Assert.AreEqual(4, training.GradientAccumulationSteps, task);
            Assert.AreEqual(0.995, training.ModelEmaDecay, task);
            Assert.IsFalse(training.ModelEmaWarmup, task);
            Assert.AreEqual(1.0, training.WarmupEpochs, $"{task}: one warm-up epoch for a step schedule over 8 epochs");
        }
    }

    [TestMethod]
    public void Defaults_AreEachTasksOwn()
    {
        TrainingOptions classifier = new ImageClassifierOptions().ToTrainingOptions();
        Assert.AreEqual(2e-3, classifier.LearningRate);
        Assert.AreEqual(0.05, classifier.WeightDecay);
        Assert.AreEqual(0.0, classifier.WarmupEpochs, "one-cycle warms up by itself");
        Assert.AreEqual(MonitoredMetric.ValidationAccuracy, classifier.Monitor);

        TrainingOptions segmenter = new SegmenterOptions().ToTrainingOptions();
        Assert.AreEqual(1e-3, segmenter.LearningRate);
        Assert.AreEqual(1e-4, segmenter.WeightDecay);
        Assert.AreEqual(1.0, segmenter.WarmupEpochs, "cosine over 10 epochs: one warm-up epoch");
        Assert.AreEqual(MonitoredMetric.ValidationMeanIoU, segmenter.Monitor);

        Assert.AreEqual(0.1, new ImageClassifierOptions { PretrainedWeightsPath = "w.safetensors" }.ToTrainingOptions().BackboneLearningRateFactor);
        Assert.AreEqual(0.1, new SegmenterOptions { PretrainedEncoderWeightsPath = "w.pth" }.ToTrainingOptions().BackboneLearningRateFactor);
        Assert.AreEqual(1.0, new SegmenterOptions().ToTrainingOptions().BackboneLearningRateFactor);
    }

    [TestMethod]
    public void ClassifierTaskSettings_ReachTheLoop()
    {
        TrainingOptions training = new ImageClassifierOptions { LabelSmoothing = 0.1, MixupAlpha = 0.2, CutMixAlpha = 1.0 }.ToTrainingOptions();
        Assert.AreEqual(0.1, training.LabelSmoothing);
        Assert.AreEqual(0.2, training.MixupAlpha);
        Assert.AreEqual(1.0, training.CutMixAlpha);
    }

    [TestMethod]
    public void BadSharedSetting_IsRefusedNamingTheTasksOptionsClass()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new SegmenterOptions { Momentum = 1.5, Optimizer = OptimizerKind.Sgd }.ToTrainingOptions());
        StringAssert.Contains(error.Message, "SegmenterOptions.Momentum");
        error = Assert.ThrowsExactly<ArgumentException>(() => new ImageClassifierOptions { GradientAccumulationSteps = 0 }.ToTrainingOptions());
        StringAssert.Contains(error.Message, "ImageClassifierOptions.GradientAccumulationSteps");
        error = Assert.ThrowsExactly<ArgumentException>(() => new SegmenterOptions { ModelEmaDecay = 1 }.ToTrainingOptions());
        StringAssert.Contains(error.Message, "SegmenterOptions.ModelEmaDecay");
    }

    [TestMethod]
    public void EachTasksMetric_ReachesTheLoopAsItsMonitor()
    {
        var classifier = new[] { ClassifierMetric.ValidationAccuracy, ClassifierMetric.ValidationLoss, ClassifierMetric.TrainingLoss }
            .Select(m => new ImageClassifierOptions { EarlyStoppingMetric = m }.ToTrainingOptions().Monitor);
        CollectionAssert.AreEqual(new[] { MonitoredMetric.ValidationAccuracy, MonitoredMetric.ValidationLoss, MonitoredMetric.TrainingLoss }, classifier.ToArray());
        var segmenter = new[] { SegmenterMetric.ValidationMeanIoU, SegmenterMetric.ValidationLoss, SegmenterMetric.TrainingLoss }
            .Select(m => new SegmenterOptions { EarlyStoppingMetric = m }.ToTrainingOptions().Monitor);
        CollectionAssert.AreEqual(new[] { MonitoredMetric.ValidationMeanIoU, MonitoredMetric.ValidationLoss, MonitoredMetric.TrainingLoss }, segmenter.ToArray());
    }
}
