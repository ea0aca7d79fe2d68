using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static Microsoft.ML.Residual.Tests.Data.DataTestSupport;

namespace Microsoft.ML.Residual.Tests.Segmentation;

public sealed class UIntMaskRow
{
    public uint[] Mask { get; set; } = Array.Empty<uint>();
    public uint[] PredictedMask { get; set; } = Array.Empty<uint>();
}

public sealed class IntMaskRow
{
    public int[] Mask { get; set; } = Array.Empty<int>();
    public uint[] PredictedMask { get; set; } = Array.Empty<uint>();
}

public sealed class FloatMaskRow
{
    public float[] Mask { get; set; } = Array.Empty<float>();
    public uint[] PredictedMask { get; set; } = Array.Empty<uint>();
}

public sealed class PathMaskRow
{
    public string MaskPath { get; set; } = "";
    public uint[] PredictedMask { get; set; } = Array.Empty<uint>();
}

public sealed class TextRow
{
    public string Mask { get; set; } = "";
    public uint[] PredictedMask { get; set; } = Array.Empty<uint>();
}

[TestClass]
public sealed class SegmentationEvaluateTests
{
    private const int H = 2, W = 3;

    public TestContext TestContext { get; set; } = null!;

    private static void AssertMentions(Exception error, params string[] parts)
    {
        foreach (var part in parts)
            StringAssert.Contains(error.Message, part, $"the message should mention '{part}'");
    }

    /// <summary>Rows whose "Mask" has <paramref name="maskType"/> (null: the default, a variable-size vector) and a UInt32 [H, W] "PredictedMask".</summary>
    private static IDataView Load<T>(MLContext ml, IEnumerable<T> rows, DataViewType? maskType = null) where T : class
    {
        var schema = SchemaDefinition.Create(typeof(T));
        schema["PredictedMask"].ColumnType = new VectorDataViewType(NumberDataViewType.UInt32, H, W);
        if (maskType is not null) schema["Mask"].ColumnType = maskType;
        return ml.Data.LoadFromEnumerable(rows, schema);
    }

    private static void AssertMatrix(long[,] expected, long[,] actual)
    {
        Assert.AreEqual(expected.GetLength(0), actual.GetLength(0), "classes");
        for (int t = 0; t < expected.GetLength(0); t++)
            for (int p = 0; p < expected.GetLength(1); p++)
                Assert.AreEqual(expected[t, p], actual[t, p], $"[true {t}, predicted {p}]");
    }

