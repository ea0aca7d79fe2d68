using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>Several labels per image: the reader's targets, the losses, thresholds, metrics and the estimator end to end.</summary>
[TestClass]
public sealed class MultiLabelClassifierTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    public sealed class TaggedRow
    {
        [VectorType(3 * Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        /// <summary>The tags, separated by ';' (may be empty).</summary>
        public string Tags { get; set; } = string.Empty;
    }

    public sealed class TagPrediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();

        public bool[] PredictedLabels { get; set; } = Array.Empty<bool>();
    }

    // Noisy grey images with up to two independent tags: "top" where the upper half has horizontal stripes, "bottom" where the
    // lower half has vertical ones; an untagged half is flat grey. Each tag is on for about half of the rows.
    internal static List<TaggedRow> Tagged(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<TaggedRow>();
        for (int n = 0; n < count; n++)
        {
            bool top = n % 2 == 0, bottom = n / 2 % 2 == 0;
            var pixels = new float[3 * Size * Size];
            int phase = random.Next(4);
            for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                bool upper = y < Size / 2;
                float value = upper ? (top ? ((y + phase) / 2 % 2 == 0 ? 220 : 40) : 128) : (bottom ? ((x + phase) / 2 % 2 == 0 ? 220 : 40) : 128);
                for (int c = 0; c < 3; c++) pixels[(c * Size + y) * Size + x] = Math.Clamp(value + random.Next(-20, 21), 0, 255);
            }

            rows.Add(new TaggedRow { Image = pixels, Tags = string.Join(";", new[] { top ? "top" : null, bottom ? "bottom" : null }.OfType<string>()) });
        }

        return rows;
    }

    // The tags as a vector of keys, as a user builds them from text.
    private static IEstimator<ITransformer> Keys(MLContext ml) =>
        ml.Transforms.Text.TokenizeIntoWords("Labels", "Tags", separators: new[] { ';' }).Append(ml.Transforms.Conversion.MapValueToKey("Labels"));

    [TestMethod]
    public void Reader_GivesAMultiHotRowPerImage_FromAVectorOfKeys_AndFromBooleans()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = Keys(ml).Fit(ml.Data.LoadFromEnumerable(Tagged(8, seed: 1))).Transform(ml.Data.LoadFromEnumerable(Tagged(8, seed: 1)));
        var reader = new ImageBatchReader(data, new ImageBatchOptions { ImageColumnName = "Image", LabelColumnName = "Labels", Width = Size, Height = Size, BatchSize = 8, Shuffle = false });
        Assert.IsTrue(reader.MultiLabel);
        CollectionAssert.AreEqual(new[] { "top", "bottom" }, reader.Label!.ClassNames!.ToArray(), "keys in order of first appearance");
        // Rows cycle through {top, bottom}, {bottom}, {top}, {}.
        float[] expected = { 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0 };
        CollectionAssert.AreEqual(expected, Targets(reader));

        var flags = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(i => new FlagRow { Pixels = DataTestSupport.Chw(i, 1, 2, 2), Flags = new[] { i == 1, true, false } }));
        var flagReader = new ImageBatchReader(flags, new ImageBatchOptions { ImageColumnName = "Pixels", LabelColumnName = "Flags", Width = 2, Height = 2, BatchSize = 3, Shuffle = false });
        CollectionAssert.AreEqual(new float[] { 0, 1, 0, 1, 1, 0, 0, 1, 0 }, Targets(flagReader));
    }

    // Every batch's float targets, in order.
    private static float[] Targets(ImageBatchReader reader)
    {
        var values = new List<float>();
        foreach (ImageBatch batch in reader.ReadAll())
            using (batch)
                values.AddRange(batch.Labels!.data<float>().ToArray());
        return values.ToArray();
    }

    public sealed class FlagRow
    {
        [VectorType(4)]
        public float[] Pixels { get; set; } = Array.Empty<float>();

        [VectorType(3)]
        public bool[] Flags { get; set; } = Array.Empty<bool>();
    }

    [TestMethod]
    public void BinaryCrossEntropy_IsTheMeanOfEachLabelsWeightedAndSmoothedTerm()
    {
        using var scope = NewDisposeScope();
        float[] z = { 2, -1, 0.5f, -3 };
        float[] y = { 1, 0, 0, 1 };
        float[] w = { 1, 3 };
        const double smoothing = 0.2;
        Tensor loss = ClassificationLosses.CreateMultiLabel(focal: false, w, focalGamma: 2)(tensor(z, new long[] { 2, 2 }), tensor(y, new long[] { 2, 2 }), smoothing);
        double expected = 0;
        for (int i = 0; i < 4; i++)
        {
            double target = y[i] * (1 - smoothing) + smoothing / 2, p = 1 / (1 + Math.Exp(-z[i]));
            expected += w[i % 2] * -(target * Math.Log(p) + (1 - target) * Math.Log(1 - p));
        }

        expected /= 4;
        Assert.AreEqual(expected, loss.item<float>(), Numerics.Gamma(30) * expected * 4);
    }

    [TestMethod]
    public void SigmoidFocal_IsTheCrossEntropyTimesTheMissedProbabilityToTheGamma()
    {
        using var scope = NewDisposeScope();
        float[] z = { 3, -1, 0.2f, -2 };
        float[] y = { 1, 1, 0, 0 };
        Tensor loss = ClassificationLosses.CreateMultiLabel(focal: true, null, focalGamma: 2)(tensor(z, new long[] { 2, 2 }), tensor(y, new long[] { 2, 2 }), 0.0);
        double expected = 0;
        for (int i = 0; i < 4; i++)
        {
            double p = 1 / (1 + Math.Exp(-z[i])), pt = y[i] == 1 ? p : 1 - p;
            expected += -Math.Pow(1 - pt, 2) * Math.Log(pt);
        }

        expected /= 4;
        Assert.AreEqual(expected, loss.item<float>(), Numerics.Gamma(30) * expected * 4);
    }

    [TestMethod]
    public void TunedThreshold_IsTheProbabilityWithTheBestF1_AndALabelWithoutPositivesKeepsTheDefault()
    {
        // Label 0: positives at 0.9 and 0.4, negatives at 0.6 and 0.1: predicting from 0.4 gives F1 = 2·2/(3 + 2) = 0.8, from 0.9
        // 0.67; the threshold lies midway between 0.4 and the next lower probability, 0.1.
        var probabilities = new[] { new[] { 0.9f, 0.3f }, new[] { 0.6f, 0.2f }, new[] { 0.4f, 0.1f }, new[] { 0.1f, 0.7f } };
        var truth = new[] { new[] { 1f, 0f }, new[] { 0f, 0f }, new[] { 1f, 0f }, new[] { 0f, 0f } };
        CollectionAssert.AreEqual(new[] { (0.4f + 0.1f) / 2, 0.5f }, MultiLabelThresholds.MaximiseF1(probabilities, truth, 0.5f));
    }

    [TestMethod]
    public void Metrics_AreThoseOfTheDefinitions_OnAHandComputedCase()
    {
        string[] names = { "a", "b", "c" };
        bool[][] truth = { new[] { true, false, false }, new[] { true, true, false }, new[] { false, true, false }, new[] { false, false, false } };
        bool[][] predicted = { new[] { true, false, false }, new[] { false, true, true }, new[] { true, true, false }, new[] { false, false, false } };
        float[][] scores = { new[] { 0.9f, 0.1f, 0.2f }, new[] { 0.4f, 0.8f, 0.6f }, new[] { 0.7f, 0.9f, 0.1f }, new[] { 0.2f, 0.3f, 0.4f } };
        MultiLabelMetrics m = MultiLabelMetrics.From(names, truth, scores, predicted);

        // a: predicted in rows 0 and 2, true in 0 and 1: precision ½, recall ½. b: predicted 1, 2, true 1, 2: 1 and 1. c: never true.
        Assert.AreEqual(0.5, m.PerLabel[0].Precision);
        Assert.AreEqual(0.5, m.PerLabel[0].Recall);
        Assert.AreEqual(1.0, m.PerLabel[1].F1);
        Assert.AreEqual(0L, m.PerLabel[2].Support);
        Assert.IsTrue(double.IsNaN(m.PerLabel[2].Recall));
        // Micro: 3 hits of 5 predicted and 4 true.
        Assert.AreEqual(3.0 / 5, m.MicroPrecision, 1e-15);
        Assert.AreEqual(3.0 / 4, m.MicroRecall, 1e-15);
        // Macro over a and b (c has no true row): F1 (0.5 + 1)/2.
        Assert.AreEqual(0.75, m.MacroF1, 1e-15);
        // a's scores from high to low: 0.9 (+), 0.7 (−), 0.4 (+), 0.2 (−): AP = ½·1 + ½·⅔.
        Assert.AreEqual(0.5 + 0.5 * 2 / 3.0, m.PerLabel[0].AveragePrecision, 1e-15);
        Assert.AreEqual((0.5 + 1.0 / 3 + 1.0) / 2, m.MeanAveragePrecision, 1e-15);
        Assert.AreEqual(2.0 / 4, m.SubsetAccuracy, 1e-15, "rows 0 and 3 are exact");
        Assert.AreEqual(3.0 / 12, m.HammingLoss, 1e-15);
    }

    [TestMethod]
    public void AveragePrecision_EqualsScikitLearnsOnItsDocumentedExample()
    {
        // sklearn.metrics.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333…
        var truth = new[] { false, false, true, true }.Select(t => new[] { t }).ToList();
        var scores = new[] { 0.1f, 0.4f, 0.35f, 0.8f }.Select(s => new[] { s }).ToList();
        Assert.AreEqual(5.0 / 6, MultiLabelMetrics.AveragePrecision(truth, scores, 0), 1e-15);
    }

    [TestMethod]
    public void MultiLabelClassifier_TrainsEvaluatesSavesAndScoresWithoutLibtorch()
    {
        var ml = new MLContext(seed: 1);
        IDataView trainRows = ml.Data.LoadFromEnumerable(Tagged(256, seed: 1));
        IDataView testRows = ml.Data.LoadFromEnumerable(Tagged(64, seed: 2));
        var reports = new List<EpochReport>();
        ITransformer keys = Keys(ml).Fit(trainRows);
        var options = new MultiLabelClassifierOptions
        {
            Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 4, BatchSize = 32, Seed = 1, TuneThresholds = true,
            ValidationSet = keys.Transform(testRows), Progress = new Training.SynchronousProgress<EpochReport>(reports.Add),
        };
        ITransformer model = keys.Append(ml.MultiLabelClassification().ImageClassifier(options).Fit(keys.Transform(trainRows)));

        IDataView scored = model.Transform(testRows);
        MultiLabelMetrics metrics = ml.MultiLabelClassification().Evaluate(scored);
        TestContext.WriteLine($"mAP {metrics.MeanAveragePrecision:F3}, micro F1 {metrics.MicroF1:F3}, subset accuracy {metrics.SubsetAccuracy:P1}; "
            + string.Join(", ", reports.Select(r => $"epoch {r.Epoch}: loss {r.ValidationLoss:F3}, recall {string.Join("/", r.ValidationClassRecall!.Select(v => v?.ToString("F2")))}")));
        Assert.AreEqual(2, metrics.PerLabel.Count);
        Assert.IsTrue(reports.All(r => r.ValidationClassRecall!.Count == 2 && r.ValidationMacroRecall is >= 0 and <= 1));
        // A training outcome: each tag is on in half the images, so ranking at random gives an average precision about ½; these
        // tags are plain stripes in a fixed half, and 0.8 leaves room for another CPU's rounding to take another path.
        Assert.IsTrue(metrics.MeanAveragePrecision >= 0.8, $"mean average precision {metrics.MeanAveragePrecision:F3}");

        // The predicted set is each probability against the model's thresholds, inside the ONNX graph.
        string path = ModelTestSupport.TempFile(TestContext, ".zip");
        ml.Model.Save(model, trainRows.Schema, path);
        ITransformer loaded = ml.Model.Load(path, out _);
        var engine = ml.Model.CreatePredictionEngine<TaggedRow, TagPrediction>(loaded);
        TagPrediction prediction = engine.Predict(Tagged(1, seed: 3)[0]);
        Assert.AreEqual(2, prediction.Score.Length);
        Assert.AreEqual(2, prediction.PredictedLabels.Length);
        float[][] scores = scored.GetColumn<float[]>("Score").ToArray();
        bool[][] flags = scored.GetColumn<bool[]>("PredictedLabels").ToArray();
        float[] thresholds = Enumerable.Range(0, 2).Select(k => Threshold(scores, flags, k)).ToArray();
        for (int r = 0; r < scores.Length; r++)
            for (int k = 0; k < 2; k++)
                Assert.AreEqual(scores[r][k] >= thresholds[k], flags[r][k], $"row {r}, label {k}");
    }

    // The smallest probability predicted as the label (the graph predicts from its threshold up); 2 when none is.
    private static float Threshold(float[][] scores, bool[][] flags, int label) =>
        scores.Where((s, r) => flags[r][label]).Select(s => s[label]).DefaultIfEmpty(2f).Min();

    [TestMethod]
    public void GivenThresholds_DecideEachLabelInTheExportedGraph()
    {
        var ml = new MLContext(seed: 1);
        IDataView rows = ml.Data.LoadFromEnumerable(Tagged(16, seed: 1));
        var options = new MultiLabelClassifierOptions
        {
            Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 8, Seed = 1, Thresholds = new[] { 0.3f, 0.7f },
        };
        IDataView scored = Keys(ml).Append(ml.MultiLabelClassification().ImageClassifier(options)).Fit(rows).Transform(rows);
        float[][] scores = scored.GetColumn<float[]>("Score").ToArray();
        bool[][] flags = scored.GetColumn<bool[]>("PredictedLabels").ToArray();
        for (int r = 0; r < scores.Length; r++)
        {
            Assert.AreEqual(scores[r][0] >= 0.3f, flags[r][0], $"row {r}, label 0 at {scores[r][0]}");
            Assert.AreEqual(scores[r][1] >= 0.7f, flags[r][1], $"row {r}, label 1 at {scores[r][1]}");
        }
    }

    [TestMethod]
    public void SingleLabelClassifier_GivenSeveralLabelsPerImage_PointsToTheMultiLabelClassifier()
    {
        var ml = new MLContext(seed: 1);
        IDataView rows = ml.Data.LoadFromEnumerable(Tagged(8, seed: 1));
        var options = new ImageClassifierOptions { Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 8, LabelColumnName = "Labels" };
        var error = Assert.ThrowsExactly<ArgumentException>(() => Keys(ml).Append(ml.Transforms.ResNetClassifier(options)).Fit(rows));
        StringAssert.Contains(error.Message, "ml.MultiLabelClassification()");
    }

    [TestMethod]
    [DataRow("scalar label", "The label column 'Labels' must exist and hold each image's labels as a vector")]
    [DataRow("tune without validation", "MultiLabelClassifierOptions.TuneThresholds")]
    [DataRow("threshold", "MultiLabelClassifierOptions.Threshold")]
    [DataRow("weights", "MultiLabelClassifierOptions.ClassWeights has 3 weights")]
    [DataRow("thresholds", "MultiLabelClassifierOptions.Thresholds has 1 thresholds")]
    [DataRow("thresholds and tuning", "MultiLabelClassifierOptions.Thresholds")]
    public void BadMultiLabelInputOrOptions_AreRefusedNamingThem(string setting, string expected)
    {
        var ml = new MLContext(seed: 1);
        IDataView rows = ml.Data.LoadFromEnumerable(Tagged(8, seed: 1));
        var options = new MultiLabelClassifierOptions { Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 8 };
        IEstimator<ITransformer> labels = Keys(ml);
        switch (setting)
        {
            case "scalar label": labels = ml.Transforms.Conversion.MapValueToKey("Labels", "Tags"); break;
            case "tune without validation": options.TuneThresholds = true; break;
            case "threshold": options.Threshold = 1; break;
            case "weights": options.ClassWeights = new[] { 1f, 1f, 1f }; break;
            case "thresholds": options.Thresholds = new[] { 0.3f }; break;
            case "thresholds and tuning": options.Thresholds = new[] { 0.3f, 0.6f }; options.TuneThresholds = true; options.ValidationFraction = 0.2; break;
        }

        var error = Assert.ThrowsExactly<ArgumentException>(() => labels.Append(ml.MultiLabelClassification().ImageClassifier(options)).Fit(rows));
        StringAssert.Contains(error.Message, expected);
    }
}
