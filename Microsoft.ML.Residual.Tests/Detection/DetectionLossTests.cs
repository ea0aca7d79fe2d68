using System;
using System.Linq;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Detection;

/// <summary>
/// The losses against torchvision 0.14's own RetinaNet.compute_loss and FCOS.compute_loss (Fixtures/make_detection_loss_fixtures.py):
/// three images (overlapping boxes, a box only the low-quality rule matches, an image without boxes, nested boxes of
/// different scales), deterministic random head outputs.
/// <para>
/// Rounding bounds. The assignment of anchors to boxes is compared exactly first, so both sides sum the same terms. Each term
/// is a short elementwise formula, where each rounding (transcendental functions within an ulp) moves the term by at most u
/// times a magnitude m that bounds its intermediates: for a focal term |x| + 1 (cross-entropy ≤ |x| + log 2, the other
/// factors ≤ 1); for box terms the coordinates' magnitude P over the smallest box side d (a rounding of a coordinate moves a
/// difference of coordinates by u·P, relatively u·P/d), plus the values themselves. So a term is off by ≤ γ_c·m with c its
/// roundings, and the sum of n terms adds √n·u of Σ|terms| (Numerics.SumError). Both implementations are within that of the
/// exact value, so they are within twice of each other.
/// </para>
/// </summary>
[TestClass]
public sealed class DetectionLossTests
{
    public TestContext TestContext { get; set; } = null!;

    // Roundings per term: focal (sigmoid 3, cross-entropy with logits 6, p_t 3, (1 − p_t)² 2, α_t 3, products 2);
    // L1 on deltas (encoding 8, difference and abs 2); GIoU (decoding 4, intersection and union 10, enclosing 6, ratios 4);
    // centerness (encoding 4, min/max ratios 3, sqrt 1, cross-entropy 6).
    private const int FocalRoundings = 19, DeltaRoundings = 10, GiouRoundings = 24, CenternessRoundings = 14;

    [TestMethod]
    [DataRow(DetectorKind.RetinaNet)]
    [DataRow(DetectorKind.Fcos)]
    public void Matching_IsTorchvisionsExactly(DetectorKind kind)
    {
        using var fixture = DetectionFixture.Read(Name(kind));
        using var scope = NewDisposeScope();
        Tensor matched = kind == DetectorKind.RetinaNet
            ? DetectionLoss.MatchRetinaNet(fixture["anchors"], fixture["targets"])
            : DetectionLoss.MatchFcos(fixture["anchors"], Levels(fixture), fixture["targets"]);
        Assert.IsTrue(matched.IsEqualTo(fixture["matched"]), $"{kind}: {matched.ne(fixture["matched"]).sum().item<long>()} anchors matched differently from torchvision");
    }

    /// <summary>The fixture covers the cases the matchers have: ignored anchors, the low-quality rule with ties, an empty image, several FCOS levels.</summary>
    [TestMethod]
    public void Fixture_CoversTheMatchingCases()
    {
        using var retina = DetectionFixture.Read("retinanet");
        using var fcos = DetectionFixture.Read("fcos");
        using var scope = NewDisposeScope();
        Tensor matched = retina["matched"];
        Assert.IsTrue(matched.eq(tensor(-2L)).any().item<bool>(), "some anchors are ignored");
        Tensor tiny = BoxOperations.Iou(retina["targets"][0, 2].narrow(0, 1, 4).unsqueeze(0), retina["anchors"]);
        Assert.IsTrue(tiny.max().item<float>() < DetectionLoss.BackgroundIou, "the 6×6 box is below the background threshold for every anchor");
        Assert.IsTrue(matched[0].eq(tensor(2L)).sum().item<long>() > 1, "the low-quality rule matches it, with ties");
        Assert.IsFalse(matched[1].NotBelow(0).any().item<bool>(), "the empty image has no foreground");
        int[] levels = Levels(fcos);
        Tensor fcosMatched = fcos["matched"];
        Assert.IsTrue(fcosMatched.narrow(1, 0, levels[0]).NotBelow(0).any().item<bool>() && fcosMatched.narrow(1, levels[0], levels[1]).NotBelow(0).any().item<bool>(),
            "FCOS matches on the first two levels");
    }

