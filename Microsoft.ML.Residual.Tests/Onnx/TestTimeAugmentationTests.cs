using System;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Microsoft.ML.Residual.Tests.Onnx;

/// <summary>Test-time augmentation inside the exported graph: the network's logits averaged over views of each image.</summary>
[TestClass]
public sealed class TestTimeAugmentationTests
{
    private const int Size = 16;

    private static Tensor Images(int count, ulong seed, int size = Size) => randn(new long[] { count, 3, size, size }, generator: new Generator(seed));

    /// <summary>
    /// The graph's output against the mean of the network's float64 outputs over <paramref name="views"/>: each view's float32
    /// evaluation is within its rounding bound, and the mean of k values adds k roundings of the largest.
    /// </summary>
    private static void AssertMeanOfViews(nn.Module<Tensor, Tensor> model, Tensor graphOutput, (Tensor Input, Func<Tensor, Tensor> Back)[] views, string what)
    {
        Tensor[] exact = views.Select(v => v.Back(Numerics.InFloat64(model, v.Input))).ToArray();
        Tensor mean = torch.stack(exact).mean(new long[] { 0 });
        double largest = exact.Max(Numerics.LargestMagnitude);
        double bound = (Numerics.ForwardError(model) + Numerics.Gamma(views.Length + 1)) * largest;
        Numerics.AssertWithin(graphOutput, mean, bound, what);
    }

    [TestMethod]
    public void Flip_AveragesTheLogitsOfTheImageAndItsMirrorImage()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", numClasses: 10, options: new ModelOptions { Seed = 21 });
        OnnxTestSupport.RandomizeBatchNorm(model, 22);
        model.eval();
        byte[] graph = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, Size, Size }, new OnnxExportOptions { TestTimeAugmentation = TestTimeAugmentation.Flip });
        Tensor input = Images(3, 23);
        Tensor output = (Tensor)OnnxTestSupport.Run(graph, "input", input)["output"];
        AssertMeanOfViews(model, output, new (Tensor, Func<Tensor, Tensor>)[] { (input, t => t), (input.flip(3), t => t) }, "flip TTA");
        // The mirror image is not the image: without the average, the logits differ by far more than the bound.
        Tensor plain = (Tensor)OnnxTestSupport.Run(OnnxExporter.ExportToBytes(model, new long[] { 1, 3, Size, Size }), "input", input)["output"];
        Assert.IsTrue(Numerics.LargestDifference(plain, output) > 1e-3 * Numerics.LargestMagnitude(plain), "the augmentation changes the logits");
    }

    [TestMethod]
    public void FlipAndCrops_AveragesTheImageItsMirrorImageAndFourCornerCrops()
    {
        using var scope = NewDisposeScope();
        const int size = 32;
        var model = ResidualModels.Create("resnet20", numClasses: 10, options: new ModelOptions { Seed = 24 });
        OnnxTestSupport.RandomizeBatchNorm(model, 25);
        model.eval();
        byte[] graph = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, size, size }, new OnnxExportOptions
        {
            TestTimeAugmentation = TestTimeAugmentation.FlipAndCrops, Softmax = true,
        });
        Tensor input = Images(2, 26, size);
        const int crop = size * 7 / 8;
        Tensor Crop(long y, long x) => input.narrow(2, y, crop).narrow(3, x, crop);
        Tensor score = (Tensor)OnnxTestSupport.Run(graph, "input", input)["Score"];
        // Softmax of the mean of the six views' logits.
        Tensor[] views = { input, input.flip(3), Crop(0, 0), Crop(0, size - crop), Crop(size - crop, 0), Crop(size - crop, size - crop) };
        Tensor logits = torch.stack(views.Select(v => Numerics.InFloat64(model, v)).ToArray()).mean(new long[] { 0 });
        Tensor expected = torch.nn.functional.softmax(logits, 1);
        // Softmax is 1-Lipschitz in the largest logit difference; the logits are within the views' bound.
        double bound = (Numerics.ForwardError(model) + Numerics.Gamma(7)) * views.Max(v => Numerics.LargestMagnitude(Numerics.InFloat64(model, v))) * 2
            + Numerics.SoftmaxSumError(10);
        Numerics.AssertWithin(score, expected, bound, "flip-and-crops TTA, softmax after the average");
    }

    [TestMethod]
    public void Flip_OnASegmenter_MirrorsTheMirroredOutputBackBeforeAveraging()
    {
        using var scope = NewDisposeScope();
        var unet = ResidualModels.Create("unet", 3, options: new UNetOptions { Depth = 2, BaseWidth = 8, Seed = 27 });
        OnnxTestSupport.RandomizeBatchNorm(unet, 28);
        unet.eval();
        byte[] graph = OnnxExporter.ExportToBytes(unet, new long[] { 1, 3, Size, Size }, new OnnxExportOptions { TestTimeAugmentation = TestTimeAugmentation.Flip });
        Tensor input = Images(2, 29);
        Tensor output = (Tensor)OnnxTestSupport.Run(graph, "input", input)["output"];
        AssertMeanOfViews(unet, output, new (Tensor, Func<Tensor, Tensor>)[] { (input, t => t), (input.flip(3), t => t.flip(3)) }, "flip TTA on a U-Net");
        var crops = Assert.ThrowsExactly<ArgumentException>(() => OnnxExporter.ExportToBytes(unet, new long[] { 1, 3, Size, Size },
            new OnnxExportOptions { TestTimeAugmentation = TestTimeAugmentation.FlipAndCrops }));
        StringAssert.Contains(crops.Message, "use Flip");
    }

    [TestMethod]
    public void Flip_CombinesWithInt8_AndIsNotAddedTwice()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", numClasses: 10, options: new ModelOptions { Seed = 30 });
        Tensor calibration = Images(16, 31);
        OnnxTestSupport.CalibrateBatchNorm(model, calibration);
        byte[] single = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, Size, Size }, new OnnxExportOptions { TestTimeAugmentation = TestTimeAugmentation.Flip });
        byte[] quantized = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, Size, Size }, new OnnxExportOptions
        {
            TestTimeAugmentation = TestTimeAugmentation.Flip, Precision = OnnxPrecision.Int8, CalibrationImages = calibration,
        });
        ModelProto proto = ModelProto.Parser.ParseFrom(quantized);
        // The two views share one set of int8 weights.
        Assert.AreEqual(1, proto.Graph.Initializer.Count(i => i.Name == "conv1.weight/quantized"));
        Assert.AreEqual(2, proto.Graph.Node.Count(n => n.OpType == "Conv" && n.Input[1] == "conv1.weight/dequantized"));
        Tensor input = calibration.narrow(0, 0, 4);
        OnnxPrecisionTests.AssertInt8Close(model, (Tensor)OnnxTestSupport.Run(quantized, "input", input)["output"], (Tensor)OnnxTestSupport.Run(single, "input", input)["output"],
            "INT8 with flip TTA against float32 with flip TTA");
        var twice = Assert.ThrowsExactly<ArgumentException>(() => OnnxModelConverter.Convert(single, OnnxPrecision.Float32, testTimeAugmentation: TestTimeAugmentation.Flip));
        StringAssert.Contains(twice.Message, "already averages");
    }
}
