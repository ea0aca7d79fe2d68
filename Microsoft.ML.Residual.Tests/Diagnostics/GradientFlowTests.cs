using System;
using System.Linq;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Diagnostics;

[TestClass]
public sealed class GradientFlowTests
{
    private static (Tensor Inputs, Tensor Targets) Batch(int count, int size = 32, long seed = 7)
    {
        using var generator = new Generator((ulong)seed);
        return (torch.randn(new long[] { count, 3, size, size }, generator: generator), torch.randint(0, 10, new long[] { count }, generator: generator));
    }

    private static nn.Module<Tensor, Tensor> Network(string name, ResNetOptions? options = null)
    {
        options ??= new ResNetOptions();
        options.Seed ??= 1;
        return ResidualModels.Create(name, 10, 3, options);
    }

    [TestMethod]
    public void PlainNetwork56_AtInitialisation_LosesOrdersOfMagnitudeMoreGradientOnTheWayBackThanResNet56()
    {
        var (inputs, targets) = Batch(8);
        GradientFlowReport plain = GradientFlow.Measure(Network("plain56"), inputs, targets);
        GradientFlowReport residual = GradientFlow.Measure(Network("resnet56"), inputs, targets);

        Assert.AreEqual(27, plain.BlockInputGradientNorms.Length);
        Assert.AreEqual(27, residual.BlockInputGradientNorms.Length);
        Assert.IsTrue(plain.BlockInputGradientNorms.Concat(residual.BlockInputGradientNorms).All(n => double.IsFinite(n) && n > 0));
        Assert.IsLessThan(residual.FirstToLastRatio / 1000, plain.FirstToLastRatio,
            $"first/last gradient norm: plain-56 {plain.FirstToLastRatio:E2}, ResNet-56 {residual.FirstToLastRatio:E2}");
    }

    /// <summary>
    /// ∂L/∂x = a + b (a through the branch, b through the identity), so ‖a + b‖ lies between |‖a‖ − ‖b‖| and ‖a‖ + ‖b‖.
    /// The report's three norms are float32 norms of n values, each within <see cref="Numerics.NormError"/> of its vector's
    /// norm, and autograd's a + b rounds each element once (u): the float32 values satisfy the triangle inequality up to
    /// ε·(‖a‖ + ‖b‖) with ε = 2·NormError(n) + u to first order; 3·NormError(n) + u covers the products of these errors.
    /// </summary>
    private static void AssertTriangle(double x, double branch, double identity, long elements, string what)
    {
        double slack = (3 * Numerics.NormError(elements) + Numerics.Float32Roundoff) * (branch + identity);
        Assert.IsTrue(x <= branch + identity + slack && x >= Math.Abs(branch - identity) - slack,
            $"{what}: ‖∂L/∂x‖ = {x} against branch {branch} and identity {identity} (rounding slack {slack:E2})");
    }

    [TestMethod]
    public void ResidualBlocks_SplitTheInputGradientIntoBranchAndIdentity_PlainBlocksHaveNoIdentityPart()
    {
        var (inputs, targets) = Batch(4);
        GradientFlowReport residual = GradientFlow.Measure(Network("resnet20"), inputs, targets);
        GradientFlowReport plain = GradientFlow.Measure(Network("plain20"), inputs, targets);

        for (int b = 0; b < residual.BlockNames.Length; b++)
        {
            // ∂L/∂x = branch part + identity part, so its norm lies between their difference and their sum.
            double x = residual.BlockInputGradientNorms[b], branch = residual.BranchGradientNorms[b], identity = residual.IdentityGradientNorms[b];
            // A block input has at most the first stage's 16 channels × H × W values per image (each later stage halves H and W).
            AssertTriangle(x, branch, identity, inputs.shape[0] * 16 * inputs.shape[2] * inputs.shape[3], $"block {b}");
            Assert.IsTrue(identity > 0 && branch > 0, $"block {b}");
        }

        Assert.IsTrue(plain.IdentityGradientNorms.All(n => n == 0));
        Assert.IsTrue(plain.BranchShares.All(s => s == 1));
        CollectionAssert.AreEqual(plain.BlockInputGradientNorms, plain.BranchGradientNorms, "a plain block's input gradient is all branch");
    }

    [TestMethod]
    public void ZeroInitialisedResiduals_SendTheWholeGradientThroughTheShortcut()
    {
        var (inputs, targets) = Batch(4);
        GradientFlowReport report = GradientFlow.Measure(Network("preact_resnet18", new ResNetOptions { ZeroInitResidual = true }), inputs, targets);

        // The branch's last convolution is zero, so nothing comes back through the branch.
        Assert.IsTrue(report.BranchGradientNorms.All(n => n == 0), string.Join(", ", report.BranchGradientNorms));
        Assert.IsTrue(report.IdentityGradientNorms.All(n => n > 0));
    }

