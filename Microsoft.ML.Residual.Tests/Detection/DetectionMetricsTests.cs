using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Detection;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Detection;

/// <summary>
/// COCO's box AP on cases whose value is derived by hand in each test from the definition (pycocotools' COCOeval): at each
/// IoU threshold t ∈ {.50, .55, …, .95}, detections ranked by score match greedily; precision pᵢ = TPᵢ/(TPᵢ + FPᵢ) and
/// recall rᵢ = TPᵢ/G along the ranking, p made non-increasing from the right, sampled at r = 0, .01, …, 1 (first rank whose
/// recall reaches r; 0 when none does), AP = the mean of the 101 samples, then the mean over the 10 thresholds.
/// </summary>
[TestClass]
public sealed class DetectionMetricsTests
{
    // Each AP is a mean of 1010 float64 values, each a division (plus COCOeval's 2.2e-16 in the denominator): within
    // γ(2·1010 + 10) of the exact value, 1 being the largest.
    private static readonly double Tolerance = Numerics.Float64Error(2 * 1010 + 10, 1.0);

    private static DetectionBox T(int label, float x1, float y1, float x2, float y2, bool crowd = false) => new(label, x1, y1, x2, y2, crowd);

    private static ScoredBox D(int label, float score, float x1, float y1, float x2, float y2) => new(label, score, x1, y1, x2, y2);

    private static DetectionMetrics Evaluate(int classes, params (DetectionBox[] Truth, ScoredBox[] Found)[] images) =>
        DetectionEvaluator.Evaluate(images.Select(i => (IReadOnlyList<DetectionBox>)i.Truth).ToArray(), images.Select(i => (IReadOnlyList<ScoredBox>)i.Found).ToArray(), classes);

    [TestMethod]
    public void PerfectDetectionsScoreOneAtEveryThreshold()
    {
        // Every detection is its object's box: IoU 1 ≥ every threshold, precision 1 at every rank, recall reaches 1.
        var metrics = Evaluate(2,
            (new[] { T(0, 0, 0, 10, 10), T(1, 20, 20, 50, 40) }, new[] { D(0, 0.9f, 0, 0, 10, 10), D(1, 0.8f, 20, 20, 50, 40) }),
            (new[] { T(0, 5, 5, 25, 30) }, new[] { D(0, 0.3f, 5, 5, 25, 30) }));

        Assert.AreEqual(1.0, metrics.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(1.0, metrics.MeanAveragePrecision50, Tolerance);
        Assert.AreEqual(1.0, metrics.MeanAveragePrecision75, Tolerance);
        Assert.AreEqual(1.0, metrics.AverageRecall, Tolerance);
        Assert.AreEqual(1.0, metrics.PerClassAveragePrecision[0]!.Value, Tolerance);
        Assert.AreEqual(1.0, metrics.PerClassAveragePrecision[1]!.Value, Tolerance);
        Assert.AreEqual(2, metrics.Images);
    }

    [TestMethod]
    public void FalsePositiveRankedFirstHalvesPrecision()
    {
        // Ranking FP, TP: precision [0, 1/2], recall [0, 1]; non-increasing from the right: [1/2, 1/2]. Every recall
        // threshold r is first reached at a rank with precision 1/2 (r = 0 at rank 0), so AP = 1/2 at every IoU threshold.
        var metrics = Evaluate(1, (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.9f, 50, 50, 60, 60), D(0, 0.8f, 0, 0, 10, 10) }));

        Assert.AreEqual(0.5, metrics.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(0.5, metrics.MeanAveragePrecision50, Tolerance);
        Assert.AreEqual(1.0, metrics.AverageRecall, Tolerance);
    }

