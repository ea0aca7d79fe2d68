using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class TrainingOptimizerTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(OptimizerKind.Sgd)]
    [DataRow(OptimizerKind.AdamW)]
    public void Groups_DecayOnlyMultiDimensionalWeightsAndGiveTheBackboneItsFactor(OptimizerKind kind)
    {
        var model = ResidualModels.Create("resnet20", 10);
        using var optimizer = TrainingOptimizer.Create(model, new TrainingOptions { Optimizer = kind, LearningRate = 0.1 }, headPrefix: "fc.", backboneLearningRateFactor: 0.1);
        var all = model.named_parameters().Select(p => p.name).ToHashSet();
        CollectionAssert.AreEquivalent(all.ToList(), optimizer.Groups.SelectMany(g => g.Parameters.Select(p => p.Name)).ToList(), "every parameter in exactly one group");
        foreach (ParameterGroup group in optimizer.Groups)
        {
            Assert.IsTrue(group.Parameters.All(p => (p.Parameter.dim() > 1) == group.Decay), group.Name);
            Assert.IsTrue(group.Parameters.All(p => p.Name.StartsWith("fc.") == (group.LearningRateFactor == 1.0)), group.Name);
        }

        optimizer.SetLearningRate(0.5);
        CollectionAssert.AreEqual(optimizer.Groups.Select(g => 0.5 * g.LearningRateFactor).ToArray(), optimizer.LearningRates.ToArray());
    }

    [TestMethod]
    public void DecayNormsAndBiases_PutsEveryParameterInADecayGroup()
    {
        var model = ResidualModels.Create("resnet20", 10);
        using var optimizer = TrainingOptimizer.Create(model, new TrainingOptions { DecayNormsAndBiases = true });
        Assert.AreEqual(1, optimizer.Groups.Count);
        Assert.IsTrue(optimizer.Groups[0].Decay);
    }

    // A small network with fixed weights: a backbone ("body", "norm") and a head ("fc"), weights of two dimensions (decayed)
    // and of one (BatchNorm γ/β and biases, not decayed). The BatchNorm follows the ReLU so that body.bias gets a gradient.
    // It is the library's BatchNorm2d on (N, C, 1, 1), which computes what BatchNorm1d does on (N, C): TorchSharp's
    // BatchNorm1d counts batches with a temporary Scalar the garbage collector may free during the call.
    private static nn.Module<Tensor, Tensor> Network(int hidden = 16)
    {
        var network = nn.Sequential(("body", nn.Linear(6, hidden)), ("relu", nn.ReLU()), ("image", nn.Unflatten(1, new long[] { hidden, 1, 1 })),
            ("norm", new BatchNormalization2d(hidden)), ("flatten", nn.Flatten()), ("fc", nn.Linear(hidden, 3)));
        using var noGrad = no_grad();
        var generator = new Generator(17);
        foreach (var (_, parameter) in network.named_parameters())
        {
            using Tensor values = randn(parameter.shape, generator: generator);
            parameter.copy_(values);
        }

        return network;
    }

    private static (Tensor Images, Tensor Labels) Batch(int step)
    {
        var generator = new Generator((ulong)(100 + step));
        return (randn(new long[] { 8, 6 }, generator: generator), randint(3, new long[] { 8 }, generator: generator));
    }

    private static TrainingOptions Options(OptimizerKind kind, double momentum, bool nesterov, double weightDecay) => new()
    {
        Optimizer = kind, LearningRate = kind == OptimizerKind.Sgd ? 0.1 : 0.01, Momentum = momentum, Nesterov = nesterov, WeightDecay = weightDecay,
    };

    // The schedule of the comparisons: a different rate at every step, as a warm-up or annealing gives.
    private static double Rate(TrainingOptions options, int step) => options.LearningRate * (1 - 0.15 * step);

    // One training step: forward, loss, backward, then `update` (the optimiser's zero_grad comes first).
    private static void TrainStep(nn.Module<Tensor, Tensor> network, int step, Action zeroGrad, Action update)
    {
        using var scope = NewDisposeScope();
        var (images, labels) = Batch(step);
        zeroGrad();
        nn.functional.cross_entropy(network.call(images), labels).backward();
        update();
    }

    private static void AssertSameParameters(nn.Module expected, nn.Module actual, double rtol, double atol, string because)
    {
        var actualParameters = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in expected.named_parameters())
        {
            using var scope = NewDisposeScope();
            Tensor other = actualParameters[name];
            Assert.IsTrue(other.allclose(parameter, rtol, atol),
                $"{because}: {name} differs by up to {other.to_type(ScalarType.Float64).sub(parameter.to_type(ScalarType.Float64)).abs().max().item<double>():G3}");
        }
    }

    /// <summary>
    /// Our SGD and AdamW against TorchSharp's torch.optim.SGD and AdamW, five steps with a changing rate on the same
    /// network and batches. Both apply torch.optim's rules with the same ATen operations in the same order to the same
    /// float32 values (elementwise operations round each element on its own, whatever the CPU), so they agree bit for bit;
    /// any difference in the update rule (a missing bias correction, dampening, coupled decay or Nesterov term) changes bits,
    /// and the test also checks that the parameters moved by 1e-3 or more, so that there is something to compare.
    /// </summary>
    [TestMethod]
    [DataRow(OptimizerKind.Sgd, 0.0, false, 0.0, 1.0, DisplayName = "SGD, plain")]
    [DataRow(OptimizerKind.Sgd, 0.9, false, 0.0, 1.0, DisplayName = "SGD, momentum")]
    [DataRow(OptimizerKind.Sgd, 0.9, true, 0.0, 1.0, DisplayName = "SGD, Nesterov")]
    [DataRow(OptimizerKind.Sgd, 0.9, false, 0.05, 1.0, DisplayName = "SGD, momentum and weight decay")]
    [DataRow(OptimizerKind.Sgd, 0.0, false, 0.05, 1.0, DisplayName = "SGD, weight decay without momentum")]
    [DataRow(OptimizerKind.Sgd, 0.9, true, 0.05, 0.1, DisplayName = "SGD, Nesterov, decay, backbone at 0.1 of the rate")]
    [DataRow(OptimizerKind.AdamW, 0.9, false, 0.0, 1.0, DisplayName = "AdamW")]
    [DataRow(OptimizerKind.AdamW, 0.9, false, 0.05, 1.0, DisplayName = "AdamW, weight decay")]
    [DataRow(OptimizerKind.AdamW, 0.9, false, 0.05, 0.1, DisplayName = "AdamW, weight decay, backbone at 0.1 of the rate")]
    public void Step_GivesTheParametersOfTorchSharpsOptimiser(OptimizerKind kind, double momentum, bool nesterov, double weightDecay, double backboneFactor)
    {
        var ours = Network();
        var reference = Network();
        var initial = Network();
        TrainingOptions options = Options(kind, momentum, nesterov, weightDecay);
        using var optimizer = TrainingOptimizer.Create(ours, options, headPrefix: backboneFactor == 1.0 ? null : "fc.", backboneLearningRateFactor: backboneFactor);
        Assert.AreEqual(backboneFactor == 1.0 ? 2 : 4, optimizer.Groups.Count);

        var referenceParameters = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        IEnumerable<Parameter> Same(ParameterGroup group) => group.Parameters.Select(p => referenceParameters[p.Name]).ToList();
        using optim.Optimizer torchOptimizer = kind == OptimizerKind.Sgd
            ? optim.SGD(optimizer.Groups.Select(g => new SGD.ParamGroup(Same(g), options.LearningRate * g.LearningRateFactor, momentum, 0, g.Decay ? weightDecay : 0, nesterov, false)), options.LearningRate)
            : optim.AdamW(optimizer.Groups.Select(g => new AdamW.ParamGroup(Same(g), options.LearningRate * g.LearningRateFactor, 0.9, 0.999, 1e-8, g.Decay ? weightDecay : 0, false, false)), options.LearningRate);

        ours.train();
        reference.train();
        for (int step = 0; step < 5; step++)
        {
            double rate = Rate(options, step);
            optimizer.SetLearningRate(rate);
            int index = 0;
            foreach (var group in torchOptimizer.ParamGroups) group.LearningRate = rate * optimizer.Groups[index++].LearningRateFactor;
            TrainStep(ours, step, optimizer.ZeroGrad, optimizer.Step);
            TrainStep(reference, step, torchOptimizer.zero_grad, () => torchOptimizer.step());
        }

        AssertSameParameters(reference, ours, rtol: 0, atol: 0, "our optimiser against TorchSharp's");
        var initialParameters = initial.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in ours.named_parameters())
        {
            using var scope = NewDisposeScope();
            Assert.IsTrue(parameter.sub(initialParameters[name]).abs().max().item<float>() > 1e-3, $"{name} moved too little for the comparison to tell update rules apart");
        }
    }

    [TestMethod]
    [DataRow(OptimizerKind.Sgd, 0.9, true, 0.05)]
    [DataRow(OptimizerKind.Sgd, 0.0, false, 0.05)]
    [DataRow(OptimizerKind.AdamW, 0.9, false, 0.05)]
    public void SaveStateThenLoadStateInAFreshOptimiser_ContinuesAsAnUninterruptedRun(OptimizerKind kind, double momentum, bool nesterov, double weightDecay)
    {
        TrainingOptions options = Options(kind, momentum, nesterov, weightDecay);
        string path = ModelTestSupport.TempFile(TestContext, "-optimizer.safetensors");
        var whole = Network();
        // A parameter without gradients is not updated and keeps no momentum; its state still round-trips.
        whole.named_parameters().Single(p => p.name == "norm.bias").parameter.requires_grad = false;
        whole.train();
        using var wholeOptimizer = TrainingOptimizer.Create(whole, options, headPrefix: "fc.", backboneLearningRateFactor: 0.5);
        for (int step = 0; step < 3; step++)
        {
            wholeOptimizer.SetLearningRate(Rate(options, step));
            TrainStep(whole, step, wholeOptimizer.ZeroGrad, wholeOptimizer.Step);
        }

        wholeOptimizer.SaveState(path);
        var resumed = Network();
        resumed.named_parameters().Single(p => p.name == "norm.bias").parameter.requires_grad = false;
        ModelTestSupport.CopyWeights(whole, resumed);
        resumed.train();
        using var resumedOptimizer = TrainingOptimizer.Create(resumed, options, headPrefix: "fc.", backboneLearningRateFactor: 0.5);
        resumedOptimizer.LoadState(path);

        using (TensorDictionary file = SafeTensors.Read(path))
        {
            Assert.AreEqual(3L, file["fc.weight.step"].item<long>());
            Assert.AreEqual(0L, file["norm.bias.step"].item<long>());
            Assert.IsFalse(file.ContainsKey("norm.bias.momentum_buffer"));
            string[] running = kind == OptimizerKind.AdamW ? new[] { ".exp_avg", ".exp_avg_sq" } : momentum > 0 ? new[] { ".momentum_buffer" } : Array.Empty<string>();
            CollectionAssert.AreEquivalent(
                whole.named_parameters().SelectMany(p => new[] { p.name + ".step" }.Concat(p.name == "norm.bias" && kind == OptimizerKind.Sgd ? Array.Empty<string>() : running.Select(r => p.name + r))).ToList(),
                file.Keys.ToList());
        }

        for (int step = 3; step < 6; step++)
        {
            wholeOptimizer.SetLearningRate(Rate(options, step));
            TrainStep(whole, step, wholeOptimizer.ZeroGrad, wholeOptimizer.Step);
            resumedOptimizer.SetLearningRate(Rate(options, step));
            TrainStep(resumed, step, resumedOptimizer.ZeroGrad, resumedOptimizer.Step);
        }

        // The state is stored exactly (float32 as float32), so the runs agree bit for bit.
        AssertSameParameters(whole, resumed, rtol: 0, atol: 0, "resumed against uninterrupted");
        using var frozen = Network();
        Assert.IsTrue(whole.named_parameters().Single(p => p.name == "norm.bias").parameter.IsEqualTo(frozen.named_parameters().Single(p => p.name == "norm.bias").parameter),
            "a parameter without gradient is left alone");
    }

    [TestMethod]
    public void LoadState_OfAnotherOptimisersOrNetworksState_ThrowsNamingTheFileAndTheTensor_AndChangesNothing()
    {
        string Saved(OptimizerKind kind, int hidden)
        {
            string path = ModelTestSupport.TempFile(TestContext, "-optimizer.safetensors");
            var network = Network(hidden);
            using var optimizer = TrainingOptimizer.Create(network, Options(kind, 0.9, false, 0.05));
            TrainStep(network, 0, optimizer.ZeroGrad, optimizer.Step);
            optimizer.SaveState(path);
            return path;
        }

        var target = Network();
        using var adamW = TrainingOptimizer.Create(target, Options(OptimizerKind.AdamW, 0.9, false, 0.05));
        string good = Saved(OptimizerKind.AdamW, 16);
        adamW.LoadState(good);

        string sgd = Saved(OptimizerKind.Sgd, 16);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => adamW.LoadState(sgd));
        StringAssert.Contains(error.Message, sgd);
        StringAssert.Contains(error.Message, "'sgd', not of adamw");

        string narrower = Saved(OptimizerKind.AdamW, 12);
        error = Assert.ThrowsExactly<InvalidDataException>(() => adamW.LoadState(narrower));
        StringAssert.Contains(error.Message, narrower);
        StringAssert.Contains(error.Message, "tensor 'body.weight.exp_avg': its shape is [12, 6], not [16, 6]");

        // A file that lacks a tensor, and one with a tensor this optimiser has no use for.
        string missing = ModelTestSupport.TempFile(TestContext, "-optimizer.safetensors");
        string extra = ModelTestSupport.TempFile(TestContext, "-optimizer.safetensors");
        using (TensorDictionary file = SafeTensors.Read(good))
        {
            SafeTensors.Write(missing, file.Where(kv => kv.Key != "fc.bias.exp_avg_sq"), file.Metadata);
            SafeTensors.Write(extra, file.Append(new("head.weight.exp_avg", file["fc.weight.exp_avg"])), file.Metadata);
        }

        error = Assert.ThrowsExactly<InvalidDataException>(() => adamW.LoadState(missing));
        StringAssert.Contains(error.Message, missing);
        StringAssert.Contains(error.Message, "tensor 'fc.bias.exp_avg_sq': the file has no such tensor");
        error = Assert.ThrowsExactly<InvalidDataException>(() => adamW.LoadState(extra));
        StringAssert.Contains(error.Message, extra);
        StringAssert.Contains(error.Message, "tensor 'head.weight.exp_avg'");

        // The failed loads left the good state in place: saving it again gives the same tensors.
        string again = ModelTestSupport.TempFile(TestContext, "-optimizer.safetensors");
        adamW.SaveState(again);
        using TensorDictionary before = SafeTensors.Read(good), after = SafeTensors.Read(again);
        CollectionAssert.AreEqual(before.Keys.ToList(), after.Keys.ToList());
        foreach (string key in before.Keys) Assert.IsTrue(after[key].IsEqualTo(before[key]), key);
    }

    [TestMethod]
    public void Step_LeavesNoTensorsBehind()
    {
        foreach (OptimizerKind kind in new[] { OptimizerKind.Sgd, OptimizerKind.AdamW })
        {
            var network = Network();
            network.train();
            using var optimizer = TrainingOptimizer.Create(network, Options(kind, 0.9, true, 0.05));
            for (int step = 0; step < 2; step++) TrainStep(network, step, optimizer.ZeroGrad, optimizer.Step);
            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int step = 2; step < 7; step++) TrainStep(network, step, optimizer.ZeroGrad, optimizer.Step);
            Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, $"{kind}: live tensors grew over five steps");
        }
    }
}
