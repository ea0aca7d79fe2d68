using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Estimators;

[TestClass]
public sealed class InputConvolutionAdaptationTests
{
    private static TensorDictionary WithConvolution(Tensor weight)
    {
        var weights = new TensorDictionary("test.safetensors", new Dictionary<string, string>());
        weights.Add("conv1.weight", weight);
        weights.Add("fc.weight", torch.ones(2, 4));
        return weights;
    }

    [TestMethod]
    public void AdaptingRgbWeightsToOneChannel_GivesAGreyImageWhatTheSameGreyAsRgbGave()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(seed: 5);
        Tensor rgbWeight = torch.randn(4, 3, 3, 3, generator: generator);
        Tensor grey = torch.rand(1, 1, 6, 6, generator: generator).Times(255.0);
        Tensor expected = nn.functional.conv2d(grey.expand(1, 3, 6, 6), rgbWeight);
        // Each output sums 27 products (or 9 of sums of 3 weights): within γ₂₈ of the sum of their magnitudes.
        Tensor bound = nn.functional.conv2d(grey.abs().expand(1, 3, 6, 6), rgbWeight.abs()).Times(Numerics.Gamma(28));
        using TensorDictionary weights = WithConvolution(rgbWeight.clone());

        Assert.IsTrue(EstimatorRuntime.AdaptInputConvolution(weights, "conv1.weight", 1));

        CollectionAssert.AreEqual(new long[] { 4, 1, 3, 3 }, weights["conv1.weight"].shape);
        Tensor actual = nn.functional.conv2d(grey, weights["conv1.weight"]);
        Assert.IsTrue(actual.sub(expected).abs().le(bound).all().item<bool>(), $"largest difference {actual.sub(expected).abs().max().item<float>()}");
        CollectionAssert.AreEqual(new long[] { 2, 4 }, weights["fc.weight"].shape, "other tensors stay");
    }

    [TestMethod]
    public void AdaptingRgbWeightsToFourChannels_RepeatsRgbScaledByThreeQuarters_AndThreeChannelsOrOtherKeysChangeNothing()
    {
        using var scope = torch.NewDisposeScope();
        Tensor rgbWeight = TensorTestExtensions.FloatRange(6).reshape(2, 3, 1, 1);
        using TensorDictionary weights = WithConvolution(rgbWeight.clone());
        Assert.IsFalse(EstimatorRuntime.AdaptInputConvolution(weights, "conv1.weight", 3));
        Assert.IsFalse(EstimatorRuntime.AdaptInputConvolution(weights, "missing.weight", 1));
        Assert.IsFalse(EstimatorRuntime.AdaptInputConvolution(weights, "fc.weight", 1), "a weight without 3 input channels is left alone");

        Assert.IsTrue(EstimatorRuntime.AdaptInputConvolution(weights, "conv1.weight", 4));

        float[] adapted = weights["conv1.weight"].data<float>().ToArray();
        // Output 0 had R, G, B = 0, 1, 2; output 1 had 3, 4, 5. Channels R, G, B, R, each × 3/4 (exact in binary).
        CollectionAssert.AreEqual(new[] { 0f, 0.75f, 1.5f, 0f, 2.25f, 3f, 3.75f, 2.25f }, adapted);
    }
}