    [TestMethod]
    [DataRow(DetectorKind.RetinaNet)]
    [DataRow(DetectorKind.Fcos)]
    public void Compute_GivesTorchvisionsLosses(DetectorKind kind)
    {
        using var fixture = DetectionFixture.Read(Name(kind));
        using var scope = NewDisposeScope();
        Tensor outputs = fixture["outputs"], anchors = fixture["anchors"], targets = fixture["targets"];
        int[] levels = Levels(fixture);
        DetectionLossTerms terms = DetectionLoss.Compute(kind, outputs, anchors, levels, targets);
        var bounds = Bounds(kind, outputs, anchors, levels, targets);

        Check(terms.Classification, fixture["loss.classification"], bounds.Classification, $"{kind} classification");
        Check(terms.BoxRegression, fixture["loss.bbox_regression"], bounds.Box, $"{kind} box regression");
        Tensor total = fixture["loss.classification"].Plus(fixture["loss.bbox_regression"]);
        double totalBound = bounds.Classification + bounds.Box;
        if (kind == DetectorKind.Fcos)
        {
            Check(terms.Centerness!, fixture["loss.bbox_ctrness"], bounds.Centerness, $"{kind} centerness");
            total = total.Plus(fixture["loss.bbox_ctrness"]);
            totalBound += bounds.Centerness;
        }
        else
        {
            Assert.IsNull(terms.Centerness);
        }

        Check(terms.Total, total, totalBound + Numerics.Gamma(2) * Numerics.LargestMagnitude(total), $"{kind} total");
    }

    /// <summary>
    /// The gradient with respect to the head outputs against torchvision's autograd: each element is an elementwise chain of
    /// at most ~40 roundings through the same terms (no sums over anchors; the normaliser is exact), scaled like the
    /// terms by P/d: bound γ₄₀·(P/d)·(the largest |gradient| of the element's kind: class, box or centerness).
    /// </summary>
    [TestMethod]
    [DataRow(DetectorKind.RetinaNet)]
    [DataRow(DetectorKind.Fcos)]
    public void Compute_GivesTorchvisionsGradient(DetectorKind kind)
    {
        using var fixture = DetectionFixture.Read(Name(kind));
        using var scope = NewDisposeScope();
        Tensor outputs = fixture["outputs"].detach().clone().requires_grad_(true);
        DetectionLossTerms terms = DetectionLoss.Compute(kind, outputs, fixture["anchors"], Levels(fixture), fixture["targets"]);
        terms.Total.backward();
        Tensor expected = fixture["gradient"], actual = outputs.grad!;
        long classes = outputs.shape[2] - (kind == DetectorKind.RetinaNet ? 4 : 5);
        double scale = CoordinateScale(kind, fixture["anchors"], fixture["targets"], outputs.detach());
        foreach (var (start, length, what) in new[] { (0L, classes, "class"), (classes, 4L, "box"), (classes + 4, outputs.shape[2] - classes - 4, "centerness") })
        {
            if (length == 0) continue;
            Tensor e = expected.narrow(2, start, length), a = actual.narrow(2, start, length);
            double bound = Numerics.Gamma(40) * scale * Numerics.LargestMagnitude(e);
            TestContext.WriteLine($"{kind} {what} gradient: {Numerics.LargestDifference(a, e) / bound:G3} × the bound {bound:E2}");
            Numerics.AssertWithin(a, e, bound, $"{kind} {what} gradient");
        }
    }