    [TestMethod]
    public void Measure_GroupsParameterGradientsByBlockAndTopLevelModule()
    {
        var (inputs, targets) = Batch(4);
        GradientFlowReport report = GradientFlow.Measure(Network("resnet20"), inputs, targets);

        CollectionAssert.IsSubsetOf(new[] { "conv1", "bn1", "fc", "layer1.0", "layer3.2" }, report.ParameterGroupGradientNorms.Keys.ToArray());
        Assert.AreEqual(3 + report.BlockNames.Length, report.ParameterGroupGradientNorms.Count);
        Assert.IsTrue(report.ParameterGroupGradientNorms.Values.All(n => double.IsFinite(n) && n > 0));
        Assert.IsTrue(report.Loss > 0);
        StringAssert.StartsWith(report.ToCsv(), "block,name,input_gradient_norm,branch_gradient_norm,identity_gradient_norm,branch_share\n1,layer1.0,");
        Assert.AreEqual(report.BlockNames.Length + 1, report.ToCsv().TrimEnd('\n').Split('\n').Length);
    }

    [TestMethod]
    [DataRow(BatchNormStatistics.Running)]
    [DataRow(BatchNormStatistics.Batch)]
    public void Measure_LeavesTheModuleAsItWas(BatchNormStatistics statistics)
    {
        var model = Network("resnet20", new ResNetOptions { DropPathRate = 0.2 });
        var (inputs, targets) = Batch(4);
        model.train();
        using (var noGrad = torch.no_grad())
            foreach (var (name, buffer) in model.named_buffers())
                if (name.EndsWith("running_mean", StringComparison.Ordinal)) buffer.PlusInPlace(0.5);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

        GradientFlowReport first = GradientFlow.Measure(model, inputs, targets, statistics);
        GradientFlowReport second = GradientFlow.Measure(model, inputs, targets, statistics);

        Assert.IsTrue(model.training && model.modules().All(m => m.training), "training mode kept");
        Assert.IsTrue(model.parameters().All(p => p.grad is null), "no .grad written");
        foreach (var (name, value) in model.state_dict()) Assert.IsTrue(value.IsEqualTo(before[name]), name);
        CollectionAssert.AreEqual(first.BlockInputGradientNorms, second.BlockInputGradientNorms, "deterministic: no dropout or stochastic depth while measuring");
    }

    [TestMethod]
    public void Measure_WithTargetsThatDoNotFitTheOutput_NamesBothShapes()
    {
        var (inputs, _) = Batch(4);
        var error = Assert.ThrowsExactly<ArgumentException>(() => GradientFlow.Measure(Network("resnet20"), inputs, torch.zeros(3, ScalarType.Int64)));
        StringAssert.Contains(error.Message, "[3]");
        StringAssert.Contains(error.Message, "[4, 10]");
    }

    [TestMethod]
    public void Measure_OnAModuleThatWrapsTheNetwork_AsksForTheNetworkItself()
    {
        var wrapped = new Tests.Models.ModelTestSupport.Wrapper(ResidualModels.Create("resnet20", 4));
        var error = Assert.ThrowsExactly<ArgumentException>(() => GradientFlow.Measure(wrapped, torch.zeros(2, 3, 8, 8), torch.zeros(2, ScalarType.Int64)));
        StringAssert.Contains(error.Message, "not a ResidualModule");
    }

