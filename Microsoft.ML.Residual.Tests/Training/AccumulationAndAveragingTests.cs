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

/// <summary>Gradient accumulation (<see cref="TrainingOptions.GradientAccumulationSteps"/>) and the moving average of the weights (<see cref="TrainingOptions.ModelEmaDecay"/>).</summary>
[TestClass]
public sealed class AccumulationAndAveragingTests
{
    public TestContext TestContext { get; set; } = null!;

    // A convolution, a pooled linear head, no BatchNorm: its gradient over a batch is the mean of its rows' gradients, so
    // accumulated batches must give exactly the big batch's step. In float64, so that rounding stays far below any real difference.
    private static nn.Module<Tensor, Tensor> NetworkWithoutBatchNorm(long seed)
    {
        manual_seed(seed);
        var model = nn.Sequential(("conv", nn.Conv2d(3, 8, 3, padding: 1)), ("relu", nn.ReLU()), ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()), ("fc", nn.Linear(8, 3)));
        model.to(ScalarType.Float64);
        return model;
    }

    private static TrainingOptions Sgd(int epochs) => new()
    {
        Epochs = epochs, LearningRate = 0.2, Momentum = 0.9, WeightDecay = 1e-3, WarmupEpochs = 1, Schedule = LearningRateScheduleKind.Cosine,
        Seed = 5, RestoreBestWeights = false,
    };

    private static IEnumerable<(Tensor Images, Tensor Labels)> InFloat64(IEnumerable<(Tensor Images, Tensor Labels)> batches) =>
        batches.Select(b => (b.Images.to_type(ScalarType.Float64), b.Labels));

    private static Dictionary<string, Tensor> Weights(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().to_type(ScalarType.Float64, copy: true).DetachFromDisposeScope());

    [TestMethod]
    [DataRow(64, 8, 4, DisplayName = "4 batches of 8 per step, 2 steps an epoch")]
    [DataRow(40, 8, 2, DisplayName = "2 batches of 8 per step, the epoch's last step from 1 batch")]
    public void AccumulatedBatches_EndWithTheWeightsOfOneBatchAsLargeAsTheGroup_ForANetworkWithoutBatchNorm(int images, int batchSize, int accumulation)
    {
        using var data = new TrainingTestData(images, 6, seed: 4);
        int large = batchSize * accumulation;
        var accumulated = NetworkWithoutBatchNorm(3);
        var plain = NetworkWithoutBatchNorm(3);
        TrainingOptions options = Sgd(3);
        options.GradientAccumulationSteps = accumulation;
        TrainingResult accumulatedRun = new TrainingLoop(accumulated, options).Train(e => InFloat64(data.Epoch(e, batchSize)), data.StepsPerEpoch(batchSize));
        TrainingResult plainRun = new TrainingLoop(plain, Sgd(3)).Train(e => InFloat64(data.Epoch(e, large)), data.StepsPerEpoch(large));

        // Both sum the same per-image gradients in another grouping: rounding only. The bound is float64's worst case for every
        // multiply-add behind one weight's update over the run (steps × images × the longest dot product, 8 × 9 = 72 here),
        // relative to the largest weight; a step that did not divide by the group's size, or skipped the short group, moves
        // weights by the rate times a gradient, ≳ 1e-3.
        long operations = data.Count * 3 * 72;
        Dictionary<string, Tensor> expected = Weights(plain);
        foreach (var (key, value) in Weights(accumulated))
        {
            double bound = Numerics.Gamma(operations, Numerics.Float64Roundoff) * Math.Max(1, Numerics.LargestMagnitude(expected[key]));
            Numerics.AssertWithin(value, expected[key], bound, key);
        }

        // The reported training loss is the mean over the same images.
        for (int epoch = 0; epoch < 3; epoch++)
            Assert.AreEqual(plainRun.History[epoch].TrainingLoss, accumulatedRun.History[epoch].TrainingLoss, Numerics.Gamma(operations, Numerics.Float64Roundoff) * 10);
    }

    [TestMethod]
    [DataRow(3L, new[] { 2, 1, 1, 1 }, DisplayName = "5 batches where 3 were stated: one group of 2, then each batch alone")]
    [DataRow(6L, new[] { 4, 1 }, DisplayName = "5 batches where 6 were stated: the last group's 1 batch is its mean")]
    public void AccumulatedBatches_WhenAnEpochGivesOtherThanTheStatedCount_StepLikeTheBatchesItGave(long statedSteps, int[] groups)
    {
        using var data = new TrainingTestData(40, 6, seed: 4);
        TrainingOptions Constant(int accumulation) => new()
        {
            Epochs = 2, LearningRate = 0.2, Momentum = 0.9, Schedule = LearningRateScheduleKind.Constant, Seed = 5, RestoreBestWeights = false,
            GradientAccumulationSteps = accumulation,
        };
        // The plain run gets the accumulated groups as single batches (a constant rate, so the step count does not matter).
        IEnumerable<(Tensor Images, Tensor Labels)> Grouped(int epoch)
        {
            var batches = InFloat64(data.Epoch(epoch, 8)).ToList();
            int at = 0;
            foreach (int size in groups)
            {
                var part = batches.Skip(at).Take(size).ToList();
                at += size;
                yield return (cat(part.Select(b => b.Images).ToList(), 0), cat(part.Select(b => b.Labels).ToList(), 0));
                foreach (var (images, labels) in part)
                {
                    images.Dispose();
                    labels.Dispose();
                }
            }
        }

        var accumulated = NetworkWithoutBatchNorm(8);
        var plain = NetworkWithoutBatchNorm(8);
        new TrainingLoop(accumulated, Constant(groups[0])).Train(e => InFloat64(data.Epoch(e, 8)), statedSteps);
        new TrainingLoop(plain, Constant(1)).Train(Grouped, groups.Length);

        long operations = data.Count * 2 * 72;
        Dictionary<string, Tensor> expected = Weights(plain);
        foreach (var (key, value) in Weights(accumulated))
            Numerics.AssertWithin(value, expected[key], Numerics.Gamma(operations, Numerics.Float64Roundoff) * Math.Max(1, Numerics.LargestMagnitude(expected[key])), key);
    }

    [TestMethod]
    public void Accumulation_StepsTheOptimiserOncePerGroup_AndTheScheduleCountsSteps()
    {
        using var data = new TrainingTestData(40, 6, seed: 4);
        TrainingOptions options = Sgd(2);
        options.GradientAccumulationSteps = 2;
        var loop = new TrainingLoop(NetworkWithoutBatchNorm(1), options);
        var steps = new StepRecorder();
        loop.Hooks.Add(steps);
        TrainingResult result = loop.Train(e => InFloat64(data.Epoch(e, 8)), data.StepsPerEpoch(8));

        // 5 batches an epoch in groups of 2, 2 and 1: 3 steps an epoch, counted on.
        CollectionAssert.AreEqual(new long[] { 1, 2, 3, 4, 5, 6 }, steps.Steps);
        // The cosine schedule over 3 steps an epoch: the last step of epoch 1 ends the one-epoch warm-up.
        var schedule = new LearningRateSchedule(options, 3);
        Assert.AreEqual(schedule.At(2), result.History[0].LearningRate, 1e-15);
        Assert.AreEqual(schedule.At(5), result.History[1].LearningRate, 1e-15);
    }

    [TestMethod]
    public void ModelEma_IsTheWarmedUpAverageOfTheWeightsAfterEveryStep_AndIsWhatTrainingReturns()
    {
        using var data = new TrainingTestData(48, 6, seed: 4);
        const double decay = 0.8;
        // The same run twice: once averaging, once recording the trained weights after each step.
        var averaged = NetworkWithoutBatchNorm(2);
        TrainingOptions options = Sgd(2);
        options.ModelEmaDecay = decay;
        new TrainingLoop(averaged, options).Train(e => InFloat64(data.Epoch(e, 8)), data.StepsPerEpoch(8));

        var trained = NetworkWithoutBatchNorm(2);
        Dictionary<string, Tensor> expected = Weights(trained);
        var steps = new StepRecorder();
        var loop = new TrainingLoop(trained, Sgd(2));
        loop.Hooks.Add(steps);
        loop.Train(e => InFloat64(data.Epoch(e, 8)), data.StepsPerEpoch(8));
        Assert.AreEqual(12, steps.Weights.Count);
        for (int t = 0; t < steps.Weights.Count; t++)
        {
            double d = Math.Min(decay, (1.0 + t) / (10.0 + t));
            foreach (string key in expected.Keys.ToList()) expected[key] = expected[key].Times(d).Plus(steps.Weights[t][key].Times(1 - d));
        }

        // 12 updates of two multiply-adds each, in float64.
        foreach (var (key, value) in Weights(averaged))
            Numerics.AssertWithin(value, expected[key], Numerics.Float64Error(12 * 3, Math.Max(1, Numerics.LargestMagnitude(expected[key]))), key);
    }

    [TestMethod]
    public void ModelEma_IsWhatValidationMeasures_NotTheTrainedWeights()
    {
        using var train = new TrainingTestData(48, 6, seed: 4);
        using var validation = new TrainingTestData(24, 6, seed: 5);
        var model = NetworkWithoutBatchNorm(6);
        TrainingOptions options = Sgd(3);
        options.ModelEmaDecay = 0.9;
        var loop = new TrainingLoop(model, options);
        var steps = new StepRecorder();
        loop.Hooks.Add(steps);
        TrainingResult result = loop.Train(e => InFloat64(train.Epoch(e, 8)), train.StepsPerEpoch(8), () => InFloat64(validation.Epoch(0, 8, shuffle: false)));
        double reported = result.History[^1].ValidationLoss!.Value;

        // The model returned holds the average (no best epoch restored here): its loss is the last epoch's validation loss, up to
        // float64 rounding of the same forward pass (at most 27 + 36 + 8 multiply-adds and a 3-way log-softmax per image) and of
        // the mean over 24 images.
        double bound = Numerics.Float64Error(27 + 36 + 8 + 10 + 24, reported);
        Assert.AreEqual(LossOf(model, validation), reported, bound);
        var trained = NetworkWithoutBatchNorm(6);
        using (no_grad())
            foreach (var (key, value) in trained.state_dict()) value.copy_(steps.Weights[^1][key]);
        double trainedLoss = LossOf(trained, validation);
        Assert.IsTrue(Math.Abs(trainedLoss - reported) > 1000 * bound, $"validation measured the trained weights ({trainedLoss}), not the average ({reported})");
    }

    // The mean cross-entropy of a network over data's images in evaluation mode.
    private static double LossOf(nn.Module<Tensor, Tensor> model, TrainingTestData data)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        double sum = 0;
        foreach (var (images, labels) in InFloat64(data.Epoch(0, 8, shuffle: false)))
            sum += nn.functional.cross_entropy(model.call(images), labels).item<double>() * labels.shape[0];
        return sum / data.Count;
    }

    [TestMethod]
    public void CancelledRunWithAveragingAndAccumulation_ResumedFromItsCheckpoint_EndsWithTheWeightsOfAnUninterruptedRun()
    {
        using var train = new TrainingTestData(90, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        TrainingOptions Options(string? checkpoints) => new()
        {
            Epochs = 4, LearningRate = 0.1, WarmupEpochs = 0.5, Seed = 3, ModelEmaDecay = 0.9, GradientAccumulationSteps = 2, CheckpointDirectory = checkpoints,
        };
        nn.Module<Tensor, Tensor> Network(long seed) => ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = seed, ZeroInitResidual = true });

        var uninterrupted = Network(7);
        TrainingResult expectedRun = new TrainingLoop(uninterrupted, Options(null)).Train(e => train.Epoch(e, 15), train.StepsPerEpoch(15), () => validation.Epoch(0, 15, false));

        using var cancel = new CancellationTokenSource();
        Assert.ThrowsExactly<OperationCanceledException>(() => new TrainingLoop(Network(7), Options(directory)).Train(
            e => train.Epoch(e, 15), train.StepsPerEpoch(15), () => validation.Epoch(0, 15, false),
            new SynchronousProgress<EpochReport>(r => { if (r.Epoch == 2) cancel.Cancel(); }), cancel.Token));
        Assert.IsTrue(File.Exists(Path.Combine(directory, "epoch-0002", "averaged-weights.safetensors")), "the checkpoint keeps the average");

        var resumed = Network(99); // other initial weights: everything must come from the checkpoint
        TrainingResult result = new TrainingLoop(resumed, Options(directory)).Train(e => train.Epoch(e, 15), train.StepsPerEpoch(15), () => validation.Epoch(0, 15, false));
        Assert.AreEqual(2, result.ResumedAfterEpoch);
        // Bit for bit, as without averaging: the checkpoint holds trained and averaged weights, statistics and optimiser state.
        var expected = Weights(uninterrupted);
        foreach (var (key, value) in Weights(resumed)) Assert.IsTrue(value.IsEqualTo(expected[key]), key);
        for (int epoch = 2; epoch < 4; epoch++)
            Assert.AreEqual(expectedRun.History[epoch].ValidationLoss, result.History[epoch].ValidationLoss, $"epoch {epoch + 1}");
    }

    [TestMethod]
    [DataRow(0, null, "GradientAccumulationSteps")]
    [DataRow(1, 1.0, "ModelEmaDecay")]
    [DataRow(1, 0.0, "ModelEmaDecay")]
    public void InvalidAccumulationOrDecay_IsRefusedNamingTheOption(int accumulation, double? decay, string option)
    {
        var options = new TrainingOptions { GradientAccumulationSteps = accumulation, ModelEmaDecay = decay };
        var error = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        StringAssert.Contains(error.Message, "TrainingOptions." + option);
    }

    // Records the step count and a copy of the weights after every optimiser step.
    private sealed class StepRecorder : TrainingHook
    {
        public List<long> Steps { get; } = new();

        public List<Dictionary<string, Tensor>> Weights { get; } = new();

        public override void AfterStep(TrainingState state)
        {
            Steps.Add(state.Step);
            Weights.Add(AccumulationAndAveragingTests.Weights(state.Model));
        }
    }
}
