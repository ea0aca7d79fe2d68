using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// COCO's box detection metrics (area range "all"), computed by <see cref="DetectionEvaluator"/>: average precision
    /// averaged over the IoU thresholds 0.50, 0.55, …, 0.95 and over the classes that have ground truth.
    /// </summary>
    public sealed class DetectionMetrics
    {
        internal DetectionMetrics(double map, double map50, double map75, double recall, IReadOnlyList<double?> perClass, IReadOnlyList<double?> perClass50,
            int images, int maxDetections, IReadOnlyList<string>? classNames)
        {
            MeanAveragePrecision = map;
            MeanAveragePrecision50 = map50;
            MeanAveragePrecision75 = map75;
            AverageRecall = recall;
            PerClassAveragePrecision = perClass;
            PerClassAveragePrecision50 = perClass50;
            Images = images;
            MaxDetections = maxDetections;
            ClassNames = classNames;
        }

        /// <summary>
        /// COCO's AP (mAP@[.50:.95]): the mean over IoU thresholds 0.50:0.05:0.95 and over the classes with ground truth of the
        /// 101-point interpolated average precision. NaN when no class has ground truth.
        /// </summary>
        public double MeanAveragePrecision { get; }

        /// <summary>AP at IoU 0.50 (Pascal VOC's threshold, with COCO's 101-point interpolation). NaN when no class has ground truth.</summary>
        public double MeanAveragePrecision50 { get; }

        /// <summary>AP at IoU 0.75. NaN when no class has ground truth.</summary>
        public double MeanAveragePrecision75 { get; }

        /// <summary>
        /// COCO's AR@<see cref="MaxDetections"/>: the recall reached with at most that many detections per image and class,
        /// averaged over the IoU thresholds and the classes with ground truth. NaN when no class has ground truth.
        /// </summary>
        public double AverageRecall { get; }

        /// <summary>Each class's AP@[.50:.95]; null for a class with no (non-crowd) ground-truth object in any image.</summary>
        public IReadOnlyList<double?> PerClassAveragePrecision { get; }

        /// <summary>Each class's AP at IoU 0.50; null for a class with no (non-crowd) ground-truth object in any image.</summary>
        public IReadOnlyList<double?> PerClassAveragePrecision50 { get; }

        /// <summary>Number of images evaluated.</summary>
        public int Images { get; }

        /// <summary>The detections kept per image and class, highest scores first (COCO's maxDets; 100 by default).</summary>
        public int MaxDetections { get; }

        /// <summary>The class names, when known.</summary>
        public IReadOnlyList<string>? ClassNames { get; }

        /// <summary>A table of the metrics and of each class's AP.</summary>
        public override string ToString()
        {
            static string F(double? v) => v is double d && !double.IsNaN(d) ? d.ToString("0.000", CultureInfo.InvariantCulture) : "–";
            var text = new StringBuilder();
            text.AppendLine(CultureInfo.InvariantCulture, $"Detection metrics over {Images} images (COCO, area all, at most {MaxDetections} detections per image and class)");
            text.AppendLine(CultureInfo.InvariantCulture, $"  AP @[IoU .50:.95]  {F(MeanAveragePrecision)}");
            text.AppendLine(CultureInfo.InvariantCulture, $"  AP @[IoU .50]      {F(MeanAveragePrecision50)}");
            text.AppendLine(CultureInfo.InvariantCulture, $"  AP @[IoU .75]      {F(MeanAveragePrecision75)}");
            text.AppendLine(CultureInfo.InvariantCulture, $"  AR @{MaxDetections,-14} {F(AverageRecall)}");
            int width = Math.Max(5, Enumerable.Range(0, PerClassAveragePrecision.Count).Select(ClassName).DefaultIfEmpty("").Max(n => n.Length));
            text.AppendLine(CultureInfo.InvariantCulture, $"  {"class".PadRight(width)}  AP     AP50");
            for (int k = 0; k < PerClassAveragePrecision.Count; k++)
                text.AppendLine(CultureInfo.InvariantCulture, $"  {ClassName(k).PadRight(width)}  {F(PerClassAveragePrecision[k]),-5}  {F(PerClassAveragePrecision50[k])}{(PerClassAveragePrecision[k] is null ? "  (no ground truth)" : "")}");
            return text.ToString().TrimEnd();
        }

        private string ClassName(int k) => ClassNames is not null && k < ClassNames.Count ? ClassNames[k] : k.ToString(CultureInfo.InvariantCulture);
    }
}
