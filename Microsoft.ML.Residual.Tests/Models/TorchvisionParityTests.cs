using System.IO;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>
/// Our networks against torchvision 0.14's, with the deterministic weights of
/// Fixtures/make_torchvision_fixtures.py (the logits were computed by torchvision itself).
/// </summary>
[TestClass]
public sealed class TorchvisionParityTests
{
    [TestMethod]
    [DataRow("resnet18")]
    [DataRow("resnet50")]
    [DataRow("resnext50_32x4d")]
    [DataRow("wide_resnet50_2")]
    [DataRow("densenet121")]
    public void EvalLogits_MatchTorchvision(string arch)
    {
        using var io = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, arch + ".io.safetensors"));
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(arch, numClasses: 10);
        TorchvisionFixture.Fill(model);
        model.eval();
        using var noGrad = no_grad();
        Tensor expected = io["logits"];
        Tensor actual = model.call(io["input"]);
        Tensor relativeError = (actual - expected).abs() / expected.abs().AtLeast(1.0);
        double worst = relativeError.max().item<float>();
        Assert.IsTrue(worst <= 1e-4, $"{arch}: max |Δ|/max(1,|y|) = {worst:E2}");
        model.Dispose();
    }

    [TestMethod]
    public void EvalLogits_DifferWhenOneBatchNormStatisticIsWrong()
    {
        // The comparison above is sensitive: perturbing a single running mean moves the logits past the tolerance.
        using var io = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, "resnet18.io.safetensors"));
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet18", numClasses: 10);
        TorchvisionFixture.Fill(model);
        using (no_grad()) model.state_dict()["layer3.1.bn2.running_mean"].PlusInPlace(0.5);
        model.eval();
        using var noGrad = no_grad();
        Tensor expected = io["logits"];
        double worst = ((model.call(io["input"]) - expected).abs() / expected.abs().AtLeast(1.0)).max().item<float>();
        Assert.IsTrue(worst > 1e-3, $"{worst:E2}");
        model.Dispose();
    }
}
