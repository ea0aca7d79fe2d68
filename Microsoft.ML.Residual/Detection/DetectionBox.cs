namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// A ground-truth object: its 0-based class and its box in pixels of the original image (continuous coordinates, COCO
    /// style: width = <see cref="X2"/> − <see cref="X1"/>). A crowd box marks a region of many objects that detections may
    /// fall in without counting as right or wrong.
    /// </summary>
    /// <param name="Label">The 0-based class index.</param>
    /// <param name="X1">Left edge.</param>
    /// <param name="Y1">Top edge.</param>
    /// <param name="X2">Right edge.</param>
    /// <param name="Y2">Bottom edge.</param>
    /// <param name="IsCrowd">Whether the box is a crowd region (COCO's <c>iscrowd</c>), ignored by the evaluation.</param>
    public readonly record struct DetectionBox(int Label, float X1, float Y1, float X2, float Y2, bool IsCrowd = false)
    {
        /// <summary>Width × height (0 for an empty box).</summary>
        public double Area => BoxGeometry.Area(X1, Y1, X2, Y2);
    }

    /// <summary>A detection: its 0-based class, its confidence and its box in pixels of the original image.</summary>
    /// <param name="Label">The 0-based class index.</param>
    /// <param name="Score">The confidence; detections are ranked by it.</param>
    /// <param name="X1">Left edge.</param>
    /// <param name="Y1">Top edge.</param>
    /// <param name="X2">Right edge.</param>
    /// <param name="Y2">Bottom edge.</param>
    public readonly record struct ScoredBox(int Label, float Score, float X1, float Y1, float X2, float Y2)
    {
        /// <summary>Width × height (0 for an empty box).</summary>
        public double Area => BoxGeometry.Area(X1, Y1, X2, Y2);
    }

    /// <summary>Areas and overlaps of x1, y1, x2, y2 boxes, in float64 as COCO's evaluation computes them.</summary>
    internal static class BoxGeometry
    {
        public static double Area(double x1, double y1, double x2, double y2) => System.Math.Max(0.0, x2 - x1) * System.Math.Max(0.0, y2 - y1);

        /// <summary>
        /// Intersection over union of a detection and a ground-truth box; for a crowd ground truth, intersection over the
        /// detection's area (the part of the detection inside the crowd region). 0 when they do not overlap.
        /// </summary>
        public static double Overlap(in ScoredBox detection, in DetectionBox truth)
        {
            double w = System.Math.Min((double)detection.X2, truth.X2) - System.Math.Max((double)detection.X1, truth.X1);
            if (w <= 0) return 0;
            double h = System.Math.Min((double)detection.Y2, truth.Y2) - System.Math.Max((double)detection.Y1, truth.Y1);
            if (h <= 0) return 0;
            double intersection = w * h;
            double union = truth.IsCrowd ? detection.Area : detection.Area + truth.Area - intersection;
            return intersection / union;
        }
    }
}
