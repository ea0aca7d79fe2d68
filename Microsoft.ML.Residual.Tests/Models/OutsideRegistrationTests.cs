using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>
/// A network defined in this assembly, as a user would write one: a stem, two residual blocks (the second halves the
/// resolution through a projection shortcut) and a linear head. Its forward pass is written once; the library trains,
/// exports, featurises and diagnoses it through that one method.
/// </summary>
public sealed class OutsideNet : ResidualModule, IClassifierModel, IStageEncoder
{
    private readonly Conv2d stem;
    private readonly BatchNormalization2d stemNorm;
    private readonly OutsideBlock first;
    private readonly OutsideBlock second;
    private readonly Linear? head;

    public OutsideNet(int classes, int channels, ModelOptions? options) : base(nameof(OutsideNet))
    {
        if (options?.Seed is long seed) manual_seed(seed);
        stem = nn.Conv2d(channels, 8, 3, padding: 1, bias: false);
        stemNorm = new BatchNormalization2d(8);
        first = new OutsideBlock(8, 8, stride: 1);
        second = new OutsideBlock(8, 16, stride: 2);
        register_module("stem", stem);
        register_module("stem_norm", stemNorm);
        register_module("block1", first);
        register_module("block2", second);
        if (classes > 0)
        {
            head = nn.Linear(16, classes);
            register_module("head", head);
        }
    }

    public string ClassifierPrefix => "head.";

    public long FeatureDimension => 16;

    public IReadOnlyList<int> StageChannels => new[] { 8, 8, 16 };

    public IReadOnlyList<int> StageReductions => new[] { 1, 1, 2 };

    public Tensor ForwardFeatures(Tensor input) => Features(TensorOperations.Instance, input);

    public IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
        where T : class
    {
        T x = ops.Relu(ops.Call(stemNorm, ops.Call(stem, input)));
        T y = ops.Call(first, x);
        return new[] { x, y, ops.Call(second, y) };
    }

    public override T Forward<T>(IOperations<T> ops, T input)
    {
        T features = Features(ops, input);
        return head is null ? features : ops.Call(head, features);
    }

    private T Features<T>(IOperations<T> ops, T input)
        where T : class => ops.Flatten(ops.GlobalAveragePool(ForwardStages(ops, input)[2]));
}

/// <summary>conv → BN → ReLU → conv → BN, plus the input (projected where the shape changes), then ReLU.</summary>
public sealed class OutsideBlock : ResidualBlock
{
    private readonly Conv2d conv1;
    private readonly BatchNormalization2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNormalization2d bn2;
    private readonly Sequential? projection;

    public OutsideBlock(int inChannels, int outChannels, int stride) : base(nameof(OutsideBlock))
    {
        conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: false);
        bn1 = new BatchNormalization2d(outChannels);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1, bias: false);
        bn2 = new BatchNormalization2d(outChannels);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("conv2", conv2);
        register_module("bn2", bn2);
        if (stride != 1 || inChannels != outChannels)
        {
            projection = nn.Sequential(nn.Conv2d(inChannels, outChannels, 1, stride: stride, bias: false), new BatchNormalization2d(outChannels));
            register_module("projection", projection);
        }
    }

    public override T Forward<T>(IOperations<T> ops, T input)
    {
        var (branch, shortcut) = ops.Fork(input);
        T h = ops.Relu(ops.Call(bn1, ops.Call(conv1, branch)));
        h = ops.Call(bn2, ops.Call(conv2, h));
        return ops.Relu(ops.Residual(h, projection is null ? shortcut : ops.Call(projection, shortcut)));
    }
}

