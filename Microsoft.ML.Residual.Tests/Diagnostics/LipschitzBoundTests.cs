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
public sealed class LipschitzBoundTests
{
    [TestMethod]
    public void ConvolutionNorm_MatchesTheLargestSingularValueOfTheConvolutionsMatrix()
    {
        torch.manual_seed(4);
        var conv = nn.Conv2d(2, 3, 3, stride: 2, padding: 1, bias: false);
        Tensor like = torch.zeros(1, 2, 5, 5);

        // The convolution's matrix, column by column: the image of each unit input.
        Tensor[] columns = Enumerable.Range(0, 2 * 5 * 5).Select(i =>
        {
            Tensor unit = torch.zeros(2 * 5 * 5).index_put_(torch.tensor(1f), torch.tensor(i)).view(1, 2, 5, 5);
            return conv.call(unit).flatten();
        }).ToArray();
        // Each column is one weight per output (a single non-zero product): the matrix is exact, and so is its float64 SVD.
        Tensor matrix = torch.stack(columns, 1).detach().to_type(ScalarType.Float64);
        double[] singularValues = torch.linalg.svdvals(matrix).data<double>().ToArray();
        double expected = singularValues[0];

        // Power iteration's float32 ‖Av‖: each of its sums of K = 2·3·3 products is within γ_K·(|A||v|)ᵢ, so the vector is
        // within γ_K·σ₁(|A|) (rigorous, Higham eq. 3.5); its norm and v's normalisation add NormError each (u per element).
        // The shortfall after 200 steps is asserted to be below that rounding, so the estimate lies within twice it.
        const int iterations = 200;
        double absoluteSigma = torch.linalg.svdvals(matrix.abs())[0].item<double>();
        double rounding = Numerics.Gamma(2 * 3 * 3) * absoluteSigma / expected + Numerics.NormError(3 * 3 * 3) + Numerics.NormError(2 * 5 * 5) + Numerics.Float32Roundoff;
        Numerics.AssertPowerIterationConverges(singularValues, iterations, rounding);
        Assert.AreEqual(expected, LipschitzBound.ConvolutionNorm(conv, like, iterations), 2 * rounding * expected);
    }

    [TestMethod]
    public void UpperBound_IsAboveTheNetworksMeasuredJacobianNorm()
    {
        var model = ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2 });
        using var generator = new Generator(3UL);
        Tensor images = torch.randn(new long[] { 2, 3, 16, 16 }, generator: generator);
        LipschitzReport report = LipschitzBound.Measure(model, 16, 16);
        double local = BlockJacobian.NetworkNorm(model, images, iterations: 30);

        Assert.IsTrue(local > 0 && double.IsFinite(report.UpperBound));
        Assert.IsLessThanOrEqualTo(report.UpperBound, local, $"local Jacobian norm {local:E3} must not exceed the bound {report.UpperBound:E3}");
        for (int b = 0; b < report.BlockBounds.Length; b++)
            Assert.AreEqual(report.ShortcutBounds[b] + report.BranchBounds[b], report.BlockBounds[b], "1 + Lip(F) with α = 1, β = 0: (1 − 0)·s + |1|·b is s + b bit for bit");
        Assert.IsTrue(report.ShortcutBounds.All(s => s == 1.0), "identity and option A shortcuts");
    }

    [TestMethod]
    public void ZeroInitialisedResiduals_BoundEachBlockByItsShortcutAlone()
    {
        var model = ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2, ZeroInitResidual = true });
        LipschitzReport report = LipschitzBound.Measure(model, 16, 16);

        Assert.IsTrue(report.BranchBounds.All(b => b == 0), "the last BatchNorm's γ is zero");
        Assert.IsTrue(report.BlockBounds.All(b => b == 1.0));
        Assert.AreEqual(report.StemBound * report.HeadBound, report.UpperBound, "stem × 1 × … × 1 × head is stem × head bit for bit");
        Assert.AreEqual(0.0, report.LayerProduct, "the naive product sees only the zeroed branches");
    }

    [TestMethod]
    public void PlainNetworks_HaveTheLayerProductAsTheirBound_ResidualScalingShrinksTheBlockBounds()
    {
        LipschitzReport plain = LipschitzBound.Measure(ResidualModels.Create("plain20", 10, 3, new ResNetOptions { Seed = 2 }), 16, 16);
        Assert.AreEqual(plain.LayerProduct, plain.UpperBound, "a plain block's bound is its branch's: the same product in the same order");
        Assert.IsTrue(plain.ShortcutBounds.All(s => s == 0));

        LipschitzReport full = LipschitzBound.Measure(ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2 }), 16, 16);
        LipschitzReport scaled = LipschitzBound.Measure(ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2, ResidualScale = 0.1 }), 16, 16);
        // The same seed gives the same weights (the scale multiplies the branch's output, not its weights), and the same
        // power iterations on them give the same bits; so the scaled block's bound is (1 − 0)·1 + |0.1|·Lip(F) exactly.
        CollectionAssert.AreEqual(full.BranchBounds, scaled.BranchBounds, "the same branches");
        for (int b = 0; b < full.BlockBounds.Length; b++)
            Assert.AreEqual(1 + 0.1 * full.BranchBounds[b], scaled.BlockBounds[b], full.BlockNames[b]);
    }

    /// <summary>A stem, one block, and a head that adds the stem's output back: a skip around the block the chain cannot bound.</summary>
    private sealed class SkipAroundBlock : ResidualModule
    {
        private readonly Conv2d stem = nn.Conv2d(3, 8, 3, padding: 1, bias: false);
        private readonly Tests.Models.OutsideBlock block = new(8, 8, stride: 1);
        private readonly Linear head = nn.Linear(8, 2);

        public SkipAroundBlock() : base(nameof(SkipAroundBlock))
        {
            register_module("stem", stem);
            register_module("block", block);
            register_module("head", head);
        }

        public override T Forward<T>(IOperations<T> ops, T input)
        {
            T x = ops.Call(stem, input);
            T y = ops.Add(ops.Call(block, x), x);
            return ops.Call(head, ops.Flatten(ops.GlobalAveragePool(y)));
        }
    }

    [TestMethod]
    public void Measure_OnAValueCombinedAcrossABlock_RefusesRatherThanReportAFalseBound()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => LipschitzBound.Measure(new SkipAroundBlock(), 8, 8, iterations: 3));
        StringAssert.Contains(error.Message, "from before a block is combined with one after it");
    }

    [TestMethod]
    public void Measure_OnADenseNet_SaysItBoundsTheResNetFamily()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => LipschitzBound.Measure(ResidualModels.Create("densenet_bc_100_12", 10), 32, 32));
        StringAssert.Contains(error.Message, "ResNet family");
    }
}
