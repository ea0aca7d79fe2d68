using System;
using System.Linq;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Diagnostics;

[TestClass]
public sealed class BlockJacobianTests
{
    private static Tensor Images(int count, int size, long seed = 5)
    {
        using var generator = new Generator((ulong)seed);
        return torch.randn(new long[] { count, 3, size, size }, generator: generator);
    }

    [TestMethod]
    [DataRow(false, DisplayName = "post-activation, option A")]
    [DataRow(true, DisplayName = "pre-activation, option A")]
    public void ZeroInitialisedResiduals_GiveEveryBlockAJacobianNormOfOne(bool preActivation)
    {
        var model = ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 1, ZeroInitResidual = true, PreActivation = preActivation });
        JacobianReport report = BlockJacobian.Measure(model, Images(2, 16), iterations: 10);

        Assert.AreEqual(9, report.SpectralNorms.Length);
        foreach (var (norm, name) in report.SpectralNorms.Zip(report.BlockNames))
            Assert.AreEqual(1.0, norm, 1e-4, $"{name}: each block starts as its (identity or zero-padding) shortcut");
    }

    [TestMethod]
    public void ScaledResiduals_WithAlphaOneTenth_HaveSmallerBlockJacobianNormsThanAlphaOne()
    {
        var images = Images(2, 16);
        JacobianReport full = BlockJacobian.Measure(ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 1, PreActivation = true }), images);
        JacobianReport scaled = BlockJacobian.Measure(ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 1, PreActivation = true, ResidualScale = 0.1 }), images);

        for (int b = 0; b < full.SpectralNorms.Length; b++)
            Assert.IsLessThan(full.SpectralNorms[b], scaled.SpectralNorms[b], $"{full.BlockNames[b]}: α=0.1 {scaled.SpectralNorms[b]:F3}, α=1 {full.SpectralNorms[b]:F3}");
        Assert.IsTrue(full.SpectralNorms.Max() > 1.5, "an unscaled branch stretches: " + string.Join(", ", full.SpectralNorms.Select(n => n.ToString("F2"))));
        Assert.IsTrue(scaled.SpectralNorms.All(n => Math.Abs(n - 1) < 0.5), "α=0.1 stays near the identity: " + string.Join(", ", scaled.SpectralNorms.Select(n => n.ToString("F2"))));
    }

    [TestMethod]
    public void PowerIteration_MatchesTheLargestSingularValueOfTheExplicitJacobian()
    {
        var model = ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 3 });
        model.eval();
        var images = Images(1, 4);
        JacobianReport report = BlockJacobian.Measure(model, images, iterations: 200);

        // The explicit Jacobian of the first block (16×4×4 = 256 inputs and outputs), one backward pass per output.
        var block = (nn.Module<Tensor, Tensor>)model.named_modules().First(m => m.name == "layer1.0").module;
        Tensor input = null!;
        using (var hook = new Hooked(block, x => input ??= x.detach().clone()))
        using (torch.no_grad())
            model.call(images);
        Tensor x = input.clone().requires_grad_(true);
        Tensor y = block.call(x).flatten();
        var rows = Enumerable.Range(0, (int)y.shape[0]).Select(i =>
            torch.autograd.grad(new[] { y }, new[] { x }, new[] { torch.zeros_like(y).index_put_(torch.tensor(1f), torch.tensor(i)) }, retain_graph: true)[0].flatten()).ToArray();
        double expected = torch.linalg.svdvals(torch.stack(rows).to_type(ScalarType.Float64))[0].item<double>();

        Assert.AreEqual(expected, report.SpectralNorms[0], expected * 1e-3);
    }

    [TestMethod]
    public void UNetDecoderLevel_PowerIteration_MatchesTheExplicitJacobianOfItsConvolutions()
    {
        // Depth 1, width 2: the decoder level convolves [upsampled, skip] = 4 channels of 4×4 (64 inputs) into 2×4×4.
        var model = ResidualModels.Create("unet", 2, 3, new UNetOptions { Depth = 1, BaseWidth = 2, DecoderResidual = true, Seed = 4 });
        model.eval();
        var images = Images(1, 4);
        JacobianReport report = BlockJacobian.Measure(model, images, iterations: 200);
        CollectionAssert.AreEqual(new[] { "encoder.0", "encoder.1", "decoder.0" }, report.BlockNames);

        var decoder = (UNetBlock)model.named_modules().First(m => m.name == "decoder.0").module;
        Tensor input = null!;
        decoder.InputProbe = x => input ??= x.detach().clone();
        try
        {
            using (torch.no_grad()) model.call(images);
        }
        finally
        {
            decoder.InputProbe = null;
        }

        Tensor features = input.clone().requires_grad_(true);
        Tensor y = decoder.Convolutions(features).flatten();
        var rows = Enumerable.Range(0, (int)y.shape[0]).Select(i =>
            torch.autograd.grad(new[] { y }, new[] { features }, new[] { torch.zeros_like(y).index_put_(torch.tensor(1f), torch.tensor(i)) }, retain_graph: true)[0].flatten()).ToArray();
        double expected = torch.linalg.svdvals(torch.stack(rows).to_type(ScalarType.Float64))[0].item<double>();

        Assert.AreEqual(4 * 4 * 4, input.numel());
        Assert.AreEqual(expected, report.SpectralNorms[^1], expected * 1e-3);
    }

    [TestMethod]
    public void Measure_LeavesTheModuleAsItWas()
    {
        var model = ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 1 });
        model.train();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

        BlockJacobian.Measure(model, Images(2, 8), iterations: 3, statistics: BatchNormStatistics.Batch);

        Assert.IsTrue(model.training && model.modules().All(m => m.training));
        Assert.IsTrue(model.parameters().All(p => p.grad is null));
        foreach (var (name, value) in model.state_dict()) Assert.IsTrue(value.IsEqualTo(before[name]), name);
    }

    private sealed class Hooked : IDisposable
    {
        private readonly Action remove;

        public Hooked(nn.Module<Tensor, Tensor> module, Action<Tensor> seen) =>
            remove = module.register_forward_pre_hook((_, x) =>
            {
                seen(x);
                return x;
            }).remove;

        public void Dispose() => remove();
    }
}
