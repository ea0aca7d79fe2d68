using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class ClassifierTrainerTests
{
    private const int BatchSize = 30;

    public TestContext TestContext { get; set; } = null!;

    private static nn.Module<Tensor, Tensor> SmallNetwork(long seed) =>
        ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = seed, ZeroInitResidual = true });

    private static TrainingOptions Options(int epochs = 4) => new()
    {
        Epochs = epochs, LearningRate = 0.1, WarmupEpochs = 0.5, Schedule = LearningRateScheduleKind.Cosine, Seed = 3, LabelSmoothing = 0.05,
    };

    private static Dictionary<string, Tensor> Weights(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [TestMethod]
    public void Train_LearnsSyntheticTexturesToHighValidationAccuracy()
    {
        using var train = new TrainingTestData(480, 16, seed: 1);
        using var validation = new TrainingTestData(150, 16, seed: 2);
        var model = SmallNetwork(1);
        var reports = new List<EpochReport>();
        var trainer = new ClassifierTrainer(model, Options(5));
        TrainingResult result = trainer.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            () => validation.Epoch(0, BatchSize, shuffle: false), new SynchronousProgress<EpochReport>(reports.Add));

        Assert.AreEqual(5, reports.Count);
        Assert.IsTrue(result.History.Max(r => r.ValidationAccuracy!.Value) >= 0.95, string.Join(", ", result.History.Select(r => $"{r.ValidationAccuracy:P0}")));
        Assert.IsTrue(reports.Last().TrainingLoss < reports.First().TrainingLoss);
        Assert.IsTrue(reports.All(r => r.ImagesPerSecond > 0 && r.LearningRate > 0));
        Assert.AreEqual(result.History.Single(r => r.Epoch == result.BestEpoch).ValidationAccuracy, result.History.Max(r => r.ValidationAccuracy));
    }

    [TestMethod]
    public void Train_WithTheSameSeedAndDataOrder_IsReproducibleOnCpu()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        var first = SmallNetwork(5);
        var second = SmallNetwork(5);
        foreach (var model in new[] { first, second })
        {
            new ClassifierTrainer(model, Options(2)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        }

        var a = Weights(first);
        var b = Weights(second);
        Assert.IsTrue(a.All(kv => kv.Value.IsEqualTo(b[kv.Key])));
    }

    [TestMethod]
    public void CancelledRun_ResumedFromItsCheckpoint_EndsWithTheWeightsOfAnUninterruptedRun()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        var options = Options(4);

        var uninterrupted = SmallNetwork(7);
        new ClassifierTrainer(uninterrupted, options).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false));

        using var cancel = new CancellationTokenSource();
        var interrupted = SmallNetwork(7);
        var checkpointed = new TrainingOptions
        {
            Epochs = 4, LearningRate = 0.1, WarmupEpochs = 0.5, Seed = 3, LabelSmoothing = 0.05, CheckpointDirectory = directory,
        };
        Assert.ThrowsExactly<OperationCanceledException>(() => new ClassifierTrainer(interrupted, checkpointed).Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false),
            new SynchronousProgress<EpochReport>(r => { if (r.Epoch == 2) cancel.Cancel(); }), cancel.Token));
        Assert.AreEqual("epoch-0002", File.ReadAllText(Path.Combine(directory, "latest")).Trim());

        var resumed = SmallNetwork(99); // different initial weights: everything must come from the checkpoint
        TrainingResult result = new ClassifierTrainer(resumed, checkpointed).Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false));
        Assert.AreEqual(2, result.ResumedAfterEpoch);
        Assert.AreEqual(4, result.History.Count);
        var expected = Weights(uninterrupted);
        foreach (var (key, value) in Weights(resumed)) Assert.IsTrue(value.allclose(expected[key], rtol: 1e-5, atol: 1e-6), key);
        Assert.AreEqual(1, Directory.GetDirectories(directory, "epoch-*").Length, "older checkpoints are removed");
        Assert.AreEqual(0, Directory.GetDirectories(directory, ".*").Length, "no temporary directory is left");
    }

    [TestMethod]
    public void NonFiniteLoss_StopsWithAClearErrorAndRestoresTheEpochStartWeights()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork(2);
        var before = Weights(model);
        IEnumerable<(Tensor, Tensor)> WithNaNSecondBatch(int epoch)
        {
            int index = 0;
            foreach (var (images, labels) in train.Epoch(epoch, BatchSize))
            {
                if (index++ == 1) images.fill_(float.NaN);
                yield return (images, labels);
            }
        }

        var trainer = new ClassifierTrainer(model, new TrainingOptions { Epochs = 2, LearningRate = 0.1 });
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => trainer.Train(WithNaNSecondBatch, train.StepsPerEpoch(BatchSize)));
        StringAssert.Contains(error.Message, "epoch 1 (step 2");
        StringAssert.Contains(error.Message, "NaN pixels");
        foreach (var (key, value) in Weights(model)) Assert.IsTrue(value.IsEqualTo(before[key]), $"{key} restored to the epoch-start weights");
    }

    [TestMethod]
    public void HugeLearningRate_EndsInADivergenceErrorThatSuggestsALowerRate()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork(2);
        var trainer = new ClassifierTrainer(model, new TrainingOptions { Epochs = 20, LearningRate = 1e30, Momentum = 0.99, Schedule = LearningRateScheduleKind.Constant, WeightDecay = 0 });
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => trainer.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize)));
        StringAssert.Contains(error.Message, "LearningRate, e.g. 1E+29");
        Assert.IsTrue(model.parameters().All(p => p.isfinite().all().item<bool>()), "the kept weights are finite");
    }

    [TestMethod]
    public void EarlyStopping_EndsTrainingWhenValidationStopsImprovingAndRestoresTheBestEpoch()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        var model = SmallNetwork(4);
        Dictionary<string, Tensor>? bestSeen = null;
        // A constant tiny rate on the loss monitor: validation loss barely moves, patience 1 stops quickly.
        var options = new TrainingOptions
        {
            Epochs = 8, LearningRate = 1e-9, Schedule = LearningRateScheduleKind.Constant, Monitor = MonitoredMetric.ValidationAccuracy,
            EarlyStoppingPatience = 1, Seed = 1,
        };
        TrainingResult result = new ClassifierTrainer(model, options).Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false),
            new SynchronousProgress<EpochReport>(r => { if (r.IsBest) bestSeen = Weights(model); }));
        Assert.IsTrue(result.StoppedEarly);
        Assert.IsTrue(result.History.Count < 8);
        Assert.AreEqual(result.BestEpoch + 1, result.History.Count, "stopped one epoch (the patience) after the best");
        foreach (var (key, value) in Weights(model)) Assert.IsTrue(value.IsEqualTo(bestSeen![key]), key);
    }

    [TestMethod]
    public void EmptyTrainingData_IsAClearError()
    {
        var trainer = new ClassifierTrainer(SmallNetwork(1), Options(1));
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => trainer.Train(_ => Array.Empty<(Tensor, Tensor)>(), 1));
        StringAssert.Contains(error.Message, "empty");
    }

    [TestMethod]
    public void UnwritableCheckpointDirectory_IsAClearError()
    {
        string file = ModelTestSupport.TempFile(TestContext, ".txt");
        File.WriteAllText(file, "a file, not a directory");
        var options = Options(1);
        options.CheckpointDirectory = Path.Combine(file, "checkpoints");
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => new ClassifierTrainer(SmallNetwork(1), options).Train(_ => Array.Empty<(Tensor, Tensor)>(), 1));
        StringAssert.Contains(error.Message, "CheckpointDirectory");
    }

    [TestMethod]
    public void TrainingEpochs_DoNotLeakTensors()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork(1);
        long LiveTensors() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        new ClassifierTrainer(model, Options(1)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        long before = LiveTensors();
        new ClassifierTrainer(model, Options(3)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => train.Epoch(0, BatchSize, false));
        Assert.AreEqual(before, LiveTensors());
    }

    /// <summary>Calls the handler on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress<T> : IProgress<T>
    {
        private readonly Action<T> handler;

        public SynchronousProgress(Action<T> handler) => this.handler = handler;

        public void Report(T value) => handler(value);
    }
}
