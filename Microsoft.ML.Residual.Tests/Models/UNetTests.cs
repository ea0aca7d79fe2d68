using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class UNetTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly string[] EncoderUNetNames = { "unet_resnet18", "unet_resnet34", "unet_resnet50", "unet_densenet121" };

    private string TempFile(string name) => ModelTestSupport.TempFile(TestContext, name);

    private static UNet SmallUNet(int depth = 3, UNetUpsampling upsampling = UNetUpsampling.TransposedConvolution, int classes = 3, bool residual = false, long seed = 1) =>
        (UNet)ResidualModels.Create("unet", classes, options: new UNetOptions
        {
            BaseWidth = 8, Depth = depth, Upsampling = upsampling, DecoderResidual = residual, Seed = seed,
        });

    // ---- shapes ----

    [TestMethod]
    [DataRow(3, UNetUpsampling.TransposedConvolution, 33, 45)]
    [DataRow(4, UNetUpsampling.TransposedConvolution, 17, 17)]
    [DataRow(3, UNetUpsampling.TransposedConvolution, 64, 48)]
    [DataRow(3, UNetUpsampling.Bilinear, 33, 45)]
    [DataRow(4, UNetUpsampling.Bilinear, 64, 48)]
    [DataRow(4, UNetUpsampling.Nearest, 17, 17)]
    [DataRow(4, UNetUpsampling.TransposedConvolution, 5, 7)]
    public void Unet_AnyInputSize_GivesLogitsOfTheInputSizeWithOneChannelPerClass(int depth, UNetUpsampling upsampling, int height, int width)
    {
        using var scope = NewDisposeScope();
        UNet model = SmallUNet(depth, upsampling);
        foreach (bool training in new[] { true, false })
        {
            model.train(training);
            using var noGrad = no_grad();
            Tensor logits = model.call(randn(2, 3, height, width));
            CollectionAssert.AreEqual(new long[] { 2, 3, height, width }, logits.shape);
            Assert.IsTrue(logits.isfinite().all().item<bool>());
        }
    }

    [TestMethod]
    public void EncoderUNets_EveryName_GiveLogitsOfTheInputSize()
    {
        CollectionAssert.AreEquivalent(
            EncoderUNetNames.Append("unet").ToArray(),
            ResidualModels.All.Where(m => m.Family == "unet").Select(m => m.Name).ToArray());
        foreach (string name in EncoderUNetNames)
        {
            using var scope = NewDisposeScope();
            using var model = ResidualModels.Create(name, numClasses: 4, options: new UNetOptions { Seed = 1 });
            Assert.AreEqual(32, ((ISegmentationModel)model).SizeMultiple, name);
            model.eval();
            using var noGrad = no_grad();
            foreach (var (height, width) in new[] { (33, 45), (17, 17), (64, 48) })
            {
                Tensor logits = model.call(randn(1, 3, height, width));
                CollectionAssert.AreEqual(new long[] { 1, 4, height, width }, logits.shape, $"{name} at {height}×{width}");
            }
        }
    }

    [TestMethod]
    public void PadAndCrop_EqualsRunningOnTheReflectPaddedImageAndCroppingItsOutput()
    {
        using var scope = NewDisposeScope();
        UNet model = SmallUNet(depth: 3);
        model.eval();
        using var noGrad = no_grad();
        Tensor image = randn(1, 3, 13, 21);
        Tensor padded = nn.functional.pad(image, new long[] { 0, 3, 0, 3 }, PaddingModes.Reflect); // 16 × 24
        Tensor expected = model.call(padded).narrow(2, 0, 13).narrow(3, 0, 21);
        Assert.IsTrue(model.call(image).IsEqualTo(expected));

        // A side not longer than its padding (3 rows, 5 to add) cannot be reflected: the edges are replicated instead.
        Tensor tiny = randn(1, 3, 3, 7);
        Tensor replicated = nn.functional.pad(tiny, new long[] { 0, 1, 0, 5 }, PaddingModes.Replicate); // 8 × 8
        Assert.IsTrue(model.call(tiny).IsEqualTo(model.call(replicated).narrow(2, 0, 3).narrow(3, 0, 7)));
    }

    // ---- parameter counts ----

    /// <summary>
    /// The classic U-Net counted by hand. Widths w_l = baseWidth·2^l, l = 0…depth.
    /// Contracting level l (input c_l = inChannels for l = 0, else w_(l−1)):
    ///   conv1 3·3·c_l·w_l + bn1 2·w_l + conv2 3·3·w_l·w_l + bn2 2·w_l (convolutions before BatchNorm have no bias).
    /// Expanding level l = depth−1…0: up maps w_(l+1) → w_l with bias — a 2×2 transposed convolution
    ///   (4·w_(l+1)·w_l + w_l) or a 1×1 convolution (w_(l+1)·w_l + w_l); then conv1 3·3·(2·w_l)·w_l + 2·w_l
    ///   + conv2 3·3·w_l·w_l + 2·w_l; a residual block adds its projection 2·w_l·w_l + 2·w_l.
    /// Head: 1×1 convolution w_0·classes + classes.
    /// </summary>
    private static long ExpectedUNetParameters(int inChannels, int classes, int baseWidth, int depth, bool transposed, bool residual)
    {
        long Width(int level) => (long)baseWidth << level;
        long total = 0;
        for (int level = 0; level <= depth; level++)
        {
            long input = level == 0 ? inChannels : Width(level - 1);
            long w = Width(level);
            total += 9 * input * w + 2 * w + 9 * w * w + 2 * w;
        }

        for (int level = depth - 1; level >= 0; level--)
        {
            long w = Width(level);
            total += (transposed ? 4 : 1) * Width(level + 1) * w + w;
            total += 9 * (2 * w) * w + 2 * w + 9 * w * w + 2 * w;
            if (residual) total += 2 * w * w + 2 * w;
        }

        return total + Width(0) * classes + classes;
    }

    [TestMethod]
    public void Unet_Default_HasTheParameterCountOfThePaperArchitecture()
    {
        using var model = ResidualModels.Create("unet", numClasses: 2, inChannels: 3);
        long expected = ExpectedUNetParameters(3, 2, baseWidth: 64, depth: 4, transposed: true, residual: false);
        Assert.AreEqual(31_037_698L, expected, "the hand formula");
        Assert.AreEqual(expected, ResidualModelsTests.CountParameters(model));
    }

    [TestMethod]
    [DataRow(UNetUpsampling.Bilinear, false)]
    [DataRow(UNetUpsampling.Nearest, true)]
    [DataRow(UNetUpsampling.TransposedConvolution, true)]
    public void Unet_Variants_HaveTheParameterCountOfTheFormula(UNetUpsampling upsampling, bool residual)
    {
        using var model = ResidualModels.Create("unet", numClasses: 5, inChannels: 1, options: new UNetOptions
        {
            BaseWidth = 8, Depth = 3, Upsampling = upsampling, DecoderResidual = residual,
        });
        long expected = ExpectedUNetParameters(1, 5, 8, 3, upsampling == UNetUpsampling.TransposedConvolution, residual);
        Assert.AreEqual(expected, ResidualModelsTests.CountParameters(model));
        Assert.AreEqual(residual, model.state_dict().ContainsKey("decoder.0.shortcut.0.weight"));
    }

    /// <summary>
    /// The default decoder over an ImageNet ResNet (stages 64, C1, C2, C3, C4 at 1/2 … 1/32): block i reads the
    /// previous block's output (the deepest stage for i = 0) and the skip stage 3 − i (none for the last block):
    ///   conv1 3·3·(in + skip)·out + bn1 2·out + conv2 3·3·out·out + bn2 2·out;
    /// head: 3×3 convolution 3·3·16·classes + classes.
    /// </summary>
    [TestMethod]
    [DataRow("resnet18", 14_328_354L)]
    [DataRow("resnet34", 24_436_514L)]
    [DataRow("resnet50", 32_521_250L)]
    [DataRow("densenet121", 13_607_778L)]
    public void EncoderUNets_HaveTheHeadlessEncodersCountPlusTheDecoderFormula(string encoderName, long expectedTotal)
    {
        using var headless = ResidualModels.Create(encoderName, numClasses: 0);
        using var model = ResidualModels.Create("unet_" + encoderName, numClasses: 2);
        long encoderCount = ResidualModelsTests.CountParameters(headless);
        long inModel = model.named_parameters().Where(p => p.name.StartsWith("encoder.", StringComparison.Ordinal)).Sum(p => p.parameter.numel());
        Assert.AreEqual(encoderCount, inModel);

        IReadOnlyList<int> stages = ((IStageEncoder)headless).StageChannels;
        int[] decoder = { 256, 128, 64, 32, 16 };
        long expectedDecoder = 0;
        long input = stages[4];
        for (int i = 0; i < decoder.Length; i++)
        {
            long skip = i < 4 ? stages[3 - i] : 0;
            long output = decoder[i];
            expectedDecoder += 9 * (input + skip) * output + 2 * output + 9 * output * output + 2 * output;
            input = output;
        }

        long expectedHead = 9 * 16 * 2 + 2;
        Assert.AreEqual(encoderCount + expectedDecoder + expectedHead, ResidualModelsTests.CountParameters(model));
        Assert.AreEqual(expectedTotal, ResidualModelsTests.CountParameters(model));
    }

    // ---- state dicts and encoder weights ----

    [TestMethod]
    public void StateDictNames_AreEncoderDecoderAndSegmentationHead()
    {
        using var unet = SmallUNet(depth: 2);
        var keys = unet.state_dict().Keys.ToList();
        CollectionAssert.IsSubsetOf(
            new[]
            {
                "encoder.0.conv1.weight", "encoder.0.bn1.running_mean", "encoder.2.conv2.weight", "decoder.0.up.weight", "decoder.0.up.bias",
                "decoder.1.conv1.weight", "decoder.1.bn2.num_batches_tracked", "segmentation_head.weight", "segmentation_head.bias",
            },
            keys);
        Assert.IsTrue(keys.All(k => k.StartsWith("encoder.") || k.StartsWith("decoder.") || k.StartsWith("segmentation_head.")));

        using var encoderUNet = ResidualModels.Create("unet_resnet18", 2);
        var encoderKeys = encoderUNet.state_dict().Keys.ToList();
        CollectionAssert.IsSubsetOf(
            new[] { "encoder.conv1.weight", "encoder.layer1.0.conv1.weight", "encoder.layer4.1.bn2.running_var", "decoder.4.conv2.weight", "segmentation_head.weight" },
            encoderKeys);
        Assert.IsFalse(encoderKeys.Any(k => k.StartsWith("encoder.fc.")), "the encoder is headless");
        Assert.IsFalse(encoderKeys.Any(k => k.Contains(".up.")), "nearest upsampling has no parameters");
    }

    [TestMethod]
    public void EncoderWeights_LoadedFromAResNetCheckpointWithTheKeyMap_AreBitEqualToTheResNets()
    {
        using var scope = NewDisposeScope();
        string path = TempFile("resnet18.safetensors");
        var resnet = ResidualModels.Create("resnet18", 10, options: new ResNetOptions { Seed = 3 });
        resnet.train();
        using (no_grad()) resnet.call(randn(4, 3, 32, 32)); // move BatchNorm statistics away from 0 / 1
        StateDict.Save(resnet, path);

        var unet = ResidualModels.Create("unet_resnet18", 2, options: new UNetOptions { Seed = 4 });
        var report = StateDict.Load(unet, path, strict: true, new StateDictLoadOptions
        {
            MapKey = EncoderUNet.EncoderKeyMap(),
            SkipPrefixes = EncoderUNet.DecoderPrefixes.ToList(),
        });

        var resnetState = resnet.state_dict();
        var unetState = unet.state_dict();
        Assert.AreEqual(resnetState.Count - 2, report.LoadedKeys.Count);
        CollectionAssert.IsSubsetOf(new[] { "fc.weight", "fc.bias", "decoder.0.conv1.weight", "segmentation_head.weight" }, report.SkippedKeys.ToArray());
        foreach (var (key, value) in resnetState)
        {
            if (key.StartsWith("fc.", StringComparison.Ordinal)) continue;
            Assert.IsTrue(unetState["encoder." + key].IsEqualTo(value), key);
        }

        // The encoder therefore computes exactly the ResNet's stage features.
        resnet.eval();
        unet.eval();
        Tensor x = randn(1, 3, 64, 64);
        var expected = ((IStageEncoder)resnet).ForwardStages(x);
        var actual = ((IStageEncoder)((EncoderUNet)unet).Encoder).ForwardStages(x);
        for (int i = 0; i < expected.Count; i++) Assert.IsTrue(actual[i].IsEqualTo(expected[i]), $"stage {i}");
    }

    [TestMethod]
    public void StrictEncoderLoad_WithoutSkippingTheDecoder_ReportsOnlyDecoderAndHeadKeysAsMissing()
    {
        using var scope = NewDisposeScope();
        string path = TempFile("resnet18-plain.safetensors");
        StateDict.Save(ResidualModels.Create("resnet18", 10), path);
        var unet = ResidualModels.Create("unet_resnet18", 2);
        var error = Assert.ThrowsExactly<StateDictMismatchException>(
            () => StateDict.Load(unet, path, strict: true, new StateDictLoadOptions { MapKey = EncoderUNet.EncoderKeyMap() }));
        Assert.IsTrue(error.Report.MissingKeys.Count > 0);
        Assert.IsTrue(error.Report.MissingKeys.All(k => k.StartsWith("decoder.") || k.StartsWith("segmentation_head.")), string.Join(", ", error.Report.MissingKeys));
        Assert.AreEqual(0, error.Report.UnexpectedKeys.Count);
        Assert.AreEqual(0, error.Report.ShapeMismatches.Count);
    }

    [TestMethod]
    public void EncoderKeyMap_PrefixesEncoderKeysAndDropsTheClassifier()
    {
        var map = EncoderUNet.EncoderKeyMap();
        Assert.AreEqual("encoder.layer1.0.conv1.weight", map("layer1.0.conv1.weight"));
        Assert.IsNull(map("fc.weight"));
        Assert.AreEqual("encoder.fc2.weight", map("fc2.weight"));
        Assert.IsNull(EncoderUNet.EncoderKeyMap("classifier.")("classifier.bias"));
        Assert.AreEqual("encoder.fc.bias", EncoderUNet.EncoderKeyMap(null)("fc.bias"));
        Assert.ThrowsExactly<ArgumentException>(() => EncoderUNet.EncoderKeyMap(""));
    }

    // ---- the decoder's skip and upsampling rule ----

    [TestMethod]
    public void ImageNetEncoder_EveryBlockUpsamplesAndTakesTheSkipOfItsResolution()
    {
        using var model = (EncoderUNet)ResidualModels.Create("unet_resnet18", 2);
        CollectionAssert.AreEqual(
            new[]
            {
                new UNetDecoderStep(true, 3, 16, 256), new UNetDecoderStep(true, 2, 8, 128), new UNetDecoderStep(true, 1, 4, 64),
                new UNetDecoderStep(true, 0, 2, 32), new UNetDecoderStep(true, null, 1, 16),
            },
            model.DecoderSteps.ToArray());
    }

    [TestMethod]
    public void CifarStemEncoder_DecoderNeverUpsamplesBeyondTheInputResolution()
    {
        using var scope = NewDisposeScope();
        // Stages: stem 1/1, layer1 1/1, layer2 1/2, layer3 1/4, layer4 1/8.
        var model = (EncoderUNet)ResidualModels.Create("unet_resnet18", 2, options: new UNetOptions
        {
            EncoderOptions = new ResNetOptions { Stem = StemKind.Cifar }, DecoderChannels = new[] { 32, 16, 16, 8, 8 }, Seed = 2,
        });
        Assert.AreEqual(8, model.SizeMultiple);
        CollectionAssert.AreEqual(
            new[]
            {
                new UNetDecoderStep(true, 3, 4, 32), new UNetDecoderStep(true, 2, 2, 16), new UNetDecoderStep(true, 1, 1, 16),
                new UNetDecoderStep(false, 0, 1, 8), new UNetDecoderStep(false, null, 1, 8),
            },
            model.DecoderSteps.ToArray());
        model.eval();
        using var noGrad = no_grad();
        CollectionAssert.AreEqual(new long[] { 2, 2, 17, 19 }, model.call(randn(2, 3, 17, 19)).shape);
    }

    [TestMethod]
    public void ShortDecoder_EndingAboveTheInputResolution_UpsamplesTheLogitsToTheInputSize()
    {
        using var scope = NewDisposeScope();
        var model = (EncoderUNet)ResidualModels.Create("unet_resnet18", 3, options: new UNetOptions { DecoderChannels = new[] { 32, 16 } });
        Assert.AreEqual(8, model.DecoderSteps[^1].Reduction);
        model.eval();
        using var noGrad = no_grad();
        CollectionAssert.AreEqual(new long[] { 1, 3, 33, 45 }, model.call(randn(1, 3, 33, 45)).shape);
    }

    private sealed class TinyStageEncoder : nn.Module<Tensor, Tensor>, IStageEncoder
    {
        private readonly Conv2d first = nn.Conv2d(3, 6, 4, stride: 4);
        private readonly Conv2d second = nn.Conv2d(6, 10, 2, stride: 2);

        public TinyStageEncoder() : base(nameof(TinyStageEncoder)) => RegisterComponents();

        public IReadOnlyList<int> StageChannels => new[] { 6, 10 };

        public IReadOnlyList<int> StageReductions => new[] { 4, 8 };

        public IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
            where T : class
        {
            T a = ops.Relu(ops.Call(first, input));
            return new[] { a, ops.Relu(ops.Call(second, a)) };
        }

        public override Tensor forward(Tensor input) => this.ForwardStages(input)[1];
    }

    [TestMethod]
    public void GenericBuilder_AcceptsAnyStageEncoder()
    {
        using var scope = NewDisposeScope();
        var model = new EncoderUNet(new TinyStageEncoder(), 2, new UNetOptions { DecoderChannels = new[] { 8, 8, 8, 4 }, Upsampling = UNetUpsampling.TransposedConvolution });
        CollectionAssert.AreEqual(
            new[] { new UNetDecoderStep(true, 0, 4, 8), new UNetDecoderStep(true, null, 2, 8), new UNetDecoderStep(true, null, 1, 8), new UNetDecoderStep(false, null, 1, 4) },
            model.DecoderSteps.ToArray());
        Assert.IsTrue(model.state_dict().ContainsKey("encoder.first.weight"));
        Assert.IsTrue(model.state_dict().ContainsKey("decoder.0.up.weight"));
        Assert.IsFalse(model.state_dict().ContainsKey("decoder.3.up.weight"), "a block at full resolution does not upsample");
        CollectionAssert.AreEqual(new long[] { 2, 2, 21, 30 }, model.call(randn(2, 3, 21, 30)).shape);

        var error = Assert.ThrowsExactly<ArgumentException>(() => new EncoderUNet(nn.Conv2d(3, 3, 1), 2));
        StringAssert.Contains(error.Message, "IStageEncoder");
    }

    // ---- options ----

    [TestMethod]
    public void EncoderOptions_ArePassedToTheResNetEncoder()
    {
        using var preact = ResidualModels.Create("unet_resnet18", 2, options: new UNetOptions { EncoderOptions = new ResNetOptions { PreActivation = true } });
        var keys = preact.state_dict().Keys.ToList();
        CollectionAssert.Contains(keys, "encoder.norm.weight");
        CollectionAssert.DoesNotContain(keys, "encoder.bn1.weight");

        using var zeroInit = ResidualModels.Create("unet_resnet18", 2, options: new UNetOptions { EncoderOptions = new ResNetOptions { ZeroInitResidual = true } });
        Assert.AreEqual(0.0f, zeroInit.state_dict()["encoder.layer1.0.bn2.weight"].abs().sum().item<float>());
    }

    [TestMethod]
    public void SameSeed_GivesIdenticalWeights()
    {
        using var a = ResidualModels.Create("unet_resnet18", 2, options: new UNetOptions { Seed = 42 });
        using var b = ResidualModels.Create("unet_resnet18", 2, options: new UNetOptions { Seed = 42 });
        var sb = b.state_dict();
        Assert.IsTrue(a.state_dict().All(kv => kv.Value.IsEqualTo(sb[kv.Key])));
        using var c = SmallUNet(seed: 7);
        using var d = SmallUNet(seed: 7);
        using var e = SmallUNet(seed: 8);
        var sd = d.state_dict();
        Assert.IsTrue(c.state_dict().All(kv => kv.Value.IsEqualTo(sd[kv.Key])));
        Assert.IsFalse(c.state_dict()["encoder.0.conv1.weight"].IsEqualTo(e.state_dict()["encoder.0.conv1.weight"]));
    }

    [TestMethod]
    public void DropRate_AddsDropoutToTheDeepestFeaturesOnlyInTraining()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("unet", 2, options: new UNetOptions { BaseWidth = 4, Depth = 2, DropRate = 0.5, Seed = 1 });
        Assert.IsTrue(model.named_modules().Any(m => m.name == "dropout"));
        Tensor x = randn(2, 3, 8, 8);
        model.eval();
        Assert.IsTrue(model.call(x).IsEqualTo(model.call(x)));
        model.train();
        manual_seed(1);
        Tensor first = model.call(x);
        manual_seed(2);
        Assert.IsFalse(first.allclose(model.call(x)));
    }

    public static IEnumerable<object[]> BadOptions => new[]
    {
        new object[] { "unet", new UNetOptions { Depth = 0 }, "Depth" },
        new object[] { "unet", new UNetOptions { Depth = 17 }, "Depth" },
        new object[] { "unet", new UNetOptions { BaseWidth = -8 }, "BaseWidth" },
        new object[] { "unet", new UNetOptions { BaseWidth = 0 }, "BaseWidth" },
        new object[] { "unet", new UNetOptions { DecoderChannels = new[] { 16 } }, "DecoderChannels" },
        new object[] { "unet", new UNetOptions { EncoderOptions = new ResNetOptions() }, "EncoderOptions" },
        new object[] { "unet", new UNetOptions { DropRate = 1.5 }, "DropRate" },
        new object[] { "unet_resnet18", new UNetOptions { DecoderChannels = Array.Empty<int>() }, "DecoderChannels" },
        new object[] { "unet_resnet18", new UNetOptions { DecoderChannels = new[] { 16, 0 } }, "DecoderChannels" },
        new object[] { "unet_resnet18", new UNetOptions { Depth = 3 }, "Depth" },
        new object[] { "unet_resnet18", new UNetOptions { BaseWidth = 16 }, "BaseWidth" },
        new object[] { "unet_resnet18", new UNetOptions { EncoderOptions = new UNetOptions() }, "EncoderOptions" },
        new object[] { "unet_resnet34", new ResNetOptions(), "UNetOptions" },
        new object[] { "unet", new UNetOptions { Encoder = "unet_resnet18" }, "Encoder" },
        new object[] { "unet", new UNetOptions { Encoder = "resnet7" }, "Encoder" },
        new object[] { "unet_resnet34", new UNetOptions { Encoder = "resnet50" }, "Encoder" },
    };

    [TestMethod]
    public void EncoderArgument_BuildsWhatTheAliasBuilds_AndAnyRegisteredBackbone()
    {
        using var scope = NewDisposeScope();
        var alias = ResidualModels.Create("unet_resnet18", 3, options: new UNetOptions { Seed = 4 });
        var argument = ResidualModels.Create("unet", 3, options: new UNetOptions { Encoder = "resnet18", Seed = 4 });
        Assert.IsInstanceOfType<EncoderUNet>(argument);
        var expected = alias.state_dict();
        var actual = argument.state_dict();
        CollectionAssert.AreEqual(expected.Keys.ToArray(), actual.Keys.ToArray(), "the same keys in the same order");
        foreach (var (key, value) in expected) Assert.IsTrue(actual[key].IsEqualTo(value), key);

        // A backbone with no alias of its own: ResNet-50-D's deep stem and average-pool shortcuts under a U-Net decoder.
        var resnet50d = ResidualModels.Create("unet", 2, options: new UNetOptions { Encoder = "resnet50d", DecoderChannels = new[] { 32, 16, 16, 8, 8 } });
        resnet50d.eval();
        using var noGrad = no_grad();
        CollectionAssert.AreEqual(new long[] { 1, 2, 40, 36 }, resnet50d.call(randn(1, 3, 40, 36)).shape);
        Assert.IsTrue(resnet50d.state_dict().ContainsKey("encoder.conv1.6.weight"));
    }

    [TestMethod]
    [DynamicData(nameof(BadOptions))]
    public void BadOptions_ThrowArgumentExceptionsNamingTheOption(string name, ModelOptions options, string option)
    {
        var error = Assert.Throws<ArgumentException>(() => ResidualModels.Create(name, 2, options: options));
        StringAssert.Contains(error.Message, option);
    }

    [TestMethod]
    public void ZeroClasses_ThrowsNamingNumClasses()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("unet", 0));
        StringAssert.Contains(error.Message, "numClasses");
        error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("unet_resnet18", 0));
        StringAssert.Contains(error.Message, "numClasses");
    }

    [TestMethod]
    public void MissingClassCount_ForASegmentationModel_ThrowsInsteadOfDefaultingToAThousand()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("unet"));
        StringAssert.Contains(error.Message, "numClasses");
        using var classifier = ResidualModels.Create("resnet20");
        CollectionAssert.AreEqual(new long[] { 1000, 64 }, classifier.state_dict()["fc.weight"].shape, "classifiers keep the ImageNet default");
    }

    // ---- training ----

    /// <summary>
    /// Noisy images with one to three bright rectangles or discs (class 1) on a background (class 0); reproducible
    /// from <paramref name="seed"/> alone.
    /// </summary>
    private static (Tensor Images, Tensor Masks) SyntheticShapes(int count, int size, int seed)
    {
        var random = new Random(seed);
        var masks = new long[count * size * size];
        var pixels = new float[count * 3 * size * size];
        float[] colour = { 1.0f, 0.7f, -0.6f };
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        for (int n = 0; n < count; n++)
        {
            int shapes = 1 + random.Next(3);
            for (int s = 0; s < shapes; s++)
            {
                bool disc = random.Next(2) == 0;
                int cy = random.Next(4, size - 4), cx = random.Next(4, size - 4);
                int ry = random.Next(3, 8), rx = disc ? ry : random.Next(3, 8);
                for (int y = 0; y < size; y++)
                {
                    for (int x = 0; x < size; x++)
                    {
                        bool inside = disc
                            ? (y - cy) * (y - cy) + (x - cx) * (x - cx) <= ry * ry
                            : Math.Abs(y - cy) <= ry && Math.Abs(x - cx) <= rx;
                        if (inside) masks[(n * size + y) * size + x] = 1;
                    }
                }
            }

            for (int c = 0; c < 3; c++)
            {
                for (int i = 0; i < size * size; i++)
                    pixels[((n * 3) + c) * size * size + i] = (float)(0.5 * Gaussian()) + colour[c] * masks[n * size * size + i];
            }
        }

        return (tensor(pixels, new long[] { count, 3, size, size }), tensor(masks, new long[] { count, size, size }));
    }

    [TestMethod]
    public void SmallUnet_LearnsToSegmentSyntheticShapes()
    {
        using var data = NewDisposeScope();
        var (images, masks) = SyntheticShapes(16, 32, seed: 2024);
        var model = SmallUNet(depth: 3, classes: 2, seed: 5);
        // Adam's rule: AdamW without weight decay (the library's optimiser; TorchSharp's frees its Scalars under GC).
        using var optimizer = TrainingOptimizer.Create(model, new TrainingOptions { Optimizer = OptimizerKind.AdamW, LearningRate = 0.01, WeightDecay = 0 });
        var losses = new List<float>();
        model.train();
        for (int step = 0; step < 100; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            Tensor loss = nn.functional.cross_entropy(model.call(images), masks);
            loss.backward();
            optimizer.Step();
            losses.Add(loss.item<float>());
        }

        float first = losses[0], last = losses.Skip(losses.Count - 5).Average();
        TestContext.WriteLine($"loss {first:F4} → {last:F4}");
        Assert.IsTrue(last * 10 <= first, $"the loss fell from {first} to {last}, less than tenfold");

        // The learned segmentation carries over to new images of the same kind.
        var (testImages, testMasks) = SyntheticShapes(8, 32, seed: 7);
        model.eval();
        using var noGrad = no_grad();
        double accuracy = model.call(testImages).argmax(1).eq(testMasks).to_type(ScalarType.Float32).mean().item<float>();
        TestContext.WriteLine($"held-out pixel accuracy {accuracy:P2}");
        Assert.IsTrue(accuracy > 0.95, $"held-out pixel accuracy {accuracy:P2}");
    }

    [TestMethod]
    public void TrainingSteps_DoNotLeakTensors()
    {
        var unet = SmallUNet(depth: 2, classes: 2, residual: true);
        var encoderUNet = new EncoderUNet(
            ResidualModels.Create("resnet20", numClasses: 0, options: new ResNetOptions { Seed = 1 }), 2,
            new UNetOptions { DecoderChannels = new[] { 16, 8 }, DecoderResidual = true, DropRate = 0.2, Seed = 1 });
        Tensor x = randn(2, 3, 13, 10);
        Tensor y = randint(0, 2, new long[] { 2, 13, 10 });
        foreach (nn.Module<Tensor, Tensor> model in new nn.Module<Tensor, Tensor>[] { unet, encoderUNet })
            ModelTestSupport.AssertTrainingStepsDoNotLeak(model, x, y);
    }
}
