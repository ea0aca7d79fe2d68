using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Onnx;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>
/// The detection networks (RetinaNet, FCOS over a feature pyramid) against torchvision 0.14's, with the deterministic weights
/// of Fixtures/make_detection_fixtures.py; their ONNX export against ONNX Runtime; their level sizes, options and registry.
/// </summary>
[TestClass]
public sealed class DetectionModelTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "Fixtures", "detection");

    private static readonly string[] DetectorNames =
    {
        "retinanet_resnet50_fpn", "retinanet_resnet18_fpn", "retinanet_resnet34_fpn", "fcos_resnet50_fpn", "fcos_resnet18_fpn", "fcos_resnet34_fpn",
    };

    private static PyramidDetector Small(string name, int classes = 3, int channels = 32, int convolutions = 1, long seed = 1) =>
        (PyramidDetector)ResidualModels.Create(name, classes, options: new DetectorOptions { FpnChannels = channels, HeadConvolutions = convolutions, Seed = seed });

    private static (int NumClasses, List<(string Key, long[] Shape)> Keys) ReadKeys(string arch)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDirectory, arch + ".keys.json")));
        JsonElement root = document.RootElement;
        var keys = root.GetProperty("keys").EnumerateArray()
            .Select(e => (e[0].GetString()!, e[1].EnumerateArray().Select(d => d.GetInt64()).ToArray()))
            .ToList();
        return (root.GetProperty("num_classes").GetInt32(), keys);
    }

    // ---- torchvision parity ----

    [TestMethod]
    [DataRow("retinanet_resnet18_fpn")]
    [DataRow("fcos_resnet18_fpn")]
    public void CheckpointsInTorchvisionsOldKeyLayout_LoadStrictly(string architecture)
    {
        // torchvision before 0.13 (its COCO weights among them) named the pyramid's convolutions inner_blocks.{i} and
        // layer_blocks.{i}, and RetinaNet's head towers conv.{0,2,4,6} (convolution, ReLU, …); torchvision 0.14 upgrades them when
        // loading (_v1_to_v2_weights). The same file, in the old layout, loads into our network strictly and gives its weights.
        using var scope = NewDisposeScope();
        var options = new DetectorOptions { FpnChannels = 32, HeadConvolutions = 2, Seed = 11 };
        using var source = ResidualModels.Create(architecture, 3, options: options);
        var oldKeys = new Dictionary<string, Tensor>();
        foreach (var (key, value) in source.state_dict())
        {
            string old = System.Text.RegularExpressions.Regex.Replace(key, @"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.0\.", "$1.");
            if (architecture.StartsWith("retinanet", StringComparison.Ordinal))
                old = System.Text.RegularExpressions.Regex.Replace(old, @"^(head\.(?:classification|regression)_head\.conv)\.(\d+)\.0\.", m => $"{m.Groups[1].Value}.{2 * int.Parse(m.Groups[2].Value)}.");
            oldKeys[old] = value;
        }

        Assert.IsTrue(oldKeys.ContainsKey("backbone.fpn.inner_blocks.0.weight"), "the file has the old pyramid keys");
        string path = ModelTestSupport.TempFile(TestContext, "-old-keys.safetensors");
        SafeTensors.Write(path, oldKeys);
        using var target = ResidualModels.Create(architecture, 3, options: new DetectorOptions { FpnChannels = 32, HeadConvolutions = 2, Seed = 12 });
        StateDict.Load(target, path, strict: true);
        var loaded = target.state_dict();
        foreach (var (key, value) in source.state_dict())
            Assert.IsTrue(value.eq(loaded[key]).all().item<bool>(), $"{key} is the file's");
    }

    [TestMethod]
    [DataRow("retinanet_resnet50_fpn")]
    [DataRow("fcos_resnet50_fpn")]
    public void StateDict_HasTorchvisionKeysAndShapes(string arch)
    {
        var (classes, keys) = ReadKeys(arch);
        using var model = ResidualModels.Create(arch, classes);
        var ours = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        CollectionAssert.AreEquivalent(keys.Select(k => k.Key).ToList(), ours.Keys.ToList(), $"{arch}: keys, both ways");
        foreach (var (key, shape) in keys) CollectionAssert.AreEqual(shape, ours[key], $"{arch}: {key}");
    }

    /// <summary>
    /// torchvision's head outputs (float32, another machine) and ours are two float32 evaluations of the same function, so
    /// each lies within <see cref="Numerics.ForwardError"/> of the largest output from our model run in float64 (as in
    /// <see cref="TorchvisionParityTests"/>). The input, 72 × 100, gives levels of odd sides (9 × 13, 5 × 7, 3 × 4, 2 × 2,
    /// 1 × 1), where torchvision resizes the coarser level to the lateral's exact size.
    /// </summary>
    [TestMethod]
    [DataRow("retinanet_resnet50_fpn")]
    [DataRow("fcos_resnet50_fpn")]
    public void EvalHeadOutputs_MatchTorchvision(string arch)
    {
        var (classes, _) = ReadKeys(arch);
        using var io = StateDict.Read(Path.Combine(FixtureDirectory, arch + ".io.safetensors"));
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(arch, classes);
        TorchvisionFixture.Fill(model);
        model.eval();
        Tensor input = io["input"];
        var detector = (IDetectionModel)model;
        int anchors = detector.LevelSizes((int)input.shape[2], (int)input.shape[3]).Sum(s => s.Height * s.Width) * detector.AnchorsPerLocation;
        CollectionAssert.AreEqual(new long[] { 1, anchors, classes + (detector.Kind == DetectorKind.Fcos ? 5 : 4) }, io["output"].shape, "LevelSizes gives torchvision's anchor count");
        Tensor exact = Numerics.InFloat64(model, input);
        double bound = Numerics.ForwardError(model) * Numerics.LargestMagnitude(exact);
        TestContext.WriteLine($"{arch}: torchvision's float32 outputs {Numerics.LargestDifference(io["output"], exact) / bound:G3} × the bound {bound:E2}");
        Numerics.AssertWithin(io["output"], exact, bound, $"{arch}: torchvision's float32 head outputs against ours in float64");
        using (no_grad()) Numerics.AssertWithin(model.call(input), exact, bound, $"{arch}: our float32 head outputs against float64");
        model.Dispose();
    }

    // ---- ONNX ----

    /// <summary>
    /// The exported graph (batch 1 at export, 2 images run: the reshapes keep the batch open) gives ONNX Runtime the
    /// model's outputs within the rounding bound of the exporter tests, FCOS's GroupNorm included, at sides that are
    /// multiples of 32 and at odd ones (the pyramid's cropped upsampling).
    /// </summary>
    [TestMethod]
    [DataRow("retinanet_resnet18_fpn", 64, 96, 2)]
    [DataRow("retinanet_resnet18_fpn", 65, 77, 1)]
    [DataRow("fcos_resnet18_fpn", 64, 96, 2)]
    [DataRow("fcos_resnet18_fpn", 65, 77, 1)]
    public void Export_MatchesOnnxRuntime(string name, int height, int width, int convolutions)
    {
        var model = Small(name, convolutions: convolutions);
        TorchvisionFixture.Fill(model); // GroupNorm's scale and shift away from 1 and 0; BatchNorm is then randomised
        var (difference, bound) = OnnxTestSupport.Compare(model, new long[] { 2, 3, height, width });
        TestContext.WriteLine($"{name} {height}×{width}: {difference:E2} = {difference / bound:G3} × the bound {bound:E2}");
        Assert.IsTrue(difference <= bound, $"{name}: ONNX Runtime differs from our model in float64 by {difference:E2}, {difference / bound:G3} × its rounding bound {bound:E2}");
        model.Dispose();
    }

    // ---- shapes and level sizes ----

    [TestMethod]
    public void LevelSizes_MatchTheForwardPass()
    {
        using var model = Small("fcos_resnet18_fpn", channels: 8, convolutions: 0);
        model.eval();
        foreach (var (height, width) in new[] { (32, 32), (64, 96), (72, 100), (65, 77), (33, 47), (1, 1), (7, 130), (129, 31) })
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Tensor input = zeros(1, 3, height, width);
            var levels = model.Backbone.ForwardStages(input);
            var actual = levels.Select(l => ((int)l.shape[2], (int)l.shape[3])).ToList();
            CollectionAssert.AreEqual(actual, model.LevelSizes(height, width).ToList(), $"{height}×{width}");
            Assert.AreEqual(actual.Sum(s => s.Item1 * s.Item2), model.AnchorCount(height, width), $"{height}×{width}: FCOS has one anchor per location");
            CollectionAssert.AreEqual(new long[] { 1, model.AnchorCount(height, width), 3 + 5 }, model.call(input).shape, $"{height}×{width}");
        }

        CollectionAssert.AreEqual(new[] { 8, 16, 32, 64, 128 }, model.LevelReductions.ToArray());
    }

    [TestMethod]
    public void RetinaNet_OutputsNineAnchorsPerLocationInTorchvisionsOrder()
    {
        using var model = Small("retinanet_resnet18_fpn", classes: 2, channels: 16);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor input = randn(2, 3, 40, 56, generator: new Generator(3));
        Tensor output = model.call(input);
        Assert.AreEqual(9, model.AnchorsPerLocation);
        CollectionAssert.AreEqual(new long[] { 2, model.AnchorCount(40, 56), 2 + 4 }, output.shape);

        // The first level's classification, rebuilt by hand from the head's layers: N × (9·K) × H × W, anchors of a location together.
        var levels = model.Backbone.ForwardStages(input);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        Tensor features = ((nn.Module<Tensor, Tensor>)modules["head.classification_head.conv"]).call(levels[0]);
        Tensor logits = ((nn.Module<Tensor, Tensor>)modules["head.classification_head.cls_logits"]).call(features);
        long h = logits.shape[2], w = logits.shape[3];
        Tensor expected = logits.reshape(2, 9, 2, h, w).permute(0, 3, 4, 1, 2).reshape(2, h * w * 9, 2);
        Numerics.AssertWithin(output.slice(1, 0, h * w * 9, 1).slice(2, 0, 2, 1), expected, 0.0, "level P3's class logits");
    }

    [TestMethod]
    public void Fcos_RegressionIsNonNegativeAndHeadsStartAtTorchvisionsPrior()
    {
        using var model = Small("fcos_resnet18_fpn", classes: 4);
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor output = model.call(randn(1, 3, 64, 64, generator: new Generator(5)));
        Assert.IsTrue(output.slice(2, 4, 8, 1).min().item<float>() >= 0, "distances pass a ReLU");
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        double prior = -Math.Log(99);
        Assert.AreEqual(prior, parameters["head.classification_head.cls_logits.bias"].mean().item<float>(), 1e-6);
        Assert.AreEqual(0.0, parameters["head.regression_head.bbox_ctrness.bias"].abs().max().item<float>());
        Assert.AreEqual(1.0, parameters["head.regression_head.conv.1.weight"].mean().item<float>(), 0.0, "GroupNorm starts as torchvision's");
        Assert.AreEqual(0.01, parameters["head.classification_head.conv.0.weight"].std().item<float>(), 0.002, "tower weights N(0, 0.01²)");
    }

    [TestMethod]
    public void Training_BackpropagatesToEveryParameter()
    {
        using var model = Small("retinanet_resnet18_fpn", channels: 8, convolutions: 1);
        model.train();
        using var scope = NewDisposeScope();
        Tensor output = model.call(randn(2, 3, 33, 45, generator: new Generator(7)));
        output.mul(output).sum().backward();
        foreach (var (name, parameter) in model.named_parameters())
        {
            Assert.IsNotNull(parameter.grad, name);
            Assert.IsTrue(parameter.grad.isfinite().all().item<bool>(), name);
        }
    }

    [TestMethod]
    public void OtherBackbones_CarryThePyramid()
    {
        // DenseNet halves by average pooling, rounding odd sides down: the level sizes are measured, and inputs whose
        // levels torchvision would resize by other than ×2 are refused with an error that says so.
        using var model = (PyramidDetector)ResidualModels.Create("retinanet_resnet18_fpn", 2, options: new DetectorOptions
        {
            Backbone = "densenet121", FpnChannels = 8, HeadConvolutions = 0,
        });
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        CollectionAssert.AreEqual(new[] { 512, 1024, 1024 }, model.Backbone.InputChannels.ToArray());
        var levels = model.Backbone.ForwardStages(zeros(1, 3, 64, 96));
        CollectionAssert.AreEqual(levels.Select(l => ((int)l.shape[2], (int)l.shape[3])).ToList(), model.LevelSizes(64, 96).ToList());
        Assert.IsTrue(model.Backbone.Body.training == false, "LevelSizes leaves the body's mode as it was");
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => model.call(zeros(1, 3, 72, 100)));
        StringAssert.Contains(error.Message, "⌈s/2⌉");
    }

    // ---- options, registry ----

    [TestMethod]
    public void Registry_HasTheDetectorsWithTheirCards()
    {
        foreach (string name in DetectorNames)
        {
            ModelInfo card = ResidualModels.Find(name)!;
            Assert.IsNotNull(card, name);
            string backbone = name.Split('_')[1];
            Assert.AreEqual(ModelTask.Detector, card.Task, name);
            Assert.AreEqual("head.", card.HeadPrefix, name);
            Assert.AreEqual(backbone, card.Encoder, name);
            Assert.AreEqual("backbone.body.conv1", card.FirstConvolution, name);
            Assert.AreEqual(typeof(DetectorOptions), card.OptionsType, name);
            CollectionAssert.AreEqual(ResidualModels.Find(backbone)!.Mean.ToArray(), card.Mean.ToArray(), name);
            CollectionAssert.AreEqual(new[] { 8, 16, 32, 64, 128 }, card.Stages!.Select(s => s.Reduction).ToArray(), name);
        }

        using var retina = ResidualModels.Create("retinanet_resnet18_fpn", 5, options: new DetectorOptions { FpnChannels = 16, HeadConvolutions = 1 });
        var detector = (IDetectionModel)retina;
        Assert.AreEqual((DetectorKind.RetinaNet, 5, "head.", "backbone.body."), (detector.Kind, detector.NumClasses, detector.HeadPrefix, detector.BackbonePrefix));
        Assert.IsTrue(retina.state_dict().ContainsKey("backbone.body.layer4.1.conv2.weight"));
        Assert.IsFalse(retina.state_dict().Keys.Any(k => k.StartsWith("backbone.body.fc.", StringComparison.Ordinal)), "the body has no classifier");
        using var fcos = ResidualModels.Create("fcos_resnet18_fpn", 5, options: new DetectorOptions { FpnChannels = 16, HeadConvolutions = 2 });
        Assert.AreEqual(DetectorKind.Fcos, ((IDetectionModel)fcos).Kind);
        Assert.AreEqual(1, ((IDetectionModel)fcos).AnchorsPerLocation);
        CollectionAssert.IsSubsetOf(new[] { "head.regression_head.conv.4.weight", "head.regression_head.bbox_ctrness.bias" }, fcos.state_dict().Keys.ToArray());
    }

    [TestMethod]
    public void BackboneKeyMap_PutsClassifierWeightsUnderBackboneBody()
    {
        var map = PyramidDetector.BackboneKeyMap();
        Assert.AreEqual("backbone.body.layer1.0.conv1.weight", map("layer1.0.conv1.weight"));
        Assert.IsNull(map("fc.weight"));
        Assert.ThrowsExactly<ArgumentException>(() => PyramidDetector.BackboneKeyMap(string.Empty));
    }

    [TestMethod]
    public void Create_WithoutNumClasses_IsRefused()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("fcos_resnet50_fpn"));
        StringAssert.Contains(error.Message, "numClasses");
        StringAssert.Contains(error.Message, "detector");
        error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("retinanet_resnet18_fpn", 0));
        StringAssert.Contains(error.Message, "at least 1");
    }

    [TestMethod]
    public void Options_ThatDoNotApply_AreRefusedWithClearErrors()
    {
        void Refused(string name, ModelOptions options, string expected)
        {
            var error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create(name, 3, options: options), expected);
            StringAssert.Contains(error.Message, expected);
        }

        Refused("fcos_resnet18_fpn", new DetectorOptions { FpnChannels = 48 }, "min(32, FpnChannels) = 32 groups");
        Refused("retinanet_resnet18_fpn", new DetectorOptions { FpnChannels = 0 }, "FpnChannels must be at least 1");
        Refused("retinanet_resnet18_fpn", new DetectorOptions { HeadConvolutions = -1 }, "HeadConvolutions must be 0 or more");
        Refused("retinanet_resnet18_fpn", new DetectorOptions { DropRate = 0.2 }, "no dropout");
        Refused("retinanet_resnet18_fpn", new ModelOptions { DropRate = 0.2 }, "no dropout");
        Refused("retinanet_resnet18_fpn", new DetectorOptions { Backbone = "nosuchnet" }, "not a registered classifier backbone");
        Refused("retinanet_resnet18_fpn", new DetectorOptions { Backbone = "unet" }, "not a registered classifier backbone");
        Refused("retinanet_resnet18_fpn", new DetectorOptions { BackboneOptions = new UNetOptions() }, "does not fit the resnet18 backbone");
        Refused("retinanet_resnet18_fpn", new UNetOptions(), "takes DetectorOptions");

        // A backbone built by the caller: the options that choose one do not apply.
        using var body = ResidualModels.Create("resnet18", 0);
        var error = Assert.ThrowsExactly<ArgumentException>(() => new RetinaNet(body, 3, new DetectorOptions { Backbone = "resnet34" }));
        StringAssert.Contains(error.Message, "already built");
        error = Assert.ThrowsExactly<ArgumentException>(() => new Fcos(nn.Sequential(nn.Conv2d(3, 8, 3)), 3));
        StringAssert.Contains(error.Message, "IStageEncoder");

        // Allowed: FCOS below 32 channels (one group per channel) or at multiples of 32; RetinaNet at any width; no tower.
        using var narrow = ResidualModels.Create("fcos_resnet18_fpn", 3, options: new DetectorOptions { FpnChannels = 12, HeadConvolutions = 1 });
        using var wide = ResidualModels.Create("retinanet_resnet18_fpn", 3, options: new DetectorOptions { FpnChannels = 48, HeadConvolutions = 0, DropRate = 0 });
    }
}
