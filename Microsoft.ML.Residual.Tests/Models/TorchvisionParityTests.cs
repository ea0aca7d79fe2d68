using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
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
    public TestContext TestContext { get; set; } = null!;

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
    [DataRow("mobilenet_v2")]
    [DataRow("mobilenet_v3_small")]
    [DataRow("mobilenet_v3_large")]
    [DataRow("efficientnet_b0")]
    [DataRow("efficientnet_b1")]
    [DataRow("efficientnet_b2")]
    [DataRow("efficientnet_b3")]
    [DataRow("efficientnet_b4")]
    [DataRow("convnext_tiny")]
    [DataRow("convnext_small")]
    [DataRow("regnet_y_400mf")]
    [DataRow("regnet_y_800mf")]
    [DataRow("regnet_x_400mf")]
    [DataRow("regnet_x_800mf")]
    [DataRow("regnet_x_1_6gf")]
    public void EvalLogits_MatchTorchvision(string arch)
    {
        using var io = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, arch + ".io.safetensors"));
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(arch, numClasses: 10);
        TorchvisionFixture.Fill(model);
        model.eval();
        Tensor exact = Numerics.InFloat64(model, io["input"]);
        double bound = Numerics.ForwardError(model) * Numerics.LargestMagnitude(exact);
        TestContext.WriteLine($"{arch}: torchvision's float32 logits {Numerics.LargestDifference(io["logits"], exact) / bound:G3} × the bound");
        Numerics.AssertWithin(io["logits"], exact, bound, $"{arch}: torchvision's float32 logits against ours in float64");
        using (no_grad()) Numerics.AssertWithin(model.call(io["input"]), exact, bound, $"{arch}: our float32 logits against float64");
        model.Dispose();
    }

    /// <summary>
    /// EfficientNetV2-S in training mode (batch statistics; stochastic depth and dropout off) against torchvision's: its
    /// eval-mode logits for the fixture's weights are chaotic (see make_torchvision_fixtures.py), batch statistics keep every
    /// layer normalised.
    /// </summary>
    [TestMethod]
    public void EfficientNetV2Small_TrainingModeLogits_MatchTorchvision()
    {
        using var reference = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, "efficientnet_v2_s.train.safetensors"));
        using var scope = NewDisposeScope();
        using var model = new EfficientNet(new EfficientNetDefinition { Version = EfficientNetVersion.V2Small, NumClasses = 10, DropRate = 0, DropPathRate = 0 });
        TorchvisionFixture.Fill(model);
        model.train();
        Tensor exact = Numerics.InFloat64(model, reference["input"]);
        double bound = Numerics.ForwardError(model) * Numerics.LargestMagnitude(exact);
        Numerics.AssertWithin(reference["logits"], exact, bound, "efficientnet_v2_s: torchvision's float32 training-mode logits against ours in float64");
    }

    /// <summary>
    /// One training-mode pass (batch statistics, dropout off) against torchvision's: the loss, the parameter gradients of the last
    /// blocks and the classifier (earlier ones are ill-conditioned for the fixture's batch; see make_torchvision_fixtures.py),
    /// and the BatchNorm running statistics the pass leaves. torchvision's float32 values
    /// and ours lie within float32's rounding (<see cref="Numerics.GradientError"/> for gradients) of ours in float64.
    /// </summary>
    [TestMethod]
    [DataRow("mobilenet_v2")]
    [DataRow("mobilenet_v3_small")]
    public void TrainingPass_MatchesTorchvision(string arch)
    {
        using var io = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, arch + ".io.safetensors"));
        using var reference = StateDict.Read(Path.Combine(TorchvisionFixture.Directory, arch + ".train.safetensors"));
        using var scope = NewDisposeScope();
        Tensor targets = reference["targets"].to_type(ScalarType.Int64);
        (Tensor Loss, Dictionary<string, Tensor> Values, double GradientError, double ForwardError) Pass(ScalarType type)
        {
            var model = ResidualModels.Create(arch, numClasses: 10, options: new ModelOptions { DropRate = 0 });
            TorchvisionFixture.Fill(model);
            model.to(type);
            model.train();
            Tensor loss = nn.functional.cross_entropy(model.call(io["input"].to_type(type)), targets);
            loss.backward();
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var buffers = model.named_buffers().ToDictionary(b => b.name, b => b.buffer);
            var values = reference.Keys.Where(k => k.Contains(':')).ToDictionary(k => k, k =>
            {
                string key = k[(k.IndexOf(':') + 1)..];
                return (k.StartsWith("grad:", StringComparison.Ordinal) ? parameters[key].grad! : buffers[key]).detach().clone();
            });
            var result = (loss.detach().reshape(1), values, Numerics.GradientError(model), Numerics.ForwardError(model));
            model.Dispose();
            return result;
        }

        var (exactLoss, exact, gradientError, forwardError) = Pass(ScalarType.Float64);
        var (ourLoss, ours, _, _) = Pass(ScalarType.Float32);
        double lossBound = forwardError * Math.Max(1, Numerics.LargestMagnitude(exactLoss));
        Numerics.AssertWithin(reference["loss"], exactLoss, lossBound, $"{arch}: torchvision's training loss against ours in float64");
        Numerics.AssertWithin(ourLoss, exactLoss, lossBound, $"{arch}: our float32 training loss against float64");
        Assert.IsTrue(exact.Count >= 2 && exact.Keys.Any(k => k.StartsWith("grad:", StringComparison.Ordinal)), "the fixture holds gradients and statistics");
        foreach (var (key, value) in exact)
        {
            double bound = (key.StartsWith("grad:", StringComparison.Ordinal) ? gradientError : forwardError) * Numerics.LargestMagnitude(value);
            Numerics.AssertWithin(reference[key], value, bound, $"{arch}: torchvision's {key} against ours in float64");
            Numerics.AssertWithin(ours[key], value, bound, $"{arch}: our float32 {key} against float64");
        }
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
