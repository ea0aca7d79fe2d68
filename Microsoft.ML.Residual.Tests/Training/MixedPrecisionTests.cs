using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

/// <summary>
/// Training in bfloat16 and float16 (with dynamic loss scaling) follows float32 training, keeps float32 weights, and skips
/// exactly the steps whose gradients overflow.
/// </summary>
[TestClass]
public sealed class MixedPrecisionTests
{
    // 5 batches an epoch, at a rate low enough that training follows the gradient rather than amplifying small
    // differences (at 0.05 with batches of 12, two float32 runs on differently ordered sums part ways within two epochs).
    private const int BatchSize = 24;
    private const int TrainCount = 120;
    private const double Rate = 0.01;

    private static nn.Module<Tensor, Tensor> SmallNetwork() =>
        ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 4 });

    private static TrainingOptions Options(TrainingPrecision precision, int epochs = 4) => new()
    {
        Epochs = epochs, LearningRate = Rate, Schedule = LearningRateScheduleKind.Cosine, Seed = 3, Precision = precision,
        RestoreBestWeights = false,
    };

    // The overflow tests start float16 at a scale of 1,024 rather than 65,536: a step then overflows on its own only if a
    // gradient reaches 64 (65,504 / 1,024), far beyond this network's, so the only overflows are the injected ones.
    private const double TestLossScale = 1024;

    private static (TrainingLoop Trainer, TrainingResult Result, nn.Module<Tensor, Tensor> Model) Train(
        TrainingPrecision precision, Func<Tensor, Tensor, double, Tensor>? loss = null, int epochs = 4, double? initialScale = null)
    {
        using var train = new TrainingTestData(TrainCount, 12, seed: 1);
        using var validation = new TrainingTestData(30, 12, seed: 2);
        var model = SmallNetwork();
        var trainer = new TrainingLoop(model, Options(precision, epochs)) { Loss = loss, InitialLossScale = initialScale ?? 65536 };
        TrainingResult result = trainer.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            () => validation.Epoch(0, BatchSize, shuffle: false));
        return (trainer, result, model);
    }

    [TestMethod]
    [DataRow(TrainingPrecision.BFloat16)]
    [DataRow(TrainingPrecision.Float16)]
    public void HalfPrecisionTraining_FollowsTheFloat32LossCurve(TrainingPrecision precision)
    {
        var full = Train(TrainingPrecision.Float32);
        var half = Train(precision);
        double[] fullLosses = full.Result.History.Select(r => r.TrainingLoss).ToArray();
        double[] halfLosses = half.Result.History.Select(r => r.TrainingLoss).ToArray();
        string curves = $"float32 {string.Join(" ", fullLosses.Select(l => l.ToString("F4")))}; {precision} {string.Join(" ", halfLosses.Select(l => l.ToString("F4")))}";
        Assert.IsTrue(halfLosses.All(double.IsFinite), curves);
        Assert.IsTrue(halfLosses[^1] < 0.8 * halfLosses[0], $"it learns: {curves}");
        // The two runs see the same batches from the same weights; rounding to 8 (bfloat16) or 11 (float16) mantissa bits moved
        // each epoch's mean loss by at most 1.2 % here (float32 1.1827 1.0077 0.8777 0.8259; bfloat16 1.1830 1.0167 0.8757
        // 0.8286; float16 1.1832 1.0091 0.8757 0.8359). Asked: within a tenth of the loss plus 0.02.
        for (int epoch = 0; epoch < fullLosses.Length; epoch++)
            Assert.AreEqual(fullLosses[epoch], halfLosses[epoch], 0.1 * fullLosses[epoch] + 0.02, $"epoch {epoch + 1}: {curves}");
        Assert.IsTrue(half.Model.parameters().All(p => p.dtype == ScalarType.Float32 && p.isfinite().all().item<bool>()), "finite float32 weights");
    }

    [TestMethod]
    public void Float16_AStepWhoseGradientsOverflowIsSkippedAndTheScaleHalved()
    {
        // A loss 10⁶ times larger: the gradient at the logits alone, (softmax − one-hot) / 24 × 10⁶ × scale, exceeds float16's
        // 65,504 in every backward pass even at the smallest scale used (64), so no step is taken and the parameters keep
        // their initial values, while the loss itself stays finite (it is computed in float32).
        var initial = SmallNetwork().parameters().Select(p => p.detach().clone()).ToArray();
        var (trainer, result, model) = Train(TrainingPrecision.Float16,
            loss: (logits, targets, _) => nn.functional.cross_entropy(logits, targets, ignore_index: -1).Times(1e6), epochs: 1, initialScale: TestLossScale);
        Assert.IsTrue(double.IsFinite(result.History[0].TrainingLoss) && result.History[0].ValidationLoss is double v && double.IsFinite(v));
        Assert.AreEqual(5, trainer.SkippedSteps, "5 batches, 5 overflows");
        Assert.AreEqual(TestLossScale / 32, trainer.LossScale, "halved once per overflow");
        var after = model.parameters().ToArray();
        for (int i = 0; i < initial.Length; i++) Assert.IsTrue(after[i].IsEqualTo(initial[i]), $"parameter {i} is unchanged");
    }

    [TestMethod]
    public void Float16_OneOverflowingBatchCostsOneStepAndTrainingGoesOn()
    {
        int batch = 0;
        var (trainer, result, _) = Train(TrainingPrecision.Float16, loss: (logits, targets, _) =>
        {
            Tensor loss = nn.functional.cross_entropy(logits, targets, ignore_index: -1);
            return batch++ == 2 ? loss.Times(1e6) : loss;
        }, initialScale: TestLossScale);
        Assert.AreEqual(1, trainer.SkippedSteps, "only the injected overflow is skipped");
        Assert.AreEqual(TestLossScale / 2, trainer.LossScale, "the scale halved once and has not grown back within 20 steps");
        Assert.IsTrue(result.History.All(r => double.IsFinite(r.TrainingLoss)));
    }

    [TestMethod]
    public void Float16_AResumedRunContinuesWithTheCheckpointsLossScaleAndWeights()
    {
        // An overflow in epoch 1 halves the scale; a run paused after epoch 1 and resumed must go on at the halved scale and
        // end with the uninterrupted run's weights, bit for bit.
        using var train = new TrainingTestData(TrainCount, 12, seed: 1);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        Func<Tensor, Tensor, double, Tensor> OverflowAtStep(int overflowStep)
        {
            int step = 0;
            return (logits, targets, _) =>
            {
                Tensor loss = nn.functional.cross_entropy(logits, targets, ignore_index: -1);
                return step++ == overflowStep ? loss.Times(1e6) : loss;
            };
        }

        TrainingOptions Checkpointed(int? stopAfter) => new()
        {
            Epochs = 2, LearningRate = Rate, Seed = 3, Precision = TrainingPrecision.Float16, RestoreBestWeights = false,
            CheckpointDirectory = directory, StopAfterEpoch = stopAfter,
        };

        var uninterrupted = SmallNetwork();
        var whole = new TrainingLoop(uninterrupted, Options(TrainingPrecision.Float16, epochs: 2)) { Loss = OverflowAtStep(2), InitialLossScale = TestLossScale };
        whole.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));

        var paused = new TrainingLoop(SmallNetwork(), Checkpointed(stopAfter: 1)) { Loss = OverflowAtStep(2), InitialLossScale = TestLossScale };
        paused.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        var resumedModel = SmallNetwork();
        var resumed = new TrainingLoop(resumedModel, Checkpointed(stopAfter: null)) { Loss = OverflowAtStep(-1), InitialLossScale = TestLossScale };
        TrainingResult result = resumed.Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));

        Assert.AreEqual(1, result.ResumedAfterEpoch);
        Assert.AreEqual(TestLossScale / 2, whole.LossScale);
        Assert.AreEqual(whole.LossScale, resumed.LossScale, "the checkpoint's scale, not the initial one");
        var expected = uninterrupted.state_dict();
        foreach (var (key, value) in resumedModel.state_dict()) Assert.IsTrue(value.IsEqualTo(expected[key]), key);
    }

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void LossScaler_GrowsAfterTheIntervalAndBacksOffOnOverflow()
    {
        using var scope = NewDisposeScope();
        var scaler = new DynamicLossScaler(initialScale: 8, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3);
        Tensor parameter = zeros(4).requires_grad_(true);
        void Gradient(params float[] values) => parameter.grad = tensor(values);

        Gradient(8, 16, -8, 0);
        Assert.IsTrue(scaler.UnscaleAndUpdate(new[] { parameter }));
        CollectionAssert.AreEqual(new[] { 1f, 2f, -1f, 0f }, parameter.grad!.data<float>().ToArray(), "divided by the scale");
        Gradient(1, 1, 1, 1);
        Assert.IsTrue(scaler.UnscaleAndUpdate(new[] { parameter }));
        Gradient(1, 1, 1, 1);
        Assert.IsTrue(scaler.UnscaleAndUpdate(new[] { parameter }));
        Assert.AreEqual(16.0, scaler.Scale, "doubled after 3 good steps");

        Gradient(1, float.PositiveInfinity, 1, 1);
        Assert.IsFalse(scaler.UnscaleAndUpdate(new[] { parameter }), "an infinity");
        Assert.AreEqual(8.0, scaler.Scale);
        Gradient(float.NaN, 1, 1, 1);
        Assert.IsFalse(scaler.UnscaleAndUpdate(new[] { parameter }), "a NaN");
        Assert.AreEqual(4.0, scaler.Scale);
        Assert.AreEqual(2, scaler.SkippedSteps);

        // The count of good steps restarts after an overflow.
        for (int i = 0; i < 2; i++)
        {
            Gradient(1, 1, 1, 1);
            scaler.UnscaleAndUpdate(new[] { parameter });
        }

        Assert.AreEqual(4.0, scaler.Scale, "two good steps are not three");
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void AllowTf32_HoldsWhileTrainingAndTheFormerSettingsComeBack(bool allow)
    {
        var before = Tf32Settings.Current;
        using var train = new TrainingTestData(24, 8, seed: 1);
        var during = new List<(bool, bool)>();
        var options = Options(TrainingPrecision.Float32, epochs: 1);
        options.AllowTf32 = allow;
        new TrainingLoop(SmallNetwork(), options).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize),
            progress: new SynchronousProgress<EpochReport>(_ => during.Add(Tf32Settings.Current)));
        CollectionAssert.AreEqual(new[] { (allow, allow) }, during, "convolutions and matrix products while training");
        Assert.AreEqual(before, Tf32Settings.Current, "restored");
    }

    [TestMethod]
    public void Tf32_OverlappingRunsRestoreTheSettingsFoundByTheFirst()
    {
        var before = Tf32Settings.Current;
        IDisposable first = Tf32Settings.Enter(!before.Convolutions);
        IDisposable second = Tf32Settings.Enter(before.Convolutions);
        first.Dispose();
        Assert.AreEqual((before.Convolutions, before.Convolutions), Tf32Settings.Current, "the second run still holds its setting");
        second.Dispose();
        Assert.AreEqual(before, Tf32Settings.Current);
        first.Dispose(); // a second dispose changes nothing
        Assert.AreEqual(before, Tf32Settings.Current);
    }

    [TestMethod]
    public void Float16_DivergenceSaysToTrainInBFloat16OrFloat32()
    {
        using var train = new TrainingTestData(TrainCount, 12, seed: 1);
        var trainer = new TrainingLoop(SmallNetwork(), Options(TrainingPrecision.Float16, epochs: 1));
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => trainer.Train(e => train.EpochWithNaNBatch(e, BatchSize, nanBatch: 1), train.StepsPerEpoch(BatchSize)));
        StringAssert.Contains(error.Message, "train in BFloat16 or Float32");
    }

    [TestMethod]
    public void AnUnknownPrecision_IsRejectedNamingTheOption()
    {
        var options = new TrainingOptions { Precision = (TrainingPrecision)7 };
        var error = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        StringAssert.Contains(error.Message, "Precision");
    }
}
