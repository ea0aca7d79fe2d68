using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// COCO's bounding-box evaluation (cocodataset.org/#detection-eval, the semantics of pycocotools' <c>COCOeval</c> with
    /// area range "all"), written from its definition:
    /// <list type="bullet">
    /// <item>per image and class, detections are ranked by score (ties keep their input order) and the first
    /// <c>maxDetections</c> kept;</item>
    /// <item>at each IoU threshold 0.50, 0.55, …, 0.95, each detection in rank order matches the unmatched ground truth of
    /// highest IoU at or above the threshold (later ground truths win ties); crowd boxes come after the others, are tried
    /// only when no ordinary one matched, may absorb any number of detections, and overlap a detection by intersection over
    /// the detection's area; a detection on a crowd box counts neither as a true nor as a false positive;</item>
    /// <item>per class, all images' detections are ranked by score, precision is made non-increasing from the right and
    /// sampled at the 101 recalls 0, 0.01, …, 1 (0 beyond the highest recall reached), and AP is their mean;</item>
    /// <item>a class with no non-crowd ground truth in any image has no AP and is left out of the means.</item>
    /// </list>
    /// </summary>
    public static partial class DetectionEvaluator
    {
        private const int RecallPoints = 101;

        // np.linspace's values, which COCOeval uses: start + i·step with step = (stop − start)/(n − 1), the last exactly stop.
        private static readonly double[] IouThresholds = Linspace(0.5, 0.95, 10);
        private static readonly double[] RecallThresholds = Linspace(0.0, 1.0, RecallPoints);

        // np.spacing(1): pycocotools adds it to the denominator of the precision.
        private const double Spacing1 = 2.220446049250313e-16;

        /// <summary>Evaluates the detections of each image against its ground truth.</summary>
        /// <param name="truths">Per image, its ground-truth objects (0-based labels).</param>
        /// <param name="detections">Per image (the same images in the same order), its detections.</param>
        /// <param name="numClasses">The number of classes; every label must be below it.</param>
        /// <param name="classNames">The class names, for the metrics' table (optional).</param>
        /// <param name="maxDetections">The detections kept per image and class, highest scores first (COCO: 100).</param>
        /// <exception cref="ArgumentException">The lists differ in length, a label is out of range, a score is NaN, or a box has x2 &lt; x1 or y2 &lt; y1.</exception>
        public static DetectionMetrics Evaluate(IReadOnlyList<IReadOnlyList<DetectionBox>> truths, IReadOnlyList<IReadOnlyList<ScoredBox>> detections, int numClasses,
            IReadOnlyList<string>? classNames = null, int maxDetections = 100)
        {
            if (truths is null) throw new ArgumentNullException(nameof(truths));
            if (detections is null) throw new ArgumentNullException(nameof(detections));
            if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "Give the number of classes (at least 1).");
            if (maxDetections < 1) throw new ArgumentOutOfRangeException(nameof(maxDetections), maxDetections, "Keep at least one detection per image and class.");
            if (truths.Count != detections.Count)
                throw new ArgumentException($"There are ground truths for {truths.Count} images but detections for {detections.Count}; give one list of each per image, in the same order.", nameof(detections));
            if (classNames is not null && classNames.Count != numClasses)
                throw new ArgumentException($"{classNames.Count} class names were given for {numClasses} classes.", nameof(classNames));
            Validate(truths, detections, numClasses);

            int thresholds = IouThresholds.Length;
            var perClass = new double?[numClasses];
            var perClass50 = new double?[numClasses];
            var perClass75 = new double?[numClasses];
            var recalls = new double?[numClasses];
            for (int k = 0; k < numClasses; k++)
            {
                // Per image (in image order): the kept detections' scores, and at each threshold whether each matched and whether it was ignored.
                var scores = new List<double>();
                var matched = Enumerable.Range(0, thresholds).Select(_ => new List<bool>()).ToArray();
                var ignored = Enumerable.Range(0, thresholds).Select(_ => new List<bool>()).ToArray();
                int truthCount = 0;
                for (int image = 0; image < truths.Count; image++)
                    truthCount += MatchImage(truths[image], detections[image], k, maxDetections, scores, matched, ignored);
                if (truthCount == 0) continue;

                // All images' detections by score, ties in image order then rank order (a stable sort, as COCOeval's mergesort).
                int[] order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
                var precision = new double[thresholds][];
                var recall = new double[thresholds];
                for (int t = 0; t < thresholds; t++)
                    (precision[t], recall[t]) = InterpolatedPrecision(order, matched[t], ignored[t], truthCount);

                perClass[k] = precision.Average(p => p.Average());
                perClass50[k] = precision[0].Average();
                perClass75[k] = precision[5].Average();
                recalls[k] = recall.Average();
            }

            static double Mean(double?[] values) => values.Any(v => v.HasValue) ? values.Where(v => v.HasValue).Average(v => v!.Value) : double.NaN;
            return new DetectionMetrics(Mean(perClass), Mean(perClass50), Mean(perClass75), Mean(recalls), perClass, perClass50, truths.Count, maxDetections, classNames?.ToArray());
        }

        /// <summary>
        /// Matches one image's detections of class <paramref name="label"/> at every threshold and appends them; returns the
        /// number of its non-crowd ground truths of that class.
        /// </summary>
        private static int MatchImage(IReadOnlyList<DetectionBox> imageTruths, IReadOnlyList<ScoredBox> imageDetections, int label, int maxDetections,
            List<double> scores, List<bool>[] matched, List<bool>[] ignored)
        {
            // Ground truths with the ordinary ones first, crowds after, each in input order.
            var gts = imageTruths.Where(g => g.Label == label && !g.IsCrowd).Concat(imageTruths.Where(g => g.Label == label && g.IsCrowd)).ToArray();
            var dts = imageDetections.Where(d => d.Label == label).OrderByDescending(d => d.Score).Take(maxDetections).ToArray();
            int ordinary = gts.Count(g => !g.IsCrowd);
            if (dts.Length == 0) return ordinary;

            var iou = new double[dts.Length, gts.Length];
            for (int d = 0; d < dts.Length; d++)
                for (int g = 0; g < gts.Length; g++)
                    iou[d, g] = BoxGeometry.Overlap(dts[d], gts[g]);

            foreach (ScoredBox d in dts) scores.Add(d.Score);
            var taken = new bool[gts.Length];
            for (int t = 0; t < IouThresholds.Length; t++)
            {
                Array.Clear(taken);
                for (int d = 0; d < dts.Length; d++)
                {
                    double best = Math.Min(IouThresholds[t], 1 - 1e-10);
                    int m = -1;
                    for (int g = 0; g < gts.Length; g++)
                    {
                        if (taken[g] && !gts[g].IsCrowd) continue;
                        if (m > -1 && !gts[m].IsCrowd && gts[g].IsCrowd) break; // matched an ordinary box: crowds cannot take it
                        if (iou[d, g] < best) continue;
                        best = iou[d, g];
                        m = g;
                    }

                    if (m > -1) taken[m] = true;
                    matched[t].Add(m > -1);
                    ignored[t].Add(m > -1 && gts[m].IsCrowd);
                }
            }

            return ordinary;
        }

        /// <summary>The precision at the 101 recall thresholds, and the recall reached, of one class at one IoU threshold.</summary>
        private static (double[] Precision, double Recall) InterpolatedPrecision(int[] order, List<bool> matched, List<bool> ignored, int truthCount)
        {
            int n = order.Length;
            var recall = new double[n];
            var precision = new double[n];
            double tp = 0, fp = 0;
            for (int i = 0; i < n; i++)
            {
                int d = order[i];
                if (!ignored[d])
                {
                    if (matched[d]) tp++;
                    else fp++;
                }

                recall[i] = tp / truthCount;
                precision[i] = tp / (tp + fp + Spacing1);
            }

            for (int i = n - 1; i > 0; i--)
                if (precision[i] > precision[i - 1]) precision[i - 1] = precision[i];

            // At each recall threshold r, the precision at the first rank whose recall reaches r; 0 where none does.
            var sampled = new double[RecallPoints];
            int rank = 0;
            for (int r = 0; r < RecallPoints; r++)
            {
                while (rank < n && recall[rank] < RecallThresholds[r]) rank++;
                if (rank == n) break;
                sampled[r] = precision[rank];
            }

            return (sampled, n > 0 ? recall[n - 1] : 0);
        }

        private static void Validate(IReadOnlyList<IReadOnlyList<DetectionBox>> truths, IReadOnlyList<IReadOnlyList<ScoredBox>> detections, int numClasses)
        {
            for (int image = 0; image < truths.Count; image++)
            {
                IReadOnlyList<DetectionBox> boxes = truths[image] ?? throw new ArgumentException($"Image {image} has a null list of ground truths; give an empty list for an image without objects.", nameof(truths));
                for (int b = 0; b < boxes.Count; b++)
                {
                    DetectionBox box = boxes[b];
                    if (box.Label < 0 || box.Label >= numClasses)
                        throw new ArgumentException($"Image {image}, ground truth {b}: label {box.Label} is not a class index 0–{numClasses - 1}.", nameof(truths));
                    CheckBox(box.X1, box.Y1, box.X2, box.Y2, $"Image {image}, ground truth {b}", nameof(truths));
                }

                IReadOnlyList<ScoredBox> found = detections[image] ?? throw new ArgumentException($"Image {image} has a null list of detections; give an empty list for an image without detections.", nameof(detections));
                for (int b = 0; b < found.Count; b++)
                {
                    ScoredBox box = found[b];
                    if (box.Label < 0 || box.Label >= numClasses)
                        throw new ArgumentException($"Image {image}, detection {b}: label {box.Label} is not a class index 0–{numClasses - 1}.", nameof(detections));
                    if (float.IsNaN(box.Score))
                        throw new ArgumentException($"Image {image}, detection {b}: the score is NaN.", nameof(detections));
                    CheckBox(box.X1, box.Y1, box.X2, box.Y2, $"Image {image}, detection {b}", nameof(detections));
                }
            }
        }

        internal static void CheckBox(float x1, float y1, float x2, float y2, string where, string parameter)
        {
            if (!float.IsFinite(x1) || !float.IsFinite(y1) || !float.IsFinite(x2) || !float.IsFinite(y2))
                throw new ArgumentException($"{where}: the box ({x1}, {y1}, {x2}, {y2}) has a coordinate that is not a finite number.", parameter);
            if (x2 < x1 || y2 < y1)
                throw new ArgumentException($"{where}: the box ({x1}, {y1}, {x2}, {y2}) has x2 < x1 or y2 < y1; boxes are x1, y1, x2, y2 (corners, not x, y, width, height).", parameter);
        }

        private static double[] Linspace(double start, double stop, int count)
        {
            double step = (stop - start) / (count - 1);
            var values = new double[count];
            for (int i = 0; i < count; i++) values[i] = i * step + start;
            values[count - 1] = stop;
            return values;
        }
    }
}
