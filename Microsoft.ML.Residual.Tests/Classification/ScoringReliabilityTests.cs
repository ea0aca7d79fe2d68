using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>
/// A trained classifier scoring all day: on many threads at once and over many rows, with the same answers and flat memory,
/// and with rows it cannot make sense of.
/// </summary>
[TestClass]
public sealed class ScoringReliabilityTests
{
    private const int Size = 8;
    private const int Threads = 8;

    private static MLContext ml = null!;
    private static ITransformer model = null!;
    private static List<Row> images = null!;

    public sealed class Row
    {
        [VectorType(3 * Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = string.Empty;
    }

    public sealed class Prediction
    {
        public uint PredictedLabel { get; set; }

        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private static Row Image(Random random, int label) => new()
    {
        // Bright or dark noise: two classes a tiny network tells apart.
        Image = Enumerable.Range(0, 3 * Size * Size).Select(_ => (float)Math.Clamp(random.Next(256) / 2 + (label == 0 ? 0 : 128), 0, 255)).ToArray(),
        Label = label == 0 ? "dark" : "bright",
    };

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        ml = new MLContext(seed: 1);
        var random = new Random(1);
        IDataView train = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 48).Select(i => Image(random, i % 2)).ToList());
        model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
        {
            Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16, Seed = 1, ValidationFraction = 0,
        })).Fit(train);
        var scoring = new Random(2);
        images = Enumerable.Range(0, 96).Select(i => Image(scoring, i % 2)).ToList();
    }

    [TestMethod]
    public void EightThreads_EachWithItsOwnPredictionEngine_PredictExactlyAsOneThread()
    {
        using var single = ml.Model.CreatePredictionEngine<Row, Prediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        Prediction[] expected = images.Select(i => Copy(single.Predict(i))).ToArray();

        var results = new Prediction[Threads][];
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            // ML.NET's engines dispose the model they score by default (and with it the ONNX Runtime session every other
            // engine of the model uses: a later Predict anywhere then crashes the process). Engines that share a model
            // must not own it; then each thread disposes its own while the others still predict.
            using var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
            var mine = new Prediction[images.Count];
            // Each thread walks the images from its own starting point, three times over.
            for (int round = 0; round < 3; round++)
                for (int k = 0; k < images.Count; k++)
                {
                    int i = (k + t * 11) % images.Count;
                    mine[i] = Copy(engine.Predict(images[i]));
                }

            results[t] = mine;
        });

        for (int t = 0; t < Threads; t++)
            for (int i = 0; i < images.Count; i++)
            {
                Assert.AreEqual(expected[i].PredictedLabel, results[t][i].PredictedLabel, $"thread {t}, image {i}");
                CollectionAssert.AreEqual(expected[i].Score, results[t][i].Score, $"thread {t}, image {i}");
            }
    }

    [TestMethod]
    public void OneSharedTransformer_TransformingOnEightThreads_ScoresExactlyAsOneThread()
    {
        IDataView data = ml.Data.LoadFromEnumerable(images);
        float[][] expected = model.Transform(data).GetColumn<float[]>("Score").ToArray();

        var results = new float[Threads][][];
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
            results[t] = model.Transform(ml.Data.LoadFromEnumerable(images)).GetColumn<float[]>("Score").ToArray());

        for (int t = 0; t < Threads; t++)
        {
            Assert.AreEqual(expected.Length, results[t].Length);
            for (int i = 0; i < expected.Length; i++) CollectionAssert.AreEqual(expected[i], results[t][i], $"thread {t}, row {i}");
        }
    }

    [TestMethod]
    public void HundredThousandRows_ScoreWithFlatMemory()
    {
        const int Rows = 100_000;
        IEnumerable<Row> Generated()
        {
            var random = new Random(3);
            for (int i = 0; i < Rows; i++) yield return Image(random, i % 2);
        }

        // The rows are made as the cursor asks for them, so only the scoring path can hold memory.
        IDataView scored = model.Transform(ml.Data.LoadFromEnumerable(Generated()));
        DataViewSchema.Column score = scored.Schema["Score"];
        (double Resident, double Managed) warm = default;
        long seen = 0, finite = 0;
        using (DataViewRowCursor cursor = scored.GetRowCursor(new[] { score }))
        {
            ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(score);
            VBuffer<float> value = default;
            while (cursor.MoveNext())
            {
                getter(ref value);
                seen++;
                if (value.DenseValues().All(float.IsFinite)) finite++;
                if (seen == Rows / 5) warm = Memory();
            }
        }

        (double Resident, double Managed) end = Memory();
        Assert.AreEqual(Rows, seen);
        Assert.AreEqual(Rows, finite, "every score is a number");
        // After the first 20,000 rows (allocator pools and caches warm), 80,000 more must not grow memory by more than a
        // few MB: a leak of even 100 bytes per row would show as 8 MB.
        Assert.IsLessThan(4.0, end.Managed - warm.Managed, $"managed heap {warm.Managed:F1} MB at 20,000 rows, {end.Managed:F1} MB at 100,000");
        Assert.IsLessThan(24.0, end.Resident - warm.Resident, $"resident memory {warm.Resident:F1} MB at 20,000 rows, {end.Resident:F1} MB at 100,000");
    }

    [TestMethod]
    public void NonFinitePixels_GiveNaNScoresAndAMissingPredictedLabel_NeverAClass()
    {
        using var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            Row row = Image(new Random(4), 1);
            row.Image[17] = bad;
            Prediction prediction = engine.Predict(row);
            Assert.IsTrue(prediction.Score.All(float.IsNaN), $"{bad}: scores {string.Join(", ", prediction.Score)}");
            Assert.AreEqual(0u, prediction.PredictedLabel, $"{bad}: the missing key, not a class");
        }
    }

    [TestMethod]
    public void LabelNeverSeenInTraining_IsScoredLikeAnyImage_AndMlNetsEvaluateLeavesItsRowOut()
    {
        var known = images.Take(8).ToList();
        Row stranger = Image(new Random(5), 1);
        stranger.Label = "zebra";
        IDataView scored = model.Transform(ml.Data.LoadFromEnumerable(known.Append(stranger).ToList()));

        uint[] keys = scored.GetColumn<uint>("Label").ToArray();
        Assert.AreEqual(0u, keys[^1], "MapValueToKey maps a label it has not seen to the missing key");
        Assert.IsTrue(scored.GetColumn<float[]>("Score").Last().All(float.IsFinite), "the image is scored all the same");
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.AreEqual(known.Count, (int)metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()), "ML.NET counts only rows with known labels");
    }

    [TestMethod]
    public void LabelNeverSeenInTraining_InTheValidationSet_StopsFitNamingTheColumnAndRow()
    {
        var local = new MLContext(seed: 1);
        var random = new Random(6);
        IDataView train = local.Data.LoadFromEnumerable(Enumerable.Range(0, 16).Select(i => Image(random, i % 2)).ToList());
        var validationRows = Enumerable.Range(0, 4).Select(i => Image(random, i % 2)).ToList();
        validationRows[2].Label = "zebra";
        var labels = local.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => local.Transforms.ResNetClassifier(new ImageClassifierOptions
        {
            Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 8, Seed = 1,
            ValidationSet = labels.Transform(local.Data.LoadFromEnumerable(validationRows)),
        }).Fit(labels.Transform(train)));
        StringAssert.Contains(error.Message, "'Label'");
        StringAssert.Contains(error.Message, "row 2");
        StringAssert.Contains(error.Message, "not in the key's dictionary");
    }

    private static Prediction Copy(Prediction p) => new() { PredictedLabel = p.PredictedLabel, Score = p.Score.ToArray() };

    private static (double Resident, double Managed) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using Process self = Process.GetCurrentProcess();
        return (self.WorkingSet64 / 1048576.0, GC.GetTotalMemory(false) / 1048576.0);
    }
}
