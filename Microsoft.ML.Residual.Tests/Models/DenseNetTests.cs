using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class DenseNetTests
{
    private static readonly string[] DenseNetNames = { "densenet121", "densenet161", "densenet169", "densenet201", "densenet_bc_100_12", "densenet_bc_190_40" };

    public TestContext TestContext { get; set; } = null!;

    private static DenseNet Small(DenseNetOptions? options = null) =>
        (DenseNet)ResidualModels.Create("densenet121", 5, options: options ?? new DenseNetOptions
        {
            GrowthRate = 4, BlockConfig = new[] { 2, 3 }, InitFeatures = 8, Seed = 1,
        });

    [TestMethod]
    public void Densenet121_HasTorchvisionsParameterCount()
    {
        using var model = ResidualModels.Create("densenet121", numClasses: 1000);
        Assert.AreEqual(7_978_856L, ResidualModelsTests.CountParameters(model));
    }

    [TestMethod]
    public void EveryDenseNet_FollowsTheConcatenationChannelArithmetic()
    {
        foreach (string name in DenseNetNames)
        {
            using var model = (DenseNet)ResidualModels.Create(name, numClasses: 10);
            DenseNetDefinition d = model.Definition;
            var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            int k = d.GrowthRate;
            int channels = d.InitFeatures;
            long expectedParameters = shapes["features.conv0.weight"].Aggregate(1L, (a, b) => a * b) + (shapes.ContainsKey("features.norm0.weight") ? 2 * channels : 0);
            for (int block = 0; block < d.BlockConfig.Count; block++)
            {
                for (int layer = 0; layer < d.BlockConfig[block]; layer++)
                {
                    string prefix = $"features.denseblock{block + 1}.denselayer{layer + 1}.";
                    int input = channels + layer * k;
                    CollectionAssert.AreEqual(new long[] { input }, shapes[prefix + "norm1.weight"], $"{name} {prefix}norm1");
                    CollectionAssert.AreEqual(new long[] { 4 * k, input, 1, 1 }, shapes[prefix + "conv1.weight"], $"{name} {prefix}conv1");
                    CollectionAssert.AreEqual(new long[] { k, 4 * k, 3, 3 }, shapes[prefix + "conv2.weight"], $"{name} {prefix}conv2");
                    expectedParameters += 2L * input + 4L * k * input + 2L * 4 * k + 4L * k * k * 9;
                }

                channels += d.BlockConfig[block] * k;
                Assert.AreEqual(channels, model.StageChannels[block + 1], $"{name} block {block + 1} output");
                if (block < d.BlockConfig.Count - 1)
                {
                    int kept = channels / 2;
                    CollectionAssert.AreEqual(new long[] { kept, channels, 1, 1 }, shapes[$"features.transition{block + 1}.conv.weight"], $"{name} transition {block + 1}");
                    expectedParameters += 2L * channels + (long)kept * channels;
                    channels = kept;
                }
            }

            CollectionAssert.AreEqual(new long[] { channels }, shapes["features.norm5.weight"], name);
            Assert.AreEqual(channels, model.FeatureDimension, name);
            expectedParameters += 2L * channels + 10L * channels + 10;
            Assert.AreEqual(expectedParameters, ResidualModelsTests.CountParameters(model), name);
        }
    }

    [TestMethod]
    public void CifarDenseNetBC_HasThePapersSize()
    {
        using var small = ResidualModels.Create("densenet_bc_100_12", numClasses: 10);
        long count = ResidualModelsTests.CountParameters(small);
        Assert.IsTrue(count > 750_000 && count < 820_000, $"densenet_bc_100_12: {count} (paper: 0.8M)");
        Assert.IsFalse(small.state_dict().ContainsKey("features.norm0.weight"), "the CIFAR stem is a single 3×3 convolution");
        using var large = ResidualModels.Create("densenet_bc_190_40", numClasses: 10);
        count = ResidualModelsTests.CountParameters(large);
        Assert.IsTrue(count > 25_000_000 && count < 26_200_000, $"densenet_bc_190_40: {count} (paper: 25.6M)");
    }

    [TestMethod]
    public void Options_ChangeBottleneckCompressionAndGrowth()
    {
        using var plain = Small(new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 3 }, InitFeatures = 8, BottleneckSize = 0, Compression = 1.0 });
        var shapes = plain.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.IsFalse(shapes.Keys.Any(k => k.Contains("norm2") || k.Contains("conv2")), "no bottleneck: one BN → ReLU → 3×3 conv per layer");
        CollectionAssert.AreEqual(new long[] { 4, 8, 3, 3 }, shapes["features.denseblock1.denselayer1.conv1.weight"]);
        CollectionAssert.AreEqual(new long[] { 16, 16, 1, 1 }, shapes["features.transition1.conv.weight"], "θ = 1 keeps every channel");
        using var scope = NewDisposeScope();
        plain.eval();
        CollectionAssert.AreEqual(new long[] { 2, 5 }, plain.call(randn(2, 3, 32, 32)).shape);
        Assert.ThrowsExactly<ArgumentException>(() => Small(new DenseNetOptions { Compression = 0 }));
        Assert.ThrowsExactly<ArgumentException>(() => Small(new DenseNetOptions { GrowthRate = 0 }));
        Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("densenet121", 10, options: new ResNetOptions()));
    }

    [TestMethod]
    public void ForwardStages_GiveTheSegmentationModelsStagesOfDensenet121()
    {
        using var scope = NewDisposeScope();
        var encoder = (IStageEncoder)ResidualModels.Create("densenet121", 0);
        CollectionAssert.AreEqual(new[] { 64, 256, 512, 1024, 1024 }, encoder.StageChannels.ToArray());
        CollectionAssert.AreEqual(new[] { 2, 4, 8, 16, 32 }, encoder.StageReductions.ToArray());
        var stages = encoder.ForwardStages(randn(1, 3, 64, 64));
        for (int i = 0; i < stages.Count; i++)
            CollectionAssert.AreEqual(new long[] { 1, encoder.StageChannels[i], 64 / encoder.StageReductions[i], 64 / encoder.StageReductions[i] }, stages[i].shape);
    }

    [TestMethod]
    public void OldStyleCheckpointKeys_LoadStrictly()
    {
        using var scope = NewDisposeScope();
        DenseNet source = Small();
        var renamed = source.state_dict().Select(kv => new KeyValuePair<string, Tensor>(
            System.Text.RegularExpressions.Regex.Replace(kv.Key, @"(denselayer\d+\.(?:norm|conv))([12])\.", "$1.$2."), kv.Value)).ToList();
        Assert.IsTrue(renamed.Any(kv => kv.Key.EndsWith("denselayer1.norm.1.weight")), "the file uses the old names");
        string path = ModelTestSupport.TempFile(TestContext, ".safetensors");
        SafeTensors.Write(path, renamed);

        DenseNet target = Small(new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 3 }, InitFeatures = 8, Seed = 2 });
        StateDictLoadReport report = StateDict.Load(target, path, strict: true);
        Assert.IsTrue(report.IsExactMatch);
        var loaded = target.state_dict();
        foreach (var (key, value) in source.state_dict()) Assert.IsTrue(loaded[key].IsEqualTo(value), key);
    }

    [TestMethod]
    [DoNotParallelize] // reads a process-wide counter
    [DataRow(Microsoft.ML.Residual.Training.TrainingPrecision.Float32)]
    [DataRow(Microsoft.ML.Residual.Training.TrainingPrecision.BFloat16)] // the backward pass recomputes in bfloat16 too
    public void MemoryEfficientMode_GivesTheSameOutputsGradientsAndStatistics(Microsoft.ML.Residual.Training.TrainingPrecision precision)
    {
        using var scope = NewDisposeScope();
        var options = new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 3, 3 }, InitFeatures = 8, Seed = 3 };
        DenseNet standard = Small(options);
        DenseNet efficient = Small(new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 3, 3 }, InitFeatures = 8, Seed = 4, MemoryEfficient = true });
        ModelTestSupport.CopyWeights(standard, efficient);
        standard.train();
        efficient.train();
        Tensor x = randn(new long[] { 4, 3, 16, 16 }, generator: new Generator(3));
        Tensor target = tensor(new long[] { 0, 1, 2, 3 });
        // Bit for bit, by design: the forward pass runs the same operations on the same tensors (concatenation, BatchNorm,
        // ReLU, conv1); backward recomputes them the same way and hands each feature map its slice of the same gradient, which
        // autograd accumulates in the same reverse order. Nothing is summed differently, so nothing rounds differently.
        Tensor Logits(DenseNet network)
        {
            using (Autocast.Enter(precision)) return Autocast.ToFloat32(network.call(x));
        }

        Tensor standardLoss = nn.functional.cross_entropy(Logits(standard), target);
        Tensor efficientLoss = nn.functional.cross_entropy(Logits(efficient), target);
        Assert.IsTrue(efficientLoss.IsEqualTo(standardLoss));
        long recomputedBefore = DenseLayer.RecomputedFirstUnit.BackwardCount;
        standardLoss.backward();
        Assert.AreEqual(recomputedBefore, DenseLayer.RecomputedFirstUnit.BackwardCount, "the standard network keeps its activations");
        efficientLoss.backward();
        Assert.AreEqual(recomputedBefore + 6, DenseLayer.RecomputedFirstUnit.BackwardCount, "each of the 6 layers recomputed its first unit");

        var standardParameters = standard.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int compared = 0;
        foreach (var (name, parameter) in efficient.named_parameters())
        {
            Tensor expected = standardParameters[name].grad!;
            Assert.IsNotNull(parameter.grad, name);
            Assert.IsTrue(parameter.grad.IsEqualTo(expected), $"gradient of {name}");
            compared++;
        }

        Assert.IsTrue(compared > 20);
        var standardBuffers = standard.state_dict();
        foreach (var (key, value) in efficient.state_dict().Where(kv => kv.Key.Contains("running") || kv.Key.Contains("num_batches")))
            Assert.IsTrue(value.IsEqualTo(standardBuffers[key]), $"{key}: BatchNorm statistics are updated once per step");
    }

    [TestMethod]
    public void MemoryEfficientTraining_DoesNotLeakTensors()
    {
        DenseNet model = Small(new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 3, 3 }, InitFeatures = 8, Seed = 5, MemoryEfficient = true, DropRate = 0.1 });
        ModelTestSupport.AssertTrainingStepsDoNotLeak(model, randn(4, 3, 16, 16), tensor(new long[] { 0, 1, 2, 3 }));
    }

    [TestMethod]
    public void OldStyleDenseNetCheckpoint_LoadsIntoTheEncoderOfAUNet()
    {
        using var scope = NewDisposeScope();
        var encoderOptions = new DenseNetOptions { GrowthRate = 4, BlockConfig = new[] { 2, 2, 2, 2 }, InitFeatures = 8, Seed = 6 };
        var classifier = (DenseNet)ResidualModels.Create("densenet121", 10, options: encoderOptions);
        var oldStyle = classifier.state_dict().Select(kv => new KeyValuePair<string, Tensor>(
            System.Text.RegularExpressions.Regex.Replace(kv.Key, @"(denselayer\d+\.(?:norm|conv))([12])\.", "$1.$2."), kv.Value)).ToList();
        string path = ModelTestSupport.TempFile(TestContext, ".safetensors");
        SafeTensors.Write(path, oldStyle);

        var unet = (EncoderUNet)ResidualModels.Create("unet_densenet121", 2, options: new UNetOptions { EncoderOptions = encoderOptions, Seed = 7 });
        var report = StateDict.Load(unet, path, strict: true, new StateDictLoadOptions
        {
            MapKey = EncoderUNet.EncoderKeyMap(classifier.ClassifierPrefix),
            SkipPrefixes = EncoderUNet.DecoderPrefixes.ToList(),
        });
        Assert.IsTrue(report.LoadedKeys.Count > 0 && report.MissingKeys.Count == 0);
        var loaded = unet.state_dict();
        foreach (var (key, value) in classifier.state_dict().Where(kv => !kv.Key.StartsWith("classifier.")))
            Assert.IsTrue(loaded["encoder." + key].IsEqualTo(value), key);
    }
}
