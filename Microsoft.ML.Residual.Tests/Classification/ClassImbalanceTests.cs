using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Tests.Training;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>Class weights, focal loss and balanced sampling for classifiers; per-class recall in the validation report.</summary>
[TestClass]
public sealed class ClassImbalanceTests
{
    private const int Size = 16;

    // The textures of ImageClassifierEstimatorTests, the first class kept only every `ratio`-th time.
    private static List<ImageClassifierEstimatorTests.Row> Imbalanced(int count, int seed, int ratio) =>
        ImageClassifierEstimatorTests.Textures(count, seed).Where((row, i) => i % 4 != 0 || i / 4 % ratio == 0).ToList();

    private static ImageClassifierOptions Options() => new()
    {
        Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16, Seed = 1,
    };

    [TestMethod]
    public void BalancedWeights_GiveEveryClassPresentTheSameTotalWeight()
    {
        float[] weights = ImageClassifierEstimator.BalancedWeights(new long[] { 90, 10, 0 });
        // n / (K·n_k) over the two classes present; the absent one keeps 1.
        CollectionAssert.AreEqual(new[] { 100f / 180, 100f / 20, 1f }, weights);
        Assert.AreEqual(90 * weights[0], 10 * weights[1], 1e-4);
    }

    [TestMethod]
    public void CountKeys_CountsEachClassAndSkipsMissingKeys()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(new[] { "b", "a", "b", "", "b" }.Select(l => new PixelRow { Label = l }));
        // MapValueToKey maps empty text to the missing key, 0, which counts for no class.
        data = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(data).Transform(data);
        Assert.AreEqual(2, LabelKeyInfo.FromSchema(data.Schema, "Label").ClassCount);
        CollectionAssert.AreEqual(new long[] { 1, 3 }, LabelKeyInfo.CountKeys(data, "Label"), "keys by value: a, b");
    }

    [TestMethod]
    public void WeightedCrossEntropy_OnImageLogits_IsTheWeightedMeanOfTheRowLosses()
    {
        using var scope = NewDisposeScope();
        Tensor logits = tensor(new float[] { 2, 0, -1, 0.5f, 1, 0, -1, 0, 3 }, new long[] { 3, 3 });
        Tensor targets = tensor(new long[] { 0, 2, -1 });
        float[] weights = { 0.5f, 1f, 4f };
        Tensor loss = ClassificationLosses.Create(focal: false, weights, focalGamma: 2)(logits, targets, 0.0);
        double Row(int row, int target)
        {
            float[] z = logits[row].data<float>().ToArray();
            double logSum = Math.Log(z.Sum(v => Math.Exp(v)));
            return logSum - z[target];
        }

        // The ignored third row counts for nothing; the others are weighed by their class.
        double expected = (0.5 * Row(0, 0) + 4 * Row(1, 2)) / (0.5 + 4);
        Assert.AreEqual(expected, loss.item<float>(), Numerics.Gamma(20) * Math.Abs(expected) * 4);
    }

    [TestMethod]
    public void FocalLoss_OnImageLogits_DownWeighsWellClassifiedRows()
    {
        using var scope = NewDisposeScope();
        Tensor logits = tensor(new float[] { 4, 0, 0, 0, 0.2f, 0 }, new long[] { 2, 3 });
        Tensor targets = tensor(new long[] { 0, 1 });
        Tensor focal = ClassificationLosses.Create(focal: true, null, focalGamma: 2)(logits, targets, 0.0);
        double Term(int row, int target)
        {
            float[] z = logits[row].data<float>().ToArray();
            double p = Math.Exp(z[target]) / z.Sum(v => Math.Exp(v));
            return -Math.Pow(1 - p, 2) * Math.Log(p);
        }

        double expected = (Term(0, 0) + Term(1, 1)) / 2;
        Assert.AreEqual(expected, focal.item<float>(), Numerics.Gamma(30) * Math.Abs(expected) * 4);
        Assert.IsTrue(Term(0, 0) < Term(1, 1) / 100, "the confident row adds almost nothing");
    }

    [TestMethod]
    public void BalancedSampling_DrawsEveryClassAboutEquallyOften_AndAsManyRowsAsTheDataHas()
    {
        var ml = new MLContext(seed: 1);
        // 20 rows of class "rare" and 400 of "common": 1 to 20.
        var rows = Enumerable.Range(0, 420).Select(r => new PixelRow { Pixels = DataTestSupport.Chw(r, 1, 2, 2), Label = r < 20 ? "rare" : "common" }).ToList();
        IDataView data = DataTestSupport.VectorData(ml, rows, 4);
        var reader = new ImageBatchReader(data, new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = 2, Height = 2, BatchSize = 64, CacheInMemory = true, BalanceClasses = true, Seed = 3,
        });
        long rareKey = Array.IndexOf(reader.Label!.ClassNames!.ToArray(), "rare");
        for (int epoch = 0; epoch < 2; epoch++)
        {
            long[] labels = DataTestSupport.Collect(reader.ReadEpoch(epoch)).SelectMany(b => b.Labels).ToArray();
            Assert.AreEqual(420, labels.Length, "an epoch has as many rows as the data");
            long rare = labels.Count(l => l == rareKey);
            // Binomial(420, ½): mean 210, σ ≈ 10.2. Five σ either way; plain shuffling gives 20.
            Assert.IsTrue(Math.Abs(rare - 210) <= 5 * Math.Sqrt(420 * 0.25), $"epoch {epoch}: {rare} rare rows of 420");
        }

        Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(data, new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = 2, Height = 2, BalanceClasses = true, CacheInMemory = false,
        }));
    }

    [TestMethod]
    [DataRow("weights", "ImageClassifierOptions.ClassWeights has 2 weights", DisplayName = "a weight count that is not the class count")]
    [DataRow("focal+smoothing", "ImageClassifierOptions.LabelSmoothing", DisplayName = "label smoothing with the focal loss")]
    [DataRow("weights+balance", "ImageClassifierOptions.ClassBalance = Weights", DisplayName = "own weights and computed weights")]
    [DataRow("sampling-uncached", "ImageClassifierOptions.ClassBalance = Sampling", DisplayName = "balanced sampling without the cache")]
    [DataRow("negative", "ImageClassifierOptions.ClassWeights", DisplayName = "a negative weight")]
    public void ContradictoryImbalanceSettings_AreRefusedNamingTheOption(string setting, string expected)
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(16, seed: 1));
        ImageClassifierOptions options = Options();
        switch (setting)
        {
            case "weights": options.ClassWeights = new[] { 1f, 2f }; break;
            case "focal+smoothing": options.Loss = ClassificationLoss.Focal; options.LabelSmoothing = 0.1; break;
            case "weights+balance": options.ClassWeights = new[] { 1f, 1f, 1f, 1f }; options.ClassBalance = ClassBalance.Weights; break;
            case "sampling-uncached": options.ClassBalance = ClassBalance.Sampling; options.CacheInMemory = false; break;
            case "negative": options.ClassWeights = new[] { 1f, -1f, 1f, 1f }; break;
        }

        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data));
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    [DataRow(ClassBalance.Weights, ClassificationLoss.CrossEntropy)]
    [DataRow(ClassBalance.Sampling, ClassificationLoss.Focal)]
    public void ImbalancedFit_ReportsEachClassesValidationRecall(ClassBalance balance, ClassificationLoss loss)
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Imbalanced(96, seed: 1, ratio: 6));
        IDataView validation = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 2));
        var reports = new List<EpochReport>();
        ImageClassifierOptions options = Options();
        options.ClassBalance = balance;
        options.Loss = loss;
        options.Epochs = 2;
        options.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        options.ValidationSet = keys.Transform(validation);
        keys.Append(ml.Transforms.ResNetClassifier(options).Fit(keys.Transform(train)));

        foreach (EpochReport report in reports)
        {
            // Every class has 8 of the 32 validation images, so the mean recall is the accuracy.
            Assert.AreEqual(4, report.ValidationClassRecall!.Count);
            Assert.IsTrue(report.ValidationClassRecall.All(r => r is >= 0 and <= 1));
            Assert.AreEqual(report.ValidationAccuracy!.Value, report.ValidationMacroRecall!.Value, 1e-12);
            Assert.AreEqual(report.ValidationAccuracy.Value, report.ValidationClassRecall.Average(r => r!.Value) , 1e-12);
        }
    }

    [TestMethod]
    public void ClassRecall_IsEachClassesShareOfItsTargets_AndMacroRecallSkipsClassesWithoutAny()
    {
        // confusion[truth·K + predicted]: class 0 has 3 targets (2 right), class 1 none, class 2 has 4 (1 right).
        long[] confusion = { 2, 1, 0, 0, 0, 0, 2, 1, 1 };
        double?[] recall = TrainingLoop.ClassRecall(confusion);
        CollectionAssert.AreEqual(new double?[] { 2.0 / 3, null, 1.0 / 4 }, recall);
        Assert.AreEqual((2.0 / 3 + 0.25) / 2, TrainingLoop.MacroRecall(recall), 1e-15);
    }
}
