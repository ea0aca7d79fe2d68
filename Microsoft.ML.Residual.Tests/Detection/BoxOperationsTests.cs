using System.Linq;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Detection;

[TestClass]
public sealed class BoxOperationsTests
{
    private static Tensor Boxes(params float[] values) => tensor(values, new long[] { values.Length / 4, 4 });

    [TestMethod]
    public void Area_IsWidthTimesHeight()
    {
        using var scope = NewDisposeScope();
        CollectionAssert.AreEqual(new float[] { 4, 6, 0 }, BoxOperations.Area(Boxes(0, 0, 2, 2, 1, 1, 4, 3, 5, 5, 5, 9)).data<float>().ToArray());
    }

    /// <summary>[0,0,2,2] and [1,1,3,3] overlap in 1 of a union of 7; [5,5,6,6] touches neither. Each value is one division of small integers (exact inputs), so within one rounding.</summary>
    [TestMethod]
    public void Iou_MatchesHandComputedOverlaps()
    {
        using var scope = NewDisposeScope();
        Tensor iou = BoxOperations.Iou(Boxes(0, 0, 2, 2, 1, 1, 3, 3), Boxes(1, 1, 3, 3, 5, 5, 6, 6, 0, 0, 2, 2));
        var expected = tensor(new double[] { 1.0 / 7, 0, 1, 1, 0, 1.0 / 7 }, new long[] { 2, 3 });
        Numerics.AssertWithin(iou, expected, Numerics.Float32Roundoff, "IoU");
    }

    /// <summary>
    /// GIoU = IoU − (enclosing − union)/enclosing. [0,0,2,2]–[1,1,3,3]: 1/7 − (9 − 7)/9; [0,0,1,1]–[2,0,3,1]: 0 − (3 − 2)/3, loss
    /// 4/3; identical boxes: loss 0. The eps of 1e-7 in both denominators moves each ratio by at most 1e-7/denominator (≥ 1
    /// here) of itself, and the float32 work adds a few roundings of values ≤ 2: bound 1e-7 + γ₁₀·2.
    /// </summary>
    [TestMethod]
    public void GeneralizedIouLoss_MatchesHandComputedValues()
    {
        using var scope = NewDisposeScope();
        Tensor loss = BoxOperations.GeneralizedIouLoss(Boxes(0, 0, 2, 2, 0, 0, 1, 1, 3, 4, 7, 9), Boxes(1, 1, 3, 3, 2, 0, 3, 1, 3, 4, 7, 9));
        var expected = tensor(new[] { 1 - (1.0 / 7 - 2.0 / 9), 4.0 / 3, 0 });
        Numerics.AssertWithin(loss, expected, 1e-7 + Numerics.Gamma(10) * 2, "GIoU loss");
    }

    [TestMethod]
    public void Nms_DropsOverlapsAboveTheThresholdAndKeepsScoreOrder()
    {
        using var scope = NewDisposeScope();
        // IoU(0, 1) = 81/119 = 0.68; box 2 is apart; box 3 has the highest score and IoU 1/2 exactly with box 4 ([0,0,2,1] vs [0,0,1,1] shifted).
        Tensor boxes = Boxes(0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 40, 40, 42, 41, 40, 40, 41, 41);
        Tensor scores = tensor(new float[] { 0.9f, 0.8f, 0.7f, 0.95f, 0.6f });
        CollectionAssert.AreEqual(new long[] { 3, 0, 2, 4 }, BoxOperations.Nms(boxes, scores, 0.5).data<long>().ToArray(), "an IoU of exactly the threshold is kept");
        CollectionAssert.AreEqual(new long[] { 3, 0, 2 }, BoxOperations.Nms(boxes, scores, 0.49).data<long>().ToArray());
        CollectionAssert.AreEqual(new long[] { 3, 0, 1, 2, 4 }, BoxOperations.Nms(boxes, scores, 0.7).data<long>().ToArray());
        Assert.AreEqual(ScalarType.Int64, BoxOperations.Nms(boxes, scores, 0.5).dtype);
        Assert.AreEqual(0, BoxOperations.Nms(zeros(0, 4), zeros(0), 0.5).shape[0]);
    }

    [TestMethod]
    public void BatchedNms_SuppressesOnlyWithinALabel()
    {
        using var scope = NewDisposeScope();
        Tensor boxes = Boxes(0, 0, 10, 10, 1, 1, 11, 11, 0, 0, 10, 10, 20, 20, 30, 30);
        Tensor scores = tensor(new float[] { 0.9f, 0.8f, 0.85f, 0.7f });
        Tensor labels = tensor(new long[] { 0, 0, 1, 0 });
        // Box 1 falls to box 0 (same label); box 2 overlaps box 0 fully but has another label.
        CollectionAssert.AreEqual(new long[] { 0, 2, 3 }, BoxOperations.BatchedNms(boxes, scores, labels, 0.5).data<long>().ToArray());
    }

    [TestMethod]
    public void Clip_ClampsXToTheWidthAndYToTheHeight()
    {
        using var scope = NewDisposeScope();
        Tensor clipped = BoxOperations.Clip(Boxes(-5, -3, 120, 70, 10, 20, 30, 40), height: 64, width: 96);
        CollectionAssert.AreEqual(new float[] { 0, 0, 96, 64, 10, 20, 30, 40 }, clipped.data<float>().ToArray());
    }

    /// <summary>
    /// Decoding the encoding gives the box back: deltas in float64 through log and exp (a few roundings each of values up to
    /// the coordinates' magnitude 100) and distances through one product and a sum: γ₁₀·100 covers both.
    /// </summary>
    [TestMethod]
    public void Coding_DecodeInvertsEncode()
    {
        using var scope = NewDisposeScope();
        Tensor anchors = tensor(new double[] { 0, 0, 32, 32, 40, 8, 72, 24, 10, 10, 26, 26 }, new long[] { 3, 4 });
        Tensor boxes = tensor(new double[] { 4, 2, 30, 41, 45, 1, 90, 30, 12, 14, 24, 25 }, new long[] { 3, 4 });
        double bound = Numerics.Gamma(10, Numerics.Float64Roundoff) * 100;
        Numerics.AssertWithin(BoxCoding.DecodeDeltas(BoxCoding.EncodeDeltas(boxes, anchors), anchors), boxes, bound, "deltas");
        Numerics.AssertWithin(BoxCoding.DecodeDistances(BoxCoding.EncodeDistances(boxes, anchors), anchors), boxes, bound, "distances");
    }

    /// <summary>dw beyond log(1000/16) is clamped: a delta of 10 gives the width 1000/16 times the anchor's, not e¹⁰ times.</summary>
    [TestMethod]
    public void DecodeDeltas_ClampsTheSizeChange()
    {
        using var scope = NewDisposeScope();
        Tensor anchors = tensor(new double[] { 0, 0, 16, 16 }, new long[] { 1, 4 });
        Tensor decoded = BoxCoding.DecodeDeltas(tensor(new double[] { 0, 0, 10, 0 }, new long[] { 1, 4 }), anchors);
        double width = decoded[0, 2].item<double>() - decoded[0, 0].item<double>();
        Assert.AreEqual(1000.0, width, Numerics.Gamma(10, Numerics.Float64Roundoff) * 1000);
    }
}
