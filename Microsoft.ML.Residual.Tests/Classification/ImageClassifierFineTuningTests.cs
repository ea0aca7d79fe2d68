using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Tests.Training;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>Starting from weights: a torchvision-named state dict, a saved model.zip; and validation held out of the training data.</summary>
[TestClass]
public sealed class ImageClassifierFineTuningTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    private static IEstimator<ITransformer> Pipeline(MLContext ml, ImageClassifierOptions options) =>
        ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options));

    private static ImageClassifierOptions Options(string architecture, int epochs) => new()
    {
        Architecture = architecture, ImageWidth = Size, ImageHeight = Size, Epochs = epochs, BatchSize = 32, Seed = 1, Optimizer = OptimizerKind.Sgd, LearningRate = 0.05, WeightDecay = 5e-4,
        Augmentation = new Microsoft.ML.Residual.Data.ImageAugmentation(),
        // These tests read the saved weights back and bound how far training moved them by the optimiser's rounding: the
        // saved graph keeps BatchNorm unfolded (folding and reading back add roundings of their own; OnnxPrecisionTests bounds those).
        Scoring = { FoldBatchNorm = false },
    };

    private string SaveStateDict(string architecture, int classes, long seed)
    {
        string path = ModelTestSupport.TempFile(TestContext, $"-{architecture}.safetensors");
        using var module = ResidualModels.Create(architecture, classes, options: new ResNetOptions { Seed = seed });
        StateDict.Save(module, path);
        return path;
    }

    [TestMethod]
    public void PretrainedStateDict_LoadsTheBackboneReplacesTheHeadAndFreezesFirst()
    {
        // ImageNet-shaped weights (1000 classes) for a 4-class task: the backbone comes from the file, the head is new.
        string pretrained = SaveStateDict("resnet18", 1000, seed: 3);
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(96, seed: 1));
        var options = Options("resnet18", epochs: 2);
        options.PretrainedWeightsPath = pretrained;
        options.FreezeBackboneEpochs = 1;
        options.BackboneLearningRateFactor = 1e-12; // the unfrozen epoch moves the backbone's weights by rounding only
        options.GradientClipNorm = 1; // every gradient entry ≤ 1, so the bound of how far they move needs no gradient sizes
        var reports = new List<EpochReport>();
        options.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        ITransformer model = Pipeline(ml, options).Fit(train);
        Assert.AreEqual(2, reports.Count);

        string saved = ModelTestSupport.TempFile(TestContext, "-finetuned.zip");
        ml.Model.Save(model, train.Schema, saved);
        using TensorDictionary trained = SavedModelWeights.Read(saved, "test");
        using TensorDictionary original = StateDict.Read(pretrained);
        CollectionAssert.AreEqual(new long[] { 4, 512 }, trained["fc.weight"].shape, "the head has the task's 4 classes");
        // 2 epochs of 96 images in batches of 32: at most 6 steps, at 0.05 × 1e-12.
        ModelTestSupport.AssertLearnedWeightsKept(original, trained, "comes from the pretrained file (ImageNet stem, torchvision names)",
            OptimizerKind.Sgd, steps: 6, rate: 0.05 * 1e-12, options.WeightDecay!.Value);
    }

    [TestMethod]
    public void PretrainedRgbWeights_FineTuneOnGreyImages_WithTheFirstConvolutionSummedOverRgb()
    {
        string pretrained = SaveStateDict("resnet18", 1000, seed: 3);
        var ml = new MLContext(seed: 1);
        // The textures' channel average: one-channel pixel vectors.
        var grey = ImageClassifierEstimatorTests.Textures(64, seed: 1).Select(r => new ImageClassifierEstimatorTests.GrayRow
        {
            Label = r.Label, Image = Enumerable.Range(0, Size * Size).Select(p => (r.Image[p] + r.Image[Size * Size + p] + r.Image[2 * Size * Size + p]) / 3).ToArray(),
        });
        IDataView train = ml.Data.LoadFromEnumerable(grey);
        var options = Options("resnet18", epochs: 2);
        options.PretrainedWeightsPath = pretrained;
        options.FreezeBackboneEpochs = 1;
        options.BackboneLearningRateFactor = 1e-12; // the backbone moves by rounding only
        options.GradientClipNorm = 1;
        ITransformer model = Pipeline(ml, options).Fit(train);

        string saved = ModelTestSupport.TempFile(TestContext, "-grey.zip");
        ml.Model.Save(model, train.Schema, saved);
        using TensorDictionary trained = SavedModelWeights.Read(saved, "test");
        using TensorDictionary original = StateDict.Read(pretrained);
        Tensor rgb = original["conv1.weight"];
        Tensor summed = rgb.sum(1, keepdim: true);
        Tensor learned = trained["conv1.weight"];
        CollectionAssert.AreEqual(new long[] { 64, 1, 7, 7 }, learned.shape);
        // The sum of three float32 weights is within γ₂ of their magnitudes; 4 steps at 0.05 × 1e-12 (clipped gradients, momentum
        // 0.9: at most 10× a step) move a weight by far less than 1e-9.
        Tensor bound = rgb.abs().sum(1, keepdim: true).Times(Numerics.Gamma(2)).Plus(1e-9);
        Assert.IsTrue(learned.sub(summed).abs().le(bound).all().item<bool>(), $"largest difference {learned.sub(summed).abs().max().item<float>()}");
    }

    [TestMethod]
    public void SavedModelZip_ContinuesTrainingWithTheHeadRowsFollowingTheNewKeyOrder()
    {
        var ml = new MLContext(seed: 1);
        List<ImageClassifierEstimatorTests.Row> rows = ImageClassifierEstimatorTests.Textures(128, seed: 1);
        IDataView first = ml.Data.LoadFromEnumerable(rows);
        ITransformer original = Pipeline(ml, Options("resnet20", epochs: 1)).Fit(first);
        string saved = ModelTestSupport.TempFile(TestContext, "-original.zip");
        ml.Model.Save(original, first.Schema, saved);

        // The same classes in another order of first appearance, so MapValueToKey numbers them differently.
        IDataView reordered = ml.Data.LoadFromEnumerable(Enumerable.Reverse(rows).ToList());
        var options = Options("resnet20", epochs: 1);
        options.ResumeFromModelPath = saved;
        options.LearningRate = 1e-12;
        options.WarmupEpochs = 0;
        options.GradientClipNorm = 1;
        ITransformer resumed = Pipeline(ml, options).Fit(reordered);
        string resumedPath = ModelTestSupport.TempFile(TestContext, "-resumed.zip");
        ml.Model.Save(resumed, reordered.Schema, resumedPath);

        string[] originalClasses = SlotNames(original.Transform(first));
        string[] resumedClasses = SlotNames(resumed.Transform(reordered));
        CollectionAssert.AreNotEqual(originalClasses, resumedClasses, "the test needs a different key order");
        using TensorDictionary before = SavedModelWeights.Read(saved, "test");
        using TensorDictionary after = SavedModelWeights.Read(resumedPath, "test");
        // One epoch of 128 images in batches of 32: 4 steps at ≤ 1e-12.
        ModelTestSupport.AssertLearnedWeightsKept(before, after, "continues from the saved model", OptimizerKind.Sgd, steps: 4, rate: 1e-12, options.WeightDecay!.Value);

        for (int k = 0; k < resumedClasses.Length; k++)
        {
            int j = Array.IndexOf(originalClasses, resumedClasses[k]);
            foreach (string key in new[] { "fc.weight", "fc.bias" })
                Numerics.AssertWithin(after[key][k], before[key][j], ModelTestSupport.UpdateBound(before[key][j], OptimizerKind.Sgd, 4, 1e-12, options.WeightDecay!.Value),
                    $"{key} row of '{resumedClasses[k]}'");
        }
    }

    [TestMethod]
    public void SavedModelOfAnotherArchitecture_IsRejectedNamingBoth()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 1));
        ITransformer model = Pipeline(ml, Options("resnet20", epochs: 1)).Fit(data);
        string saved = ModelTestSupport.TempFile(TestContext, "-resnet20.zip");
        ml.Model.Save(model, data.Schema, saved);

        var options = Options("resnet32", epochs: 1);
        options.ResumeFromModelPath = saved;
        var error = Assert.ThrowsExactly<ArgumentException>(() => Pipeline(ml, options).Fit(data));
        StringAssert.Contains(error.Message, "resnet20");
        StringAssert.Contains(error.Message, "resnet32");
        StringAssert.Contains(error.Message, "ResumeFromModelPath");
    }

    [TestMethod]
    public void PretrainedWeightsOfAnotherArchitecture_AreRejectedNamingTheFileAndKeys()
    {
        string resnet20 = SaveStateDict("resnet20", 10, seed: 1);
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 1));
        var options = Options("resnet18", epochs: 1);
        options.PretrainedWeightsPath = resnet20;
        var error = Assert.ThrowsExactly<ArgumentException>(() => Pipeline(ml, options).Fit(data));
        StringAssert.Contains(error.Message, "PretrainedWeightsPath");
        StringAssert.Contains(error.Message, resnet20);
        StringAssert.Contains(error.Message, "layer4", "the report names keys the file lacks");
        StringAssert.Contains(error.Message, "Architecture");
    }

    [TestMethod]
    public void PretrainedWeightsPathThatIsMissingOrNotWeights_IsRejectedNamingThePath()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 1));
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.safetensors");
        string garbage = ModelTestSupport.TempFile(TestContext, "-garbage.pth");
        File.WriteAllBytes(garbage, Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray());
        foreach (string path in new[] { missing, garbage })
        {
            var options = Options("resnet20", epochs: 1);
            options.PretrainedWeightsPath = path;
            var error = Assert.ThrowsExactly<ArgumentException>(() => Pipeline(ml, options).Fit(data));
            StringAssert.Contains(error.Message, path);
        }
    }

    [TestMethod]
    public void ValidationFraction_HoldsOutRowsForPerEpochValidation()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(160, seed: 1));
        var options = Options("resnet20", epochs: 2);
        options.ValidationFraction = 0.25;
        var reports = new List<EpochReport>();
        options.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        Pipeline(ml, options).Fit(train);
        Assert.AreEqual(2, reports.Count);
        Assert.IsTrue(reports.All(r => r.ValidationAccuracy is >= 0 and <= 1 && r.ValidationLoss is > 0), "every epoch reports validation metrics");
    }

    [TestMethod]
    public void CancelledFit_FittedAgainWithTheCheckpointDirectory_ResumesAfterTheLastEpoch()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(64, seed: 1));
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        using var cancel = new System.Threading.CancellationTokenSource();
        var first = Options("resnet20", epochs: 3);
        first.CheckpointDirectory = directory;
        first.CancellationToken = cancel.Token;
        first.Progress = new SynchronousProgress<EpochReport>(r => { if (r.Epoch == 1) cancel.Cancel(); });
        Assert.ThrowsExactly<OperationCanceledException>(() => Pipeline(ml, first).Fit(train));

        var second = Options("resnet20", epochs: 3);
        second.CheckpointDirectory = directory;
        var reports = new List<EpochReport>();
        second.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        ITransformer model = Pipeline(ml, second).Fit(train);
        CollectionAssert.AreEqual(new[] { 2, 3 }, reports.Select(r => r.Epoch).ToArray(), "epoch 1 comes from the checkpoint");
        Assert.AreEqual(64, model.Transform(train).GetColumn<float[]>("Score").Count());
    }

    [TestMethod]
    public void FreezeBackboneEpochsNotBelowEpochs_IsRejectedNamingTheOption()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 1));
        var options = Options("resnet20", epochs: 2);
        options.FreezeBackboneEpochs = 2;
        var error = Assert.ThrowsExactly<ArgumentException>(() => Pipeline(ml, options).Fit(data));
        StringAssert.Contains(error.Message, "ImageClassifierOptions.FreezeBackboneEpochs");
    }

    private static string[] SlotNames(IDataView scored)
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        scored.Schema["Score"].GetSlotNames(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }
}
