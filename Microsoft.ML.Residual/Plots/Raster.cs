using System;
using System.IO;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.IO;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>An opaque colour.</summary>
    internal readonly record struct Rgb(byte R, byte G, byte B)
    {
        public static readonly Rgb White = new(255, 255, 255);

        /// <summary>Relative luminance as WCAG defines it for contrast: 0 (black) to 1 (white), from the linearised sRGB channels.</summary>
        public double Luminance => 0.2126 * Linear(R) + 0.7152 * Linear(G) + 0.0722 * Linear(B);

        /// <summary>Whichever of <paramref name="dark"/> and white contrasts more with this colour as a background (WCAG contrast ratio).</summary>
        public Rgb ReadableOn(Rgb dark)
        {
            double background = Luminance + 0.05;
            double onWhite = (White.Luminance + 0.05) / background, onDark = background / (dark.Luminance + 0.05);
            return onWhite > onDark ? White : dark;
        }

        private static double Linear(byte channel)
        {
            double c = channel / 255.0;
            return c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
        }

        /// <summary>The colour <paramref name="t"/> of the way from <paramref name="from"/> to <paramref name="to"/> (t in [0, 1]).</summary>
        public static Rgb Blend(Rgb from, Rgb to, double t)
        {
            t = Math.Clamp(t, 0, 1);
            return new Rgb(Mix(from.R, to.R), Mix(from.G, to.G), Mix(from.B, to.B));

            byte Mix(byte a, byte b) => (byte)Math.Round(a + (b - a) * t, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>
    /// An RGBA image in memory (opaque, row-major, 4 bytes per pixel) to draw charts into, with a clip rectangle that every drawing
    /// call respects, and writing as PNG.
    /// </summary>
    internal sealed class Raster
    {
        private readonly byte[] rgba;
        private int clipLeft, clipTop, clipRight, clipBottom; // right and bottom exclusive

        public Raster(int width, int height, Rgb background)
        {
            if (width <= 0 || height <= 0 || (long)width * height > int.MaxValue / 4)
                throw new ArgumentOutOfRangeException(nameof(width), $"{width}×{height} is not a valid image size.");
            Width = width;
            Height = height;
            rgba = new byte[4 * width * height];
            ResetClip();
            FillRect(0, 0, width, height, background);
        }

        public int Width { get; }

        public int Height { get; }

        /// <summary>The pixels, row-major RGBA (the raster's own buffer, not a copy).</summary>
        public byte[] Rgba => rgba;

        /// <summary>Restricts drawing to x in [left, right) and y in [top, bottom), within the image.</summary>
        public void SetClip(int left, int top, int right, int bottom)
        {
            clipLeft = Math.Clamp(left, 0, Width);
            clipTop = Math.Clamp(top, 0, Height);
            clipRight = Math.Clamp(right, clipLeft, Width);
            clipBottom = Math.Clamp(bottom, clipTop, Height);
        }

        /// <summary>Allows drawing on the whole image again.</summary>
        public void ResetClip() => SetClip(0, 0, Width, Height);

        public void SetPixel(int x, int y, Rgb colour)
        {
            if (x < clipLeft || x >= clipRight || y < clipTop || y >= clipBottom) return;
            int o = 4 * (y * Width + x);
            rgba[o] = colour.R;
            rgba[o + 1] = colour.G;
            rgba[o + 2] = colour.B;
            rgba[o + 3] = 255;
        }

        public Rgb GetPixel(int x, int y)
        {
            if (x < 0 || x >= Width || y < 0 || y >= Height)
                throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}) is outside the {Width}×{Height} image.");
            int o = 4 * (y * Width + x);
            return new Rgb(rgba[o], rgba[o + 1], rgba[o + 2]);
        }

        /// <summary>Fills the rectangle with top left corner (x, y), <paramref name="width"/> wide and <paramref name="height"/> tall.</summary>
        public void FillRect(int x, int y, int width, int height, Rgb colour)
        {
            int left = Math.Max(x, clipLeft), top = Math.Max(y, clipTop);
            int right = (int)Math.Min((long)x + width, clipRight), bottom = (int)Math.Min((long)y + height, clipBottom);
            for (int row = top; row < bottom; row++)
            {
                int o = 4 * (row * Width + left);
                for (int column = left; column < right; column++, o += 4)
                {
                    rgba[o] = colour.R;
                    rgba[o + 1] = colour.G;
                    rgba[o + 2] = colour.B;
                    rgba[o + 3] = 255;
                }
            }
        }

        /// <summary>Draws the outline of a rectangle, <paramref name="thickness"/> pixels wide, inside its bounds.</summary>
        public void DrawRect(int x, int y, int width, int height, int thickness, Rgb colour)
        {
            FillRect(x, y, width, thickness, colour);
            FillRect(x, y + height - thickness, width, thickness, colour);
            FillRect(x, y, thickness, height, colour);
            FillRect(x + width - thickness, y, thickness, height, colour);
        }

        /// <summary>
        /// Draws a line from (x0, y0) to (x1, y1), <paramref name="thickness"/> pixels thick: a thickness×thickness square stamped at every
        /// step of Bresenham's line, centred on it (for even thicknesses the extra pixel goes right and down).
        /// </summary>
        public void DrawLine(int x0, int y0, int x1, int y1, int thickness, Rgb colour)
        {
            int before = (thickness - 1) / 2;
            // Nothing to do if the line's bounding box misses the clip rectangle (this also bounds the loop for far-off points).
            if (Math.Max(x0, x1) + thickness < clipLeft || Math.Min(x0, x1) - thickness >= clipRight ||
                Math.Max(y0, y1) + thickness < clipTop || Math.Min(y0, y1) - thickness >= clipBottom)
                return;
            int dx = Math.Abs(x1 - x0), dy = -Math.Abs(y1 - y0);
            int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
            int error = dx + dy;
            while (true)
            {
                FillRect(x0 - before, y0 - before, thickness, thickness, colour);
                if (x0 == x1 && y0 == y1) break;
                int twice = 2 * error;
                if (twice >= dy)
                {
                    error += dy;
                    x0 += sx;
                }

                if (twice <= dx)
                {
                    error += dx;
                    y0 += sy;
                }
            }
        }

        /// <summary>Fills the disc of the pixels within <paramref name="radius"/> (plus a half pixel) of (cx, cy).</summary>
        public void FillDisc(int cx, int cy, int radius, Rgb colour)
        {
            int limit = radius * radius + radius;
            for (int dy = -radius; dy <= radius; dy++)
                for (int dx = -radius; dx <= radius; dx++)
                    if (dx * dx + dy * dy <= limit)
                        SetPixel(cx + dx, cy + dy, colour);
        }

        /// <summary>
        /// Writes the image as a PNG, atomically: to a temporary file in the same folder, then moved over <paramref name="path"/>
        /// (see <see cref="AtomicFile.Write"/>). Call <see cref="CheckPath"/> first.
        /// </summary>
        // MLImage picks the encoder from the extension, so the temporary file ends in .png.
        public void SavePng(string path) => AtomicFile.Write(path, temporary =>
        {
            using var image = MLImage.CreateFromPixels(Width, Height, MLPixelFormat.Rgba32, rgba);
            image.Save(temporary);
        }, ".tmp.png");

        /// <summary>Checks that <paramref name="path"/> names a file in an existing folder.</summary>
        /// <exception cref="ArgumentException">The path is empty or a folder, or its folder does not exist.</exception>
        public static void CheckPath(string path)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("Give the path of the PNG file to write.", nameof(path));
            if (Directory.Exists(path) || Path.GetFileName(Path.GetFullPath(path)).Length == 0)
                throw new ArgumentException($"'{path}' is a folder; give the path of the PNG file to write in it.", nameof(path));
            string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
            if (folder is null || !Directory.Exists(folder))
                throw new ArgumentException($"The folder of '{path}' does not exist; create it first.", nameof(path));
        }
    }
}
