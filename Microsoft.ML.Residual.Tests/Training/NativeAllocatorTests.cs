using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
[DoNotParallelize] // the allocator settings and their run count are process-wide
public sealed class NativeAllocatorTests
{
    private const int BatchSize = 30;

    private static nn.Module<Tensor, Tensor> SmallNetwork() =>
        ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 4 });

    private static TrainingOptions Options() => new() { Epochs = 2, LearningRate = 0.05, Seed = 6 };

    [TestMethod]
    public void OnLinuxWithGlibc_TheSettingsApplyExactlyWhileTrainingRuns()
    {
        Assert.AreEqual(RuntimeInformation.IsOSPlatform(OSPlatform.Linux), NativeAllocator.Applies, "The project's CI and tests run on glibc Linux.");
        using var train = new TrainingTestData(60, 12, seed: 1);
        var during = new List<int>();
        new TrainingLoop(SmallNetwork(), Options()).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            progress: new SynchronousProgress<EpochReport>(_ => during.Add(NativeAllocator.ActiveRuns)));

        int expected = NativeAllocator.Applies ? 1 : 0;
        CollectionAssert.AreEqual(new[] { expected, expected }, during);
        Assert.AreEqual(0, NativeAllocator.ActiveRuns);
    }

    [TestMethod]
    public void ACancelledOrFailingRun_GivesTheSettingsBack()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() =>
            new TrainingLoop(SmallNetwork(), Options()).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), cancellationToken: cancelled.Token));
        Assert.AreEqual(0, NativeAllocator.ActiveRuns);

        IEnumerable<(Tensor, Tensor)> Broken(int epoch) => throw new InvalidOperationException("the data source failed");
        Assert.Throws<InvalidOperationException>(() =>
            new TrainingLoop(SmallNetwork(), Options()).Train(Broken, 2));
        Assert.AreEqual(0, NativeAllocator.ActiveRuns);
    }

    [TestMethod]
    public void TrainingWithTheSettingsOnOrOff_EndsWithIdenticalWeights()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var weights = new List<Dictionary<string, Tensor>>();
        try
        {
            foreach (bool retain in new[] { true, false })
            {
                NativeAllocator.RetainFreedMemoryWhileTraining = retain;
                var model = SmallNetwork();
                new TrainingLoop(model, Options()).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
                weights.Add(model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
                Assert.AreEqual(0, NativeAllocator.ActiveRuns);
            }
        }
        finally
        {
            NativeAllocator.RetainFreedMemoryWhileTraining = true;
        }

        Assert.IsTrue(weights[0].All(kv => kv.Value.IsEqualTo(weights[1][kv.Key])));
    }

    [TestMethod]
    public void WithTheSettingOff_TrainingHoldsNoRun()
    {
        using var train = new TrainingTestData(30, 12, seed: 1);
        var during = new List<int>();
        try
        {
            NativeAllocator.RetainFreedMemoryWhileTraining = false;
            new TrainingLoop(SmallNetwork(), Options()).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
                progress: new SynchronousProgress<EpochReport>(_ => during.Add(NativeAllocator.ActiveRuns)));
        }
        finally
        {
            NativeAllocator.RetainFreedMemoryWhileTraining = true;
        }

        Assert.IsTrue(during.Count == 2 && during.All(n => n == 0));
    }
}
