using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Residual.Interpretation;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Interpretation;

/// <summary>
/// Grad-CAM: the arithmetic on hand-worked maps, the closed form it reduces to for a network that pools its last map straight
/// into a linear head, every family's last map, the errors, and the localisation test (a trained classifier's heatmap peaks
/// inside the object that decides the class).
/// </summary>
[TestClass]
public sealed class GradCamTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void Weighted_GradCam_IsTheReluOfTheMapsWeightedByTheirMeanGradient()
    {
        using var scope = NewDisposeScope();
        // Channel 0: A = [1 2; 3 4], mean gradient 1. Channel 1: A = [4 3; 2 1], mean gradient (−2 + 0 + 0 − 2)/4 = −1.
        Tensor activations = tensor(new float[] { 1, 2, 3, 4, 4, 3, 2, 1 }, new long[] { 1, 2, 2, 2 });
        Tensor gradients = tensor(new float[] { 1, 1, 1, 1, -2, 0, 0, -2 }, new long[] { 1, 2, 2, 2 });
        // 1·A0 − 1·A1 = [−3 −1; 1 3], and ReLU keeps the positive part. Every value is an exact float.
        Tensor map = GradCam.Weighted(activations, gradients, GradCamMethod.GradCam);
        CollectionAssert.AreEqual(new float[] { 0, 0, 1, 3 }, map.data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 1, 2, 2 }, map.shape);
    }

    [TestMethod]
    public void Weighted_GradCamPlusPlus_WeighsThePositiveGradientsByTheClosedFormAlphas()
    {
        using var scope = NewDisposeScope();
        // Channel 0: A = [1 0; 0 1] (sum 2), g = 1 everywhere: α = 1/(2 + 2·1) = 1/4 at each of 4 places, weight 4·1/4 = 1.
        // Channel 1: A = [0 2; 2 0] (sum 4), g = [1 −1; 0 0]: α = 1/(2 + 4) = 1/6 where g = 1 (ReLU(g) = 1); where g = −1,
        // ReLU(g) = 0; where g = 0 the denominator is 0 and α is 0. Weight 1/6.
        Tensor activations = tensor(new float[] { 1, 0, 0, 1, 0, 2, 2, 0 }, new long[] { 1, 2, 2, 2 });
        Tensor gradients = tensor(new float[] { 1, 1, 1, 1, 1, -1, 0, 0 }, new long[] { 1, 2, 2, 2 });
        Tensor map = GradCam.Weighted(activations, gradients, GradCamMethod.GradCamPlusPlus);
        // 1·A0 + (1/6)·A1 = [1 1/3; 1/3 1].
        Tensor expected = tensor(new double[] { 1, 1.0 / 3, 1.0 / 3, 1 }, new long[] { 1, 2, 2 });
        Numerics.AssertWithin(map, expected, Numerics.Gamma(12), "Grad-CAM++ map");
    }

    [TestMethod]
    public void Scaled_UpsamplesBilinearlyAndDividesByThePeak_AndAnEmptyMapStaysZero()
    {
        using var scope = NewDisposeScope();
        Tensor maps = tensor(new float[] { 0, 0, 1, 3, 0, 0, 0, 0 }, new long[] { 2, 2, 2 });
        Tensor scaled = GradCam.Scaled(maps, 4, 4);
        CollectionAssert.AreEqual(new long[] { 2, 4, 4 }, scaled.shape);
        float[] first = scaled[0].data<float>().ToArray();
        // Half-pixel centres: output pixel 3 reads source 1.25, clamped to 1, so the corner keeps the peak 3 (→ 1). Output
        // (2, 2) reads (0.75, 0.75): 0.25·0.75·1 + 0.75·0.75·3 = 1.875, divided by 3 = 0.625.
        Assert.AreEqual(1f, first[15]);
        Assert.AreEqual(0f, first[0]);
        Assert.AreEqual(0.625, first[2 * 4 + 2], Numerics.Gamma(12));
        Assert.IsTrue(first.All(v => v is >= 0 and <= 1), "values in [0, 1]");
        Assert.IsTrue(scaled[1].data<float>().ToArray().All(v => v == 0), "a map with no evidence stays zero");
    }

    [TestMethod]
    public void Explain_OfAResNet_IsTheClassWeightsTimesItsLastMap()
    {
        // ResNet pools its last map straight into the head, so dy_c/dA_k = W[c, k]/(h·w) at every place: Grad-CAM is the class
        // activation map ReLU(Σ_k W[c, k]·A_k)/(h·w) of Zhou et al. (2016), here checked in float64.
        using var scope = NewDisposeScope();
        using var model = (ResNet)ResidualModels.Create("resnet20", numClasses: 3, options: new ResNetOptions { Seed = 3 });
        model.eval();
        using var gradCam = new GradCam(model, new[] { "a", "b", "c" });
        manual_seed(5);
        Tensor pixels = randn(2, 3, 16, 16);
        IReadOnlyList<ClassActivationMap> maps = gradCam.Explain(pixels, "b");

        Tensor map;
        using (no_grad()) map = model.LastStageMap(TensorOperations.Instance, pixels).to_type(ScalarType.Float64);
        Tensor weights = model.state_dict()["fc.weight"][1].to_type(ScalarType.Float64).reshape(1, -1, 1, 1);
        long places = map.shape[2] * map.shape[3];
        Tensor terms = weights.mul(map);
        Tensor raw = nn.functional.relu(terms.sum(new long[] { 1 })).DividedBy(places);
        Tensor expected = GradCam.Scaled(raw, 16, 16);
        // The float32 map: each place a sum of C products (γ_{C+2}·Σ|terms|/(h·w)); the bilinear average and the division by the
        // peak each add a few roundings, relative to the peak.
        double sumBound = Numerics.Gamma(map.shape[1] + 2) * terms.abs().sum(new long[] { 1 }).max().item<double>() / places;
        double peak = raw.max().item<double>();
        Assert.IsTrue(peak > 0, "the class has evidence somewhere");
        double bound = 3 * sumBound / peak + Numerics.Gamma(8);
        for (int i = 0; i < 2; i++)
        {
            Assert.AreEqual(1, maps[i].ClassIndex);
            Assert.AreEqual("b", maps[i].ClassName);
            Assert.AreEqual(16, maps[i].Width);
            Assert.AreEqual(16, maps[i].Height);
            Numerics.AssertWithin(tensor(maps[i].Heatmap.ToArray(), new long[] { 16, 16 }), expected[i], bound, $"image {i}'s map");
        }
    }

    [TestMethod]
    [DataRow("resnet")]
    [DataRow("preact_resnet")]
    [DataRow("densenet")]
    [DataRow("regnet")]
    [DataRow("mobilenet_v2")]
    [DataRow("mobilenet_v3")]
    [DataRow("efficientnet")]
    [DataRow("convnext")]
    public void Explain_OfEveryFamily_UsesTheLastStageOutput_AndGivesAMapInZeroToOne(string family)
    {
        using var scope = NewDisposeScope();
        using ClassifierNetwork model = SmallNetwork(family, classes: 4);
        model.eval();
        manual_seed(2);
        Tensor pixels = randn(2, 3, 64, 64);
        long[] predicted;
        using (no_grad()) predicted = model.call(pixels).argmax(1).data<long>().ToArray();
        using (no_grad())
        {
            Tensor last = model.LastStageMap(TensorOperations.Instance, pixels);
            Tensor stage = model.ForwardStages(TensorOperations.Instance, pixels)[^1];
            Assert.AreEqual(model.StageChannels[^1], (int)last.shape[1], "the map has the last stage's channels");
            Numerics.AssertWithin(last, stage, 0.0, "the map Grad-CAM weighs is the encoder's last stage output");
            Numerics.AssertWithin(model.OutputFromMap(TensorOperations.Instance, last), model.call(pixels), 0.0, "the logits from that map are the forward pass's");
        }

        using var gradCam = new GradCam(model);
        IReadOnlyList<ClassActivationMap> maps = gradCam.Explain(pixels);
        Assert.AreEqual(2, maps.Count);
        for (int i = 0; i < maps.Count; i++)
        {
            ClassActivationMap map = maps[i];
            Assert.AreEqual((int)predicted[i], map.ClassIndex, "without a class, the predicted one (the largest logit) is explained");
            Assert.AreEqual((int)predicted[i], map.PredictedIndex);
            Assert.AreEqual(64 * 64, map.Heatmap.Count);
            Assert.IsTrue(map.Heatmap.All(v => v is >= 0 and <= 1), $"{family}: values in [0, 1]");
            Assert.IsTrue(map.Heatmap.Max() is 1 or 0, $"{family}: the peak is 1 (or the map is empty)");
            Assert.AreEqual(1.0, map.Scores.Sum(), Numerics.SoftmaxSumError(4));
        }

        Assert.IsTrue(model.parameters().All(p => p.grad is null), "explaining leaves no gradient in the network's parameters");
    }

    // One small network of each family: the registry's smallest where it is quick on a CPU, a narrow definition otherwise.
    private static ClassifierNetwork SmallNetwork(string family, int classes) => family switch
    {
        "resnet" => (ClassifierNetwork)ResidualModels.Create("resnet20", classes, options: new ResNetOptions { Seed = 1 }),
        "preact_resnet" => (ClassifierNetwork)ResidualModels.Create("preact_resnet18", classes, options: new ResNetOptions { Seed = 1 }),
        "densenet" => new DenseNet(new DenseNetDefinition { GrowthRate = 8, BlockConfig = new[] { 2, 2, 2, 2 }, InitFeatures = 16, NumClasses = classes, Seed = 1 }),
        "regnet" => (ClassifierNetwork)ResidualModels.Create("regnet_x_400mf", classes, options: new ModelOptions { Seed = 1 }),
        "mobilenet_v2" => new MobileNetV2(new MobileNetV2Definition { WidthMultiplier = 0.25, NumClasses = classes, Seed = 1 }),
        "mobilenet_v3" => new MobileNetV3(new MobileNetV3Definition { Size = MobileNetV3Size.Small, WidthMultiplier = 0.25, NumClasses = classes, Seed = 1 }),
        "efficientnet" => new EfficientNet(new EfficientNetDefinition { WidthMultiplier = 0.25, DepthMultiplier = 0.34, NumClasses = classes, Seed = 1 }),
        "convnext" => new ConvNeXt(new ConvNeXtDefinition { Widths = new[] { 8, 16, 32, 64 }, Depths = new[] { 1, 1, 1, 1 }, NumClasses = classes, Seed = 1 }),
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "no such family"),
    };

    [TestMethod]
    public void Explain_RepeatedInsideAScope_LeaksNoTensor()
    {
        using var model = ResidualModels.Create("resnet20", numClasses: 3, options: new ResNetOptions { Seed = 3 });
        using var gradCam = new GradCam(model, normalization: Microsoft.ML.Residual.Onnx.PixelNormalization.ImageNet());
        using var scale = tensor(255f);
        using var pixels = rand(3, 3, 16, 16).mul(scale);
        void Run()
        {
            using var scope = NewDisposeScope();
            gradCam.Explain(pixels);
            gradCam.Explain(pixels[0], 2);
        }

        Run();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++) Run();
        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "live tensors after explaining");
    }

    [TestMethod]
    public void BadArguments_AreRefusedNamingTheArgumentAndWhatToDo()
    {
        using var model = ResidualModels.Create("resnet20", numClasses: 3, options: new ResNetOptions { Seed = 3 });
        using var gradCam = new GradCam(model, new[] { "cat", "dog", "fox" });
        using var pixels = zeros(1, 3, 16, 16);

        var name = Assert.ThrowsExactly<ArgumentException>(() => gradCam.Explain(pixels, "cow"));
        Assert.AreEqual("className", name.ParamName);
        StringAssert.Contains(name.Message, "'cow' is not a class of this model; its classes are 'cat', 'dog', 'fox'");
        var index = Assert.ThrowsExactly<ArgumentException>(() => gradCam.Explain(pixels, 3));
        Assert.AreEqual("classIndex", index.ParamName);
        StringAssert.Contains(index.Message, "0 to 2");
        using var flat = zeros(16, 16);
        var shape = Assert.ThrowsExactly<ArgumentException>(() => gradCam.Explain(flat));
        Assert.AreEqual("pixels", shape.ParamName);
        var names = Assert.ThrowsExactly<ArgumentException>(() => new GradCam(model, new[] { "cat", "dog" }));
        Assert.AreEqual("classNames", names.ParamName);
        var size = Assert.ThrowsExactly<InvalidOperationException>(() => gradCam.ExplainFiles(new[] { "a.png" }));
        StringAssert.Contains(size.Message, "set ImageWidth and ImageHeight");

        using var unet = ResidualModels.Create("unet", 2);
        var segmenter = Assert.ThrowsExactly<ArgumentException>(() => new GradCam(unet));
        Assert.AreEqual("model", segmenter.ParamName);
        StringAssert.Contains(segmenter.Message, "Grad-CAM explains the library's classifier networks");
        using var headless = ResidualModels.Create("resnet20", numClasses: 0);
        var features = Assert.ThrowsExactly<ArgumentException>(() => new GradCam(headless));
        StringAssert.Contains(features.Message, "built without classes");

        string missing = Path.Combine(TestRunFiles.Folder, Guid.NewGuid().ToString("N") + ".zip");
        var file = Assert.ThrowsExactly<ArgumentException>(() => GradCam.Load(missing));
        Assert.AreEqual("modelPath", file.ParamName);
        StringAssert.Contains(file.Message, "there is no such file");
        string text = Path.Combine(TestRunFiles.Folder, Guid.NewGuid().ToString("N") + ".zip");
        File.WriteAllText(text, "not a model");
        var notModel = Assert.ThrowsExactly<ArgumentException>(() => GradCam.Load(text));
        Assert.AreEqual("modelPath", notModel.ParamName);
        StringAssert.Contains(notModel.Message, "cannot be read as a saved model");
    }

    [TestMethod]
    public void Localisation_OnObjectsAtKnownPlaces_TheHeatmapPeaksInsideTheObject()
    {
        var clock = Stopwatch.StartNew();
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ObjectImages.Rows(ObjectImages.Generate(150, seed: 1)));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = ObjectImages.Size, ImageHeight = ObjectImages.Size, Epochs = 4, BatchSize = 25, Seed = 1,
                Optimizer = Microsoft.ML.Residual.Training.OptimizerKind.Sgd, LearningRate = 0.1,
            }));
        ITransformer model = pipeline.Fit(train);
        string path = ModelTestSupport.TempFile(TestContext, "-objects.zip");
        ml.Model.Save(model, train.Schema, path);
        TestContext.WriteLine($"trained in {clock.Elapsed.TotalSeconds:F1} s");

        List<ObjectImages.Image> test = ObjectImages.Generate(90, seed: 2);
        using var gradCam = GradCam.Load(path);
        CollectionAssert.AreEqual(ObjectImages.Classes, gradCam.ClassNames.ToArray(), "class names in key order");
        Assert.AreEqual(ObjectImages.Size, gradCam.ImageWidth);
        using Tensor pixels = tensor(test.SelectMany(i => i.Pixels).ToArray(), new long[] { test.Count, 3, ObjectImages.Size, ObjectImages.Size });
        foreach (GradCamMethod method in new[] { GradCamMethod.GradCam, GradCamMethod.GradCamPlusPlus })
        {
            gradCam.Method = method;
            IReadOnlyList<ClassActivationMap> maps = gradCam.Explain(pixels);
            int correct = 0, inside = 0;
            for (int i = 0; i < test.Count; i++)
            {
                if (maps[i].ClassName != test[i].Label) continue;
                correct++;
                var (x, y) = maps[i].Peak;
                if (test[i].Contains(x, y)) inside++;
            }

            double rate = (double)inside / correct;
            TestContext.WriteLine($"{method}: {correct}/{test.Count} correctly classified, peak inside the object in {inside} ({rate:P1})");
            Assert.IsTrue(correct >= test.Count / 2, $"{method}: the classifier learnt the objects ({correct}/{test.Count} correct)");
            Assert.IsTrue(rate >= 0.8, $"{method}: the peak lies inside the object in {rate:P1} of the correctly classified images");
        }

        // The graph alone, as an .onnx file, gives the same network.
        string onnx = Path.ChangeExtension(path, ".onnx");
        using (ZipArchive zip = ZipFile.OpenRead(path))
            File.WriteAllBytes(onnx, MlNetInternals.OnnxModelEntries(zip).Select(e => MlNetInternals.ReadOnnxModel(e, new FileInfo(path).Length)).First());
        using (var fromOnnx = GradCam.Load(onnx))
        {
            gradCam.Method = GradCamMethod.GradCam;
            CollectionAssert.AreEqual(gradCam.Explain(pixels[0]).Single().Heatmap.ToArray(), fromOnnx.Explain(pixels[0]).Single().Heatmap.ToArray(), "the .onnx file's map");
        }

        TestContext.WriteLine($"total {clock.Elapsed.TotalSeconds:F1} s");
    }
}
