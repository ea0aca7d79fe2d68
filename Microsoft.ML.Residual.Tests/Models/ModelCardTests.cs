using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>What the registry's cards say about a network: its stages (and the shapes they compute), its first convolution and its normalisation.</summary>
[TestClass]
public sealed class ModelCardTests
{
    [TestMethod]
    [DataRow("resnet18")]
    [DataRow("resnet50d")]
    [DataRow("resnet20")]
    [DataRow("preact_resnet18")]
    [DataRow("densenet121")]
    [DataRow("densenet_bc_100_12")]
    [DataRow("mobilenet_v2")]
    [DataRow("mobilenet_v3_small")]
    [DataRow("mobilenet_v3_large")]
    [DataRow("efficientnet_b0")]
    [DataRow("efficientnet_b3")]
    [DataRow("efficientnet_v2_s")]
    [DataRow("convnext_tiny")]
    [DataRow("regnet_y_400mf")]
    [DataRow("regnet_x_400mf")]
    public void CardStagesAndFirstConvolution_AreThoseOfTheBuiltNetwork(string name)
    {
        ModelInfo card = ResidualModels.Find(name)!;
        using var model = ResidualModels.Create(name, numClasses: 0, inChannels: 1);
        var encoder = (IStageEncoder)model;
        CollectionAssert.AreEqual(encoder.StageChannels.ToArray(), card.Stages!.Select(s => s.Channels).ToArray(), "channels");
        CollectionAssert.AreEqual(encoder.StageReductions.ToArray(), card.Stages!.Select(s => s.Reduction).ToArray(), "reductions");
        using (var scope = NewDisposeScope())
        {
            model.eval();
            using var noGrad = no_grad();
            var stages = encoder.ForwardStages(randn(1, 1, 64, 64));
            for (int i = 0; i < stages.Count; i++)
            {
                long side = 64 / card.Stages![i].Reduction;
                CollectionAssert.AreEqual(new long[] { 1, card.Stages[i].Channels, side, side }, stages[i].shape, $"stage {i}");
            }
        }

        var weights = model.state_dict();
        Assert.IsTrue(weights.ContainsKey(card.FirstConvolution + ".weight"), $"{card.FirstConvolution}.weight is not among {string.Join(", ", weights.Keys.Take(6))}...");
        Assert.AreEqual(1L, weights[card.FirstConvolution + ".weight"].shape[1], "the first convolution sees the input's channels");
    }

    [TestMethod]
    public void EncoderUNetCard_NamesTheEncodersFirstConvolutionInsideTheUNet()
    {
        ModelInfo card = ResidualModels.Find("unet_resnet18")!;
        Assert.AreEqual("encoder.conv1", card.FirstConvolution);
        Assert.IsNull(card.Stages, "a segmenter is not a stage encoder");
        using var model = ResidualModels.Create("unet_resnet18", numClasses: 2, inChannels: 4);
        Assert.AreEqual(4L, model.state_dict()[card.FirstConvolution + ".weight"].shape[1]);
    }

    [TestMethod]
    public void Normalization_ComesFromTheCard_AveragedForOtherChannelCounts()
    {
        var card = new ModelInfo("card-test", "test", "a card with its own statistics") { Mean = new[] { 0.5, 0.4, 0.3 }, Std = new[] { 0.2, 0.2, 0.5 } };
        PixelNormalization rgb = PixelNormalization.For(card, 3);
        CollectionAssert.AreEqual(new[] { 0.5, 0.4, 0.3 }, rgb.Mean.ToArray());
        CollectionAssert.AreEqual(new[] { 0.2, 0.2, 0.5 }, rgb.Std.ToArray());
        PixelNormalization grey = PixelNormalization.For(card, 1);
        Assert.AreEqual(card.Mean.Average(), grey.Mean.Single());
        Assert.AreEqual(card.Std.Average(), grey.Std.Single());
        PixelNormalization library = PixelNormalization.For(ResidualModels.Find("resnet18")!, 3);
        CollectionAssert.AreEqual(PixelNormalization.ImageNet().Mean.ToArray(), library.Mean.ToArray(), "the library's networks expect ImageNet's statistics");
    }

    [TestMethod]
    public void CardWithMismatchedStatistics_IsRefusedAtRegistration()
    {
        var card = new ModelInfo("card-test-bad-statistics", "test", "two means, three deviations") { HeadPrefix = "fc.", Mean = new[] { 0.5, 0.5 } };
        var error = Assert.ThrowsExactly<System.ArgumentException>(() => ResidualModels.Register(card, (classes, channels, options) => throw new System.InvalidOperationException()));
        StringAssert.Contains(error.Message, "Mean and Std");
        Assert.IsNull(ResidualModels.Find(card.Name), "nothing was registered");
    }
}
