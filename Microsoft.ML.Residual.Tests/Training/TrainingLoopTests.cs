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
public sealed class TrainingLoopTests
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
        var trainer = new TrainingLoop(model, Options(5));
        TrainingResult result = trainer.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            () => validation.Epoch(0, BatchSize, shuffle: false), new SynchronousProgress<EpochReport>(reports.Add));

        Assert.AreEqual(5, reports.Count);
        TestContext.WriteLine("validation accuracy by epoch: " + string.Join(", ", result.History.Select(r => $"{r.ValidationAccuracy:P1}")));
        // A training outcome (97.3 % after 5 epochs here, still rising): 90 % of 150 images leaves 11 images of room for
        // another CPU's rounding to take the training along another path, and is far above chance (33 %).
        Assert.IsTrue(result.History.Max(r => r.ValidationAccuracy!.Value) >= 0.9, string.Join(", ", result.History.Select(r => $"{r.ValidationAccuracy:P0}")));
        Assert.IsTrue(reports.Last().TrainingLoss < reports.First().TrainingLoss);
        Assert.IsTrue(reports.All(r => r.ImagesPerSecond > 0 && r.LearningRate > 0));
        Assert.IsTrue(reports.All(r => r.GpuMemoryMegabytes is null), "a GPU memory figure was reported for a CPU run");
        Assert.AreEqual(result.History.Single(r => r.Epoch == result.BestEpoch).ValidationAccuracy, result.History.Max(r => r.ValidationAccuracy));
    }

    [TestMethod]
    public void BatchProgress_ReportsEveryBatchWithTheRunningEpochLossAndACountdown()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        var epochs = new List<EpochReport>();
        var batches = new List<BatchReport>();
        new TrainingLoop(SmallNetwork(2), Options(2)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            progress: new SynchronousProgress<EpochReport>(epochs.Add), batchProgress: new SynchronousProgress<BatchReport>(batches.Add));

        long perEpoch = train.StepsPerEpoch(BatchSize);
        Assert.AreEqual(2 * perEpoch, batches.Count);
        CollectionAssert.AreEqual(
            Enumerable.Range(1, 2).SelectMany(e => Enumerable.Range(1, (int)perEpoch).Select(b => $"{e}/2 {b}/{perEpoch}")).ToList(),
            batches.Select(b => $"{b.Epoch}/{b.Epochs} {b.Batch}/{b.BatchesPerEpoch}").ToList());
        foreach (EpochReport epoch in epochs)
            Assert.AreEqual(epoch.TrainingLoss, batches.Last(b => b.Epoch == epoch.Epoch).Loss, "the last batch's running loss is the epoch's loss (the same lossSum / images)");
        Assert.IsTrue(batches.All(b => b.ImagesPerSecond > 0 && b.LearningRate > 0 && double.IsFinite(b.Loss)));
        Assert.IsTrue(batches[0].EstimatedRemaining > TimeSpan.Zero);
        Assert.AreEqual(TimeSpan.Zero, batches[^1].EstimatedRemaining);
        Assert.IsTrue(batches.Zip(batches.Skip(1)).All(p => p.Second.Elapsed >= p.First.Elapsed));
    }

    [TestMethod]
    public void Train_WithTheSameSeedAndDataOrder_IsReproducibleOnCpu()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        var first = SmallNetwork(5);
        var second = SmallNetwork(5);
        foreach (var model in new[] { first, second })
        {
            new TrainingLoop(model, Options(2)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        }

        var a = Weights(first);
        var b = Weights(second);
        Assert.IsTrue(a.All(kv => kv.Value.IsEqualTo(b[kv.Key])));
    }

    [TestMethod]
    [DataRow(null, DisplayName = "the CPU default: channels-last batches and weights")]
    [DataRow(true, DisplayName = "channels-last batches and weights")]
    public void ChannelsLast_TrainsTheSameNetworkAsTheDefaultLayout_UpToRounding(bool? channelsLast)
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        var results = new List<(Dictionary<string, Tensor> Weights, TrainingResult Result)>();
        foreach (bool? layout in new[] { channelsLast, false })
        {
            var model = SmallNetwork(9);
            TrainingOptions options = Options(2);
            options.ChannelsLast = layout;
            // While training channels-last (null: the CPU's default), the 3×3 convolution weights are laid out channels-last.
            var layouts = new List<bool>();
            var firstConvolution = model.named_parameters().First(p => p.parameter.dim() == 4 && p.parameter.shape[2] == 3).parameter;
            TrainingResult result = new TrainingLoop(model, options).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
                () => validation.Epoch(0, BatchSize, shuffle: false), new SynchronousProgress<EpochReport>(_ => layouts.Add(!firstConvolution.is_contiguous())));
            Assert.IsTrue(layouts.All(channelsLastWeights => channelsLastWeights == (layout ?? true)), $"ChannelsLast = {layout}: weights channels-last in each epoch: {string.Join(", ", layouts)}");
            results.Add((Weights(model), result));
        }

        // Not a rounding bound: the layouts' convolutions sum the same products in other orders (each within rounding of
        // float64, Models/ConvolutionPathsTests), and six SGD steps at rate 0.1 carry those ulp-sized differences into the
        // weights with an amplification no closed form gives (measured here: ≤ 2.4e-7 in the weights, ≤ 2e-7 in the
        // losses). The tolerances sit between that, with room for a thousandfold amplification, and what a wrong
        // convolution does (a step of rate × gradient, ≳ 1e-2). Deterministic per machine: fixed seeds and data order.
        var (channelsLastWeights, channelsLastResult) = results[0];
        var (defaultWeights, defaultResult) = results[1];
        foreach (var (key, value) in defaultWeights)
        {
            Assert.IsTrue(channelsLastWeights[key].is_contiguous(), $"{key} left in another memory layout");
            double difference = (channelsLastWeights[key].to_type(ScalarType.Float64) - value.to_type(ScalarType.Float64)).abs().max().item<double>();
            Assert.IsTrue(difference < 1e-3, $"{key} differs by {difference}");
        }

        for (int epoch = 0; epoch < 2; epoch++)
        {
            Assert.AreEqual(defaultResult.History[epoch].TrainingLoss, channelsLastResult.History[epoch].TrainingLoss, 1e-4);
            Assert.AreEqual(defaultResult.History[epoch].ValidationLoss!.Value, channelsLastResult.History[epoch].ValidationLoss!.Value, 1e-4);
        }
    }

    [TestMethod]
    public void CancelledRun_ResumedFromItsCheckpoint_EndsWithTheWeightsOfAnUninterruptedRun()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        var options = Options(4);

        var uninterrupted = SmallNetwork(7);
        new TrainingLoop(uninterrupted, options).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false));

        using var cancel = new CancellationTokenSource();
        var interrupted = SmallNetwork(7);
        var checkpointed = new TrainingOptions
        {
            Epochs = 4, LearningRate = 0.1, WarmupEpochs = 0.5, Seed = 3, LabelSmoothing = 0.05, CheckpointDirectory = directory,
        };
        Assert.ThrowsExactly<OperationCanceledException>(() => new TrainingLoop(interrupted, checkpointed).Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false),
            new SynchronousProgress<EpochReport>(r => { if (r.Epoch == 2) cancel.Cancel(); }), cancel.Token));
        Assert.AreEqual("epoch-0002", File.ReadAllText(Path.Combine(directory, "latest")).Trim());

        var resumed = SmallNetwork(99); // different initial weights: everything must come from the checkpoint
        TrainingResult result = new TrainingLoop(resumed, checkpointed).Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, false));
        Assert.AreEqual(2, result.ResumedAfterEpoch);
        Assert.AreEqual(4, result.History.Count);
        var expected = Weights(uninterrupted);
        // Bit for bit: the checkpoint holds the weights, statistics and optimiser state exactly (float32 as float32), the
        // epochs' data order comes from the seed and the epoch, and the remaining steps are the same float32 operations.
        foreach (var (key, value) in Weights(resumed)) Assert.IsTrue(value.IsEqualTo(expected[key]), key);
        Assert.AreEqual(1, Directory.GetDirectories(directory, "epoch-*").Length, "older checkpoints are removed");
        Assert.AreEqual(0, Directory.GetDirectories(directory, ".*").Length, "no temporary directory is left");
    }

    [TestMethod]
    public void FreezeBackboneEpochs_TrainsOnlyTheHeadKeepingBatchNormStatistics_ThenTrainsEverything()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        var model = SmallNetwork(2);
        var initial = Weights(model);
        Dictionary<string, Tensor>? afterFrozenEpoch = null;
        var options = Options(2);
        options.FreezeBackboneEpochs = 1;
        options.BackboneLearningRateFactor = 0.5;
        options.RestoreBestWeights = false;
        var reports = new List<EpochReport>();
        new TrainingLoop(model, options, headPrefix: "fc.").Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            progress: new SynchronousProgress<EpochReport>(r =>
            {
                reports.Add(r);
                if (r.Epoch == 1) afterFrozenEpoch = Weights(model);
            }));

        Assert.IsNotNull(afterFrozenEpoch);
        foreach (var (key, value) in initial)
        {
            if (key.StartsWith("fc.", StringComparison.Ordinal))
                Assert.IsFalse(value.IsEqualTo(afterFrozenEpoch[key]), $"{key}: the head trains in the frozen phase");
            else
                Assert.IsTrue(value.IsEqualTo(afterFrozenEpoch[key]), $"{key}: the backbone, BatchNorm running statistics included, is untouched while frozen");
        }

        var final = Weights(model);
        Assert.IsFalse(final["conv1.weight"].IsEqualTo(afterFrozenEpoch["conv1.weight"]), "the backbone trains after the unfreeze");
        Assert.IsFalse(final["bn1.running_mean"].IsEqualTo(afterFrozenEpoch["bn1.running_mean"]), "BatchNorm statistics update after the unfreeze");
        Assert.IsTrue(model.parameters().All(p => p.requires_grad), "every parameter is trainable again after training");
        Assert.AreEqual(2, reports.Count);
    }

    [TestMethod]
    public void FreezeBackboneEpochs_WithoutAHeadPrefix_IsRejected()
    {
        var options = Options(2);
        options.FreezeBackboneEpochs = 1;
        var error = Assert.ThrowsExactly<ArgumentException>(() => new TrainingLoop(SmallNetwork(1), options));
        StringAssert.Contains(error.Message, "headPrefix");
        Assert.ThrowsExactly<ArgumentException>(() => new TrainingLoop(SmallNetwork(1), Options(2), headPrefix: "classifier."));
    }

    [TestMethod]
    public void PhasedSchedule_RestartsWarmUpAndDecayWhenTheBackboneUnfreezes()
    {
        var options = new TrainingOptions { Epochs = 4, LearningRate = 1.0, WarmupEpochs = 1, FreezeBackboneEpochs = 2, Schedule = LearningRateScheduleKind.Cosine };
        var schedule = new PhasedSchedule(options, stepsPerEpoch: 10);
        // Warm-up is peak·(step + 1)/steps: 1·1/10 is one correctly rounded division, as the literal 0.1 is; 1·10/10 is 1.
        Assert.AreEqual(0.1, schedule.At(0), "warm-up of the frozen phase");
        Assert.AreEqual(1.0, schedule.At(9), "peak at the end of the frozen phase's warm-up");
        Assert.IsTrue(schedule.At(19) < 0.05, "the frozen phase decays to about zero");
        Assert.AreEqual(0.1, schedule.At(20), "the unfrozen phase warms up again");
        Assert.AreEqual(1.0, schedule.At(29));
        // Without frozen epochs the phased schedule is the plain one: the same computation.
        var plain = new PhasedSchedule(new TrainingOptions { Epochs = 4, LearningRate = 1.0, WarmupEpochs = 1 }, 10);
        var reference = new LearningRateSchedule(new TrainingOptions { Epochs = 4, LearningRate = 1.0, WarmupEpochs = 1 }, 10);
        for (int step = 0; step < 40; step++) Assert.AreEqual(reference.At(step), plain.At(step));
    }

    [TestMethod]
    public void AddedHook_IsCalledAtEveryPointInOrder_AndSeesBatchesLaidOutAndMixedForTrainingOnly()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        var options = Options(2);
        options.MixupAlpha = 0.4;
        options.ChannelsLast = true;
        var trainer = new TrainingLoop(SmallNetwork(1), options);
        var recorder = new RecordingHook();
        trainer.Hooks.Add(recorder);
        trainer.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => validation.Epoch(0, BatchSize, shuffle: false));

        string epoch(int e) => $"BeforeEpoch {e}, BeforeBatch train mixed, AfterStep, BeforeBatch train mixed, AfterStep, BeforeValidation, BeforeBatch validation plain, AfterEpoch {e}";
        Assert.AreEqual($"BeforeOptimizer, BeforeRun, {epoch(1)}, {epoch(2)}, AfterRun, Cleanup", string.Join(", ", recorder.Calls));
        Assert.IsTrue(recorder.BatchesChannelsLast, "the layout hook, which comes first, lays batches out before added hooks see them");
    }

    [TestMethod]
    public void Mixup_BlendsEachImageWithItsPartnerAndReturnsThePartnersLabels()
    {
        using var scope = NewDisposeScope();
        // Image i is filled with the value i, its label is i: the partner of each image can be read off the pixels.
        Tensor images = TensorTestExtensions.FloatRange(6).reshape(6, 1, 1, 1).expand(6, 1, 4, 4).contiguous();
        Tensor labels = TensorTestExtensions.LongRange(6);
        var mixing = BatchMixing.Create(new TrainingOptions { MixupAlpha = 0.4, Seed = 1 }, epoch: 1)!;
        var mixed = mixing.Mix(images, labels)!;
        Assert.IsTrue(mixed.Lambda is >= 0 and <= 1);
        Tensor expected = images.Times(mixed.Lambda).Plus(mixed.OtherLabels.to_type(float32).reshape(6, 1, 1, 1).Times(1 - mixed.Lambda));
        // The same two float32 products and one sum of the same values, element by element: bit for bit.
        Assert.IsTrue(mixed.Images.IsEqualTo(expected.expand(6, 1, 4, 4)));
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 6).Select(i => (long)i).ToArray(), mixed.OtherLabels.data<long>().ToArray(), "the partners are a permutation");
    }

    [TestMethod]
    public void CutMix_PastesABoxFromThePartnerAndWeighsLabelsByTheKeptArea()
    {
        using var scope = NewDisposeScope();
        Tensor images = TensorTestExtensions.FloatRange(8).reshape(8, 1, 1, 1).expand(8, 1, 10, 10).contiguous();
        Tensor labels = TensorTestExtensions.LongRange(8);
        var mixing = BatchMixing.Create(new TrainingOptions { CutMixAlpha = 1.0, Seed = 4 }, epoch: 2)!;
        int checkedBatches = 0;
        for (int draw = 0; draw < 20; draw++)
        {
            var mixed = mixing.Mix(images, labels)!;
            long[] partners = mixed.OtherLabels.data<long>().ToArray();
            for (int i = 0; i < 8; i++)
            {
                if (partners[i] == i) continue;
                float[] pixels = mixed.Images[i].data<float>().ToArray();
                Assert.IsTrue(pixels.All(v => v == i || v == partners[i]), "every pixel comes from the image or its partner");
                // 1 − box/100 against kept/100 in float64: three roundings of numbers ≤ 1.
                Assert.AreEqual(mixed.Lambda, pixels.Count(v => v == i) / 100.0, Numerics.Float64Error(3, 1.0), "λ is the share of the image that stayed");
                checkedBatches++;
            }
        }

        Assert.IsTrue(checkedBatches > 0);
    }

    [TestMethod]
    public void CutMix_OnMasks_PastesTheSameBoxIntoImageAndMask_AndWeighsTheMixedMaskAlone()
    {
        using var scope = NewDisposeScope();
        // Image i and its mask are filled with i: a pasted pixel shows the partner in both.
        Tensor images = TensorTestExtensions.FloatRange(6).reshape(6, 1, 1, 1).expand(6, 2, 8, 8).contiguous();
        Tensor masks = TensorTestExtensions.LongRange(6).reshape(6, 1, 1).expand(6, 8, 8).contiguous();
        var mixing = BatchMixing.Create(new TrainingOptions { CutMixAlpha = 1.0, Seed = 3 }, epoch: 1)!;
        int pasted = 0;
        for (int draw = 0; draw < 10; draw++)
        {
            var mixed = mixing.Mix(images, masks)!;
            Assert.AreEqual(0.0, mixed.Lambda, "the mixed mask is the only target");
            CollectionAssert.AreEqual(masks.shape, mixed.OtherLabels.shape);
            for (int i = 0; i < 6; i++)
            {
                float[] pixels = mixed.Images[i][0].data<float>().ToArray();
                long[] mask = mixed.OtherLabels[i].data<long>().ToArray();
                for (int p = 0; p < 64; p++) Assert.AreEqual((long)pixels[p], mask[p], $"draw {draw}, image {i}, pixel {p}");
                pasted += mask.Count(v => v != i);
            }
        }

        Assert.IsTrue(pasted > 0, "some box was pasted");
        CollectionAssert.AreEqual(Enumerable.Range(0, 6).SelectMany(i => Enumerable.Repeat((long)i, 64)).ToArray(), masks.data<long>().ToArray(), "the input masks are unchanged");
    }

    [TestMethod]
    public void BetaSamples_HaveTheMeanAndVarianceOfBetaAlphaAlpha()
    {
        foreach (double alpha in new[] { 0.2, 1.0, 2.0 })
        {
            var random = new Random(11);
            double[] draws = Enumerable.Range(0, 40000).Select(_ => BatchMixing.SampleBeta(alpha, random)).ToArray();
            double mean = draws.Average(), variance = draws.Select(d => (d - mean) * (d - mean)).Average();
            Assert.IsTrue(draws.All(d => d is >= 0 and <= 1));
            // Statistical, with a fixed seed: 0.01 is ≥ 4.7 standard errors of the mean of 40,000 draws (√(var/N) ≤ 0.0021),
            // and 5 % of the variance ≥ 9 standard errors of the sample variance (Beta(α, α) has kurtosis 3 − 6/(2α + 3)).
            Assert.AreEqual(0.5, mean, 0.01, $"α = {alpha}");
            Assert.AreEqual(1 / (4 * (2 * alpha + 1)), variance, 0.05 / (4 * (2 * alpha + 1)), $"α = {alpha}");
        }
    }

    [TestMethod]
    public void TrainingWithMixupAndCutMix_IsReproducibleAndFinite()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        var options = Options(2);
        options.MixupAlpha = 0.4;
        options.CutMixAlpha = 1.0;
        var first = SmallNetwork(5);
        var second = SmallNetwork(5);
        TrainingResult result = new TrainingLoop(first, options).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        new TrainingLoop(second, options).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        Assert.IsTrue(result.History.All(r => double.IsFinite(r.TrainingLoss)));
        var a = Weights(first);
        var b = Weights(second);
        Assert.IsTrue(a.All(kv => kv.Value.IsEqualTo(b[kv.Key])));
        var plain = SmallNetwork(5);
        new TrainingLoop(plain, Options(2)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        Assert.IsFalse(Weights(plain)["fc.weight"].IsEqualTo(a["fc.weight"]), "mixing changes what is learned");
    }

    [TestMethod]
    public void NonFiniteLoss_StopsWithAClearErrorAndRestoresTheEpochStartWeights()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork(2);
        var before = Weights(model);
        var trainer = new TrainingLoop(model, new TrainingOptions { Epochs = 2, LearningRate = 0.1 });
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => trainer.Train(e => train.EpochWithNaNBatch(e, BatchSize, nanBatch: 1), train.StepsPerEpoch(BatchSize)));
        StringAssert.Contains(error.Message, "epoch 1 (step 2");
        StringAssert.Contains(error.Message, "NaN pixels");
        foreach (var (key, value) in Weights(model)) Assert.IsTrue(value.IsEqualTo(before[key]), $"{key} restored to the epoch-start weights");
    }

    [TestMethod]
    public void HugeLearningRate_EndsInADivergenceErrorThatSuggestsALowerRate()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork(2);
        var trainer = new TrainingLoop(model, new TrainingOptions { Epochs = 20, LearningRate = 1e30, Momentum = 0.99, Schedule = LearningRateScheduleKind.Constant, WeightDecay = 0 });
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
        TrainingResult result = new TrainingLoop(model, options).Train(
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
        var trainer = new TrainingLoop(SmallNetwork(1), Options(1));
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
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => new TrainingLoop(SmallNetwork(1), options).Train(_ => Array.Empty<(Tensor, Tensor)>(), 1));
        StringAssert.Contains(error.Message, "CheckpointDirectory");
    }

    [TestMethod]
    public void TrainingEpochs_DoNotLeakTensors()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        var model = SmallNetwork(1);
        long LiveTensors() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        new TrainingLoop(model, Options(1)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        long before = LiveTensors();
        new TrainingLoop(model, Options(3)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize), () => train.Epoch(0, BatchSize, false));
        Assert.AreEqual(before, LiveTensors());
    }
}

