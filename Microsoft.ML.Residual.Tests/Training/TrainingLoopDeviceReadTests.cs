using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

/// <summary>
/// The training loop reads device values (and so makes the host wait for a GPU) only every DeviceReadInterval batches and
/// once at the end of an epoch and of a validation pass; how often it reads changes nothing it computes.
/// </summary>
[TestClass]
public sealed class TrainingLoopDeviceReadTests
{
    private const int BatchSize = 12;

    private static nn.Module<Tensor, Tensor> SmallNetwork() =>
        ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 4, ZeroInitResidual = true });

    private static TrainingOptions Options() => new()
    {
        Epochs = 2, LearningRate = 0.1, Schedule = LearningRateScheduleKind.Cosine, Seed = 3, GradientClipNorm = 1.0,
    };

    private static (TrainingLoop Trainer, TrainingResult Result, List<BatchReport> Batches, Dictionary<string, Tensor> Weights) Train(int? interval, bool validate, bool meanIoU = false)
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        using var validation = new TrainingTestData(24, 12, seed: 2);
        var model = SmallNetwork();
        var batches = new List<BatchReport>();
        var trainer = new TrainingLoop(model, Options()) { DeviceReadInterval = interval, ComputeMeanIoU = meanIoU };
        TrainingResult result = trainer.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            validate ? () => validation.Epoch(0, BatchSize, shuffle: false) : null, batchProgress: new SynchronousProgress<BatchReport>(batches.Add));
        return (trainer, result, batches, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
    }

    [TestMethod]
    public void WithAnInterval_TheHostReadsOnlyEveryIntervalBatchesAndAtTheEpochEnds()
    {
        // 60 images in batches of 12: 5 batches an epoch; interval 2 reads after batches 2 and 4 and at the epoch's end.
        var (trainer, _, batches, _) = Train(interval: 2, validate: false);
        Assert.AreEqual(2 * 3, trainer.DeviceReads, "reads in 2 epochs of 5 steps");
        CollectionAssert.AreEqual(new[] { "1:2", "1:4", "2:2", "2:4" }, batches.Select(b => $"{b.Epoch}:{b.Batch}").ToArray(), "batch reports come with the reads");
    }

    [TestMethod]
    public void Validation_ReadsItsSumsAndItsConfusionMatrixOncePerPass()
    {
        var (withoutIoU, plain, _, _) = Train(interval: 5, validate: true);
        Assert.AreEqual(2 * (1 + 2), withoutIoU.DeviceReads,
            "per epoch: the training sums after batch 5, which is the epoch's end, the validation sums, and the confusion matrix (per-class recall)");
        Assert.IsTrue(plain.History.All(r => r.ValidationClassRecall!.Count == 3 && r.ValidationMeanIoU is null));
        var (withIoU, result, _, _) = Train(interval: 5, validate: true, meanIoU: true);
        Assert.AreEqual(2 * (1 + 2), withIoU.DeviceReads, "the mean IoU comes from the same confusion matrix: no further read");
        Assert.IsTrue(result.History.All(r => r.ValidationMeanIoU is >= 0 and <= 1));
    }

    [TestMethod]
    public void TheReadInterval_ChangesNeitherTheWeightsNorTheReportedEpochs()
    {
        var everyBatch = Train(interval: 1, validate: true, meanIoU: true);
        var everyThird = Train(interval: 3, validate: true, meanIoU: true);
        Assert.AreEqual(2 * (5 + 2), everyBatch.Trainer.DeviceReads, "every batch, and validation twice; the last batch's read serves the epoch's end");
        foreach (var (key, value) in everyBatch.Weights)
            Assert.IsTrue(value.IsEqualTo(everyThird.Weights[key]), $"{key}: the same computation, read at other times, gives the same bits");
        // The epoch reports are the same numbers: sums kept on the device in the same order whatever the read points.
        string Describe(EpochReport r) => $"{r.TrainingLoss:R} {r.TrainingAccuracy:R} {r.ValidationLoss:R} {r.ValidationAccuracy:R} {r.ValidationMeanIoU:R}";
        CollectionAssert.AreEqual(everyBatch.Result.History.Select(Describe).ToArray(), everyThird.Result.History.Select(Describe).ToArray());
    }

    [TestMethod]
    public void ANonFiniteLossBetweenReads_StopsAtTheNextReadAndRestoresTheEpochStartWeights()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var trainer = new TrainingLoop(model, Options()) { DeviceReadInterval = 4 };
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => trainer.Train(e => train.EpochWithNaNBatch(e, BatchSize, nanBatch: 1), train.StepsPerEpoch(BatchSize)));
        StringAssert.Contains(error.Message, "epoch 1 (in steps 1–4");
        Assert.AreEqual(1, trainer.DeviceReads, "stopped at the first read");
        foreach (var (key, value) in model.state_dict())
            Assert.IsTrue(value.IsEqualTo(before[key]), $"{key} restored to the epoch-start weights");
    }
}
