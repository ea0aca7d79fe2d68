using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Tests.Training;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Detection;

[TestClass]
public sealed class ObjectDetectorEstimatorTests
{
    internal const int Size = 64;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>A row of the detection layout: pixels, class names (mapped to keys by the pipeline) and 4 box values per object.</summary>
    public sealed class BoxRow
    {
        [VectorType(3, Size, Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string[] Names { get; set; } = Array.Empty<string>();

        public float[] Boxes { get; set; } = Array.Empty<float>();
    }

    /// <summary>
    /// Up to two objects per image — a square ("square") and a disc ("disc"), of random colours, sizes and places — on a noisy
    /// background; some images hold neither. Each object's box is the tight box of its pixels, in continuous coordinates.
    /// </summary>
    internal static List<BoxRow> Shapes(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<BoxRow>();
        const int plane = Size * Size;
        for (int n = 0; n < count; n++)
        {
            var image = new float[3 * plane];
            float[] background = { random.Next(256), random.Next(256), random.Next(256) };
            for (int c = 0; c < 3; c++)
            for (int i = 0; i < plane; i++) image[c * plane + i] = Math.Clamp(background[c] + random.Next(-20, 21), 0, 255);
            var names = new List<string>();
            var boxes = new List<float>();
            void Paint(string name, int x0, int y0, int side, bool disc)
            {
                float[] colour = { random.Next(256), random.Next(256), random.Next(256) };
                if (colour.Zip(background, (a, b) => Math.Abs(a - b)).Sum() < 150) colour = colour.Select(v => 255 - v).ToArray();
                double r = side / 2.0, cx = x0 + r, cy = y0 + r;
                int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
                for (int y = y0; y < y0 + side; y++)
                for (int x = x0; x < x0 + side; x++)
                {
                    if (disc && (x + 0.5 - cx) * (x + 0.5 - cx) + (y + 0.5 - cy) * (y + 0.5 - cy) > r * r) continue;
                    for (int c = 0; c < 3; c++) image[c * plane + y * Size + x] = colour[c];
                    minX = Math.Min(minX, x);
                    minY = Math.Min(minY, y);
                    maxX = Math.Max(maxX, x);
                    maxY = Math.Max(maxY, y);
                }

                names.Add(name);
                boxes.AddRange(new float[] { minX, minY, maxX + 1, maxY + 1 });
            }

            int layout = random.Next(4);   // 0: none, 1: square, 2: disc, 3: both (left and right halves)
            bool squareLeft = random.Next(2) == 0;
            if (layout is 1 or 3)
            {
                int side = random.Next(12, 26), x = (layout == 3 ? (squareLeft ? 0 : Size / 2) : 0) + random.Next(0, (layout == 3 ? Size / 2 : Size) - side), y = random.Next(0, Size - side);
                Paint("square", x, y, side, disc: false);
            }

            if (layout is 2 or 3)
            {
                int side = random.Next(12, 26), x = (layout == 3 ? (squareLeft ? Size / 2 : 0) : 0) + random.Next(0, (layout == 3 ? Size / 2 : Size) - side), y = random.Next(0, Size - side);
                Paint("disc", x, y, side, disc: true);
            }

            rows.Add(new BoxRow { Image = image, Names = names.ToArray(), Boxes = boxes.ToArray() });
        }

        return rows;
    }

    /// <summary>The rows with their class names mapped to keys in a fixed order ("square" = key 1, "disc" = key 2).</summary>
    internal static IDataView Keyed(MLContext ml, IEnumerable<BoxRow> rows)
    {
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        IDataView keys = ml.Data.LoadFromEnumerable(new[] { new NameRow { Name = "square" }, new NameRow { Name = "disc" } });
        return ml.Transforms.Conversion.MapValueToKey("Labels", "Names", keyData: keys).Fit(data).Transform(data);
    }

    private sealed class NameRow
    {
        public string Name { get; set; } = string.Empty;
    }

    /// <summary>A small detector for tests: ResNet-18 backbone, 16-channel pyramid, one head convolution.</summary>
    internal static ObjectDetectorOptions TinyOptions(string architecture = "retinanet_resnet18_fpn") => new()
    {
        Architecture = architecture, ModelOptions = new DetectorOptions { FpnChannels = 16, HeadConvolutions = 1 },
        ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 8, Seed = 1, Workers = 1,
    };

    public sealed class Detected
    {
        public uint[] PredictedLabel { get; set; } = Array.Empty<uint>();

        public float[] Score { get; set; } = Array.Empty<float>();

        public float[] PredictedBoundingBoxes { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void ObjectDetector_FitsScoresEvaluatesSavesAndLoads_WithMlNetColumnsOfVariableLength()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = Keyed(ml, Shapes(24, seed: 1));
        List<BoxRow> testRows = Shapes(8, seed: 2);
        IDataView test = Keyed(ml, testRows);
        var reports = new List<EpochReport>();
        ObjectDetectorOptions options = TinyOptions();
        options.Epochs = 2;
        options.ValidationSet = test;
        options.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        // A low threshold, so that the barely trained network still gives detections to check.
        options.ScoreThreshold = 0.01;
        options.MaxDetections = 20;
        ObjectDetectorEstimator estimator = ml.Detection().ObjectDetector(options);
        var create = typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })!;
        SchemaShape declared = estimator.GetOutputSchema((SchemaShape)create.Invoke(null, new object[] { train.Schema })!);
        ITransformer model = estimator.Fit(train);
        Assert.AreEqual(2, reports.Count);
        Assert.IsTrue(reports.All(r => double.IsFinite(r.TrainingLoss) && r.ValidationLoss is double v && double.IsFinite(v)));

        IDataView scored = model.Transform(test);
        var labelType = (VectorDataViewType)scored.Schema["PredictedLabel"].Type;
        Assert.IsInstanceOfType(labelType.ItemType, typeof(KeyDataViewType));
        Assert.AreEqual(2UL, ((KeyDataViewType)labelType.ItemType).Count);
        Assert.IsFalse(labelType.IsKnownSize, "as many labels as detections");
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        scored.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
        CollectionAssert.AreEqual(new[] { "square", "disc" }, keyValues.DenseValues().Select(v => v.ToString()).ToArray());
        foreach (string column in new[] { "Score", "PredictedBoundingBoxes" })
        {
            var type = (VectorDataViewType)scored.Schema[column].Type;
            Assert.AreEqual(NumberDataViewType.Single, type.ItemType, column);
            Assert.IsFalse(type.IsKnownSize, column);
        }

        foreach (string column in new[] { "PredictedLabel", "Score", "PredictedBoundingBoxes" })
        {
            SchemaShape.Column shape = declared.Single(c => c.Name == column);
            Assert.AreEqual(((VectorDataViewType)scored.Schema[column].Type).ItemType.RawType, shape.ItemType.RawType, column);
        }

        Assert.IsFalse(scored.Schema.Any(c => c.Name.StartsWith("__ResidualML", StringComparison.Ordinal)), "temporary columns are dropped");
        var rows = ml.Data.CreateEnumerable<Detected>(scored, reuseRowObject: false).ToList();
        Assert.AreEqual(testRows.Count, rows.Count);
        Assert.IsTrue(rows.Sum(r => r.Score.Length) > 0, "the threshold of 0.01 lets detections through");
        foreach (Detected row in rows)
        {
            Assert.AreEqual(row.Score.Length, row.PredictedLabel.Length);
            Assert.AreEqual(4 * row.Score.Length, row.PredictedBoundingBoxes.Length);
            Assert.IsTrue(row.Score.Length <= 20, "MaxDetections");
            for (int i = 1; i < row.Score.Length; i++) Assert.IsTrue(row.Score[i - 1] >= row.Score[i], "best first");
            Assert.IsTrue(row.Score.All(s => s > 0.01f && s <= 1));
            Assert.IsTrue(row.PredictedLabel.All(k => k is 1 or 2));
            for (int i = 0; i < row.Score.Length; i++)
            {
                float x1 = row.PredictedBoundingBoxes[4 * i], y1 = row.PredictedBoundingBoxes[4 * i + 1], x2 = row.PredictedBoundingBoxes[4 * i + 2], y2 = row.PredictedBoundingBoxes[4 * i + 3];
                Assert.IsTrue(0 <= x1 && x1 <= x2 && x2 <= Size && 0 <= y1 && y1 <= y2 && y2 <= Size, $"box {x1}, {y1}, {x2}, {y2} inside the image");
            }
        }

        DetectionMetrics metrics = ml.Detection().Evaluate(scored);
        Assert.IsTrue(metrics.MeanAveragePrecision >= 0 && metrics.MeanAveragePrecision <= metrics.MeanAveragePrecision50 && metrics.MeanAveragePrecision50 <= 1);

        string path = ModelTestSupport.TempFile(TestContext, "-detector.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 3);
        ITransformer loaded = fresh.Model.Load(path, out _);
        var again = fresh.Data.CreateEnumerable<Detected>(loaded.Transform(Keyed(fresh, testRows)), reuseRowObject: false).ToList();
        var engine = fresh.Model.CreatePredictionEngine<BoxRow, Detected>(loaded);
        for (int i = 0; i < rows.Count; i++)
        {
            CollectionAssert.AreEqual(rows[i].PredictedLabel, again[i].PredictedLabel, $"row {i}");
            CollectionAssert.AreEqual(rows[i].Score, again[i].Score, $"row {i}");
            CollectionAssert.AreEqual(rows[i].PredictedBoundingBoxes, again[i].PredictedBoundingBoxes, $"row {i}");
            Detected one = engine.Predict(testRows[i]);
            CollectionAssert.AreEqual(rows[i].Score, one.Score, $"PredictionEngine, row {i}");
            CollectionAssert.AreEqual(rows[i].PredictedBoundingBoxes, one.PredictedBoundingBoxes, $"PredictionEngine, row {i}");
        }
    }

    [TestMethod]
    public void ObjectDetector_LearnsShapesToAUsefulMeanAveragePrecisionOnHeldOutImages()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = Keyed(ml, Shapes(192, seed: 11));
        IDataView test = Keyed(ml, Shapes(48, seed: 12));
        var reports = new List<EpochReport>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // FCOS: at 64×64 the objects (12–25 px) are smaller than RetinaNet's smallest anchors (32 px), which it then matches by
        // the low-quality rule alone; FCOS's points have no size. Measured: mAP50 0.585 on these 48 test images (0.563 on the
        // training images: far from overfitting), 4–5 s an epoch on 2 idle cores.
        ObjectDetectorOptions options = TinyOptions("fcos_resnet18_fpn");
        options.ModelOptions = new DetectorOptions { FpnChannels = 32, HeadConvolutions = 2 };
        options.Epochs = 12;
        options.BatchSize = 16;
        options.LearningRate = 2e-3;
        options.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        ITransformer model = ml.Detection().ObjectDetector(options).Fit(train);
        DetectionMetrics metrics = ml.Detection().Evaluate(model.Transform(test));
        TestContext.WriteLine($"mAP {metrics.MeanAveragePrecision:F3}, mAP50 {metrics.MeanAveragePrecision50:F3}, mAP75 {metrics.MeanAveragePrecision75:F3} after {clock.Elapsed.TotalSeconds:F0} s; "
            + $"losses {string.Join(", ", reports.Select(r => r.TrainingLoss.ToString("F3")))}");
        Assert.IsTrue(metrics.MeanAveragePrecision50 >= 0.35, metrics.ToString());
    }