    [TestMethod]
    public void FalsePositiveRankedLastCostsNothing()
    {
        // Ranking TP, FP: precision [1, 1/2], recall [1, 1]: every recall threshold is reached at rank 0, precision 1.
        var metrics = Evaluate(1, (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.9f, 0, 0, 10, 10), D(0, 0.8f, 50, 50, 60, 60) }));

        Assert.AreEqual(1.0, metrics.MeanAveragePrecision, Tolerance);
    }

    [TestMethod]
    public void DuplicateDetectionIsAFalsePositiveAndPrecisionIsInterpolatedAt101Points()
    {
        // Objects A and B; ranking A, A again (A is taken: a false positive), B. TP 1, 1, 2 and FP 0, 1, 1 over G = 2:
        // recall [1/2, 1/2, 1], precision [1, 1/2, 2/3] → non-increasing from the right [1, 2/3, 2/3]. Recall thresholds
        // 0, .01, …, .50 (51 of them) are reached at rank 0 (precision 1), .51 … 1 (50) at rank 2 (2/3):
        // AP = (51·1 + 50·2/3)/101 = 253/303 at every IoU threshold.
        var metrics = Evaluate(1, (new[] { T(0, 0, 0, 10, 10), T(0, 30, 30, 40, 40) },
            new[] { D(0, 0.9f, 0, 0, 10, 10), D(0, 0.8f, 0, 0, 10, 10), D(0, 0.7f, 30, 30, 40, 40) }));

        Assert.AreEqual(253.0 / 303, metrics.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(253.0 / 303, metrics.MeanAveragePrecision50, Tolerance);
    }

    [TestMethod]
    public void GreedyMatchingFollowsScoreOrderInARowOfOverlappingObjects()
    {
        // Ten objects Gᵢ = [5i, 0, 5i + 10, 10] (i = 0…9) and ten detections Dᵢ = Gᵢ shifted right by 3. Dᵢ overlaps Gᵢ by
        // 7 px: IoU 70/130 ≈ .538; Gᵢ₊₁ by 8 px: IoU 80/120 ≈ .667; Gᵢ₋₁ by 2 px: 20/180. So each detection prefers the next object.
        DetectionBox[] truth = Enumerable.Range(0, 10).Select(i => T(0, 5 * i, 0, 5 * i + 10, 10)).ToArray();
        ScoredBox Shifted(int i, float score) => D(0, score, 5 * i + 3, 0, 5 * i + 13, 10);

        // D₀ ranked first: Dᵢ takes Gᵢ₊₁ for i < 9 while t ≤ .667 (t = .50, .55, .60, .65); D₉'s only object above .5, G₉, is
        // taken: a false positive, and G₀ is never matched. TP 1…9 then FP: precision 1 up to recall .9, so AP = 91/101 at those
        // four thresholds; at t ≥ .70 nothing matches: 0. AP = 4·(91/101)/10.
        var first = Evaluate(1, (truth, Enumerable.Range(0, 10).Select(i => Shifted(i, 1 - 0.05f * i)).ToArray()));
        Assert.AreEqual(4 * 91.0 / 101 / 10, first.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(91.0 / 101, first.MeanAveragePrecision50, Tolerance);

        // D₉ ranked first: at t = .50 D₉ takes G₉ (.538, G₁₀ does not exist), then D₈ finds G₉ taken and takes G₈, … each Dᵢ takes
        // Gᵢ: AP 1. At t = .55, .60, .65 D₉ matches nothing (FP) and Dᵢ takes Gᵢ₊₁ for i = 8…0: precision [0, 1/2, 2/3, …, 9/10]
        // rises, so the non-increasing envelope is 9/10 up to recall .9: AP = 91·.9/101. At t ≥ .70: 0.
        // AP = (1 + 3·91·.9/101)/10.
        var last = Evaluate(1, (truth, Enumerable.Range(0, 10).Select(i => Shifted(i, 0.5f + 0.05f * i)).ToArray()));
        Assert.AreEqual((1 + 3 * 91 * 0.9 / 101) / 10, last.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(1.0, last.MeanAveragePrecision50, Tolerance);
    }

    [TestMethod]
    public void TiedScoresKeepImageOrder()
    {
        // Equal scores rank in image order (COCOeval's stable mergesort over the images' concatenated detections): a false
        // positive in image 0 tied with the true positive of image 1 ranks first (AP 1/2); the other way round, last (AP 1).
        var fpFirst = Evaluate(1,
            (Array.Empty<DetectionBox>(), new[] { D(0, 0.5f, 0, 0, 10, 10) }),
            (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.5f, 0, 0, 10, 10) }));
        var tpFirst = Evaluate(1,
            (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.5f, 0, 0, 10, 10) }),
            (Array.Empty<DetectionBox>(), new[] { D(0, 0.5f, 0, 0, 10, 10) }));

        Assert.AreEqual(0.5, fpFirst.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(1.0, tpFirst.MeanAveragePrecision, Tolerance);
    }

    [TestMethod]
    public void EqualOverlapGoesToTheLaterObject()
    {
        // A = [0, 0, 10, 10], B = [5, 0, 15, 10]; the first detection [2, 0, 13, 10] overlaps each by 8 px: IoU 80/130 ≈ .615
        // with both, computed alike. COCOeval replaces its best match on IoU ≥ best, so B, the later, takes it; the second
        // detection, exactly A, then takes A. t = .50, .55, .60: TP, TP → AP 1. t ≥ .65: the first matches nothing (FP), the
        // second takes A: FP, TP over two objects → precision 1/2 up to recall 1/2: AP = 51·(1/2)/101.
        // AP = (3 + 7·25.5/101)/10. (Had A taken the first detection, the second would be a false positive at .50 too.)
        var metrics = Evaluate(1, (new[] { T(0, 0, 0, 10, 10), T(0, 5, 0, 15, 10) }, new[] { D(0, 0.9f, 2, 0, 13, 10), D(0, 0.8f, 0, 0, 10, 10) }));

        Assert.AreEqual(1.0, metrics.MeanAveragePrecision50, Tolerance);
        Assert.AreEqual((3 + 7 * 25.5 / 101) / 10, metrics.MeanAveragePrecision, Tolerance);
    }

    [TestMethod]
    public void IouExactlyAtAThresholdMatches()
    {
        // [0, 0, 10, 5] inside [0, 0, 10, 10]: intersection 50, union 100, IoU exactly .5 = the first threshold, where a
        // match needs IoU ≥ t. AP 1 at .50 and 0 at the nine others: AP@[.50:.95] = .1, recall likewise.
        var at = Evaluate(1, (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.9f, 0, 0, 10, 5) }));
        Assert.AreEqual(1.0, at.MeanAveragePrecision50, Tolerance);
        Assert.AreEqual(0.0, at.MeanAveragePrecision75, Tolerance);
        Assert.AreEqual(0.1, at.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(0.1, at.AverageRecall, Tolerance);

        // Height 4.99: IoU .499 < .5, matched nowhere: AP 0.
        var below = Evaluate(1, (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.9f, 0, 0, 10, 4.99f) }));
        Assert.AreEqual(0.0, below.MeanAveragePrecision50, Tolerance);
    }

    [TestMethod]
    public void ImagesWithoutBoxesOrDetectionsChangeNothing()
    {
        // An image with neither takes no part in any ranking: the perfect detection keeps AP 1.
        var metrics = Evaluate(1,
            (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.9f, 0, 0, 10, 10) }),
            (Array.Empty<DetectionBox>(), Array.Empty<ScoredBox>()));

        Assert.AreEqual(1.0, metrics.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(2, metrics.Images);
    }

    [TestMethod]
    public void DetectionsInAnImageWithoutObjectsAreFalsePositives()
    {
        // The empty image's detection (score .9) outranks the true one (.5): FP, TP → AP 1/2 (as FalsePositiveRankedFirst).
        var higher = Evaluate(1,
            (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.5f, 0, 0, 10, 10) }),
            (Array.Empty<DetectionBox>(), new[] { D(0, 0.9f, 0, 0, 10, 10) }));
        Assert.AreEqual(0.5, higher.MeanAveragePrecision, Tolerance);

        // Ranked below the true one it costs nothing.
        var lower = Evaluate(1,
            (new[] { T(0, 0, 0, 10, 10) }, new[] { D(0, 0.5f, 0, 0, 10, 10) }),
            (Array.Empty<DetectionBox>(), new[] { D(0, 0.1f, 0, 0, 10, 10) }));
        Assert.AreEqual(1.0, lower.MeanAveragePrecision, Tolerance);
    }

    [TestMethod]
    public void ClassWithoutGroundTruthIsLeftOutOfTheMean()
    {
        // Class 0: AP 1. Class 1: FP then TP, AP 1/2. Class 2 has only detections and no object anywhere: no AP (null), and
        // the mean is over classes 0 and 1: 3/4.
        var metrics = Evaluate(3,
            (new[] { T(0, 0, 0, 10, 10), T(1, 20, 20, 30, 30) },
             new[] { D(0, 0.9f, 0, 0, 10, 10), D(1, 0.9f, 60, 60, 70, 70), D(1, 0.8f, 20, 20, 30, 30), D(2, 0.99f, 0, 0, 10, 10) }));

        Assert.AreEqual(1.0, metrics.PerClassAveragePrecision[0]!.Value, Tolerance);
        Assert.AreEqual(0.5, metrics.PerClassAveragePrecision[1]!.Value, Tolerance);
        Assert.IsNull(metrics.PerClassAveragePrecision[2]);
        Assert.IsNull(metrics.PerClassAveragePrecision50[2]);
        Assert.AreEqual(0.75, metrics.MeanAveragePrecision, Tolerance);
        StringAssert.Contains(metrics.ToString(), "no ground truth");
    }

    [TestMethod]
    public void NoGroundTruthAtAllGivesNaN()
    {
        var metrics = Evaluate(2, (Array.Empty<DetectionBox>(), new[] { D(0, 0.9f, 0, 0, 10, 10) }));

        Assert.IsTrue(double.IsNaN(metrics.MeanAveragePrecision));
        Assert.IsTrue(metrics.PerClassAveragePrecision.All(ap => ap is null));
    }

    [TestMethod]
    public void CrowdRegionAbsorbsDetectionsWithoutCountingThem()
    {
        // One object [0, 0, 10, 10] and a crowd region [20, 0, 60, 40]. Five detections lie inside the crowd (overlap with a
        // crowd = intersection / the detection's area = 1): ignored at every threshold, however many. One detection
        // [55, 0, 65, 10] is half inside (50/100 = .5): ignored at t = .50, a false positive above. It has the top score,
        // the crowd five come next, the true detection last.
        // t = .50: only the TP counts: AP 1. t ≥ .55: FP, (ignored ×5), TP: precision 1/2 at recall 1 → AP 1/2.
        // AP = (1 + 9·1/2)/10 = .55.
        var found = new List<ScoredBox> { D(0, 0.95f, 55, 0, 65, 10) };
        for (int i = 0; i < 5; i++) found.Add(D(0, 0.9f - 0.1f * i, 22 + 5 * i, 2, 30 + 5 * i, 10));
        found.Add(D(0, 0.01f, 0, 0, 10, 10));
        var metrics = Evaluate(1, (new[] { T(0, 0, 0, 10, 10), T(0, 20, 0, 60, 40, crowd: true) }, found.ToArray()));

        Assert.AreEqual(1.0, metrics.MeanAveragePrecision50, Tolerance);
        Assert.AreEqual(0.55, metrics.MeanAveragePrecision, Tolerance);
        Assert.AreEqual(1.0, metrics.AverageRecall, Tolerance);
    }

    [TestMethod]
    public void ClassWithOnlyCrowdRegionsHasNoAveragePrecision()
    {
        // A crowd region is not an object to find: class 1 has no object, so no AP, and its detection counts nowhere.
        var metrics = Evaluate(2, (new[] { T(0, 0, 0, 10, 10), T(1, 20, 20, 40, 40, crowd: true) }, new[] { D(0, 0.9f, 0, 0, 10, 10), D(1, 0.9f, 20, 20, 40, 40) }));

        Assert.IsNull(metrics.PerClassAveragePrecision[1]);
        Assert.AreEqual(1.0, metrics.MeanAveragePrecision, Tolerance);
    }

    [TestMethod]
    public void OrdinaryObjectIsPreferredToACrowdRegion()
    {
        // The detection overlaps the object with IoU .5 ([0,0,10,5] in [0,0,10,10]) and lies wholly inside a crowd region:
        // at t = .50 it matches the object (TP); above, it falls to the crowd (ignored), so the object is missed there
        // with no false positive: AP 1 at .50, 0 above (no ranked TP: the envelope is 0) → AP .1.
        var metrics = Evaluate(1, (new[] { T(0, 0, 0, 10, 10), T(0, 0, 0, 20, 20, crowd: true) }, new[] { D(0, 0.9f, 0, 0, 10, 5) }));

        Assert.AreEqual(1.0, metrics.MeanAveragePrecision50, Tolerance);
        Assert.AreEqual(0.1, metrics.MeanAveragePrecision, Tolerance);
    }

    [TestMethod]
    public void MaxDetectionsLimitsEachImageAndClass()
    {
        // COCOeval keeps the top maxDets detections per image and class (not per image): with 1, class 0 keeps only its
        // .9 detection (recall 1/2, precision 1: AP = 51/101), and class 1 keeps its own, though it ranks third in the image: AP 1.
        var truth = new IReadOnlyList<DetectionBox>[] { new[] { T(0, 0, 0, 10, 10), T(0, 20, 0, 30, 10), T(1, 40, 0, 50, 10) } };
        var found = new IReadOnlyList<ScoredBox>[] { new[] { D(0, 0.9f, 0, 0, 10, 10), D(0, 0.8f, 20, 0, 30, 10), D(1, 0.7f, 40, 0, 50, 10) } };

        var metrics = DetectionEvaluator.Evaluate(truth, found, 2, maxDetections: 1);

        Assert.AreEqual(51.0 / 101, metrics.PerClassAveragePrecision[0]!.Value, Tolerance);
        Assert.AreEqual(1.0, metrics.PerClassAveragePrecision[1]!.Value, Tolerance);
        Assert.AreEqual((0.5 + 1) / 2, metrics.AverageRecall, Tolerance); // recall 1/2 and 1 at every threshold
    }

    [TestMethod]
    public void MatchesCocoEvalOnRandomCases()
    {
        // Fixtures/detection/coco_eval_cases.json (Fixtures/make_coco_eval_fixtures.py): 60 seeded random cases with crowds,
        // tied scores, stray and mislabelled detections and maxDets 100, 2 or 1, each with pycocotools' results. Boxes lie
        // on a half-pixel grid, so both sides compute the same IoUs; the means differ only by the order of float64 sums.
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "detection", "coco_eval_cases.json")));
        int index = 0;
        foreach (JsonElement @case in document.RootElement.EnumerateArray())
        {
            var truths = new List<IReadOnlyList<DetectionBox>>();
            var detections = new List<IReadOnlyList<ScoredBox>>();
            foreach (JsonElement image in @case.GetProperty("images").EnumerateArray())
            {
                truths.Add(image.GetProperty("truth").EnumerateArray().Select(Numbers).Select(a => T((int)a[0], (float)a[1], (float)a[2], (float)a[3], (float)a[4], a[5] != 0)).ToArray());
                detections.Add(image.GetProperty("detections").EnumerateArray().Select(Numbers).Select(a => D((int)a[0], (float)a[1], (float)a[2], (float)a[3], (float)a[4], (float)a[5])).ToArray());
            }

            var metrics = DetectionEvaluator.Evaluate(truths, detections, 3, maxDetections: @case.GetProperty("maxDetections").GetInt32());

            string at = $"case {index}";
            AssertCoco(@case.GetProperty("map"), metrics.MeanAveragePrecision, at + " AP");
            AssertCoco(@case.GetProperty("map50"), metrics.MeanAveragePrecision50, at + " AP50");
            AssertCoco(@case.GetProperty("map75"), metrics.MeanAveragePrecision75, at + " AP75");
            AssertCoco(@case.GetProperty("ar"), metrics.AverageRecall, at + " AR");
            JsonElement[] perClass = @case.GetProperty("perClass").EnumerateArray().ToArray();
            for (int k = 0; k < 3; k++) AssertCoco(perClass[k], metrics.PerClassAveragePrecision[k] ?? double.NaN, $"{at} class {k}");
            index++;
        }

        Assert.AreEqual(60, index);

        static double[] Numbers(JsonElement array) => array.EnumerateArray().Select(v => v.GetDouble()).ToArray();

        static void AssertCoco(JsonElement expected, double actual, string what)
        {
            if (expected.ValueKind == JsonValueKind.Null) Assert.IsTrue(double.IsNaN(actual), $"{what}: COCOeval has none, we have {actual}");
            else Assert.AreEqual(expected.GetDouble(), actual, Tolerance, what);
        }
    }

    [TestMethod]
    public void BadInputIsRefusedWithItsPlace()
    {
        var one = new IReadOnlyList<DetectionBox>[] { new[] { T(0, 0, 0, 10, 10) } };
        var flipped = new IReadOnlyList<ScoredBox>[] { new[] { D(0, 0.9f, 0, 0, 10, 10), D(0, 0.8f, 10, 0, 5, 10) } };
        var error = Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(one, flipped, 1));
        StringAssert.Contains(error.Message, "Image 0, detection 1");
        StringAssert.Contains(error.Message, "x2 < x1");

        var label = new IReadOnlyList<ScoredBox>[] { new[] { D(3, 0.9f, 0, 0, 10, 10) } };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(one, label, 2)).Message, "label 3");

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(one, Array.Empty<IReadOnlyList<ScoredBox>>(), 1)).Message, "1 images but detections for 0");
    }

    // The data view form: rows in ML.NET's object-detection layout.
    private sealed class ScoredRow
    {
        public uint[] Labels { get; set; } = Array.Empty<uint>();

        public float[] Boxes { get; set; } = Array.Empty<float>();

        public uint[] PredictedLabel { get; set; } = Array.Empty<uint>();

        public float[] Score { get; set; } = Array.Empty<float>();

        public float[] PredictedBoundingBoxes { get; set; } = Array.Empty<float>();
    }

    private static IDataView View(MLContext ml, string[] classes, params ScoredRow[] rows)
    {
        var schema = SchemaDefinition.Create(typeof(ScoredRow));
        var keys = new VectorDataViewType(new KeyDataViewType(typeof(uint), classes.Length));
        foreach (string column in new[] { nameof(ScoredRow.Labels), nameof(ScoredRow.PredictedLabel) })
        {
            schema[column].ColumnType = keys;
            schema[column].AddAnnotation("KeyValues", new VBuffer<ReadOnlyMemory<char>>(classes.Length, classes.Select(c => c.AsMemory()).ToArray()),
                new VectorDataViewType(TextDataViewType.Instance, classes.Length));
        }

        return ml.Data.LoadFromEnumerable(rows, schema);
    }

    [TestMethod]
    public void DataViewFormReadsKeysAndBoxesLikeTheListForm()
    {
        // The class 'dog' (key 2) case of ClassWithoutGroundTruthIsLeftOutOfTheMean: class 0 AP 1, class 1 AP 1/2.
        var ml = new MLContext(seed: 1);
        IDataView view = View(ml, new[] { "cat", "dog" },
            new ScoredRow
            {
                Labels = new uint[] { 1, 2 }, Boxes = new float[] { 0, 0, 10, 10, 20, 20, 30, 30 },
                PredictedLabel = new uint[] { 1, 2, 2 }, Score = new[] { 0.9f, 0.9f, 0.8f }, PredictedBoundingBoxes = new float[] { 0, 0, 10, 10, 60, 60, 70, 70, 20, 20, 30, 30 },
            },
            new ScoredRow());

        var metrics = DetectionEvaluator.Evaluate(view);

        Assert.AreEqual(2, metrics.Images);
        CollectionAssert.AreEqual(new[] { "cat", "dog" }, metrics.ClassNames!.ToArray());
        Assert.AreEqual(1.0, metrics.PerClassAveragePrecision[0]!.Value, Tolerance);
        Assert.AreEqual(0.5, metrics.PerClassAveragePrecision[1]!.Value, Tolerance);
        StringAssert.Contains(metrics.ToString(), "dog");
    }

    [TestMethod]
    public void DataViewErrorsNameTheColumnAndRow()
    {
        var ml = new MLContext(seed: 1);
        var good = new ScoredRow { Labels = new uint[] { 1 }, Boxes = new float[] { 0, 0, 10, 10 } };

        var ragged = View(ml, new[] { "cat" }, good, new ScoredRow { Labels = new uint[] { 1 }, Boxes = new float[] { 0, 0, 10, 10, 3 } });
        string message = Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(ragged)).Message;
        StringAssert.Contains(message, "Column 'Boxes', row 1");
        StringAssert.Contains(message, "multiple of 4");

        var mismatch = View(ml, new[] { "cat" }, good, new ScoredRow { PredictedLabel = new uint[] { 1, 1 }, Score = new[] { 0.5f, 0.4f }, PredictedBoundingBoxes = new float[] { 0, 0, 10, 10 } });
        message = Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(mismatch)).Message;
        StringAssert.Contains(message, "Column 'PredictedBoundingBoxes', row 1: 1 boxes for 2 labels");

        var scores = View(ml, new[] { "cat" }, new ScoredRow { PredictedLabel = new uint[] { 1 }, Score = Array.Empty<float>(), PredictedBoundingBoxes = new float[] { 0, 0, 10, 10 } });
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(scores)).Message, "Column 'Score', row 0");

        var flipped = View(ml, new[] { "cat" }, good, good, new ScoredRow { Labels = new uint[] { 1 }, Boxes = new float[] { 10, 0, 0, 10 } });
        message = Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(flipped)).Message;
        StringAssert.Contains(message, "Column 'Boxes', row 2, box 0");
        StringAssert.Contains(message, "x2 < x1");

        var missing = View(ml, new[] { "cat" }, new ScoredRow { Labels = new uint[] { 0 }, Boxes = new float[] { 0, 0, 10, 10 } });
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(missing)).Message, "Column 'Labels', row 0: label 0 is missing");

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => DetectionEvaluator.Evaluate(missing, boxColumnName: "Box")).Message, "'Box'");
    }
}
