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
    public TestContext TestContext { get; set; } = null!;

    private void ExportAndAssertMatches(nn.Module<Tensor, Tensor> model, long[] inputShape, string what, bool withoutShortcuts = false)
    {
        var (difference, bound) = OnnxTestSupport.Compare(model, inputShape, withoutShortcuts: withoutShortcuts);
        TestContext.WriteLine($"{what}: {difference:E2} = {difference / bound:G3} × the bound {bound:E2}");
        Assert.IsTrue(difference <= bound, $"{what}: ONNX Runtime differs from our model in float64 by {difference:E2}, {difference / bound:G3} × its rounding bound {bound:E2}");
    }

    [TestMethod]
    public void EveryRegisteredModel_ExportsAndMatchesOnnxRuntime()
    {
        var failures = new List<string>();
        foreach (ModelInfo info in ResidualModels.All)
        {
            bool segmentation = info.Task == ModelTask.Segmenter;
            // Weights from a fixed seed, whatever other tests did with the global generator before.
            manual_seed(19);
            var model = ResidualModels.Create(info.Name, numClasses: segmentation ? 3 : 10);
            long[] shape = segmentation ? new long[] { 2, 3, 35, 29 } : new long[] { 2, 3, 32, 32 };
            // Plain networks and the classic U-Net have no shortcut to keep early rounding from being stretched; nor have 7 of
            // MobileNetV2's 17 blocks (those that change the resolution or the width), nor a stage's first block in the other
            // inverted residual networks, whose linear projections stretch it too.
            bool withoutShortcuts = info.Name.StartsWith("plain", StringComparison.Ordinal) || info.Name == "unet" || info.Family is "mobilenet" or "efficientnet";
            try
            {
                // Calibrated statistics: random ones make deep networks (resnet1202) overflow in eval mode.
                // RegNets keep up to 12 blocks at 1×1 for 32² images; statistics of two images there put nearly equal values
                // on either side of a channel's mean, and eval mode divides by their tiny spread (to 10²⁴ at regnet_x_400mf's end).
                int? calibrationImages = info.Family == "regnet" ? 16 : null;
                var (difference, bound) = OnnxTestSupport.Compare(model, shape, calibrate: true, withoutShortcuts: withoutShortcuts, calibrationImages: calibrationImages);
                TestContext.WriteLine($"{info.Name}: {difference:E2} = {difference / bound:G3} × the bound {bound:E2}");
                if (!(difference <= bound)) failures.Add($"{info.Name}: {difference:E2} = {difference / bound:G3} × the bound {bound:E2}");
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException)
            {
                failures.Add($"{info.Name}: {e.Message}");
            }

            model.Dispose();
        }

        Assert.AreEqual(0, failures.Count, "ONNX Runtime against our model in float64: " + string.Join("; ", failures));
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
        ExportAndAssertMatches(model, new long[] { 2, 3, 16, 16 }, $"{shortcut}, {skip}", withoutShortcuts: skip == SkipConnection.None);
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
            ExportAndAssertMatches(model, new long[] { 2, 3, 24, 24 }, string.Join("-", options.BlockConfig!));
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
            ("unet_resnet18", new UNetOptions { EncoderOptions = new ResNetOptions { Stem = StemKind.Cifar, PreActivation = true }, DecoderChannels = new[] { 32, 16, 16, 8, 8 }, Seed = 5 }),
        };
        foreach (var (name, options) in variants)
        {
            var model = ResidualModels.Create(name, 4, options: options);
            ExportAndAssertMatches(model, new long[] { 2, 3, 21, 34 }, $"{name} ({options.Upsampling})", withoutShortcuts: name == "unet");
        }
    }

    [TestMethod]
    public void TinyInputNeedingEdgePadding_MatchesOnnxRuntime()
    {
        // 3×5 input padded to 8×8: reflection is impossible, the U-Net replicates edges.
        var model = ResidualModels.Create("unet", 2, options: new UNetOptions { BaseWidth = 4, Depth = 3, Seed = 1 });
        ExportAndAssertMatches(model, new long[] { 1, 3, 3, 5 }, "unet on 3×5", withoutShortcuts: true);
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
        Tensor input = randn(new long[] { 1, 3, 32, 32 }, generator: new Generator(3));
        var outputs = OnnxTestSupport.Run(File.ReadAllBytes(path), "input", input);
        OnnxTestSupport.AssertMatchesFloat64(model, input, (Tensor)outputs["output"], "resnet20 from the file");
    }

    [TestMethod]
    public void PreAndPostProcessing_NormalisePixelsAndOutputScoresIndexAndClassName()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 4 });
        OnnxTestSupport.RandomizeBatchNorm(model, 4);
        model.eval();
        string[] classes = { "cat", "dog", "bird" };
        var normalization = PixelNormalization.ImageNet();
        byte[] bytes = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, 16, 16 }, new OnnxExportOptions
        {
            InputName = "Image", Normalization = normalization, Softmax = true, ClassNames = classes,
        });
        Tensor pixels = rand(4, 3, 16, 16, generator: new Generator(7)).Times(255.0);
        var outputs = OnnxTestSupport.Run(bytes, "Image", pixels);
        CollectionAssert.AreEquivalent(new[] { "Score", "PredictedIndex", "PredictedLabel" }, outputs.Keys.ToArray());

        // The exact scores: the normalisation and the network in float64; the graph's normalisation rounds too.
        var (normalized, inputError) = OnnxTestSupport.Normalized(pixels, normalization);
        Tensor logits = Numerics.InFloat64(model, normalized);
        Tensor exact = nn.functional.softmax(logits, 1);
        double logitBound = (Numerics.ForwardError(model) + inputError) * Numerics.LargestMagnitude(logits);
        // Logits within δ move each probability by at most a factor e^{±2δ}; float32's softmax rounds pᵢ by ≤ γ_{C+3} of
        // itself and u/e absolute (Numerics.SoftmaxSumError).
        Tensor scoreBound = exact.Times(double.ExpM1(2 * logitBound) + Numerics.Gamma(3 + classes.Length)).Plus(Numerics.Float32Roundoff / Math.E);
        var scores = (Tensor)outputs["Score"];
        Numerics.AssertWithin(scores, exact, scoreBound, "scores against softmax in float64");
        Numerics.AssertWithin(scores.sum(1), ones(4), Numerics.SoftmaxSumError(classes.Length), "scores' sums");
        long[] expectedIndex = DeterminedArgMax(logits, logitBound).data<long>().ToArray();
        CollectionAssert.AreEqual(expectedIndex, ((Tensor)outputs["PredictedIndex"]).data<long>().ToArray());
        CollectionAssert.AreEqual(expectedIndex.Select(i => classes[i]).ToArray(), (string[])outputs["PredictedLabel"]);
    }

    /// <summary>
    /// The argmax over dimension 1 of exact logits, after asserting that rounding cannot change it: everywhere the largest
    /// logit leads the next by more than 2·<paramref name="bound"/> (each float32 logit is within the bound of its exact
    /// value). The inputs are fixed, so this holds or fails the same way on every machine.
    /// </summary>
    private static Tensor DeterminedArgMax(Tensor exactLogits, double bound)
    {
        Tensor top2 = exactLogits.topk(2, dim: 1).values;
        double gap = (top2.select(1, 0) - top2.select(1, 1)).min().item<double>();
        Assert.IsTrue(gap > 2 * bound, $"the fixture has logits within rounding of a tie (gap {gap:E2}, bound {bound:E2}): choose another input");
        return exactLogits.argmax(1);
    }

    [TestMethod]
    public void SegmentationPostProcessing_GivesPerPixelClassIndices()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("unet", 3, options: new UNetOptions { BaseWidth = 4, Depth = 2, Seed = 5 });
        model.eval();
        byte[] bytes = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, 12, 10 }, new OnnxExportOptions { Softmax = true, ArgMax = true });
        Tensor input = randn(new long[] { 2, 3, 12, 10 }, generator: new Generator(5));
        var outputs = OnnxTestSupport.Run(bytes, "input", input);
        Tensor logits = Numerics.InFloat64(model, input);
        double bound = OnnxTestSupport.RoundingBound(model, input, logits, withoutShortcuts: true);
        var indices = (Tensor)outputs["PredictedIndex"];
        CollectionAssert.AreEqual(new long[] { 2, 12, 10 }, indices.shape);
        Assert.IsTrue(indices.IsEqualTo(DeterminedArgMax(logits, bound)));
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
        StringAssert.Contains(error.Message, "ResidualModule");
    }

    [TestMethod]
    public void PlainTorchSharpLayers_ExportWithoutOurModules()
    {
        var model = nn.Sequential(
            ("conv", nn.Conv2d(3, 8, 3, padding: 1)), ("norm", nn.BatchNorm2d(8)), ("relu", nn.ReLU()),
            ("pool", nn.MaxPool2d(2)), ("avg", nn.AvgPool2d(2)), ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(8, 2)));
        ExportAndAssertMatches(model, new long[] { 2, 3, 16, 16 }, "TorchSharp layers");
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
