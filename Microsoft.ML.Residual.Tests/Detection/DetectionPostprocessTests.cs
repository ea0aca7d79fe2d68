using System.Linq;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Detection;

/// <summary>
/// Detections against torchvision 0.14's postprocess_detections on the loss fixtures' head outputs (three images; torchvision's
/// options and a "small" set that caps candidates and detections harder).
/// <para>
/// Bounds: labels, counts and order are compared exactly (the random scores have no near-ties). A score is a sigmoid (FCOS: the
/// square root of a product of two) of float32 logits: ≤ 4 (FCOS 8) roundings of values ≤ 1, γ₄ (γ₈). A box coordinate is decoded
/// with ≤ 10 roundings (exp within an ulp) of values no larger than the largest decoded coordinate M, then clipped (exact): γ₁₀·M.
/// </para>
/// </summary>
[TestClass]
public sealed class DetectionPostprocessTests
{
    [TestMethod]
    [DataRow(DetectorKind.RetinaNet, "default")]
    [DataRow(DetectorKind.RetinaNet, "small")]
    [DataRow(DetectorKind.Fcos, "default")]
    [DataRow(DetectorKind.Fcos, "small")]
    public void Detect_GivesTorchvisionsDetections(DetectorKind kind, string options)
    {
        string name = kind == DetectorKind.RetinaNet ? "retinanet" : "fcos";
        using var fixture = DetectionFixture.Read(name);
        using var scope = NewDisposeScope();
        Tensor outputs = fixture["outputs"], anchors = fixture["anchors"];
        int[] levels = fixture["levels"].data<long>().Select(v => (int)v).ToArray();
        var (height, width) = kind == DetectorKind.RetinaNet ? (64, 96) : (128, 160);
        DetectionPostprocessOptions settings = options == "default" ? DetectionPostprocessOptions.For(kind) : new DetectionPostprocessOptions(0.3, 0.3, 50, 40);
        var detections = DetectionPostprocess.Detect(kind, outputs, anchors, levels, height, width, settings);

        long classes = outputs.shape[2] - (kind == DetectorKind.RetinaNet ? 4 : 5);
        Tensor wide = outputs.to_type(ScalarType.Float64).narrow(2, classes, 4);
        Tensor decoded = kind == DetectorKind.RetinaNet ? BoxCoding.DecodeDeltas(wide, anchors) : BoxCoding.DecodeDistances(wide, anchors);
        double boxBound = Numerics.Gamma(10) * Numerics.LargestMagnitude(decoded);
        double scoreBound = Numerics.Gamma(kind == DetectorKind.RetinaNet ? 4 : 8);

        Assert.AreEqual(outputs.shape[0], detections.Count);
        for (int i = 0; i < detections.Count; i++)
        {
            string prefix = $"detect.{options}.{i}.";
            Detections d = detections[i];
            Assert.IsTrue(d.Labels.IsEqualTo(fixture[prefix + "labels"]), $"{kind} {options} image {i}: labels (or their count or order) differ from torchvision's");
            Assert.AreEqual(ScalarType.Int64, d.Labels.dtype);
            Numerics.AssertWithin(d.Scores, fixture[prefix + "scores"], scoreBound, $"{kind} {options} image {i} scores");
            Numerics.AssertWithin(d.Boxes, fixture[prefix + "boxes"], boxBound, $"{kind} {options} image {i} boxes");
        }
    }

    [TestMethod]
    public void For_GivesTorchvisionsDefaults()
    {
        Assert.AreEqual(new DetectionPostprocessOptions(0.05, 0.5, 1000, 300), DetectionPostprocessOptions.For(DetectorKind.RetinaNet));
        Assert.AreEqual(new DetectionPostprocessOptions(0.2, 0.6, 1000, 100), DetectionPostprocessOptions.For(DetectorKind.Fcos));
    }

    /// <summary>Logits far below the threshold give no detection: empty tensors of the right shapes.</summary>
    [TestMethod]
    public void Detect_WithNothingAboveTheThreshold_GivesEmptyDetections()
    {
        using var scope = NewDisposeScope();
        var levels = new[] { (2, 2), (1, 1) };
        Tensor anchors = DetectionAnchors.Create(DetectorKind.RetinaNet, 16, 16, levels);
        Tensor outputs = zeros(1, anchors.shape[0], 2 + 4).Fill(-10.0);
        var detections = DetectionPostprocess.Detect(DetectorKind.RetinaNet, outputs, anchors, DetectionAnchors.CountsPerLevel(DetectorKind.RetinaNet, levels), 16, 16, DetectionPostprocessOptions.For(DetectorKind.RetinaNet));
        CollectionAssert.AreEqual(new long[] { 0, 4 }, detections[0].Boxes.shape);
        CollectionAssert.AreEqual(new long[] { 0 }, detections[0].Scores.shape);
        CollectionAssert.AreEqual(new long[] { 0 }, detections[0].Labels.shape);
    }
}
