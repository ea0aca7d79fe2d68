using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Onnx;

[TestClass]
public sealed class OnnxExporterTests
{
    private const double Tolerance = 1e-4;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// Exports with batch 1 and runs ONNX Runtime on batch 2 (dynamic batch). Returns ONNX Runtime's error against
    /// TorchSharp's eval forward in float32, scaled by max(1, max |y|); and, when that exceeds the tolerance, both
    /// runtimes' errors against TorchSharp in float64 (to tell float32 rounding, which deep plain networks amplify,
    /// from a wrong graph).
    /// </summary>
    private static (double Error, double OnnxVsDouble, double TorchVsDouble) Compare(nn.Module<Tensor, Tensor> model, long[] inputShape, long seed = 1, bool calibrate = false)
    {
        using var scope = NewDisposeScope();
        if (calibrate) OnnxTestSupport.CalibrateBatchNorm(model, randn(inputShape, generator: new Generator((ulong)seed + 1)));
        else OnnxTestSupport.RandomizeBatchNorm(model, seed);
        model.eval();
        byte[] bytes = OnnxExporter.ExportToBytes(model, new[] { 1L }.Concat(inputShape.Skip(1)).ToArray());
        Tensor input = randn(inputShape, generator: new Generator((ulong)seed));
        Tensor expected;
        using (no_grad()) expected = model.call(input);
        var outputs = OnnxTestSupport.Run(bytes, "input", input);
        Assert.AreEqual(1, outputs.Count, "by default the graph has one output");
        var actual = (Tensor)outputs["output"];
        CollectionAssert.AreEqual(expected.shape, actual.shape);
        double error = OnnxTestSupport.ScaledMaxError(actual, expected);
        if (error <= Tolerance) return (error, double.NaN, double.NaN);
        model.to(ScalarType.Float64);
        Tensor exact;
        using (no_grad()) exact = model.call(input.to(ScalarType.Float64));
        model.to(ScalarType.Float32);
        return (error, OnnxTestSupport.ScaledMaxError(actual.to(ScalarType.Float64), exact), OnnxTestSupport.ScaledMaxError(expected.to(ScalarType.Float64), exact));
    }

    /// <summary>
    /// True when ONNX Runtime agrees with TorchSharp within the tolerance, or — for ill-conditioned networks — is no
    /// further from the float64 result than TorchSharp's own float32 forward is (within 2×).
    /// </summary>
    private static bool Agrees((double Error, double OnnxVsDouble, double TorchVsDouble) c) =>
        c.Error <= Tolerance || c.OnnxVsDouble <= 2 * c.TorchVsDouble;

    private static double ExportAndCompare(nn.Module<Tensor, Tensor> model, long[] inputShape, long seed = 1) => Compare(model, inputShape, seed).Error;

    [TestMethod]
    public void EveryRegisteredModel_ExportsAndMatchesOnnxRuntime()
    {
        var failures = new List<string>();
        foreach (ModelInfo info in ResidualModels.All)
        {
            bool segmentation = info.Family == "unet";
            // Weights from a fixed seed, whatever other tests did with the global generator before.
            manual_seed(19);
            var model = ResidualModels.Create(info.Name, numClasses: segmentation ? 3 : 10);
            long[] shape = segmentation ? new long[] { 2, 3, 35, 29 } : new long[] { 2, 3, 32, 32 };
            try
            {
                // Calibrated statistics: random ones make deep networks (resnet1202) overflow in eval mode.
                var comparison = Compare(model, shape, calibrate: true);
                if (!Agrees(comparison))
                    failures.Add($"{info.Name}: {comparison.Error:E2} (vs float64: ONNX Runtime {comparison.OnnxVsDouble:E2}, TorchSharp {comparison.TorchVsDouble:E2})");
                else if (comparison.Error > Tolerance)
                    TestContext.WriteLine($"{info.Name}: float32 difference {comparison.Error:E2}; vs float64 ONNX Runtime {comparison.OnnxVsDouble:E2}, TorchSharp {comparison.TorchVsDouble:E2}");
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException)
            {
                failures.Add($"{info.Name}: {e.Message}");
            }

            model.Dispose();
        }

        Assert.AreEqual(0, failures.Count, string.Join("; ", failures));
    }

    [TestMethod]
    [DataRow(ShortcutOption.A, SkipConnection.Identity, false, 1.0, 0.0)]
    [DataRow(ShortcutOption.B, SkipConnection.Identity, false, 1.0, 0.0)]
    [DataRow(ShortcutOption.C, SkipConnection.Identity, true, 1.0, 0.0)]
    [DataRow(ShortcutOption.A, SkipConnection.Highway, false, 1.0, 0.0)]
    [DataRow(ShortcutOption.C, SkipConnection.Highway, true, 1.0, 0.0)]
    [DataRow(ShortcutOption.B, SkipConnection.Identity, false, 0.5, 0.2)]
    [DataRow(ShortcutOption.A, SkipConnection.None, true, 1.0, 0.0)]
    public void ResNetVariants_MatchOnnxRuntime(ShortcutOption shortcut, SkipConnection skip, bool preActivation, double alpha, double beta)
    {
        var model = ResidualModels.Create("resnet20", 10, options: new ResNetOptions
        {
            Shortcut = shortcut, Skip = skip, PreActivation = preActivation, ResidualScale = alpha, IdentityDecay = beta,
            DropPathRate = 0.2, DropRate = 0.3, ZeroInitResidual = false, Seed = 2,
        });
        Assert.IsTrue(ExportAndCompare(model, new long[] { 2, 3, 16, 16 }) <= Tolerance);
    }

