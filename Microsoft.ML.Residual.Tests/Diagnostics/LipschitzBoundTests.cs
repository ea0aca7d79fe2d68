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
        double expected = torch.linalg.svdvals(torch.stack(columns, 1).detach().to_type(ScalarType.Float64))[0].item<double>();

        Assert.AreEqual(expected, LipschitzBound.ConvolutionNorm(conv, like, iterations: 200), expected * 1e-4);
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
            Assert.AreEqual(report.ShortcutBounds[b] + report.BranchBounds[b], report.BlockBounds[b], 1e-9 * report.BlockBounds[b], "1 + Lip(F) with α = 1, β = 0");
        Assert.IsTrue(report.ShortcutBounds.All(s => s == 1.0), "identity and option A shortcuts");
    }

    [TestMethod]
    public void ZeroInitialisedResiduals_BoundEachBlockByItsShortcutAlone()
    {
        var model = ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2, ZeroInitResidual = true });
        LipschitzReport report = LipschitzBound.Measure(model, 16, 16);

        Assert.IsTrue(report.BranchBounds.All(b => b == 0), "the last BatchNorm's γ is zero");
        Assert.IsTrue(report.BlockBounds.All(b => b == 1.0));
        Assert.AreEqual(report.StemBound * report.HeadBound, report.UpperBound, 1e-12);
        Assert.AreEqual(0.0, report.LayerProduct, "the naive product sees only the zeroed branches");
    }

    [TestMethod]
    public void PlainNetworks_HaveTheLayerProductAsTheirBound_ResidualScalingShrinksTheBlockBounds()
    {
        LipschitzReport plain = LipschitzBound.Measure(ResidualModels.Create("plain20", 10, 3, new ResNetOptions { Seed = 2 }), 16, 16);
        Assert.AreEqual(plain.LayerProduct, plain.UpperBound, plain.UpperBound * 1e-12);
        Assert.IsTrue(plain.ShortcutBounds.All(s => s == 0));

        LipschitzReport full = LipschitzBound.Measure(ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2 }), 16, 16);
        LipschitzReport scaled = LipschitzBound.Measure(ResidualModels.Create("resnet20", 10, 3, new ResNetOptions { Seed = 2, ResidualScale = 0.1 }), 16, 16);
        for (int b = 0; b < full.BlockBounds.Length; b++)
            Assert.AreEqual(1 + 0.1 * full.BranchBounds[b], scaled.BlockBounds[b], 1e-6 * scaled.BlockBounds[b], full.BlockNames[b]);
    }

    [TestMethod]
    public void Measure_OnADenseNet_SaysItBoundsTheResNetFamily()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => LipschitzBound.Measure(ResidualModels.Create("densenet_bc_100_12", 10), 32, 32));
        StringAssert.Contains(error.Message, "ResNet family");
    }
}
