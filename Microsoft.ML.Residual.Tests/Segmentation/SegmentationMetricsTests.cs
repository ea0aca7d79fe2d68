using System;
using System.Linq;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Segmentation;

[TestClass]
public sealed class SegmentationMetricsTests
{

    // [truth, predicted]. Class 0: TP 5, FN 1, FP 2. Class 1: TP 3, FN 3 (2 → 0, 1 → 3), FP 1.
    // Class 2: absent from truth and prediction. Class 3: only predicted (once).
    private static readonly long[,] Matrix =
    {
        { 5, 1, 0, 0 },
        { 2, 3, 0, 1 },
        { 0, 0, 0, 0 },
        { 0, 0, 0, 0 },
    };

    [TestMethod]
    public void PerClassIoUAndDiceMatchHandComputedValues()
    {
        var metrics = SegmentationMetrics.FromConfusionMatrix(Matrix, ignoredPixels: 7);

        // Each rate is one correctly rounded division of the same integers as the literal's (2·tp is exact): bit for bit.

        Assert.AreEqual(4, metrics.NumClasses);
        Assert.AreEqual(5.0 / 8, metrics.PerClassIoU[0]);   // union 6 + 7 − 5
        Assert.AreEqual(3.0 / 7, metrics.PerClassIoU[1]);   // union 6 + 4 − 3
        Assert.AreEqual(10.0 / 13, metrics.PerClassDice[0]);
        Assert.AreEqual(6.0 / 10, metrics.PerClassDice[1]);
        Assert.AreEqual(8.0 / 12, metrics.PixelAccuracy);
        Assert.AreEqual(7L, metrics.IgnoredPixels);
        Assert.AreEqual(12L, metrics.CountedPixels);
    }

    [TestMethod]
    public void ClassAbsentFromTruthAndPredictionIsNaNAndLeftOutOfTheMeans()
    {
        var metrics = SegmentationMetrics.FromConfusionMatrix(Matrix);

        Assert.IsTrue(double.IsNaN(metrics.PerClassIoU[2]));
        Assert.IsTrue(double.IsNaN(metrics.PerClassDice[2]));
        // The per-class rates summed in class order and divided by the classes present: the same operations as here.
        Assert.AreEqual((5.0 / 8 + 3.0 / 7 + 0) / 3, metrics.MeanIoU);
        Assert.AreEqual((10.0 / 13 + 0.6 + 0) / 3, metrics.MeanDice);
    }

    [TestMethod]
    public void ClassOnlyPredictedHasIoUAndDiceZero()
    {
        var metrics = SegmentationMetrics.FromConfusionMatrix(Matrix);

        Assert.AreEqual(0.0, metrics.PerClassIoU[3]);
        Assert.AreEqual(0.0, metrics.PerClassDice[3]);
    }

    [TestMethod]
    public void DiceEqualsTwoIoUOverOnePlusIoUForEveryPresentClass()
    {
        var metrics = SegmentationMetrics.FromConfusionMatrix(new long[,] { { 40, 3, 7 }, { 2, 11, 0 }, { 9, 1, 25 } });

        for (int c = 0; c < metrics.NumClasses; c++)
        {
            double iou = metrics.PerClassIoU[c];
            // Dice and IoU are each one rounding from exact; 2x/(1 + x) has slope ≤ 2 and rounds twice more: ≤ γ₆ of 1 apart.
            Assert.AreEqual(2 * iou / (1 + iou), metrics.PerClassDice[c], Numerics.Float64Error(6, 1.0), $"class {c}");
        }
    }

    [TestMethod]
    public void IgnoredPixelsDoNotChangeTheRates()
    {
        var without = SegmentationMetrics.FromConfusionMatrix(Matrix);
        var with = SegmentationMetrics.FromConfusionMatrix(Matrix, ignoredPixels: 1000);

        Assert.AreEqual(without.PixelAccuracy, with.PixelAccuracy);
        Assert.AreEqual(without.MeanIoU, with.MeanIoU);
        Assert.AreEqual(1000L, with.IgnoredPixels);
    }

    [TestMethod]
    public void ConfusionMatrixIsACopyOnInputAndOutput()
    {
        var input = (long[,])Matrix.Clone();
        var metrics = SegmentationMetrics.FromConfusionMatrix(input);
        input[0, 0] = 1000;
        var output = metrics.ConfusionMatrix;
        output[1, 1] = 1000;

        Assert.AreEqual(5L, metrics.ConfusionMatrix[0, 0]);
        Assert.AreEqual(3L, metrics.ConfusionMatrix[1, 1]);
        Assert.AreEqual(5.0 / 8, metrics.PerClassIoU[0]);
    }

    [TestMethod]
    public void EmptyMatrixGivesNaNMeansAndAccuracy()
    {
        var metrics = SegmentationMetrics.FromConfusionMatrix(new long[2, 2], ignoredPixels: 4);

        Assert.IsTrue(double.IsNaN(metrics.MeanIoU));
        Assert.IsTrue(double.IsNaN(metrics.MeanDice));
        Assert.IsTrue(double.IsNaN(metrics.PixelAccuracy));
    }

    [TestMethod]
    public void InvalidMatricesAreRejected()
    {
        Assert.ThrowsExactly<ArgumentException>(() => SegmentationMetrics.FromConfusionMatrix(new long[2, 3]));
        Assert.ThrowsExactly<ArgumentException>(() => SegmentationMetrics.FromConfusionMatrix(new long[0, 0]));
        var negative = Assert.ThrowsExactly<ArgumentException>(() => SegmentationMetrics.FromConfusionMatrix(new long[,] { { 1, -1 }, { 0, 1 } }));
        StringAssert.Contains(negative.Message, "[true 0, predicted 1]");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => SegmentationMetrics.FromConfusionMatrix(new long[1, 1], -1));
    }

    [TestMethod]
    public void ToStringShowsTheMeansAndARowPerClass()
    {
        string text = SegmentationMetrics.FromConfusionMatrix(Matrix, 7).ToString();

        StringAssert.Contains(text, "Mean IoU " + ((5.0 / 8 + 3.0 / 7) / 3).ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture));
        StringAssert.Contains(text, "Pixel accuracy 0.6667");
        StringAssert.Contains(text, "7 ignored");
        Assert.AreEqual(1, text.Split('\n').Count(l => l.Contains("absent")), text);
        Assert.AreEqual(3 + 4, text.TrimEnd().Split('\n').Length, text);
    }
}
