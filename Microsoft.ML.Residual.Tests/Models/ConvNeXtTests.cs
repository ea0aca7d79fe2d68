using System;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Tests.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>ConvNeXt beyond the torchvision key, count and logit checks of ResidualModelsTests and TorchvisionParityTests.</summary>
[TestClass]
public sealed class ConvNeXtTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void LayerScaleOption_SetsEveryBlocksInitialScale()
    {
        using var scope = NewDisposeScope();
        using var standard = ResidualModels.Create("convnext_tiny", 10, options: new ConvNeXtOptions { Seed = 1 });
        using var scaled = ResidualModels.Create("convnext_tiny", 10, options: new ConvNeXtOptions { Seed = 1, LayerScale = 0.5 });
        var scales = standard.state_dict().Where(kv => kv.Key.EndsWith(".layer_scale", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(18, scales.Count, "one scale per block: 3 + 3 + 9 + 3");
        Assert.IsTrue(scales.All(kv => kv.Value.data<float>().ToArray().All(v => v == 1e-6f)), "torchvision's 10⁻⁶");
        Assert.IsTrue(scaled.state_dict().Where(kv => kv.Key.EndsWith(".layer_scale", StringComparison.Ordinal)).All(kv => kv.Value.data<float>().ToArray().All(v => v == 0.5f)));
    }

    [TestMethod]
    public void StochasticDepth_DropsWholeBranchesInTrainingOnly()
    {
        using var scope = NewDisposeScope();
        // Layer scale 1 makes every branch count; the network has no BatchNorm, so without stochastic depth training and
        // evaluation compute the same function.
        Tensor input = randn(new long[] { 4, 3, 32, 32 }, generator: new Generator(5));
        using var plain = ResidualModels.Create("convnext_tiny", 10, options: new ConvNeXtOptions { Seed = 2, LayerScale = 1, DropPathRate = 0 });
        using var dropping = ResidualModels.Create("convnext_tiny", 10, options: new ConvNeXtOptions { Seed = 2, LayerScale = 1, DropPathRate = 0.9 });
        using var noGrad = no_grad();
        plain.eval();
        dropping.eval();
        Tensor evaluated = plain.call(input);
        Assert.IsTrue(evaluated.eq(dropping.call(input)).all().item<bool>(), "the same weights compute the same function in eval mode");
        plain.train();
        Assert.IsTrue(evaluated.eq(plain.call(input)).all().item<bool>(), "no stochastic depth: training mode computes the eval-mode function");
        dropping.train();
        // Block b of 18 drops its branch with probability 0.9·b/17 and rescales it by 1/(1 − that) when kept: the output differs.
        Assert.IsFalse(evaluated.eq(dropping.call(input)).all().item<bool>());
    }

    [TestMethod]
    public void ImagesSmallerThanThirtyTwo_AreRefusedByTheEstimatorAndTheFeaturizer()
    {
        // The card's MinimumInputSize: below 32² the last 2×2 stride-2 convolution would have no pixel to read.
        Assert.AreEqual(32, ResidualModels.Find("convnext_small")!.MinimumInputSize);
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(8, seed: 3));
        var training = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ImageClassifier(new ImageClassifierOptions { Architecture = "convnext_tiny", ImageWidth = 16, ImageHeight = 16, Epochs = 1 }))
            .Fit(data));
        StringAssert.Contains(training.Message, "ImageWidth/ImageHeight = 16×16: convnext_tiny needs images of at least 32×32");
        var featurizing = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ResNetFeaturizer("Features", "Image", architecture: "convnext_tiny", imageWidth: 31, imageHeight: 64));
        StringAssert.Contains(featurizing.Message, "convnext_tiny needs images of at least 32×32");
    }

    [TestMethod]
    public void ServesAsAUNetEncoder_AndTheUNetExports()
    {
        using var scope = NewDisposeScope();
        var unet = ResidualModels.Create("unet", 3, options: new UNetOptions { Encoder = "convnext_tiny", EncoderOptions = new ConvNeXtOptions { Seed = 2 } });
        Assert.IsTrue(unet.state_dict().ContainsKey("encoder.features.7.2.layer_scale"), "the encoder keeps torchvision's names under encoder.");
        CollectionAssert.AreEquivalent(new[] { "encoder.classifier.0.weight", "encoder.classifier.0.bias" },
            unet.state_dict().Keys.Where(k => k.StartsWith("encoder.classifier.", StringComparison.Ordinal)).ToArray(), "the encoder has no head");
        using (no_grad()) CollectionAssert.AreEqual(new long[] { 2, 3, 64, 64 }, unet.call(randn(2, 3, 64, 64)).shape);
        var (difference, bound) = OnnxTestSupport.Compare(unet, new long[] { 2, 3, 64, 64 }, seed: 3, calibrate: true);
        Assert.IsTrue(difference <= bound, $"ONNX Runtime against a U-Net over convnext_tiny in float64: {difference:E2}, {difference / bound:G3} × its rounding bound {bound:E2}");
    }

    [TestMethod]
    public void IsMeasuredByTheDiagnostics_BlockByBlock_AndRefusesALipschitzBound()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("convnext_tiny", 4, options: new ConvNeXtOptions { Seed = 8, LayerScale = 0.1 });
        Tensor images = randn(new long[] { 4, 3, 32, 32 }, generator: new Generator(9));
        Tensor labels = tensor(new long[] { 0, 1, 2, 3 });

        GradientFlowReport flow = GradientFlow.Measure(model, images, labels);
        string[] names = model.named_modules().Where(m => m.module is ConvNeXtBlock).Select(m => m.name).ToArray();
        Assert.AreEqual(18, names.Length);
        CollectionAssert.AreEqual(names, flow.BlockNames);
        Assert.IsTrue(flow.IdentityGradientNorms.All(n => n > 0 && double.IsFinite(n)), "every block adds its input");
        Assert.IsTrue(flow.BlockInputGradientNorms.All(n => n > 0 && double.IsFinite(n)));

        JacobianReport jacobian = BlockJacobian.Measure(model, images, iterations: 10);
        Assert.IsTrue(jacobian.SpectralNorms.Length == 18 && jacobian.SpectralNorms.All(n => n > 0 && double.IsFinite(n)));

        var error = Assert.ThrowsExactly<ArgumentException>(() => LipschitzBound.Measure(model, 32, 32, iterations: 5));
        StringAssert.Contains(error.Message, "Layer normalisation");
    }
}
