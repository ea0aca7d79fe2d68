using System;
using System.Collections.Generic;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// The anchors of torchvision's one-stage detectors (its <c>AnchorGenerator</c> with RetinaNet's and FCOS's default sizes),
    /// in the order the heads output them: level by level (finest first), row by row, then the anchors of one location.
    /// </summary>
    public static class DetectionAnchors
    {
        private static readonly double[] RetinaNetOctaves = { 1.0, Math.Pow(2, 1.0 / 3), Math.Pow(2, 2.0 / 3) };
        private static readonly float[] RetinaNetRatios = { 0.5f, 1.0f, 2.0f };

        /// <summary>Anchors per feature-map location: 9 for RetinaNet (3 sizes × 3 aspect ratios), 1 for FCOS.</summary>
        public static int PerLocation(DetectorKind kind) => kind switch
        {
            DetectorKind.RetinaNet => 9,
            DetectorKind.Fcos => 1,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown detector kind."),
        };

        /// <summary>The nominal anchor size of pyramid level <paramref name="level"/> (0 = P3): 32·2^level for RetinaNet, 8·2^level for FCOS.</summary>
        public static int BaseSize(DetectorKind kind, int level) => (kind == DetectorKind.RetinaNet ? 32 : 8) << level;

        /// <summary>
        /// The anchors (A × 4, float32, x1 y1 x2 y2 in input pixels) of <paramref name="kind"/> for an input of
        /// <paramref name="imageHeight"/> × <paramref name="imageWidth"/> whose pyramid levels have the feature sizes
        /// <paramref name="levels"/> (finest first). As torchvision: each level's stride is the input size divided (integer
        /// division) by the feature size, per axis; RetinaNet's sizes are s, int(s·2^⅓), int(s·2^⅔) for s = 32·2^level, with
        /// aspect ratios (h/w) 0.5, 1, 2 (ratio outer, size inner); FCOS has one square anchor of size 8·2^level; a cell's anchor
        /// is centred on (x·stride, y·stride) with its half-sizes rounded (half to even).
        /// </summary>
        public static Tensor Create(DetectorKind kind, int imageHeight, int imageWidth, IReadOnlyList<(int Height, int Width)> levels, Device? device = null)
        {
            if (levels is null) throw new ArgumentNullException(nameof(levels));
            if (imageHeight <= 0 || imageWidth <= 0) throw new ArgumentOutOfRangeException(nameof(imageHeight), "The input size must be positive.");
            int perLocation = PerLocation(kind);
            long total = 0;
            foreach (var (h, w) in levels)
            {
                if (h <= 0 || w <= 0 || h > imageHeight || w > imageWidth) throw new ArgumentException($"Level size {h}×{w} does not fit the input {imageHeight}×{imageWidth}.", nameof(levels));
                total += (long)h * w * perLocation;
            }

            var values = new float[checked(total * 4)];
            long k = 0;
            for (int level = 0; level < levels.Count; level++)
            {
                float[] cell = CellAnchors(kind, level);
                var (height, width) = levels[level];
                int strideY = imageHeight / height, strideX = imageWidth / width;
                for (int y = 0; y < height; y++)
                {
                    for (int x = 0; x < width; x++)
                    {
                        float cx = x * strideX, cy = y * strideY;
                        for (int a = 0; a < perLocation; a++)
                        {
                            values[k++] = cx + cell[4 * a];
                            values[k++] = cy + cell[4 * a + 1];
                            values[k++] = cx + cell[4 * a + 2];
                            values[k++] = cy + cell[4 * a + 3];
                        }
                    }
                }
            }

            Tensor anchors = torch.tensor(values, new long[] { total, 4 }, ScalarType.Float32);
            if (device is null || device.type == DeviceType.CPU) return anchors;
            using (anchors) return anchors.to(device);
        }

        /// <summary>The anchor counts of each level (cells × anchors per location), finest first.</summary>
        public static int[] CountsPerLevel(DetectorKind kind, IReadOnlyList<(int Height, int Width)> levels)
        {
            if (levels is null) throw new ArgumentNullException(nameof(levels));
            var counts = new int[levels.Count];
            for (int i = 0; i < counts.Length; i++) counts[i] = checked(levels[i].Height * levels[i].Width * PerLocation(kind));
            return counts;
        }

        // The zero-centred anchors of one location of a level, as torchvision computes them in float32: h = √ratio, w = 1/h,
        // half-sizes w·size/2 and h·size/2 rounded half to even.
        private static float[] CellAnchors(DetectorKind kind, int level)
        {
            int baseSize = BaseSize(kind, level);
            float[] sizes = kind == DetectorKind.RetinaNet
                ? Array.ConvertAll(RetinaNetOctaves, o => (float)(int)(baseSize * o))
                : new[] { (float)baseSize };
            float[] ratios = kind == DetectorKind.RetinaNet ? RetinaNetRatios : new[] { 1.0f };
            var cell = new float[4 * sizes.Length * ratios.Length];
            int i = 0;
            foreach (float ratio in ratios)
            {
                float hRatio = MathF.Sqrt(ratio);
                float wRatio = 1f / hRatio;
                foreach (float size in sizes)
                {
                    float w = wRatio * size, h = hRatio * size;
                    cell[i++] = HalfRounded(-w);
                    cell[i++] = HalfRounded(-h);
                    cell[i++] = HalfRounded(w);
                    cell[i++] = HalfRounded(h);
                }
            }

            return cell;
        }

        private static float HalfRounded(float v) => MathF.Round(v / 2f, MidpointRounding.ToEven);
    }
}
