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
        // A zero branch contributes exact zeros, so J is the shortcut (the identity, a ReLU mask or option A's subsample and
        // zero-pad), which maps power iteration's vectors without rounding onto vectors of the same length: only the float32
        // norms round, ‖Jv‖ (NormError) and the normalisation of v (NormError, u per element), over at most 2·16·16·16 values.
        double bound = 2 * Numerics.NormError(2 * 16 * 16 * 16) + Numerics.Float32Roundoff;
        foreach (var (norm, name) in report.SpectralNorms.Zip(report.BlockNames))
            Assert.AreEqual(1.0, norm, bound, $"{name}: each block starts as its (identity or zero-padding) shortcut");
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
        AssertPowerIterationMatchesFloat64(block, block.call, input, report.SpectralNorms[0], report.Iterations);
    }

    /// <summary>
    /// Compares power iteration's float32 estimate with σ₁ of the block's explicit Jacobian at <paramref name="input"/>,
    /// computed in float64 row by row (one backward pass per output) and decomposed by SVD. Power iteration approaches σ₁
    /// from below; <see cref="Numerics.AssertPowerIterationConverges"/> asserts that its shortfall after these steps is below
    /// the rounding bound, so the estimate must lie within twice that bound: ‖Jv‖ computed in float32 by a backward and a
    /// double-backward pass through the block (<see cref="Numerics.GradientError"/>), the norm of Jv and the normalisation of
    /// v (NormError each, u per element).
    /// </summary>
    private static void AssertPowerIterationMatchesFloat64(nn.Module block, Func<Tensor, Tensor> apply, Tensor input, double estimate, int iterations)
    {
        using var scope = NewDisposeScope();
        double[] singularValues;
        block.to(ScalarType.Float64);
        try
        {
            Tensor x = input.to_type(ScalarType.Float64).requires_grad_(true);
            Tensor y = apply(x).flatten();
            var rows = Enumerable.Range(0, (int)y.shape[0]).Select(i =>
                torch.autograd.grad(new[] { y }, new[] { x }, new[] { torch.zeros_like(y).index_put_(torch.tensor(1.0), torch.tensor(i)) }, retain_graph: true)[0].flatten()).ToArray();
            singularValues = torch.linalg.svdvals(torch.stack(rows)).data<double>().ToArray();
        }
        finally
        {
            block.to(ScalarType.Float32);
        }

        double rounding = Numerics.GradientError(block) + 2 * Numerics.NormError(input.numel()) + Numerics.Float32Roundoff;
        Numerics.AssertPowerIterationConverges(singularValues, iterations, rounding);
        Assert.AreEqual(singularValues[0], estimate, 2 * rounding * singularValues[0], "power iteration against σ₁ of the float64 Jacobian");
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
        var hook = decoder.register_forward_pre_hook((_, x) => input ??= x.detach().clone());
        using (torch.no_grad()) model.call(images);
        hook.remove();

        Assert.AreEqual(4 * 4 * 4, input.numel());
        AssertPowerIterationMatchesFloat64(decoder, decoder.call, input, report.SpectralNorms[^1], report.Iterations);
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
