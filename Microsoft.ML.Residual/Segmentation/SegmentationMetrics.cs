using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>
    /// Pixel-level quality of a segmentation, computed from a confusion matrix of pixels counted by [true class, predicted class].
    /// Ignored pixels (the mask's ignore index, or key 0 in a key-typed mask) are not counted.
    /// </summary>
    /// <remarks>
    /// For class c with TP true positives, FP false positives and FN false negatives: IoU = TP / (TP + FP + FN) and
    /// Dice = 2·TP / (2·TP + FP + FN) (so Dice = 2·IoU / (1 + IoU) per class). A class absent from both truth and prediction has no
    /// union: its IoU and Dice are <see cref="double.NaN"/> and it does not enter the means. A class only predicted has IoU 0.
    /// </remarks>
    public sealed class SegmentationMetrics
    {
        private readonly long[,] confusion;
        private readonly double[] iou;
        private readonly double[] dice;

        private SegmentationMetrics(long[,] confusion, long ignoredPixels)
        {
            this.confusion = confusion;
            IgnoredPixels = ignoredPixels;
            int n = confusion.GetLength(0);
            NumClasses = n;
            iou = new double[n];
            dice = new double[n];
            var truth = new long[n];
            var predicted = new long[n];
            long correct = 0;
            for (int t = 0; t < n; t++)
            {
                for (int p = 0; p < n; p++)
                {
                    truth[t] += confusion[t, p];
                    predicted[p] += confusion[t, p];
                }

                correct += confusion[t, t];
            }

            double iouSum = 0, diceSum = 0;
            int present = 0;
            for (int c = 0; c < n; c++)
            {
                long tp = confusion[c, c];
                long union = truth[c] + predicted[c] - tp;
                if (union == 0)
                {
                    iou[c] = dice[c] = double.NaN;
                    continue;
                }

                iou[c] = (double)tp / union;
                dice[c] = 2.0 * tp / (truth[c] + predicted[c]);
                iouSum += iou[c];
                diceSum += dice[c];
                present++;
            }

            TruthPixels = Array.AsReadOnly(truth);
            PredictedPixels = Array.AsReadOnly(predicted);
            CountedPixels = Sum(truth);
            MeanIoU = present == 0 ? double.NaN : iouSum / present;
            MeanDice = present == 0 ? double.NaN : diceSum / present;
            PixelAccuracy = CountedPixels == 0 ? double.NaN : (double)correct / CountedPixels;
            PerClassIoU = Array.AsReadOnly(iou);
            PerClassDice = Array.AsReadOnly(dice);
        }

        /// <summary>Mean IoU (Jaccard index) over the classes with a non-empty union (present in truth or prediction); NaN when there is none.</summary>
        public double MeanIoU { get; }

        /// <summary>IoU of each class; <see cref="double.NaN"/> for a class absent from both truth and prediction.</summary>
        public IReadOnlyList<double> PerClassIoU { get; }

        /// <summary>Mean Dice coefficient (F1) over the classes with a non-empty union; NaN when there is none.</summary>
        public double MeanDice { get; }

        /// <summary>Dice coefficient of each class; <see cref="double.NaN"/> for a class absent from both truth and prediction.</summary>
        public IReadOnlyList<double> PerClassDice { get; }

        /// <summary>Correctly classified pixels / counted pixels (ignored pixels excluded); NaN when no pixel was counted.</summary>
        public double PixelAccuracy { get; }

        /// <summary>
        /// Pixel counts indexed [true class, predicted class], <see cref="NumClasses"/>×<see cref="NumClasses"/>. Each read returns a
        /// new copy: changing it does not change these metrics.
        /// </summary>
        public long[,] ConfusionMatrix => (long[,])confusion.Clone();

        /// <summary>Number of classes: the side of the confusion matrix.</summary>
        public int NumClasses { get; }

        /// <summary>Pixels not counted because the truth marked them ignored.</summary>
        public long IgnoredPixels { get; }

        /// <summary>Pixels counted (the sum of the confusion matrix).</summary>
        public long CountedPixels { get; }

        /// <summary>Counted pixels of each true class (the confusion matrix's row sums).</summary>
        public IReadOnlyList<long> TruthPixels { get; }

        /// <summary>Counted pixels of each predicted class (the confusion matrix's column sums).</summary>
        public IReadOnlyList<long> PredictedPixels { get; }

        /// <summary>Metrics of a confusion matrix of pixel counts indexed [true class, predicted class]; the matrix is copied.</summary>
        /// <param name="confusionMatrix">A square matrix, at least 1×1, of counts 0 or more.</param>
        /// <param name="ignoredPixels">Pixels left out of the matrix because they were ignored (reported only).</param>
        /// <exception cref="ArgumentException">The matrix is not square, is empty, or holds a negative count; or <paramref name="ignoredPixels"/> is negative.</exception>
        public static SegmentationMetrics FromConfusionMatrix(long[,] confusionMatrix, long ignoredPixels = 0)
        {
            if (confusionMatrix is null) throw new ArgumentNullException(nameof(confusionMatrix));
            int n = confusionMatrix.GetLength(0);
            if (n == 0 || confusionMatrix.GetLength(1) != n)
                throw new ArgumentException(
                    $"The confusion matrix must be square with at least one class, indexed [true class, predicted class]; it is {n}×{confusionMatrix.GetLength(1)}.",
                    nameof(confusionMatrix));
            if (ignoredPixels < 0) throw new ArgumentOutOfRangeException(nameof(ignoredPixels), ignoredPixels, "The ignored pixel count must be 0 or more.");
            for (int t = 0; t < n; t++)
                for (int p = 0; p < n; p++)
                    if (confusionMatrix[t, p] < 0)
                        throw new ArgumentException($"The confusion matrix holds a negative count {confusionMatrix[t, p]} at [true {t}, predicted {p}]; counts must be 0 or more.", nameof(confusionMatrix));
            return new SegmentationMetrics((long[,])confusionMatrix.Clone(), ignoredPixels);
        }

        /// <summary>A summary (mean IoU, mean Dice, pixel accuracy, pixel counts) and a table of IoU, Dice and pixel counts per class.</summary>
        public override string ToString()
        {
            var culture = CultureInfo.InvariantCulture;
            var text = new StringBuilder();
            text.Append(culture, $"Segmentation metrics: {NumClasses} classes, {CountedPixels} pixels counted, {IgnoredPixels} ignored").AppendLine();
            text.Append(culture, $"  Mean IoU {Format(MeanIoU)}   Mean Dice {Format(MeanDice)}   Pixel accuracy {Format(PixelAccuracy)}").AppendLine();
            text.Append(culture, $"  {"class",6} {"IoU",8} {"Dice",8} {"truth px",12} {"predicted px",13}").AppendLine();
            for (int c = 0; c < NumClasses; c++)
            {
                text.Append(culture, $"  {c,6} {Format(iou[c]),8} {Format(dice[c]),8} {TruthPixels[c],12} {PredictedPixels[c],13}");
                if (double.IsNaN(iou[c])) text.Append("   absent (not in the means)");
                text.AppendLine();
            }

            return text.ToString();
        }

        private static string Format(double value) => double.IsNaN(value) ? "-" : value.ToString("0.0000", CultureInfo.InvariantCulture);

        private static long Sum(long[] values)
        {
            long sum = 0;
            foreach (long v in values) sum += v;
            return sum;
        }
    }
}
