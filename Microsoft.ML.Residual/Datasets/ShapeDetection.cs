using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.IO;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>
    /// A generated detection dataset: PNG images of solid circles, squares and triangles in random bright colours on dark
    /// noisy backgrounds, with boxes that fit each drawn shape exactly. Small enough for a detector to learn on a CPU in
    /// minutes; made for samples, tests and smoke runs.
    /// </summary>
    public static class ShapeDetection
    {
        /// <summary>The classes, by label: circle, square, triangle.</summary>
        public static IReadOnlyList<string> ClassNames { get; } = new[] { "circle", "square", "triangle" };

        /// <summary>The COCO annotation file <see cref="Generate"/> writes next to the images.</summary>
        public const string AnnotationFileName = "annotations.json";

        /// <summary>
        /// Writes <paramref name="count"/> images <c>shapes-00000.png</c>, … and <see cref="AnnotationFileName"/> (COCO JSON,
        /// readable by <see cref="CocoDetection.Load"/>) into <paramref name="directory"/>, each file whole or not at all.
        /// Each image holds 1 to <paramref name="maxObjects"/> shapes (fewer when 30 random places are all taken) whose sides
        /// are about 9 % to 47 % of the image (12–60 pixels at 128), placed so that two shapes' boxes overlap by an IoU of at
        /// most 0.2; a later shape may hide a
        /// corner of an earlier one, whose box stays the box of the whole shape. The same seed gives the same files.
        /// </summary>
        /// <param name="directory">The folder to write (created if needed).</param>
        /// <param name="count">The number of images.</param>
        /// <param name="imageSize">The images' width and height in pixels (at least 32).</param>
        /// <param name="seed">The seed of the random generator.</param>
        /// <param name="maxObjects">The most shapes in one image (at least 1).</param>
        /// <returns>The dataset: the images' full paths and their shapes' boxes.</returns>
        public static DetectionDataset Generate(string directory, int count, int imageSize = 128, int seed = 0, int maxObjects = 3)
        {
            if (string.IsNullOrWhiteSpace(directory)) throw new ArgumentException("Give the folder to write the images to.", nameof(directory));
            if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "Generate at least one image.");
            if (imageSize < 32) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "Images must be at least 32 pixels wide, so that the smallest shapes are visible.");
            if (maxObjects < 1) throw new ArgumentOutOfRangeException(nameof(maxObjects), maxObjects, "Allow at least one shape per image.");
            string root = Path.GetFullPath(directory);
            Directory.CreateDirectory(root);

            var random = new Random(seed);
            int minSide = Math.Max(4, (int)Math.Round(imageSize * 12 / 128.0)), maxSide = (int)Math.Round(imageSize * 60 / 128.0);
            var examples = new List<DetectionExample>(count);
            var rgba = new byte[imageSize * imageSize * 4];
            for (int n = 0; n < count; n++)
            {
                // Background: a dark grey with per-pixel, per-channel noise.
                int grey = random.Next(25, 85);
                for (int i = 0; i < imageSize * imageSize; i++)
                {
                    for (int c = 0; c < 3; c++) rgba[4 * i + c] = (byte)(grey + random.Next(-15, 16));
                    rgba[4 * i + 3] = 255;
                }

                var objects = new List<DetectionBox>();
                int shapes = random.Next(1, maxObjects + 1);
                for (int s = 0; s < shapes; s++)
                {
                    int label = random.Next(ClassNames.Count);
                    int side = random.Next(minSide, maxSide + 1);
                    var (r, g, b) = BrightColour(random);
                    for (int attempt = 0; attempt < 30; attempt++)
                    {
                        int x0 = random.Next(0, imageSize - side + 1), y0 = random.Next(0, imageSize - side + 1);
                        var candidate = new DetectionBox(label, x0, y0, x0 + side, y0 + side);
                        if (objects.Exists(o => Iou(o, candidate) > 0.2)) continue;
                        objects.Add(Draw(rgba, imageSize, label, x0, y0, side, r, g, b));
                        break;
                    }
                }

                string path = Path.Combine(root, $"shapes-{n.ToString("D5", CultureInfo.InvariantCulture)}.png");
                WritePng(path, rgba, imageSize);
                examples.Add(new DetectionExample(path, imageSize, imageSize, objects));
            }

            var dataset = new DetectionDataset(ClassNames, examples);
            CocoDetection.Save(dataset, Path.Combine(root, AnnotationFileName));
            return dataset;
        }

        // Paints the shape in the side × side square at (x0, y0), pixel by pixel (a pixel is in when its centre is), and
        // returns the box of the painted pixels.
        private static DetectionBox Draw(byte[] rgba, int size, int label, int x0, int y0, int side, byte r, byte g, byte b)
        {
            int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
            double half = side / 2.0, cx = x0 + half, cy = y0 + half;
            for (int y = y0; y < y0 + side; y++)
            {
                for (int x = x0; x < x0 + side; x++)
                {
                    double px = x + 0.5, py = y + 0.5;
                    bool inside = label switch
                    {
                        0 => (px - cx) * (px - cx) + (py - cy) * (py - cy) <= half * half, // circle
                        1 => true, // square
                        _ => Math.Abs(px - cx) <= (py - y0) / 2, // triangle, apex up, base the square's bottom side
                    };
                    if (!inside) continue;
                    int i = 4 * (y * size + x);
                    rgba[i] = r;
                    rgba[i + 1] = g;
                    rgba[i + 2] = b;
                    minX = Math.Min(minX, x);
                    minY = Math.Min(minY, y);
                    maxX = Math.Max(maxX, x);
                    maxY = Math.Max(maxY, y);
                }
            }

            return new DetectionBox(label, minX, minY, maxX + 1, maxY + 1);
        }

        private static (byte R, byte G, byte B) BrightColour(Random random)
        {
            // A saturated, bright hue: one channel full, one low, one anywhere between.
            double hue = random.NextDouble() * 6, low = 40 + random.Next(40), high = 200 + random.Next(56);
            int sector = (int)hue;
            double f = hue - sector, mid = low + (high - low) * (sector % 2 == 0 ? f : 1 - f);
            var (r, g, b) = sector switch
            {
                0 => (high, mid, low),
                1 => (mid, high, low),
                2 => (low, high, mid),
                3 => (low, mid, high),
                4 => (mid, low, high),
                _ => (high, low, mid),
            };
            return ((byte)r, (byte)g, (byte)b);
        }

        private static double Iou(DetectionBox a, DetectionBox b)
        {
            double w = Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1), h = Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1);
            if (w <= 0 || h <= 0) return 0;
            return w * h / (a.Area + b.Area - w * h);
        }

        // MLImage picks the encoder from the extension, so the temporary file ends in .png.
        private static void WritePng(string path, byte[] rgba, int size) => AtomicFile.Write(path, temporary =>
        {
            using var image = MLImage.CreateFromPixels(size, size, MLPixelFormat.Rgba32, rgba);
            image.Save(temporary);
        }, ".tmp.png");
    }
}
