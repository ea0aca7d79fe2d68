using System;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>
/// Inside an autocast scope the library's convolutions and linear layers compute in half precision and batch normalisation
/// in float32; the weights and their gradients stay float32; outside a scope nothing changes.
/// </summary>
[TestClass]
public sealed class AutocastTests
{
    private static Tensor Input(int batch, int size, int seed)
    {
        using var generator = new Generator((ulong)seed);
        return randn(new long[] { batch, 3, size, size }, generator: generator);
    }

    [TestMethod]
    public void InsideAScope_ConvolutionsComputeInHalfPrecisionAndBatchNormInFloat32()
    {
        using var scope = NewDisposeScope();
        var convolution = nn.Conv2d(3, 4, 3, padding: 1, bias: true);
        var norm = new BatchNormalization2d(4);
        Tensor x = Input(2, 6, seed: 1);
        using (Autocast.Enter(TrainingPrecision.BFloat16))
        {
            Tensor features = convolution.Convolve(x);
            Assert.AreEqual(ScalarType.BFloat16, features.dtype, "the convolution's output");
            Assert.AreEqual(ScalarType.Float32, norm.call(features).dtype, "batch normalisation's output");
        }

        Assert.AreEqual(ScalarType.Float32, convolution.Convolve(x).dtype, "outside the scope");
        Assert.IsNull(Autocast.ComputeType, "the scope ends when disposed");
        using (Autocast.Enter(TrainingPrecision.Float32)) Assert.IsNull(Autocast.ComputeType, "float32 needs no casts");
    }

    [TestMethod]
    public void TheHalfPrecisionConvolution_IsTheFloat32ConvolutionOfTheRoundedInputsAndWeights()
    {
        // On the rounded inputs and weights, the only errors are those of the sums and of the output's rounding to bfloat16.
        // With unit roundoff u = 2⁻⁸ (bfloat16's 8 significant bits: the least precise accumulator a kernel may use), a sum of
        // k terms errs by at most k·u·Σ|terms| (the classic summation bound, first order), and the output by u·|y| more.
        // This checks the values; that the convolution computes in bfloat16 at all is the test above (its output type).
        using var scope = NewDisposeScope();
        var convolution = nn.Conv2d(3, 5, 3, padding: 1, bias: true);
        Tensor x = Input(2, 7, seed: 2);
        Tensor half;
        using (Autocast.Enter(TrainingPrecision.BFloat16)) half = convolution.Convolve(x).to_type(ScalarType.Float32);
        Tensor Rounded(Tensor t) => t.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32);
        Tensor reference = nn.functional.conv2d(Rounded(x), Rounded(convolution.weight!), Rounded(convolution.bias!), padding: new long[] { 1, 1 });
        // 27 products (3 channels × 3 × 3) and the bias: k = 28.
        Tensor magnitude = nn.functional.conv2d(Rounded(x).abs(), Rounded(convolution.weight!).abs(), Rounded(convolution.bias!).abs(), padding: new long[] { 1, 1 });
        Tensor bound = reference.abs().Times(Math.Pow(2, -8)).Plus(magnitude.Times(28 * Math.Pow(2, -8)));
        Tensor excess = half.PlusScaled(reference, -1.0).abs().PlusScaled(bound, -1.0).max();
        Assert.IsTrue(excess.item<float>() <= 0, $"largest excess over the bound {excess.item<float>()}");
    }

    [TestMethod]
    public void GradientsOfAMixedPrecisionNetwork_ReachTheFloat32WeightsAndFollowTheFloat32Gradients()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 5 });
        Tensor x = Input(4, 8, seed: 3);
        Tensor y = tensor(new long[] { 0, 1, 2, 1 });

        Tensor[] Gradients(TrainingPrecision precision)
        {
            model.zero_grad();
            Tensor logits;
            using (Autocast.Enter(precision)) logits = Autocast.ToFloat32(model.call(x));
            Assert.AreEqual(ScalarType.Float32, logits.dtype);
            nn.functional.cross_entropy(logits, y).backward();
            return model.parameters().Select(p => p.grad!.clone()).ToArray();
        }

        Tensor[] full = Gradients(TrainingPrecision.Float32), half = Gradients(TrainingPrecision.BFloat16);
        Assert.IsTrue(model.parameters().All(p => p.dtype == ScalarType.Float32), "the weights stay float32");
        Assert.IsTrue(half.All(g => g.dtype == ScalarType.Float32), "their gradients are float32");
        // The gradient points the same way. Batch normalisation's backward pass subtracts nearly equal numbers, so bfloat16
        // activation gradients can move the weight gradients a long way: PyTorch 1.13's own CPU autocast gives a cosine of 0.72
        // against float32 for torchvision's ResNet-18 on a 4×3×32×32 batch. Here (ResNet-20) 0.98; unrelated directions give ~0.
        Tensor flatFull = cat(full.Select(g => g.flatten()).ToArray()), flatHalf = cat(half.Select(g => g.flatten()).ToArray());
        double cosine = flatFull.dot(flatHalf).item<float>() / (flatFull.norm().item<float>() * flatHalf.norm().item<float>());
        Assert.IsTrue(cosine > 0.5, $"cosine between the bfloat16 and float32 gradients: {cosine}");
    }

    [TestMethod]
    public void EveryFamily_RunsForwardAndBackwardInEachHalfPrecision()
    {
        using var scope = NewDisposeScope();
        var networks = new (string Name, ModelOptions? Options)[]
        {
            ("resnet18", null), ("preact_resnet18", null), ("resnet20", null), ("densenet121", null), ("unet_resnet18", null),
            ("densenet121", new DenseNetOptions { MemoryEfficient = true }), // the backward pass recomputes in the forward's precision
            ("unet", new UNetOptions { Depth = 2, BaseWidth = 8, DecoderResidual = true }), // transposed convolutions, projected shortcuts
            ("unet", new UNetOptions { Depth = 2, BaseWidth = 8, Upsampling = UNetUpsampling.Bilinear }),
        };
        foreach (var (name, options) in networks)
        foreach (TrainingPrecision precision in new[] { TrainingPrecision.BFloat16, TrainingPrecision.Float16 })
        {
            using var inner = NewDisposeScope();
            var model = ResidualModels.Create(name, 3, options: options);
            Tensor x = Input(2, 32, seed: 4);
            Tensor output;
            using (Autocast.Enter(precision)) output = Autocast.ToFloat32(model.call(x));
            output.sum().backward();
            Assert.IsTrue(output.isfinite().all().item<bool>(), $"{name} {precision}: finite output");
            Assert.IsTrue(model.parameters().Where(p => p.requires_grad).All(p => p.grad is not null && p.grad.dtype == ScalarType.Float32),
                $"{name} {precision}: every parameter gets a float32 gradient");
        }
    }

    [TestMethod]
    public void TheScopeBelongsToItsThread()
    {
        using var scope = Autocast.Enter(TrainingPrecision.BFloat16);
        ScalarType? elsewhere = ScalarType.Float32;
        var thread = new System.Threading.Thread(() => elsewhere = Autocast.ComputeType);
        thread.Start();
        thread.Join();
        Assert.IsNull(elsewhere, "another thread computes in float32");
        Assert.AreEqual(ScalarType.BFloat16, Autocast.ComputeType);
    }
}