    [TestMethod]
    public void ObjectDetector_LoadsAPretrainedBackbone_AndKeepsItWhileFrozen()
    {
        var ml = new MLContext(seed: 1);
        string backboneWeights = ModelTestSupport.TempFile(TestContext, "-resnet18.safetensors");
        using (var classifier = ResidualModels.Create("resnet18", 1000, options: new ResNetOptions { Seed = 5 }))
            Microsoft.ML.Residual.Weights.StateDict.Save(classifier, backboneWeights);
        ObjectDetectorOptions options = TinyOptions();
        options.Epochs = 2;
        options.PretrainedBackboneWeightsPath = backboneWeights;
        options.FreezeBackboneEpochs = 1;
        options.BackboneLearningRateFactor = 1e-12;
        IDataView train = Keyed(ml, Shapes(16, seed: 7));
        ITransformer model = ml.Detection().ObjectDetector(options).Fit(train);
        string saved = ModelTestSupport.TempFile(TestContext, "-detector.zip");
        ml.Model.Save(model, train.Schema, saved);
        using var trained = Microsoft.ML.Residual.Classification.SavedModelWeights.Read(saved, "test");
        using var original = Microsoft.ML.Residual.Weights.StateDict.Read(backboneWeights);
        // AdamW at 1e-3 × 1e-12 (weight decay 1e-4): 2 epochs of 16 images in batches of 8, at most 4 steps.
        ModelTestSupport.AssertLearnedWeightsKept(original, trained, "comes from the classifier's weights",
            OptimizerKind.AdamW, steps: 4, rate: 1e-3 * 1e-12, weightDecay: 1e-4, actualPrefix: "backbone.body.");

        options.PretrainedBackboneWeightsPath = ModelTestSupport.TempFile(TestContext, "-missing.safetensors");
        var missing = Assert.ThrowsExactly<ArgumentException>(() => ml.Detection().ObjectDetector(options).Fit(train));
        StringAssert.Contains(missing.Message, "ObjectDetectorOptions.PretrainedBackboneWeightsPath");
    }

