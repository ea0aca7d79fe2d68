using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Microsoft.ML.Residual.Tests.Onnx;

/// <summary>BatchNorm folding, half precision and INT8 quantisation of exported graphs.</summary>
[TestClass]
public sealed class OnnxPrecisionTests
{
    private const int Size = 16;

    /// <summary>u = 2⁻¹¹: float16's unit roundoff.</summary>
    private const double Float16Roundoff = 1.0 / (1 << 11);

    private static readonly long[] ExampleShape = { 1, 3, Size, Size };

    public TestContext TestContext { get; set; } = null!;

    private static nn.Module<Tensor, Tensor> Network(string name = "resnet20", long seed = 3)
    {
        var model = ResidualModels.Create(name, numClasses: 10, options: new ModelOptions { Seed = seed });
        OnnxTestSupport.RandomizeBatchNorm(model, seed + 1);
        model.eval();
        return model;
    }

    private static Tensor Images(int count, ulong seed) => randn(new long[] { count, 3, Size, Size }, generator: new Generator(seed));

    private static ModelProto Parse(byte[] model) => ModelProto.Parser.ParseFrom(model);

    private static Tensor Logits(byte[] model, Tensor input) => (Tensor)OnnxTestSupport.Run(model, "input", input)["output"];

    [TestMethod]
    public void FoldedGraph_HasNoBatchNormAfterConvolutions_AndComputesTheNetworkWithinRounding()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        byte[] folded = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { FoldBatchNorm = true });
        ModelProto graph = Parse(folded);
        Assert.AreEqual(0, graph.Graph.Node.Count(n => n.OpType == "BatchNormalization"), "resnet20 has a convolution before every BatchNorm");
        Assert.IsFalse(graph.Graph.Initializer.Any(i => i.Name.EndsWith("running_mean", StringComparison.Ordinal)), "the statistics went into the weights");
        Tensor input = Images(3, 5);
        OnnxTestSupport.AssertMatchesFloat64(model, input, Logits(folded, input), "folded resnet20");
    }

    [TestMethod]
    public void Folding_LeavesBatchNormsThatDoNotFollowAConvolution()
    {
        using var scope = NewDisposeScope();
        var model = Network("preact_resnet18");
        byte[] plain = OnnxExporter.ExportToBytes(model, ExampleShape);
        byte[] folded = OnnxModelConverter.FoldBatchNorm(plain);
        int before = Parse(plain).Graph.Node.Count(n => n.OpType == "BatchNormalization");
        int after = Parse(folded).Graph.Node.Count(n => n.OpType == "BatchNormalization");
        // Pre-activation blocks normalise the block's input (a sum or the stem's output), and inside each block the second
        // BatchNorm follows the first convolution: only those fold.
        Assert.IsTrue(after > 0 && after < before, $"BatchNorm nodes before {before}, after {after}");
        Tensor input = Images(2, 6);
        OnnxTestSupport.AssertMatchesFloat64(model, input, Logits(folded, input), "folded preact_resnet18");
    }

    [TestMethod]
    public void FoldedGraph_ReadsBackAsTheOriginalWeights_EvenWhereAScaleIsZero()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        // A zero-initialised residual branch: γ = 0 leaves W·s = 0, from which W cannot be recovered; the metadata keeps W.
        using (no_grad()) model.state_dict()["layer1.0.bn2.weight"].narrow(0, 0, 3).zero_();
        byte[] folded = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { FoldBatchNorm = true });
        using TensorDictionary weights = OnnxWeights.Read(new MemoryStream(folded), "folded");
        AssertUnfolded(model.state_dict(), weights, float16: false, "resnet20 read back from its folded graph");
        var reloaded = ResidualModels.Create("resnet20", numClasses: 10);
        StateDict.Load(reloaded, weights, strict: true);
        reloaded.eval();
        Tensor input = Images(3, 7);
        using (no_grad()) OnnxTestSupport.AssertMatchesFloat64(model, input, reloaded.call(input), "resnet20 read back from its folded graph");
    }

    /// <summary>
    /// BatchNorm parameters come back exactly (the metadata keeps them in float32). A convolution weight was multiplied by s and
    /// rounded, then divided by s and rounded: within 2u of itself. A float16 graph (<paramref name="float16"/>) rounds what it
    /// stores once more: relatively by u₁₆, or by half float16's smallest step 2⁻²⁵ for values below its normal range (so 2⁻²⁵/s
    /// after the division).
    /// </summary>
    internal static void AssertUnfolded(IReadOnlyDictionary<string, Tensor> original, IReadOnlyDictionary<string, Tensor> read, bool float16, string what)
    {
        var norms = original.Keys.Where(k => k.EndsWith(".running_mean", StringComparison.Ordinal)).Select(k => k[..^"running_mean".Length]).ToHashSet();
        double smallestScale = norms.Count == 0 ? 1 : norms.Min(n => original[n + "weight"].abs().div(original[n + "running_var"].Plus(1e-5).sqrt()).min().item<float>());
        foreach (var (name, value) in original)
        {
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            Assert.IsTrue(read.ContainsKey(name), $"{what}: {name} missing");
            string prefix = name[..(name.LastIndexOf('.') + 1)];
            if (norms.Contains(prefix))
            {
                Assert.IsTrue(read[name].eq(value).all().item<bool>(), $"{what}: {name} exactly");
                continue;
            }

            bool folded = value.dim() == 4;
            double relative = (folded ? 2 * Numerics.Float32Roundoff : 0) + (float16 ? Float16Roundoff : 0);
            double absolute = float16 ? Math.Pow(2, -25) / (folded ? smallestScale : 1) : 1e-30;
            Numerics.AssertWithin(read[name], value, value.abs().Times(relative).Plus(absolute), $"{what}: {name}");
        }
    }

    [TestMethod]
    public void Float16Graph_HalvesTheFile_AndComputesWithinHalfPrecisionRounding()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        byte[] single = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { FoldBatchNorm = true });
        byte[] half = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { Precision = OnnxPrecision.Float16 });
        ModelProto graph = Parse(half);
        Assert.IsTrue(half.Length <= single.Length * 0.52, $"float16 {half.Length} bytes, float32 {single.Length}");
        // Weights as float16 Constant nodes under their state-dict names (ML.NET reads every initializer's type and knows no float16).
        Assert.IsFalse(graph.Graph.Initializer.Any(i => i.DataType == (int)TensorProto.Types.DataType.Float16));
        var constants = graph.Graph.Node.Where(n => n.OpType == "Constant").ToDictionary(n => n.Output[0], n => n.Attribute.Single(a => a.Name == "value").T);
        Assert.AreEqual((int)TensorProto.Types.DataType.Float16, constants["layer1.0.conv1.weight"].DataType);
        Assert.AreEqual((int)TensorProto.Types.DataType.Float16, constants["fc.weight"].DataType);
        Assert.AreEqual((int)TensorProto.Types.DataType.Float, graph.Graph.Output[0].Type.TensorType.ElemType, "the output stays float32");
        Assert.AreEqual(OnnxPrecision.Float16, OnnxModelConverter.PrecisionOf(half));

        // The float32 bound of Numerics.ForwardError, with float16's unit roundoff, plus the input's rounding to float16.
        Tensor input = Images(3, 8);
        Tensor exact = Numerics.InFloat64(model, input);
        double bound = (Numerics.ForwardError(model) * (Float16Roundoff / Numerics.Float32Roundoff) + Float16Roundoff) * Numerics.LargestMagnitude(exact);
        Tensor logits = Logits(half, input);
        TestContext.WriteLine($"float16: {Numerics.LargestDifference(logits, exact) / bound:G3} of the bound");
        Numerics.AssertWithin(logits, exact, bound, "float16 resnet20 against the network in float64");
    }

    [TestMethod]
    public void Float16Graph_ReadsBackAsFloat32Weights()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        byte[] half = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { Precision = OnnxPrecision.Float16 });
        using TensorDictionary weights = OnnxWeights.Read(new MemoryStream(half), "half");
        Assert.AreEqual(ScalarType.Float32, weights["fc.weight"].dtype);
        AssertUnfolded(model.state_dict(), weights, float16: true, "resnet20 read back from its float16 graph");
    }

    [TestMethod]
    public void Int8Graph_StoresEachWeightChannelWithinHalfAStepOfItsSymmetricScale()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        byte[] folded = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { FoldBatchNorm = true });
        byte[] quantized = OnnxExporter.ExportToBytes(model, ExampleShape,
            new OnnxExportOptions { Precision = OnnxPrecision.Int8, CalibrationImages = Images(16, 9) });
        var floats = Parse(folded).Graph.Initializer.ToDictionary(i => i.Name);
        var ints = Parse(quantized).Graph.Initializer.ToDictionary(i => i.Name);
        int checkedWeights = 0;
        foreach (string name in floats.Keys.Where(n => n.EndsWith(".weight", StringComparison.Ordinal) && n != "fc.weight"))
        {
            TensorProto q = ints[name + "/quantized"];
            Assert.AreEqual((int)TensorProto.Types.DataType.Int8, q.DataType, name);
            float[] weight = MemoryMarshal.Cast<byte, float>(floats[name].RawData.Span).ToArray();
            sbyte[] levels = MemoryMarshal.Cast<byte, sbyte>(q.RawData.Span).ToArray();
            float[] scales = MemoryMarshal.Cast<byte, float>(ints[name + "/scale"].RawData.Span).ToArray();
            int perChannel = weight.Length / scales.Length;
            for (int c = 0; c < scales.Length; c++)
            {
                float largest = weight.Skip(c * perChannel).Take(perChannel).Max(Math.Abs);
                Assert.AreEqual((float)(largest / (double)Int8Quantization.WeightLevels), scales[c], $"{name} channel {c}: scale = max|w| / {Int8Quantization.WeightLevels}");
                for (int i = c * perChannel; i < (c + 1) * perChannel; i++)
                {
                    double error = Math.Abs(weight[i] - (double)levels[i] * scales[c]);
                    Assert.IsTrue(error <= scales[c] * (0.5 + 1e-6), $"{name}[{i}]: {weight[i]} stored as {levels[i]} × {scales[c]}");
                }
            }

            checkedWeights++;
        }

        Assert.IsTrue(checkedWeights >= 19, $"{checkedWeights} convolutions quantised");
        Assert.IsTrue(Parse(quantized).Graph.Node.Count(n => n.OpType == "QuantizeLinear") >= 19);
        Assert.AreEqual(OnnxPrecision.Int8, OnnxModelConverter.PrecisionOf(quantized));
    }

    [TestMethod]
    public void Int8MinMaxCalibration_GivesTheInputTheRangeOfTheCalibrationImages()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        Tensor calibration = Images(12, 10);
        byte[] quantized = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions
        {
            Precision = OnnxPrecision.Int8, CalibrationImages = calibration, Calibration = new OnnxCalibration { Method = CalibrationMethod.MinMax, BatchSize = 5 },
        });
        var initializers = Parse(quantized).Graph.Initializer.ToDictionary(i => i.Name);
        double low = Math.Min(0, calibration.min().item<float>()), high = Math.Max(0, calibration.max().item<float>());
        double scale = (high - low) / 255;
        Assert.AreEqual((float)scale, MemoryMarshal.Cast<byte, float>(initializers["input/scale"].RawData.Span)[0]);
        Assert.AreEqual((byte)Math.Round(-low / scale), initializers["input/zero_point"].RawData.Span[0]);
    }

    [TestMethod]
    public void Int8PercentileCalibration_ClipsInsideTheMinMaxRanges()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        Tensor calibration = Images(12, 11);
        Dictionary<string, float> Scales(CalibrationMethod method) => Parse(OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions
        {
            Precision = OnnxPrecision.Int8, CalibrationImages = calibration, Calibration = new OnnxCalibration { Method = method, Percentile = 99.9 },
        })).Graph.Initializer.Where(i => i.Name.EndsWith("/scale", StringComparison.Ordinal) && i.Dims.Count == 0)
            .ToDictionary(i => i.Name, i => MemoryMarshal.Cast<byte, float>(i.RawData.Span)[0]);
        Dictionary<string, float> minMax = Scales(CalibrationMethod.MinMax), percentile = Scales(CalibrationMethod.Percentile);
        CollectionAssert.AreEquivalent(minMax.Keys.ToList(), percentile.Keys.ToList());
        Assert.IsTrue(percentile.All(p => p.Value <= minMax[p.Key]), "a percentile range lies inside the min-max range");
        Assert.IsTrue(percentile.Count(p => p.Value < minMax[p.Key]) > percentile.Count / 2, "99.9 % clips most activations' tails");
    }

    [TestMethod]
    public void Int8Graph_NeedsCalibrationImagesOfTheInputsSize()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        byte[] single = OnnxExporter.ExportToBytes(model, ExampleShape);
        var missing = Assert.ThrowsExactly<ArgumentException>(() => OnnxModelConverter.Convert(single, OnnxPrecision.Int8));
        StringAssert.Contains(missing.Message, "calibrat");
        var wrongSize = Assert.ThrowsExactly<ArgumentException>(() => OnnxModelConverter.Convert(single, OnnxPrecision.Int8, new[] { new float[10] }));
        StringAssert.Contains(wrongSize.Message, $"{3 * Size * Size} values");
        var percentile = Assert.ThrowsExactly<ArgumentException>(() => OnnxModelConverter.Convert(single, OnnxPrecision.Int8, new[] { new float[3 * Size * Size] },
            new OnnxCalibration { Percentile = 20 }));
        StringAssert.Contains(percentile.Message, "Percentile");
        byte[] half = OnnxModelConverter.Convert(single, OnnxPrecision.Float16);
        var twice = Assert.ThrowsExactly<ArgumentException>(() => OnnxModelConverter.Convert(half, OnnxPrecision.Float16));
        StringAssert.Contains(twice.Message, "already computes in Float16");
    }

    [TestMethod]
    public void Int8Graph_IsRefusedWhereFloatWeightsAreRead()
    {
        using var scope = NewDisposeScope();
        var model = Network();
        byte[] quantized = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { Precision = OnnxPrecision.Int8, CalibrationImages = Images(4, 12) });
        var error = Assert.ThrowsExactly<WeightsFormatException>(() => OnnxWeights.Read(new MemoryStream(quantized), "int8.onnx"));
        StringAssert.Contains(error.Message, "INT8");
        StringAssert.Contains(error.Message, "int8.onnx");
    }

    [TestMethod]
    public void Int8Graph_OfATrainedShapeStaysCloseToTheFloatGraph()
    {
        // A network whose BatchNorm statistics are those of the data it sees, as after training.
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", numClasses: 10, options: new ModelOptions { Seed = 13 });
        Tensor calibration = Images(32, 14);
        OnnxTestSupport.CalibrateBatchNorm(model, calibration);
        byte[] single = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions { FoldBatchNorm = true });
        byte[] quantized = OnnxExporter.ExportToBytes(model, ExampleShape, new OnnxExportOptions
        {
            Precision = OnnxPrecision.Int8, CalibrationImages = calibration, Calibration = new OnnxCalibration { Method = CalibrationMethod.MinMax },
        });
        Tensor input = calibration.narrow(0, 0, 8);
        double share = AssertInt8Close(model, Logits(quantized, input), Logits(single, input), "INT8 resnet20");
        TestContext.WriteLine($"INT8: {share:G3} of the bound");
        Assert.IsTrue(quantized.Length <= single.Length * 0.35, $"INT8 {quantized.Length} bytes, float32 {single.Length}");
    }

    /// <summary>
    /// INT8 logits within a few quantisation steps of the float ones (BatchNorm statistics of the data seen, as after
    /// training): each of the L quantised layers adds at most half a step of its input and of its weights (1/255 and
    /// 1/(2·63) of their ranges) relative to the activations' scale; the bound allows L such steps. Returns the share of it used.
    /// </summary>
    internal static double AssertInt8Close(nn.Module model, Tensor actual, Tensor expected, string what)
    {
        int layers = Numerics.WeightedLayers(model).Depth;
        double bound = layers * (0.5 / 255 + 0.5 / Int8Quantization.WeightLevels) * Numerics.LargestMagnitude(expected);
        double difference = Numerics.LargestDifference(actual, expected);
        Assert.IsTrue(difference <= bound, $"{what}: logits {difference:E3} from float32, bound {bound:E3} ({layers} layers)");
        return difference / bound;
    }
}