[TestClass]
public sealed class OutsideRegistrationTests
{
    private const string Name = "outside_net";
    private const int Size = 16;
    private static readonly Lazy<ModelInfo> Card = new(() =>
    {
        var card = new ModelInfo(Name, "outside", "A residual network defined in the test assembly") { HeadPrefix = "head." };
        ResidualModels.Register(card, (classes, channels, options) => new OutsideNet(classes, channels, options));
        return card;
    });

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void RegisteredNetwork_IsListedAndCreatedByName()
    {
        ModelInfo card = Card.Value;
        Assert.AreSame(card, ResidualModels.Find("OUTSIDE_NET"));
        CollectionAssert.Contains(ResidualModels.Names.ToArray(), Name);
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(Name, numClasses: 5, options: new ModelOptions { Seed = 3 });
        Assert.IsInstanceOfType<OutsideNet>(model);
        using (no_grad()) CollectionAssert.AreEqual(new long[] { 2, 5 }, model.call(randn(2, 3, Size, Size)).shape);

        var taken = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Register(card with { }, (_, _, _) => nn.Identity()));
        StringAssert.Contains(taken.Message, "already registered");
        var headless = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Register(new ModelInfo("outside_headless", "outside", "no head"), (_, _, _) => nn.Identity()));
        StringAssert.Contains(headless.Message, "HeadPrefix");
        Assert.IsNull(ResidualModels.Find("outside_headless"), "a refused card is not registered");
        var options = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create(Name, 5, options: new ResNetOptions()));
        StringAssert.Contains(options.Message, "takes ModelOptions");
    }

    [TestMethod]
    public void RegisteredNetwork_ExportsToOnnx_AndOnnxRuntimeComputesItsForwardPass()
    {
        _ = Card.Value;
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(Name, numClasses: 4, options: new ModelOptions { Seed = 5 });
        var (difference, bound) = OnnxTestSupport.Compare(model, new long[] { 3, 3, Size, Size }, seed: 6, calibrate: true);
        Assert.IsTrue(difference <= bound, $"ONNX Runtime against {Name} in float64: {difference:E2}, {difference / bound:G3} × its rounding bound {bound:E2}");
    }

    [TestMethod]
    public void RegisteredNetwork_TrainsThroughTheClassifierEstimator_AndScoresThroughOnnxRuntime()
    {
        _ = Card.Value;
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(320, seed: 1));
        IDataView test = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(80, seed: 2));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ImageClassifier(new ImageClassifierOptions
            {
                Architecture = Name, ImageWidth = Size, ImageHeight = Size, Epochs = 6, BatchSize = 32, Seed = 1,
                Optimizer = Microsoft.ML.Residual.Training.OptimizerKind.Sgd, LearningRate = 0.1,
            }));
        ITransformer model = pipeline.Fit(train);
        IDataView scored = model.Transform(test);
        MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(scored);
        TestContext.WriteLine($"macro accuracy {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
        // Four classes: a network that learned nothing scores 25 % and a log-loss of ln 4 = 1.39.
        Assert.IsTrue(metrics.MacroAccuracy >= 0.6, $"macro accuracy {metrics.MacroAccuracy:P1}");
        Assert.IsTrue(metrics.LogLoss < Math.Log(4), $"log-loss {metrics.LogLoss:F3}");

        var stem = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ImageClassifier(new ImageClassifierOptions
        {
            Architecture = Name, ImageWidth = Size, ImageHeight = Size, Stem = StemKind.Cifar,
        }).Fit(ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(train)));
        StringAssert.Contains(stem.Message, "no stem to choose");
    }

    [TestMethod]
    public void RegisteredNetwork_ServesAsAUNetEncoder_AndTheUNetExports()
    {
        _ = Card.Value;
        using var scope = NewDisposeScope();
        var unet = ResidualModels.Create("unet", 3, options: new UNetOptions { Encoder = Name, DecoderChannels = new[] { 16, 8 }, EncoderOptions = new ModelOptions { Seed = 2 } });
        Assert.IsTrue(unet.state_dict().ContainsKey("encoder.block2.projection.0.weight"));
        using (no_grad()) CollectionAssert.AreEqual(new long[] { 2, 3, Size, Size }, unet.call(randn(2, 3, Size, Size)).shape);
        var (difference, bound) = OnnxTestSupport.Compare(unet, new long[] { 2, 3, Size, Size }, seed: 3, calibrate: true);
        Assert.IsTrue(difference <= bound, $"ONNX Runtime against unet over {Name} in float64: {difference:E2}, {difference / bound:G3} × its rounding bound {bound:E2}");
    }

    [TestMethod]
    public void RegisteredNetwork_ServesAsAFeaturizer()
    {
        _ = Card.Value;
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(8, seed: 3));
        IDataView features = ml.Transforms.ResNetFeaturizer("Features", "Image", architecture: Name, imageWidth: Size, imageHeight: Size)
            .Fit(data).Transform(data);
        float[][] rows = features.GetColumn<float[]>("Features").ToArray();
        Assert.AreEqual(8, rows.Length);
        Assert.IsTrue(rows.All(r => r.Length == 16 && r.All(float.IsFinite)), "16 pooled features per image");
        Assert.IsTrue(rows.Any(r => r.Any(v => v > 0)), "ReLU features are not all zero");
    }

    [TestMethod]
    public void RegisteredNetwork_IsMeasuredByTheDiagnostics()
    {
        _ = Card.Value;
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(Name, numClasses: 4, options: new ModelOptions { Seed = 8 });
        Tensor images = randn(new long[] { 4, 3, Size, Size }, generator: new Generator(9));
        Tensor labels = tensor(new long[] { 0, 1, 2, 3 });

        GradientFlowReport flow = GradientFlow.Measure(model, images, labels);
        CollectionAssert.AreEqual(new[] { "block1", "block2" }, flow.BlockNames);
        Assert.IsTrue(flow.BranchGradientNorms.All(n => n > 0) && flow.IdentityGradientNorms.All(n => n > 0), "both paths of both blocks carry gradient");

        JacobianReport jacobian = BlockJacobian.Measure(model, images, iterations: 10);
        Assert.IsTrue(jacobian.SpectralNorms.All(n => n > 0 && double.IsFinite(n)));

        LipschitzReport bound = LipschitzBound.Measure(model, Size, Size, iterations: 30);
        CollectionAssert.AreEqual(new[] { "block1", "block2" }, bound.BlockNames);
        Assert.AreEqual(1.0, bound.ShortcutBounds[0], "block1's shortcut is the identity");
        Assert.IsTrue(bound.ShortcutBounds[1] > 0 && bound.ShortcutBounds[1] != 1.0, "block2's shortcut is a projection");
        double local = BlockJacobian.NetworkNorm(model, images, iterations: 30);
        Assert.IsLessThanOrEqualTo(bound.UpperBound, local, $"the network's local Jacobian norm {local:E3} lies below the bound {bound.UpperBound:E3}");
    }
}