    /// <summary>The loss is differentiable and leaves no tensor behind: repeated forward and backward passes in a caller's scope keep the live count.</summary>
    [TestMethod]
    [DataRow(DetectorKind.RetinaNet)]
    [DataRow(DetectorKind.Fcos)]
    public void Compute_FlowsGradientsAndLeaksNothing(DetectorKind kind)
    {
        using var fixture = DetectionFixture.Read(Name(kind));
        using var outer = NewDisposeScope();
        Tensor outputs = fixture["outputs"].detach().clone().requires_grad_(true);
        int[] levels = Levels(fixture);
        void Step()
        {
            using var scope = NewDisposeScope();
            outputs.grad?.zero_();
            DetectionLoss.Compute(kind, outputs, fixture["anchors"], levels, fixture["targets"]).Total.backward();
        }

        Step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 5; i++) Step();
        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, $"{kind}: live tensors grew over five loss steps");
        Tensor grad = outputs.grad!;
        Assert.IsTrue(grad.isfinite().all().item<bool>(), $"{kind}: a gradient is not finite");
        long classes = outputs.shape[2] - (kind == DetectorKind.RetinaNet ? 4 : 5);
        Assert.IsTrue(grad.narrow(2, 0, classes).ne(tensor(0f)).any().item<bool>(), $"{kind}: no class gradient");
        Assert.IsTrue(grad.narrow(2, classes, 4).ne(tensor(0f)).any().item<bool>(), $"{kind}: no box gradient");
        Assert.IsFalse(grad[1].narrow(1, classes, 4).ne(tensor(0f)).any().item<bool>(), $"{kind}: the image without boxes gives its box regressions a gradient");
    }

    /// <summary>A batch whose targets have no rows at all (M = 0) gives only the classification loss (every anchor background), as torchvision for images without boxes.</summary>
    [TestMethod]
    [DataRow(DetectorKind.RetinaNet)]
    [DataRow(DetectorKind.Fcos)]
    public void Compute_WithoutTargetRows_IsAllBackground(DetectorKind kind)
    {
        using var fixture = DetectionFixture.Read(Name(kind));
        using var scope = NewDisposeScope();
        Tensor outputs = fixture["outputs"];
        DetectionLossTerms none = DetectionLoss.Compute(kind, outputs, fixture["anchors"], Levels(fixture), zeros(outputs.shape[0], 0, 5));
        DetectionLossTerms padding = DetectionLoss.Compute(kind, outputs, fixture["anchors"], Levels(fixture), zeros(outputs.shape[0], 2, 5).Fill(-1.0));
        Assert.AreEqual(0f, none.BoxRegression.item<float>());
        Assert.IsTrue(none.Classification.item<float>() > 0);
        Assert.AreEqual(padding.Classification.item<float>(), none.Classification.item<float>(), "padding rows are no boxes");
    }

    /// <summary>
    /// The last level's range is open above: in a 16×16 input with levels 2×2 (anchor size 8) and 1×1 (size 16), a box reaching
    /// 100 px beyond the input is too large for the first level (upper bound 8·8 = 64) and matches the one anchor of the last
    /// (lower bound 4·16 = 64, no upper bound); a 6×6 box at the first anchor's cell matches only there (lower bound 0).
    /// </summary>
    [TestMethod]
    public void MatchFcos_OpensTheFirstLevelBelowAndTheLastAbove()
    {
        using var scope = NewDisposeScope();
        var levels = new[] { (2, 2), (1, 1) };
        Tensor anchors = DetectionAnchors.Create(DetectorKind.Fcos, 16, 16, levels);
        int[] counts = DetectionAnchors.CountsPerLevel(DetectorKind.Fcos, levels);
        Tensor targets = tensor(new float[] { 0, -100, -100, 116, 116, 1, 6, 6, 12, 12 }, new long[] { 1, 2, 5 });
        Tensor large = DetectionLoss.MatchFcos(anchors, counts, targets.narrow(1, 0, 1));
        CollectionAssert.AreEqual(new long[] { -1, -1, -1, -1, 0 }, large.data<long>().ToArray());
        Tensor both = DetectionLoss.MatchFcos(anchors, counts, targets);
        CollectionAssert.AreEqual(new long[] { -1, -1, -1, 1, 0 }, both.data<long>().ToArray());
    }

    /// <summary>Half-precision outputs (autocast) give their loss in float32: the loss of the float16-rounded outputs, computed in float32, and a float32 gradient back to them.</summary>
    [TestMethod]
    [DataRow(DetectorKind.RetinaNet)]
    [DataRow(DetectorKind.Fcos)]
    public void Compute_OfHalfOutputs_WorksInFloat32(DetectorKind kind)
    {
        using var fixture = DetectionFixture.Read(Name(kind));
        using var scope = NewDisposeScope();
        Tensor half = fixture["outputs"].to_type(ScalarType.Float16).requires_grad_(true);
        DetectionLossTerms terms = DetectionLoss.Compute(kind, half, fixture["anchors"], Levels(fixture), fixture["targets"]);
        DetectionLossTerms reference = DetectionLoss.Compute(kind, half.detach().to_type(ScalarType.Float32), fixture["anchors"], Levels(fixture), fixture["targets"]);
        Assert.AreEqual(ScalarType.Float32, terms.Total.dtype);
        Assert.AreEqual(reference.Total.item<float>(), terms.Total.item<float>(), "the same float32 computation");
        terms.Total.backward();
        Assert.IsTrue(half.grad!.isfinite().all().item<bool>());
    }

    private void Check(Tensor actual, Tensor expected, double bound, string what)
    {
        TestContext.WriteLine($"{what}: {actual.item<float>():G9} against torchvision's {expected.item<float>():G9}, {Numerics.LargestDifference(actual.reshape(1), expected.reshape(1)) / bound:G3} × the bound {bound:E2}");
        Numerics.AssertWithin(actual.reshape(1), expected.reshape(1), bound, what);
    }

    private static string Name(DetectorKind kind) => kind == DetectorKind.RetinaNet ? "retinanet" : "fcos";

    private static int[] Levels(Microsoft.ML.Residual.Weights.TensorDictionary fixture) => fixture["levels"].data<long>().Select(v => (int)v).ToArray();

    // P/d: the largest |coordinate| of the boxes, anchors and (FCOS) decoded predictions over the smallest side of a box or anchor.
    private static double CoordinateScale(DetectorKind kind, Tensor anchors, Tensor targets, Tensor outputs)
    {
        using var scope = NewDisposeScope();
        Tensor valid = targets.select(2, 0).NotBelow(0L);
        Tensor boxes = targets.narrow(2, 1, 4).reshape(-1, 4).index_select(0, valid.flatten().nonzero().flatten());
        Tensor sides = cat(new[] { boxes.narrow(1, 2, 2).Minus(boxes.narrow(1, 0, 2)), anchors.narrow(1, 2, 2).Minus(anchors.narrow(1, 0, 2)) }, 0);
        double largest = Math.Max(Numerics.LargestMagnitude(boxes), Numerics.LargestMagnitude(anchors));
        if (kind == DetectorKind.Fcos)
        {
            long classes = outputs.shape[2] - 5;
            largest = Math.Max(largest, Numerics.LargestMagnitude(BoxCoding.DecodeDistances(outputs.narrow(2, classes, 4), anchors)));
        }

        return largest / sides.min().item<float>();
    }

    // The rounding bounds of the three terms (see the class summary), from our float64 terms.
    private static (double Classification, double Box, double Centerness) Bounds(DetectorKind kind, Tensor outputs, Tensor anchors, int[] levels, Tensor targets)
    {
        using var scope = NewDisposeScope();
        Tensor wide = outputs.to_type(ScalarType.Float64), wideAnchors = anchors.to_type(ScalarType.Float64), wideTargets = targets.to_type(ScalarType.Float64);
        long images = outputs.shape[0];
        long classes = outputs.shape[2] - (kind == DetectorKind.RetinaNet ? 4 : 5);
        Tensor logits = wide.narrow(2, 0, classes);
        Tensor matches = kind == DetectorKind.RetinaNet ? DetectionLoss.MatchRetinaNet(anchors, targets) : DetectionLoss.MatchFcos(anchors, levels, targets);
        Tensor foreground = matches.NotBelow(0L);
        Tensor rows = matches.AtLeast(0L);
        Tensor matched = wideTargets.gather(1, rows.unsqueeze(-1).expand(images, anchors.shape[0], 5));
        Tensor oneHot = nn.functional.one_hot(matched.select(2, 0).to_type(ScalarType.Int64).AtLeast(0L), classes).to_type(ScalarType.Float64)
            .mul(foreground.unsqueeze(-1).to_type(ScalarType.Float64));
        Tensor focal = DetectionLoss.SigmoidFocalLoss(logits, oneHot);
        Tensor focalMagnitude = logits.abs().Plus(1.0);
        double scale = CoordinateScale(kind, anchors, targets, outputs);
        Tensor fg = foreground.to_type(ScalarType.Float64);

        if (kind == DetectorKind.RetinaNet)
        {
            Tensor counted = matches.ne(tensor(-2L)).to_type(ScalarType.Float64).unsqueeze(-1);
            Tensor perImage = fg.sum(new long[] { 1 }).AtLeast(1.0);
            double classification = 0, box = 0;
            Tensor goal = BoxCoding.EncodeDeltas(matched.narrow(2, 1, 4), wideAnchors);
            Tensor deltas = wide.narrow(2, classes, 4);
            for (long i = 0; i < images; i++)
            {
                double norm = perImage[i].item<double>();
                long terms = (long)counted[i].sum().item<double>() * classes;
                classification += (Numerics.Gamma(FocalRoundings) * focalMagnitude[i].mul(counted[i]).sum().item<double>()
                    + Numerics.SumError(terms) * focal[i].mul(counted[i]).sum().item<double>()) / norm;
                Tensor mask = fg[i].unsqueeze(-1);
                Tensor magnitude = deltas[i].abs().Plus(where(mask.to_type(ScalarType.Bool), goal[i], zeros_like(goal[i])).abs()).Plus(scale).mul(mask);
                Tensor l1 = deltas[i].Minus(where(mask.to_type(ScalarType.Bool), goal[i], zeros_like(goal[i]))).abs().mul(mask);
                box += (Numerics.Gamma(DeltaRoundings) * magnitude.sum().item<double>() + Numerics.SumError(4 * (long)fg[i].sum().item<double>()) * l1.sum().item<double>()) / norm;
            }

            return (2 * classification / images, 2 * box / images, 0);
        }

        double normaliser = Math.Max(1, fg.sum().item<double>());
        long foregroundCount = (long)fg.sum().item<double>();
        double cls = Numerics.Gamma(FocalRoundings) * focalMagnitude.sum().item<double>() + Numerics.SumError(focal.numel()) * focal.sum().item<double>();
        // GIoU terms lie in [0, 2]; centerness terms are cross-entropies of logits x (≤ |x| + log 2).
        double giou = foregroundCount * Numerics.Gamma(GiouRoundings) * (2 + 2 * scale) + Numerics.SumError(foregroundCount) * 2 * foregroundCount;
        Tensor centerness = wide.select(2, classes + 4).abs().Plus(1.0 + scale).mul(fg);
        double ctr = Numerics.Gamma(CenternessRoundings) * centerness.sum().item<double>() + Numerics.SumError(foregroundCount) * centerness.sum().item<double>();
        return (2 * cls / normaliser, 2 * giou / normaliser, 2 * ctr / normaliser);
    }
}
