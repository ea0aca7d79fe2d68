using System;
using System.Collections.Generic;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// Random changes to a training image that move its boxes with it: a horizontal flip and a zoom (scale jitter). The
    /// image keeps its size: zoomed in (scale &gt; 1) it is a random crop of the enlarged image; zoomed out (scale &lt; 1) the
    /// shrunk image sits at a random place on a <see cref="FillValue"/> background. Boxes are mapped exactly, clipped to the
    /// image, and dropped when a side is then shorter than <see cref="MinimumBoxSide"/>.
    /// </summary>
    public sealed class DetectionAugmentation
    {
        /// <summary>The chance of mirroring the image left to right. Default 0.5.</summary>
        public double HorizontalFlipProbability { get; set; } = 0.5;

        /// <summary>
        /// The range of the zoom factor, drawn uniformly; (1, 1) for no zoom. Default (0.75, 1.25). The same factor applies to
        /// both axes, so shapes keep their aspect ratio.
        /// </summary>
        public (double Min, double Max) ScaleRange { get; set; } = (0.75, 1.25);

        /// <summary>
        /// The value (0–255, every channel) of pixels a zoom-out uncovers. Default 114, a middle grey close to the ImageNet mean
        /// (about 0 after the usual normalisation), as YOLO's letterboxing uses.
        /// </summary>
        public float FillValue { get; set; } = 114;

        /// <summary>Boxes narrower or shorter than this many pixels after clipping to the image are dropped. Default 2.</summary>
        public float MinimumBoxSide { get; set; } = 2;

        /// <summary>No change: images and boxes pass through as they are.</summary>
        public static DetectionAugmentation None => new() { HorizontalFlipProbability = 0, ScaleRange = (1, 1) };

        /// <summary>The defaults: flip with probability 0.5, zoom by 0.75–1.25, fill 114, boxes under 2 pixels dropped.</summary>
        public static DetectionAugmentation Default => new();

        /// <summary>Whether these settings change nothing.</summary>
        internal bool IsIdentity => HorizontalFlipProbability <= 0 && ScaleRange.Min == 1 && ScaleRange.Max == 1;

        /// <summary>Refuses settings out of range, naming the setting.</summary>
        /// <exception cref="ArgumentException">A setting is out of range.</exception>
        public void Validate()
        {
            if (!(HorizontalFlipProbability >= 0 && HorizontalFlipProbability <= 1))
                throw new ArgumentException($"{nameof(HorizontalFlipProbability)} is {HorizontalFlipProbability}; give a probability from 0 to 1.");
            if (!(ScaleRange.Min > 0 && ScaleRange.Min <= ScaleRange.Max && double.IsFinite(ScaleRange.Max)))
                throw new ArgumentException($"{nameof(ScaleRange)} is ({ScaleRange.Min}, {ScaleRange.Max}); give 0 < min ≤ max, e.g. (0.75, 1.25), or (1, 1) for no zoom.");
            if (!float.IsFinite(FillValue)) throw new ArgumentException($"{nameof(FillValue)} must be a finite number (0–255).");
            if (!(MinimumBoxSide >= 0 && float.IsFinite(MinimumBoxSide))) throw new ArgumentException($"{nameof(MinimumBoxSide)} is {MinimumBoxSide}; give 0 or more pixels.");
        }
    }

    /// <summary>Applies a <see cref="DetectionAugmentation"/> to a C×H×W float image and its boxes.</summary>
    internal static class BoxAugmentation
    {
        /// <summary>
        /// Writes an augmented copy of <paramref name="source"/> (C×H×W, 0–255) into <paramref name="destination"/> (same size)
        /// and returns the boxes (x1, y1, x2, y2 per box, pixels) and labels that remain, moved with the image. Draws from
        /// <paramref name="random"/> in a fixed order (flip, scale, x offset, y offset), so a seeded generator repeats.
        /// </summary>
        public static (float[] Boxes, int[] Labels) Apply(DetectionAugmentation options, Random random, float[] source, float[] destination, int channels, int height, int width,
            float[] boxes, int[] labels)
        {
            bool flip = random.NextDouble() < options.HorizontalFlipProbability;
            double scale = options.ScaleRange.Min + (options.ScaleRange.Max - options.ScaleRange.Min) * random.NextDouble();
            double ux = random.NextDouble(), uy = random.NextDouble();
            // The scaled image's top-left corner: anywhere that keeps the output covered (zoom in) or the image inside (zoom out).
            double spanX = width - scale * width, spanY = height - scale * height;
            double offsetX = Math.Min(0, spanX) + Math.Abs(spanX) * ux, offsetY = Math.Min(0, spanY) + Math.Abs(spanY) * uy;
            return Transform(source, destination, channels, height, width, boxes, labels, flip, scale, offsetX, offsetY, options.FillValue, options.MinimumBoxSide);
        }

        /// <summary>
        /// The transform itself: a point (x, y) of the source goes to (s·x + offsetX, s·y + offsetY), then, when
        /// <paramref name="flip"/>, to (W − x, y). Each output pixel is sampled bilinearly at the source point its centre comes
        /// from (half-pixel centres, as <see cref="Data.PixelOps.Bilinear"/>), <paramref name="fill"/> where that point is outside the source.
        /// </summary>
        public static (float[] Boxes, int[] Labels) Transform(float[] source, float[] destination, int channels, int height, int width, float[] boxes, int[] labels,
            bool flip, double scale, double offsetX, double offsetY, float fill, float minimumSide)
        {
            if (boxes.Length != 4 * labels.Length)
                throw new ArgumentException($"{boxes.Length} box numbers for {labels.Length} labels; give x1, y1, x2, y2 per label.", nameof(boxes));
            int plane = height * width;
            if (source.Length < channels * plane || destination.Length < channels * plane)
                throw new ArgumentException($"The images must hold {channels}×{height}×{width} values.", nameof(source));

            // Per output column and row: the two source indices and the weight of the second, or −1 outside the source.
            var (x0, x1, fx) = Taps(width, scale, offsetX, flip);
            var (y0, y1, fy) = Taps(height, scale, offsetY, false);
            for (int c = 0; c < channels; c++)
            {
                int channel = c * plane;
                for (int y = 0; y < height; y++)
                {
                    int row = channel + y * width;
                    if (y0[y] < 0)
                    {
                        Array.Fill(destination, fill, row, width);
                        continue;
                    }

                    int top = channel + y0[y] * width, bottom = channel + y1[y] * width;
                    float wy = fy[y];
                    for (int x = 0; x < width; x++)
                    {
                        if (x0[x] < 0)
                        {
                            destination[row + x] = fill;
                            continue;
                        }

                        float wx = fx[x];
                        float upper = source[top + x0[x]] + (source[top + x1[x]] - source[top + x0[x]]) * wx;
                        float lower = source[bottom + x0[x]] + (source[bottom + x1[x]] - source[bottom + x0[x]]) * wx;
                        destination[row + x] = upper + (lower - upper) * wy;
                    }
                }
            }

            var keptBoxes = new List<float>(boxes.Length);
            var keptLabels = new List<int>(labels.Length);
            for (int i = 0; i < labels.Length; i++)
            {
                double bx1 = scale * boxes[4 * i] + offsetX, by1 = scale * boxes[4 * i + 1] + offsetY;
                double bx2 = scale * boxes[4 * i + 2] + offsetX, by2 = scale * boxes[4 * i + 3] + offsetY;
                if (flip) (bx1, bx2) = (width - bx2, width - bx1);
                bx1 = Math.Clamp(bx1, 0, width);
                bx2 = Math.Clamp(bx2, 0, width);
                by1 = Math.Clamp(by1, 0, height);
                by2 = Math.Clamp(by2, 0, height);
                if (bx2 - bx1 < minimumSide || by2 - by1 < minimumSide || bx2 <= bx1 || by2 <= by1) continue;
                keptBoxes.Add((float)bx1);
                keptBoxes.Add((float)by1);
                keptBoxes.Add((float)bx2);
                keptBoxes.Add((float)by2);
                keptLabels.Add(labels[i]);
            }

            return (keptBoxes.ToArray(), keptLabels.ToArray());
        }

        private static (int[] I0, int[] I1, float[] Fraction) Taps(int size, double scale, double offset, bool flip)
        {
            var i0 = new int[size];
            var i1 = new int[size];
            var fraction = new float[size];
            for (int o = 0; o < size; o++)
            {
                int before = flip ? size - 1 - o : o; // the output pixel before the mirror
                double u = (before + 0.5 - offset) / scale; // the source point its centre comes from
                if (u < 0 || u > size)
                {
                    i0[o] = -1;
                    continue;
                }

                double p = Math.Clamp(u - 0.5, 0, size - 1);
                int floor = (int)Math.Floor(p);
                i0[o] = floor;
                i1[o] = Math.Min(floor + 1, size - 1);
                fraction[o] = (float)(p - floor);
            }

            return (i0, i1, fraction);
        }
    }
}
