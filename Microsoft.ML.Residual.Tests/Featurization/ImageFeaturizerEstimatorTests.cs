using System;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Featurization;

[TestClass]
public sealed class ImageFeaturizerEstimatorTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    private string SaveResNet20Weights(long seed)
    {
        string path = ModelTestSupport.TempFile(TestContext, "-resnet20.safetensors");
        var model = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = seed });
        model.train();
        using (no_grad()) model.call(randn(new long[] { 8, 3, Size, Size }, generator: new Generator((ulong)seed))); // non-trivial BatchNorm statistics
        StateDict.Save(model, path);
        return path;
    }

    [TestMethod]
    [DataRow("mobilenet_v2", 1280, Size)]
    [DataRow("mobilenet_v3_large", 1280, Size)]
    [DataRow("mobilenet_v3_small", 1024, Size)]
    [DataRow("efficientnet_b0", 1280, Size)]
    [DataRow("convnext_tiny", 768, 32)] // at least 32²: its 2×2 stride-2 convolutions need a pixel left at 1/32
    [DataRow("regnet_y_400mf", 440, Size)]
    [DataRow("regnet_x_400mf", 400, Size)]
    public void EveryFamily_GivesItsPooledFeaturesFromImageFiles(string architecture, int features, int imageSize)
    {
        var ml = new MLContext(seed: 1);
        string folder = DataTestSupport.NewFolder(TestContext);
        IDataView data = ModelTestSupport.WriteTextures(ml, folder, 4, seed: 3, "image");
        float[][] rows = ml.Transforms.LoadImages("Image", folder, "Path")
            .Append(ml.Transforms.ResNetFeaturizer("Features", "Image", architecture: architecture, imageWidth: imageSize, imageHeight: imageSize))
            .Fit(data).Transform(data).GetColumn<float[]>("Features").ToArray();
        Assert.IsTrue(rows.Length == 4 && rows.All(r => r.Length == features && r.All(float.IsFinite)), $"{features} features per image");
        Assert.IsTrue(rows.Any(r => r.Any(v => v != 0)), "the features are not all zero");
    }

    [TestMethod]
    public void Embedding_IsThePooledFeaturesOfTheNetworkWithTheGivenWeights()
    {
        var ml = new MLContext(seed: 1);
        string weights = SaveResNet20Weights(3);
        var rows = ImageClassifierEstimatorTests.Textures(6, seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        ITransformer featurizer = ml.Transforms.ResNetFeaturizer("Embedding", "Image", architecture: "resnet20", weightsPath: weights, imageWidth: Size, imageHeight: Size).Fit(data);
        float[][] embeddings = featurizer.Transform(data).GetColumn<float[]>("Embedding").ToArray();
        Assert.AreEqual(64, embeddings[0].Length);

        using var scope = NewDisposeScope();
        var reference = ResidualModels.Create("resnet20", 10);
        StateDict.Load(reference, weights, strict: true);
        Tensor pixels = tensor(rows.SelectMany(r => r.Image).ToArray(), new long[] { rows.Count, 3, Size, Size });
        AssertAreTheNetworksFeatures(embeddings, reference, pixels, Microsoft.ML.Residual.Onnx.PixelNormalization.ImageNet(), "embeddings");
    }

    /// <summary>
    /// The featurizer is the network exported to ONNX with <paramref name="normalization"/>: a float32 evaluation, within the
    /// normalisation's rounding plus ForwardError of the features' largest magnitude from the whole thing in float64.
    /// </summary>
    private static void AssertAreTheNetworksFeatures(float[][] embeddings, nn.Module<Tensor, Tensor> network, Tensor pixels,
        Microsoft.ML.Residual.Onnx.PixelNormalization normalization, string what)
    {
        network.eval();
        var (normalized, inputError) = Onnx.OnnxTestSupport.Normalized(pixels, normalization);
        network.to(ScalarType.Float64);
        Tensor exact;
        using (no_grad()) exact = ((IClassifierModel)network).ForwardFeatures(normalized);
        Tensor actual = tensor(embeddings.SelectMany(e => e).ToArray(), new long[] { embeddings.Length, embeddings[0].Length });
        double bound = (Numerics.ForwardError(network) + inputError) * Numerics.LargestMagnitude(exact);
        Numerics.AssertWithin(actual, exact, bound, $"{what} against the network's pooled features in float64");
    }

    private sealed class GreyRow
    {
        [VectorType(Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void GreyImages_AreNormalisedAsTheClassifierTrainsThem()
    {
        var ml = new MLContext(seed: 1);
        string path = ModelTestSupport.TempFile(TestContext, "-grey.safetensors");
        using var scope = NewDisposeScope();
        var network = ResidualModels.Create("resnet20", 10, inChannels: 1, options: new ResNetOptions { Seed = 4 });
        network.train();
        using (no_grad()) network.call(randn(new long[] { 8, 1, Size, Size }, generator: new Generator(5)));
        StateDict.Save(network, path);
        var random = new Random(6);
        var rows = Enumerable.Range(0, 4).Select(_ => new GreyRow { Image = Enumerable.Range(0, Size * Size).Select(_ => (float)random.Next(256)).ToArray() }).ToList();
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        float[][] embeddings = ml.Transforms.ResNetFeaturizer("Embedding", "Image", architecture: "resnet20", weightsPath: path, imageWidth: Size, imageHeight: Size)
            .Fit(data).Transform(data).GetColumn<float[]>("Embedding").ToArray();

        // The classifier estimators normalise one channel with ImageNet's channel averages; the featurizer must match.
        Assert.AreEqual(64, embeddings[0].Length);
        Tensor pixels = tensor(rows.SelectMany(r => r.Image).ToArray(), new long[] { rows.Count, 1, Size, Size });
        AssertAreTheNetworksFeatures(embeddings, network, pixels, Microsoft.ML.Residual.Onnx.PixelNormalization.ImageNet(1), "grey embeddings");
    }

    /// <summary>Weights of a resnet20 trained briefly on other texture images (a stand-in for pretrained weights).</summary>
    private string TrainedResNet20Weights()
    {
        string path = ModelTestSupport.TempFile(TestContext, "-trained.safetensors");
        var rows = ImageClassifierEstimatorTests.Textures(640, seed: 11);
        var classes = rows.Select(r => r.Label).Distinct().ToList();
        using var scope = NewDisposeScope();
        Tensor images = tensor(rows.SelectMany(r => r.Image).ToArray(), new long[] { rows.Count, 3, Size, Size });
        Tensor labels = tensor(rows.Select(r => (long)classes.IndexOf(r.Label)).ToArray());
        Tensor mean = tensor(new[] { 0.485f, 0.456f, 0.406f }).reshape(1, 3, 1, 1).Times(255.0);
        Tensor std = tensor(new[] { 0.229f, 0.224f, 0.225f }).reshape(1, 3, 1, 1).Times(255.0);
        var model = ResidualModels.Create("resnet20", classes.Count, options: new ResNetOptions { Seed = 1, ZeroInitResidual = true });
        var trainer = new Microsoft.ML.Residual.Training.TrainingLoop(model, new Microsoft.ML.Residual.Training.TrainingOptions { Epochs = 8, LearningRate = 0.1, Seed = 1 })
        {
            Preprocess = x => (x - mean) / std,
        };
        trainer.Train(epoch => Enumerable.Range(0, 20).Select(b => (images.narrow(0, b * 32, 32).clone(), labels.narrow(0, b * 32, 32).clone())), 20);
        StateDict.Save(model, path);
        return path;
    }

    [TestMethod]
    public void Embeddings_FeedAnMlNetTrainer_AndThePipelineSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        string weights = TrainedResNet20Weights();
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(200, seed: 1));
        IDataView test = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(80, seed: 2));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ResNetFeaturizer("Embedding", "Image", architecture: "resnet20", weightsPath: weights, imageWidth: Size, imageHeight: Size))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(featureColumnName: "Embedding"));
        ITransformer model = pipeline.Fit(train);
        IDataView scored = model.Transform(test);
        double accuracy = ml.MulticlassClassification.Evaluate(scored).MacroAccuracy;
        TestContext.WriteLine($"macro accuracy {accuracy:P1}");
        Assert.IsTrue(accuracy > 0.8, $"macro accuracy {accuracy:P1} (chance: 25 %)");

        string path = ModelTestSupport.TempFile(TestContext, "-featurizer.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 2);
        ITransformer loaded = fresh.Model.Load(path, out _);
        float[][] before = scored.GetColumn<float[]>("Score").ToArray();
        float[][] after = loaded.Transform(test).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }

    [TestMethod]
    public void WeightsOfAnotherArchitecture_AreRejectedListingTheKeys()
    {
        var ml = new MLContext(seed: 1);
        string weights = SaveResNet20Weights(5);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(4, seed: 1));
        var featurizer = ml.Transforms.ResNetFeaturizer("Embedding", "Image", architecture: "resnet32", weightsPath: weights, imageWidth: Size, imageHeight: Size);
        var error = Assert.ThrowsExactly<StateDictMismatchException>(() => featurizer.Fit(data));
        StringAssert.Contains(error.Message, "layer1.3");
    }

    [TestMethod]
    public void MissingWeightsFile_IsRejectedNamingIt()
    {
        var ml = new MLContext(seed: 1);
        var error = Assert.ThrowsExactly<FileNotFoundException>(() => ml.Transforms.ResNetFeaturizer("Embedding", "Image", weightsPath: "no-such.safetensors"));
        StringAssert.Contains(error.Message, "no-such.safetensors");
    }
}
