using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class ChannelsLastLayoutTests
{
    [TestMethod]
    public void Of_KeepsShapeAndValues_WithNhwcStrides()
    {
        using var scope = NewDisposeScope();
        Tensor images = TensorTestExtensions.FloatRange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5);
        Tensor channelsLast = ChannelsLastLayout.Of(images);
        CollectionAssert.AreEqual(images.shape, channelsLast.shape);
        CollectionAssert.AreEqual(new long[] { 60, 1, 15, 3 }, channelsLast.stride());
        Assert.IsTrue(ChannelsLastLayout.IsChannelsLast(channelsLast));
        Assert.IsFalse(ChannelsLastLayout.IsChannelsLast(images));
        Assert.IsTrue(channelsLast.equal(images).all().item<bool>());
    }

    [TestMethod]
    public void EnterForWeights_LaysConvolutionWeightsOutChannelsLast_AndDisposeRestoresTheSameParametersUnchanged()
    {
        using var model = ResidualModels.Create("resnet18", 3, options: new ResNetOptions { Seed = 4 });
        var parameters = model.named_parameters().ToList();
        var before = parameters.ToDictionary(p => p.name, p => p.parameter.detach().clone());

        using (ChannelsLastLayout.EnterForWeights(model))
        {
            var inside = model.named_parameters().ToList();
            for (int i = 0; i < parameters.Count; i++)
            {
                Assert.AreSame(parameters[i].parameter, inside[i].parameter, $"{parameters[i].name} was replaced, not laid out in place");
                Tensor value = inside[i].parameter;
                // Every 4-d weight is channels-last; those of kernels wider than 1×1 are no longer contiguous (a 1×1 kernel's
                // two layouts coincide, so it is left as it is).
                Assert.AreEqual(value.dim() == 4, ChannelsLastLayout.IsChannelsLast(value), parameters[i].name);
                if (value.dim() == 4 && value.shape[2] * value.shape[3] > 1) Assert.IsFalse(value.is_contiguous(), parameters[i].name);
                Assert.IsTrue(value.equal(before[parameters[i].name]).all().item<bool>(), $"{parameters[i].name} changed value");
                Assert.IsTrue(value.requires_grad, $"{parameters[i].name} stopped requiring gradients");
            }
        }

        foreach (var (name, value) in model.named_parameters())
        {
            Assert.IsTrue(value.is_contiguous(), $"{name} kept the channels-last layout");
            Assert.IsTrue(value.equal(before[name]).all().item<bool>(), $"{name} changed value");
        }
    }
}