    [TestMethod]
    public void Measure_OnAModuleWithoutBlocks_SaysWhichModelsItMeasures()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => GradientFlow.Measure(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), torch.zeros(1, 3, 8, 8), torch.zeros(1, ScalarType.Int64)));
        StringAssert.Contains(error.Message, "has no blocks to measure");
        StringAssert.Contains(error.Message, "ResidualBlock");
    }

    [TestMethod]
    public void ToJson_HoldsEveryBlockAndGroup_WithNullWhereThereIsNoPathSplit()
    {
        var (inputs, targets) = Batch(2);
        GradientFlowReport report = GradientFlow.Measure(ResidualModels.Create("densenet_bc_100_12", 10, 3, new DenseNetOptions { Seed = 1 }), inputs, targets);

        using var json = System.Text.Json.JsonDocument.Parse(report.ToJson());
        Assert.AreEqual(report.Loss, json.RootElement.GetProperty("loss").GetDouble());
        var blocks = json.RootElement.GetProperty("blocks").EnumerateArray().ToArray();
        CollectionAssert.AreEqual(report.BlockNames, blocks.Select(b => b.GetProperty("name").GetString()).ToArray());
        CollectionAssert.AreEqual(report.BlockInputGradientNorms, blocks.Select(b => b.GetProperty("inputGradientNorm").GetDouble()).ToArray());
        Assert.IsTrue(blocks.All(b => b.GetProperty("branchGradientNorm").ValueKind == System.Text.Json.JsonValueKind.Null), "NaN is written as null");
        Assert.AreEqual(report.ParameterGroupGradientNorms.Count, json.RootElement.GetProperty("parameterGroupGradientNorms").EnumerateObject().Count());
    }

    [TestMethod]
    public void DenseNet_ReportsEachDenseBlockWithoutAPathSplit()
    {
        var (inputs, targets) = Batch(2);
        var model = ResidualModels.Create("densenet_bc_100_12", 10, 3, new DenseNetOptions { Seed = 1 });
        GradientFlowReport report = GradientFlow.Measure(model, inputs, targets);

        Assert.AreEqual(3, report.BlockNames.Length);
        Assert.IsTrue(report.BlockInputGradientNorms.All(n => n > 0));
        Assert.IsTrue(report.BranchGradientNorms.All(double.IsNaN));
    }

    [TestMethod]
    public void ClassicUNet_ReportsEveryLevelInForwardOrder_ResidualDecoderLevelsSplitTheirGradient()
    {
        var model = ResidualModels.Create("unet", 3, 3, new UNetOptions { Depth = 2, BaseWidth = 4, DecoderResidual = true, Seed = 1 });
        using var generator = new Generator(5UL);
        Tensor inputs = torch.randn(new long[] { 2, 3, 16, 16 }, generator: generator);
        Tensor masks = torch.randint(-1, 3, new long[] { 2, 16, 16 }, generator: generator);

        GradientFlowReport report = GradientFlow.Measure(model, inputs, masks);

        CollectionAssert.AreEqual(new[] { "encoder.0", "encoder.1", "encoder.2", "decoder.0", "decoder.1" }, report.BlockNames);
        Assert.IsTrue(report.BlockInputGradientNorms.All(n => n > 0 && double.IsFinite(n)), string.Join(", ", report.BlockInputGradientNorms));
        Assert.IsTrue(report.BranchGradientNorms.Take(3).All(double.IsNaN), "the contracting path has no shortcuts");
        for (int b = 3; b < 5; b++)
        {
            double x = report.BlockInputGradientNorms[b], branch = report.BranchGradientNorms[b], identity = report.IdentityGradientNorms[b];
            Assert.IsTrue(branch > 0 && identity > 0, $"{report.BlockNames[b]}: {branch}, {identity}");
            // A decoder level's input is [upsampled, skip]: at most 2·BaseWidth = 8 channels at the full 16×16 per image.
            AssertTriangle(x, branch, identity, inputs.shape[0] * 8 * 16 * 16, report.BlockNames[b]);
        }

        CollectionAssert.IsSubsetOf(new[] { "encoder.0", "decoder.1", "segmentation_head" }, report.ParameterGroupGradientNorms.Keys.ToArray());
    }

    [TestMethod]
    public void ClassicUNet_LastLevelsInputGradient_EqualsTheGradientThroughItsLayersAndTheHead()
    {
        var model = ResidualModels.Create("unet", 3, 3, new UNetOptions { Depth = 1, BaseWidth = 4, Seed = 2 });
        using var generator = new Generator(6UL);
        Tensor inputs = torch.randn(new long[] { 2, 3, 8, 8 }, generator: generator);
        Tensor masks = torch.randint(0, 3, new long[] { 2, 8, 8 }, generator: generator);
        model.eval();
        GradientFlowReport report = GradientFlow.Measure(model, inputs, masks);

        // Independently: the features the last decoder level convolves are [upsampled bottom, skip]; differentiate the loss
        // of its layers and the head with respect to them.
        var encoder0 = (UNetBlock)model.named_modules().First(m => m.name == "encoder.0").module;
        var encoder1 = (UNetBlock)model.named_modules().First(m => m.name == "encoder.1").module;
        var decoder = (UNetBlock)model.named_modules().First(m => m.name == "decoder.0").module;
        var up = (nn.Module<Tensor, Tensor>)model.named_modules().First(m => m.name == "decoder.0.up").module;
        var head = (nn.Module<Tensor, Tensor>)model.named_modules().First(m => m.name == "segmentation_head").module;
        Tensor features;
        using (torch.no_grad())
        {
            Tensor skip = encoder0.call(inputs);
            Tensor bottom = encoder1.call(nn.functional.max_pool2d(skip, 2));
            features = torch.cat(new[] { up.call(bottom), skip }, 1);
        }

        Tensor x = features.clone().requires_grad_(true);
        Tensor loss = nn.functional.cross_entropy(head.call(decoder.call(x)), masks);
        double expected = torch.autograd.grad(new[] { loss }, new[] { x })[0].norm().item<float>();

        // Two float32 evaluations of the same gradient norm: each is within GradientError (forward and backward through the
        // network's layers, relative to the gradient's scale) plus NormError (the norm of its values) of the exact one.
        double bound = 2 * (Numerics.GradientError(model) + Numerics.NormError(features.numel())) * expected;
        Assert.AreEqual(expected, report.BlockInputGradientNorms[^1], bound);
    }
}