    [TestMethod]
    public void DenseNetVariants_MatchOnnxRuntime()
    {
        foreach (var options in new[]
        {
            new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 3 }, InitFeatures = 8, BottleneckSize = 0, Compression = 1.0, Seed = 1 },
            new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 2, 2 }, InitFeatures = 8, MemoryEfficient = true, DropRate = 0.2, Stem = StemKind.Cifar, Seed = 2 },
        })
        {
            var model = ResidualModels.Create("densenet121", 5, options: options);
            Assert.IsTrue(ExportAndCompare(model, new long[] { 2, 3, 24, 24 }) <= Tolerance);
        }
    }

    [TestMethod]
    public void UNetVariants_MatchOnnxRuntime()
    {
        var variants = new (string Name, UNetOptions Options)[]
        {
            ("unet", new UNetOptions { BaseWidth = 8, Depth = 3, Upsampling = UNetUpsampling.Bilinear, DecoderResidual = true, Seed = 1 }),
            ("unet", new UNetOptions { BaseWidth = 8, Depth = 2, Upsampling = UNetUpsampling.Nearest, Seed = 2 }),
            ("unet_resnet18", new UNetOptions { Upsampling = UNetUpsampling.TransposedConvolution, DecoderResidual = true, Seed = 3 }),
            ("unet_resnet18", new UNetOptions { Upsampling = UNetUpsampling.Bilinear, DecoderChannels = new[] { 32, 16 }, Seed = 4 }),
            ("unet_resnet18", new UNetOptions { Encoder = new ResNetOptions { Stem = StemKind.Cifar, PreActivation = true }, DecoderChannels = new[] { 32, 16, 16, 8, 8 }, Seed = 5 }),
        };
        foreach (var (name, options) in variants)
        {
            var model = ResidualModels.Create(name, 4, options: options);
            double error = ExportAndCompare(model, new long[] { 2, 3, 21, 34 });
            Assert.IsTrue(error <= Tolerance, $"{name}: {error:E2}");
        }
    }

    [TestMethod]
    public void TinyInputNeedingEdgePadding_MatchesOnnxRuntime()
    {
        // 3×5 input padded to 8×8: reflection is impossible, the U-Net replicates edges.
        var model = ResidualModels.Create("unet", 2, options: new UNetOptions { BaseWidth = 4, Depth = 3, Seed = 1 });
        Assert.IsTrue(ExportAndCompare(model, new long[] { 1, 3, 3, 5 }) <= Tolerance);
    }

    [TestMethod]
    public void Export_WritesAFileThatOnnxRuntimeLoads()
    {
        var model = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 3 });
        model.eval();
        string path = ModelTestSupport.TempFile(TestContext, ".onnx");
        OnnxExporter.Export(model, new long[] { 1, 3, 32, 32 }, path);
        Assert.IsTrue(new FileInfo(path).Length > 1_000_000, "the weights are in the file");
        Assert.AreEqual(0, Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp").Length, "no temporary file is left behind");
        using var scope = NewDisposeScope();
        Tensor input = randn(1, 3, 32, 32);
        var outputs = OnnxTestSupport.Run(File.ReadAllBytes(path), "input", input);
        using (no_grad()) Assert.IsTrue(OnnxTestSupport.ScaledMaxError((Tensor)outputs["output"], model.call(input)) <= Tolerance);
    }

    [TestMethod]
    public void PreAndPostProcessing_NormalisePixelsAndOutputScoresIndexAndClassName()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 4 });
        OnnxTestSupport.RandomizeBatchNorm(model, 4);
        model.eval();
        string[] classes = { "cat", "dog", "bird" };
        byte[] bytes = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, 16, 16 }, new OnnxExportOptions
        {
            InputName = "Image", Normalization = PixelNormalization.ImageNet(), Softmax = true, ClassNames = classes,
        });
        Tensor pixels = rand(4, 3, 16, 16, generator: new Generator(7)).Times(255.0);
        var outputs = OnnxTestSupport.Run(bytes, "Image", pixels);
        CollectionAssert.AreEquivalent(new[] { "Score", "PredictedIndex", "PredictedLabel" }, outputs.Keys.ToArray());

        Tensor mean = tensor(new[] { 0.485f, 0.456f, 0.406f }).reshape(1, 3, 1, 1);
        Tensor std = tensor(new[] { 0.229f, 0.224f, 0.225f }).reshape(1, 3, 1, 1);
        Tensor expectedScores;
        using (no_grad()) expectedScores = nn.functional.softmax(model.call((pixels.DividedBy(255) - mean) / std), 1);
        var scores = (Tensor)outputs["Score"];
        Assert.IsTrue(OnnxTestSupport.ScaledMaxError(scores, expectedScores) <= Tolerance);
        Assert.IsTrue(scores.sum(1).allclose(ones(4), atol: 1e-5));
        long[] expectedIndex = expectedScores.argmax(1).data<long>().ToArray();
        CollectionAssert.AreEqual(expectedIndex, ((Tensor)outputs["PredictedIndex"]).data<long>().ToArray());
        CollectionAssert.AreEqual(expectedIndex.Select(i => classes[i]).ToArray(), (string[])outputs["PredictedLabel"]);
    }

    [TestMethod]
    public void SegmentationPostProcessing_GivesPerPixelClassIndices()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("unet", 3, options: new UNetOptions { BaseWidth = 4, Depth = 2, Seed = 5 });
        model.eval();
        byte[] bytes = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, 12, 10 }, new OnnxExportOptions { Softmax = true, ArgMax = true });
        Tensor input = randn(2, 3, 12, 10);
        var outputs = OnnxTestSupport.Run(bytes, "input", input);
        Tensor logits;
        using (no_grad()) logits = model.call(input);
        var indices = (Tensor)outputs["PredictedIndex"];
        CollectionAssert.AreEqual(new long[] { 2, 12, 10 }, indices.shape);
        Assert.IsTrue(indices.IsEqualTo(logits.argmax(1)));
    }

    [TestMethod]
    public void ExportedInitializers_LoadBackIntoAFreshModule()
    {
        using var scope = NewDisposeScope();
        var source = ResidualModels.Create("densenet121", 4, options: new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 2 }, InitFeatures = 8, Seed = 1 });
        OnnxTestSupport.RandomizeBatchNorm(source, 1);
        source.eval();
        string path = ModelTestSupport.TempFile(TestContext, ".onnx");
        OnnxExporter.Export(source, new long[] { 1, 3, 16, 16 }, path);

        var fresh = ResidualModels.Create("densenet121", 4, options: new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 2 }, InitFeatures = 8, Seed = 2 });
        var report = OnnxWeights.Load(fresh, path, strict: true);
        Assert.IsTrue(report.MissingKeys.Count == 0 && report.UnexpectedKeys.Count == 0);
        Assert.IsTrue(report.SkippedKeys.All(k => k.EndsWith("num_batches_tracked")), "only BatchNorm counters are not in the graph");
        fresh.eval();
        Tensor x = randn(2, 3, 16, 16);
        using (no_grad()) Assert.IsTrue(fresh.call(x).IsEqualTo(source.call(x)));
    }

    [TestMethod]
    public void TrainingModeModule_IsRejectedNamingTheModule()
    {
        var model = ResidualModels.Create("resnet20", 10);
        model.eval();
        ((ResNet)model).Blocks[4].train();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => OnnxExporter.ExportToBytes(model, new long[] { 1, 3, 16, 16 }));
        StringAssert.Contains(error.Message, "layer2.1");
        StringAssert.Contains(error.Message, "eval()");
    }

    private sealed class Unsupported : nn.Module<Tensor, Tensor>
    {
        public Unsupported() : base(nameof(Unsupported)) { }

        public override Tensor forward(Tensor input) => input.tanh();
    }

    [TestMethod]
    public void UnsupportedCustomModule_IsRejectedNamingItsPath()
    {
        var model = nn.Sequential(("stem", nn.Conv2d(3, 4, 3)), ("act", new Unsupported()));
        model.eval();
        var error = Assert.ThrowsExactly<NotSupportedException>(() => OnnxExporter.ExportToBytes(model, new long[] { 1, 3, 8, 8 }));
        StringAssert.Contains(error.Message, "'act'");
        StringAssert.Contains(error.Message, "IGraphExportable");
    }

    [TestMethod]
    public void PlainTorchSharpLayers_ExportWithoutOurModules()
    {
        var model = nn.Sequential(
            ("conv", nn.Conv2d(3, 8, 3, padding: 1)), ("norm", nn.BatchNorm2d(8)), ("relu", nn.ReLU()),
            ("pool", nn.MaxPool2d(2)), ("avg", nn.AvgPool2d(2)), ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(8, 2)));
        Assert.IsTrue(ExportAndCompare(model, new long[] { 2, 3, 16, 16 }) <= Tolerance);
    }

    [TestMethod]
    public void ModelWhoseUntrainedOutputOverflows_StillExports()
    {
        // A fresh very deep network in eval mode can overflow to inf and NaN (resnet1202 does); that is no export error.
        var first = nn.Linear(16, 2);
        var second = nn.Linear(2, 1);
        using (no_grad())
        {
            first.weight!.Fill(float.MaxValue);
            second.weight!.copy_(tensor(new[] { 1f, -1f }).reshape(1, 2)); // inf − inf = NaN
        }

        var model = nn.Sequential(("first", first), ("second", second));
        model.eval();
        using (no_grad()) Assert.IsTrue(model.call(rand(1, 16)).isnan().all().item<bool>(), "the model really produces NaN");
        byte[] bytes = OnnxExporter.ExportToBytes(model, new long[] { 1, 16 });
        Assert.IsTrue(bytes.Length > 0);
    }
}
