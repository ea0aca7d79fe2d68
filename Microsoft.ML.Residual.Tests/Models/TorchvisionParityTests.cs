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
    /// <summary>
    /// torchvision's logits (float32, computed on another machine) and ours are two float32 evaluations of the same
    /// function, so each lies within <see cref="Numerics.ForwardError"/> (L·√K·u) of the largest logit from our model run
    /// in float64, whichever CPU kernels computed them. (Compared with each other per logit, relative to max(1, |y|), they
    /// failed on AVX-512 machines: the logits are differences of terms 10–100 times larger, so a small logit carries the
    /// rounding of those terms.)
    /// </summary>
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
        Tensor exact = Numerics.InFloat64(model, io["input"]);
        double bound = Numerics.ForwardError(model) * Numerics.LargestMagnitude(exact);
        Numerics.AssertWithin(io["logits"], exact, bound, $"{arch}: torchvision's float32 logits against ours in float64");
        using (no_grad()) Numerics.AssertWithin(model.call(io["input"]), exact, bound, $"{arch}: our float32 logits against float64");
        model.Dispose();
    }

    [TestMethod]
    public void EvalLogits_DifferWhenOneBatchNormStatisticIsWrong()
    {
        // The comparison above is sensitive: perturbing a single running mean moves the logits past its bound.
        using var io = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, "resnet18.io.safetensors"));
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet18", numClasses: 10);
        TorchvisionFixture.Fill(model);
        using (no_grad()) model.state_dict()["layer3.1.bn2.running_mean"].PlusInPlace(0.5);
        model.eval();
        Tensor exact = Numerics.InFloat64(model, io["input"]);
        double bound = Numerics.ForwardError(model) * Numerics.LargestMagnitude(exact);
        double difference = Numerics.LargestDifference(io["logits"], exact);
        Assert.IsTrue(difference > bound, $"{difference:E2} against the bound {bound:E2}");
        model.Dispose();
    }
}
