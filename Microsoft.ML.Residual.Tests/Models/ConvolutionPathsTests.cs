using System;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class ConvolutionPathsTests
{
    // (in, out, kernel, stride, padding, bias, input size): every one of these convolutions has a 1×1 output.
    [TestMethod]
    [DataRow(16, 24, 3, 1, 1, false, 1, DisplayName = "3×3, padding 1, on a 1×1 map (ImageNet-stem layer4 at 32²)")]
    [DataRow(8, 16, 3, 2, 1, false, 2, DisplayName = "3×3 stride 2 from 2×2 (the first convolution of that stage)")]
    [DataRow(8, 16, 1, 2, 0, false, 2, DisplayName = "1×1 stride 2 projection from 2×2 (sees one pixel)")]
    [DataRow(6, 5, 3, 1, 0, true, 3, DisplayName = "3×3 without padding on a 3×3 map, with bias")]
    [DataRow(6, 5, 5, 3, 2, true, 3, DisplayName = "5×5 stride 3 clipped on every side")]
    public void SingleOutputPixel_MatchesTheConvolutionAndItsGradients(int inChannels, int outChannels, int kernel, int stride,
        int padding, bool bias, int size)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        Conv2d convolution = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding, bias: bias);
        foreach (bool channelsLast in new[] { false, true })
        {
            Tensor input = randn(4, inChannels, size, size);
            if (channelsLast) input = input.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
            ConvolutionReference.AssertMatchesFloat64(convolution, input, $"channels-last {channelsLast}",
                expectedShape: new long[] { 4, outChannels, 1, 1 });
        }
    }

    [TestMethod]
    [DataRow(3, 1, 1, 1, 2, DisplayName = "2×2 output")]
    [DataRow(3, 1, 1, 2, 1, DisplayName = "grouped")]
    [DataRow(3, 1, 2, 1, 3, DisplayName = "dilated")]
    public void OtherShapes_RunTheConvolutionItself(int kernel, int stride, int dilation, int groups, int size)
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        Conv2d convolution = nn.Conv2d(4, 4, kernel, stride: stride, padding: 1, dilation: dilation, groups: groups, bias: false);
        Tensor input = randn(2, 4, size, size);
        using var noGrad = no_grad();
        Assert.IsTrue(convolution.Convolve(input).IsEqualTo(convolution.call(input)));
    }

    [TestMethod]
    public void ResNet18At32_TrainsTheSameWithTheSingleOutputPixelPath()
    {
        // The ImageNet stem leaves layer4 of ResNet-18 at 1×1 for 32² inputs: its convolutions take the matrix-product path.
        // The whole network's output and parameter gradients must match a forward pass built from the plain convolutions.
        using var scope = NewDisposeScope();
        var model = (ResNet)ResidualModels.Create("resnet18", numClasses: 5, options: new ResNetOptions { Stem = StemKind.ImageNet, Seed = 4 });
        model.train();
        Tensor input = randn(new long[] { 3, 3, 32, 32 }, generator: new Generator(4));
        Tensor layer4Input = model.ForwardStages(input)[3].detach();
        Assert.AreEqual(2L, layer4Input.shape[2], "layer4 starts from 2×2 at 32²");

        ResNetBlock first = model.Blocks[model.Blocks.Count - 2];
        foreach (ResNetBlock block in new[] { first, model.Blocks[model.Blocks.Count - 1] })
        {
            Tensor blockInput = block == first ? layer4Input : first.call(layer4Input).detach();
            Tensor fast = block.call(blockInput);
            using var noGrad = no_grad();
            Tensor reference = ReferenceBlockForward(block, blockInput);
            // Both are float32 evaluations of the same block (the matrix product sums the same products as the convolution,
            // whose other taps multiply padding zeros): each lies within ForwardError of the block's largest output from the
            // block run in float64 (which takes the matrix-product path too; in exact arithmetic the paths agree).
            Tensor exact = Numerics.InFloat64(block, blockInput);
            double bound = Numerics.ForwardError(block) * Numerics.LargestMagnitude(exact);
            Numerics.AssertWithin(fast, exact, bound, "layer4 block through the matrix-product path, against float64");
            Numerics.AssertWithin(reference, exact, bound, "layer4 block through libtorch's convolutions, against float64");
        }
    }

    // The block with every convolution run by libtorch directly (post-activation basic block, torchvision's layout).
    private static Tensor ReferenceBlockForward(ResNetBlock block, Tensor input)
    {
        var modules = new System.Collections.Generic.Dictionary<string, nn.Module>();
        foreach (var (name, module) in block.named_modules()) modules[name] = module;
        Tensor Conv(string name, Tensor x) => ((Conv2d)modules[name]).call(x);
        Tensor Norm(string name, Tensor x) => ((BatchNorm)modules[name]).call(x);
        Tensor branch = Norm("bn2", Conv("conv2", Norm("bn1", Conv("conv1", input)).relu()));
        Tensor identity = modules.ContainsKey("downsample.0") ? Norm("downsample.1", Conv("downsample.0", input)) : input;
        return branch.Plus(identity).relu();
    }
}