internal sealed class RecordingHook : TrainingHook
{
    public List<string> Calls { get; } = new();

    public bool BatchesChannelsLast { get; private set; } = true;

    public override void BeforeOptimizer(TrainingState state) => Calls.Add("BeforeOptimizer");

    public override void BeforeRun(TrainingState state) => Calls.Add("BeforeRun");

    public override void BeforeEpoch(TrainingState state) => Calls.Add($"BeforeEpoch {state.Epoch}");

    public override void BeforeBatch(TrainingState state, TrainingBatch batch)
    {
        // A mixed batch's loss is no longer the plain loss against its labels: the mixing hook replaced it by a blend.
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        Tensor logits = rand(batch.Labels.shape[0], 3, generator: generator);
        bool mixed = batch.Loss(logits).item<float>() != batch.LossOf(logits, batch.Labels).item<float>();
        Calls.Add($"BeforeBatch {(batch.Training ? "train" : "validation")} {(mixed ? "mixed" : "plain")}");
        BatchesChannelsLast &= ChannelsLastLayout.IsChannelsLast(batch.Images);
    }

    public override void AfterStep(TrainingState state) => Calls.Add("AfterStep");

    public override void BeforeValidation(TrainingState state) => Calls.Add("BeforeValidation");

    public override void AfterEpoch(TrainingState state) => Calls.Add($"AfterEpoch {state.Epoch}");

    public override void AfterRun(TrainingState state) => Calls.Add("AfterRun");

    public override void Cleanup(TrainingState state) => Calls.Add("Cleanup");
}