    [TestMethod]
    public void UInt32VectorsGiveTheHandCountedConfusionMatrix()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[]
        {
            new UIntMaskRow { Mask = new uint[] { 0, 0, 1, 1, 2, 2 }, PredictedMask = new uint[] { 0, 1, 1, 1, 2, 0 } },
            new UIntMaskRow { Mask = new uint[] { 2, 2, 2, 0, 0, 1 }, PredictedMask = new uint[] { 2, 2, 1, 0, 0, 1 } },
        }, new VectorDataViewType(NumberDataViewType.UInt32, H, W));

        var metrics = ml.Segmentation().Evaluate(data);

        var expected = new long[,] { { 3, 1, 0 }, { 0, 3, 0 }, { 1, 1, 3 } };
        AssertMatrix(expected, metrics.ConfusionMatrix);
        // Each rate is one correctly rounded division of the same integers as the literal's: equal bit for bit.
        Assert.AreEqual(9.0 / 12, metrics.PixelAccuracy);
        Assert.AreEqual(3.0 / 5, metrics.PerClassIoU[0]);
        Assert.AreEqual(0L, metrics.IgnoredPixels);
    }

    [TestMethod]
    public void IgnoreIndexExcludesPixelsAndNumClassesFixesTheMatrixSize()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[]
        {
            new UIntMaskRow { Mask = new uint[] { 0, 255, 1, 1, 255, 0 }, PredictedMask = new uint[] { 0, 1, 1, 0, 1, 0 } },
        });

        var metrics = ml.Segmentation().Evaluate(data, numClasses: 4, ignoreIndex: 255);

        Assert.AreEqual(4, metrics.NumClasses);
        Assert.AreEqual(2L, metrics.IgnoredPixels);
        AssertMatrix(new long[,] { { 2, 0, 0, 0 }, { 1, 1, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 } }, metrics.ConfusionMatrix);
        Assert.IsTrue(double.IsNaN(metrics.PerClassIoU[3]));
        // The same divisions, summed in class order and divided by the classes present: the same operations as here.
        Assert.AreEqual((2.0 / 3 + 1.0 / 2) / 2, metrics.MeanIoU);
    }

    [TestMethod]
    public void MaskImagesLargerThanThePredictionAreResizedByNearestNeighbour()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        // 4×6 mask images for a 2×3 prediction: output pixel (x, y) must read source pixel (2x + 1, 2y + 1), the pixel holding
        // its centre. Every other source pixel is class 3, so any other sampling (or blending) shows up as class 3 or a mixed value.
        var truths = new[] { new[] { 0, 1, 2, 2, 1, 0 }, new[] { 1, 1, 0, 0, 2, 2 } };
        var rows = new List<PathMaskRow>();
        for (int r = 0; r < truths.Length; r++)
        {
            var gray = new byte[4 * 6];
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 6; sx++)
                    gray[sy * 6 + sx] = (byte)(sx % 2 == 1 && sy % 2 == 1 ? truths[r][sy / 2 * W + sx / 2] : 3);
            string name = $"mask{r}.png";
            if (r == 0)
                WriteGrayPng(Path.Combine(folder, name), gray, 4, 6);
            else
                WriteRgbPng(Path.Combine(folder, name), gray.Concat(gray).Concat(gray).Select(v => (float)v).ToArray(), 4, 6);
            rows.Add(new PathMaskRow { MaskPath = name, PredictedMask = truths[r].Select(v => (uint)v).ToArray() });
        }

        var data = Load(ml, rows);
        data = ml.Transforms.LoadImages("Mask", folder, "MaskPath").Fit(data).Transform(data);

        var metrics = ml.Segmentation().Evaluate(data);

        Assert.AreEqual(3, metrics.NumClasses, "class 3 must never be sampled");
        Assert.AreEqual(1.0, metrics.PixelAccuracy);
        AssertMatrix(new long[,] { { 4, 0, 0 }, { 0, 4, 0 }, { 0, 0, 4 } }, metrics.ConfusionMatrix);
    }

    [TestMethod]
    public void NearestSourceUsesPixelCentres()
    {
        // Downscale 6 → 3: centres 0.5, 2.5, 4.5 of 6 fall in source pixels 1, 3, 5. Upscale 2 → 5: centres fall in 0,0,1,1,1.
        CollectionAssert.AreEqual(new[] { 1, 3, 5 }, Enumerable.Range(0, 3).Select(x => Residual.Data.MaskColumn.NearestSource(x, 3, 6)).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 1, 1, 1 }, Enumerable.Range(0, 5).Select(x => Residual.Data.MaskColumn.NearestSource(x, 5, 2)).ToArray());
    }

    [TestMethod]
    public void KeyTypedMaskMapsKeyKToClassKMinusOneAndIgnoresKeyZero()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[]
        {
            new UIntMaskRow { Mask = new uint[] { 1, 0, 2, 3, 0, 1 }, PredictedMask = new uint[] { 0, 2, 1, 2, 0, 1 } },
        }, new VectorDataViewType(new KeyDataViewType(typeof(uint), 3), H, W));

        var metrics = ml.Segmentation().Evaluate(data);

        Assert.AreEqual(2L, metrics.IgnoredPixels);
        AssertMatrix(new long[,] { { 1, 1, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }, metrics.ConfusionMatrix);
    }

    [TestMethod]
    public void NegativeIntegersAreIgnoredOnlyThroughTheIgnoreIndex()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[] { new IntMaskRow { Mask = new[] { 0, -1, 1, 1, 0, 0 }, PredictedMask = new uint[] { 0, 0, 1, 1, 0, 0 } } });

        var metrics = ml.Segmentation().Evaluate(data, ignoreIndex: -1);
        Assert.AreEqual(1L, metrics.IgnoredPixels);
        Assert.AreEqual(1.0, metrics.PixelAccuracy);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "'Mask'", "row 0", "x 1, y 0", "-1", "negative", "ignore index");
    }

    [TestMethod]
    public void WholeNumberSinglesAreClassesAndOthersAreRejected()
    {
        var ml = new MLContext(1);
        var good = Load(ml, new[] { new FloatMaskRow { Mask = new[] { 0f, 1f, 2f, 2f, 1f, 0f }, PredictedMask = new uint[] { 0, 1, 2, 2, 1, 0 } } });
        Assert.AreEqual(1.0, ml.Segmentation().Evaluate(good).PixelAccuracy);

        var fraction = Load(ml, new[] { new FloatMaskRow { Mask = new[] { 0f, 1f, 2f, 2f, 1.5f, 0f }, PredictedMask = new uint[6] } });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(fraction));
        AssertMentions(error, "'Mask'", "row 0", "x 1, y 1", "1.5", "whole number");

        var negative = Load(ml, new[] { new FloatMaskRow { Mask = new[] { 0f, -2f, 0f, 0f, 0f, 0f }, PredictedMask = new uint[6] } });
        error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(negative));
        AssertMentions(error, "'Mask'", "row 0", "x 1, y 0", "-2", "negative");
    }

    [TestMethod]
    public void MaskImageWithDisagreeingChannelsNamesColumnRowPixelAndValues()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        var chw = new float[3 * H * W];
        chw[H * W + 4] = 1; // G of pixel (x 1, y 1) differs from R and B
        WriteRgbPng(Path.Combine(folder, "ok.png"), new float[3 * H * W], H, W);
        WriteRgbPng(Path.Combine(folder, "bad.png"), chw, H, W);
        var data = Load(ml, new[] { new PathMaskRow { MaskPath = "ok.png", PredictedMask = new uint[6] }, new PathMaskRow { MaskPath = "bad.png", PredictedMask = new uint[6] } });
        data = ml.Transforms.LoadImages("Mask", folder, "MaskPath").Fit(data).Transform(data);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "'Mask'", "row 1", "x 1, y 1", "R=0, G=1, B=0", "more than one channel that disagrees");
    }

    [TestMethod]
    public void UnreadableMaskImageNamesColumnAndRow()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        File.WriteAllText(Path.Combine(folder, "broken.png"), "not a png");
        var data = Load(ml, new[] { new PathMaskRow { MaskPath = "broken.png", PredictedMask = new uint[6] } });
        data = ml.Transforms.LoadImages("Mask", folder, "MaskPath").Fit(data).Transform(data);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "'Mask'", "row 0");
    }

    [TestMethod]
    public void WrongMaskLengthNamesRowExpectedAndFoundSizes()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[]
        {
            new UIntMaskRow { Mask = new uint[6], PredictedMask = new uint[6] },
            new UIntMaskRow { Mask = new uint[5], PredictedMask = new uint[6] },
        });

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "'Mask'", "row 1", "expected 6", "found 5", "2×3");
    }

    [TestMethod]
    public void KnownSizeMaskOfTheWrongSizeIsRejectedFromTheSchema()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[] { new UIntMaskRow { Mask = new uint[8], PredictedMask = new uint[6] } }, new VectorDataViewType(NumberDataViewType.UInt32, 8));

        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "'Mask'", "8 values", "2×3", "6");
    }

    [TestMethod]
    public void ClassAtOrAboveNumClassesNamesColumnRowAndValue()
    {
        var ml = new MLContext(1);
        var truthTooHigh = Load(ml, new[]
        {
            new UIntMaskRow { Mask = new uint[] { 0, 1, 2, 0, 1, 2 }, PredictedMask = new uint[] { 0, 1, 2, 0, 1, 2 } },
            new UIntMaskRow { Mask = new uint[] { 0, 0, 0, 0, 0, 3 }, PredictedMask = new uint[6] },
        });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(truthTooHigh, numClasses: 3));
        AssertMentions(error, "'Mask'", "row 1", "x 2, y 1", "class 3", "numClasses 3");

        var predictionTooHigh = Load(ml, new[] { new UIntMaskRow { Mask = new uint[6], PredictedMask = new uint[] { 0, 0, 5, 0, 0, 0 } } });
        error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(predictionTooHigh, numClasses: 3));
        AssertMentions(error, "'PredictedMask'", "row 0", "x 2, y 0", "class 5", "numClasses 3");
    }

    [TestMethod]
    public void MissingColumnsAreNamedAndTheColumnsListed()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[] { new UIntMaskRow { Mask = new uint[6], PredictedMask = new uint[6] } });

        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Segmentation().Evaluate(data, labelColumnName: "Truth"));
        AssertMentions(error, "'Truth'", "'Mask'", "'PredictedMask'");
        error = Assert.ThrowsExactly<ArgumentException>(() => ml.Segmentation().Evaluate(data, predictedColumnName: "Out"));
        AssertMentions(error, "'Out'", "'Mask'", "'PredictedMask'");
    }

    [TestMethod]
    public void EmptyDataIsAClearError()
    {
        var ml = new MLContext(1);
        var data = Load(ml, Array.Empty<UIntMaskRow>());

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "no rows", "'Mask'");
    }

    [TestMethod]
    public void ColumnThatCannotHoldAMaskSaysWhatIsSupported()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[] { new TextRow { Mask = "x", PredictedMask = new uint[6] } });

        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Segmentation().Evaluate(data));
        AssertMentions(error, "'Mask'", "image", "UInt32", "key");
    }

    [TestMethod]
    public void EveryPixelIgnoredWithoutNumClassesIsAClearError()
    {
        var ml = new MLContext(1);
        var data = Load(ml, new[] { new UIntMaskRow { Mask = Enumerable.Repeat(255u, 6).ToArray(), PredictedMask = new uint[6] } });

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Segmentation().Evaluate(data, ignoreIndex: 255));
        AssertMentions(error, "ignored", "numClasses");
    }
}