    [TestMethod]
    public void ObjectDetector_RefusesAValidationSetWhoseKeysNameOtherClasses()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = Keyed(ml, Shapes(8, seed: 1));
        // The validation rows mapped by their own MapValueToKey: "disc" and "square" in the order met, not the training's.
        IDataView raw = ml.Data.LoadFromEnumerable(Shapes(8, seed: 2).Select(r => { r.Names = r.Names.Select(n => n == "square" ? "box" : n).ToArray(); return r; }));
        IDataView validation = ml.Transforms.Conversion.MapValueToKey("Labels", "Names").Fit(raw).Transform(raw);
        ObjectDetectorOptions options = TinyOptions();
        options.ValidationSet = validation;
        var refused = Assert.ThrowsExactly<ArgumentException>(() => ml.Detection().ObjectDetector(options).Fit(train));
        StringAssert.Contains(refused.Message, "ValidationSet");
        StringAssert.Contains(refused.Message, "square, disc");
    }

    public sealed class SizedRow
    {
        [VectorType(3, Size, Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string[] Names { get; set; } = Array.Empty<string>();

        public float[] Boxes { get; set; } = Array.Empty<float>();

        public float Width { get; set; }

        public float Height { get; set; }
    }

    [TestMethod]
    public void ObjectDetector_WithImageSizeColumns_GivesBoxesInTheOriginalImagesPixels()
    {
        // The same pixels, said to come from 3× wider and 2× taller originals: the boxes are in the originals' pixels, the scores are those of
        // the unscaled model (the network sees the same pixels and the same scaled-down boxes).
        var ml = new MLContext(seed: 1);
        List<BoxRow> rows = Shapes(16, seed: 4);
        List<SizedRow> sized = rows.Select(r => new SizedRow
        {
            Image = r.Image, Names = r.Names, Width = 3 * Size, Height = 2 * Size,
            Boxes = r.Boxes.Select((v, i) => i % 2 == 0 ? 3 * v : 2 * v).ToArray(),
        }).ToList();
        IDataView Keyed2(IEnumerable<SizedRow> data)
        {
            IDataView view = ml.Data.LoadFromEnumerable(data);
            IDataView keys = ml.Data.LoadFromEnumerable(new[] { new NameRow { Name = "square" }, new NameRow { Name = "disc" } });
            return ml.Transforms.Conversion.MapValueToKey("Labels", "Names", keyData: keys).Fit(view).Transform(view);
        }

        ObjectDetectorOptions plain = TinyOptions();
        plain.ScoreThreshold = 0.01;
        ObjectDetectorOptions withSizes = TinyOptions();
        withSizes.ScoreThreshold = 0.01;
        withSizes.ImageWidthColumnName = "Width";
        withSizes.ImageHeightColumnName = "Height";
        var expected = ml.Data.CreateEnumerable<Detected>(ml.Detection().ObjectDetector(plain).Fit(Keyed(ml, rows)).Transform(Keyed(ml, rows)), false).ToList();
        var actual = ml.Data.CreateEnumerable<Detected>(ml.Detection().ObjectDetector(withSizes).Fit(Keyed2(sized)).Transform(Keyed2(sized)), false).ToList();
        Assert.IsTrue(expected.Sum(r => r.Score.Length) > 0);
        for (int i = 0; i < rows.Count; i++)
        {
            CollectionAssert.AreEqual(expected[i].Score, actual[i].Score, $"row {i}: the same training on the same pixels and scaled boxes");
            float[] scaledBack = expected[i].PredictedBoundingBoxes.Select((v, j) => j % 2 == 0 ? 3 * v : 2 * v).ToArray();
            for (int j = 0; j < scaledBack.Length; j++)
                Assert.AreEqual(scaledBack[j], actual[i].PredictedBoundingBoxes[j], 1e-4 * Math.Max(1, Math.Abs(scaledBack[j])), $"row {i}, value {j}");
        }
    }

    [TestMethod]
    public void ObjectDetector_RefusesBadColumnsAndOptions_NamingThem()
    {
        var ml = new MLContext(seed: 1);
        IDataView unkeyed = ml.Data.LoadFromEnumerable(Shapes(4, seed: 5));
        ObjectDetectorOptions textLabels = TinyOptions();
        textLabels.LabelColumnName = "Names";
        var notKeys = Assert.ThrowsExactly<ArgumentException>(() => ml.Detection().ObjectDetector(textLabels).Fit(unkeyed));
        StringAssert.Contains(notKeys.Message, "'Names'");
        StringAssert.Contains(notKeys.Message, "MapValueToKey");

        var noBoxes = Assert.ThrowsExactly<ArgumentException>(() =>
        {
            ObjectDetectorOptions options = TinyOptions();
            options.BoxColumnName = "Rectangles";
            ml.Detection().ObjectDetector(options).Fit(Keyed(ml, Shapes(4, seed: 5)));
        });
        StringAssert.Contains(noBoxes.Message, "'Rectangles'");

        List<BoxRow> broken = Shapes(4, seed: 6);
        broken[2].Names = new[] { "square" };
        broken[2].Boxes = new float[] { 1, 2, 3 };
        var mismatch = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Detection().ObjectDetector(TinyOptions()).Fit(Keyed(ml, broken)));
        StringAssert.Contains(mismatch.Message, "Row 2");
        StringAssert.Contains(mismatch.Message, "'Boxes'");

        List<BoxRow> inverted = Shapes(4, seed: 6);
        inverted[1].Names = new[] { "disc" };
        inverted[1].Boxes = new float[] { 10, 10, 5, 20 };
        var degenerate = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Detection().ObjectDetector(TinyOptions()).Fit(Keyed(ml, inverted)));
        StringAssert.Contains(degenerate.Message, "Row 1");
        StringAssert.Contains(degenerate.Message, "x1 < x2");

        foreach (Action<ObjectDetectorOptions> set in new Action<ObjectDetectorOptions>[]
        {
            o => o.MixupAlpha = 0.2, o => o.LabelSmoothing = 0.1, o => o.Scoring.Precision = Microsoft.ML.Residual.Onnx.OnnxPrecision.Int8,
            o => o.ImageWidthColumnName = "Width", o => o.Architecture = "resnet18",
            o => o.GradientFlowProgress = new SynchronousProgress<Microsoft.ML.Residual.Diagnostics.GradientFlowEpoch>(_ => { }),
        })
        {
            ObjectDetectorOptions options = TinyOptions();
            set(options);
            var refused = Assert.ThrowsExactly<ArgumentException>(() => ml.Detection().ObjectDetector(options));
            StringAssert.Contains(refused.Message, "ObjectDetectorOptions.");
        }
    }
}
