using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.IO;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>
    /// Writes segmentation masks as PNG images to look at: the mask in colour, or the mask blended over its image.
    /// </summary>
    /// <remarks>
    /// Masks are width×height class indices, row-major (as a predicted mask column holds them). Files are written atomically:
    /// to a temporary file in the same folder, then moved over <c>path</c>, so a reader never sees half a file. The output is
    /// always PNG, whatever the extension of <c>path</c>.
    /// </remarks>
    public static class MaskRenderer
    {
        // Hand-picked, well separated colours for classes 1…; class 0 (background) is black.
        private static readonly (byte R, byte G, byte B)[] Table =
        {
            (0, 0, 0), (220, 40, 40), (40, 180, 60), (40, 90, 220), (240, 200, 30), (200, 50, 200), (40, 200, 200), (240, 130, 30),
            (130, 60, 200), (150, 220, 60), (140, 90, 50), (250, 150, 180), (30, 120, 120), (255, 255, 255), (128, 128, 128), (120, 20, 40),
        };

        /// <summary>
        /// Colours for <paramref name="classes"/> classes: class 0 black (background), then a fixed table of 15 well separated colours,
        /// then hues spaced by the golden ratio (alternating two saturation/brightness levels). The same count always gives the same colours.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="classes"/> is negative.</exception>
        public static IReadOnlyList<(byte R, byte G, byte B)> DefaultPalette(int classes)
        {
            if (classes < 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, "The number of classes must be 0 or more.");
            var palette = new (byte R, byte G, byte B)[classes];
            for (int c = 0; c < classes; c++)
            {
                if (c < Table.Length)
                {
                    palette[c] = Table[c];
                    continue;
                }

                int i = c - Table.Length;
                double hue = (0.05 + i * 0.6180339887498949) % 1.0;
                bool even = i % 2 == 0;
                palette[c] = FromHsv(hue, even ? 0.85 : 0.55, even ? 0.95 : 0.75);
            }

            return Array.AsReadOnly(palette);
        }

        /// <summary>Writes <paramref name="mask"/> as a PNG with one palette colour per class.</summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="mask">width×height class indices, row-major.</param>
        /// <param name="width">Mask width in pixels.</param>
        /// <param name="height">Mask height in pixels.</param>
        /// <param name="palette">A colour per class (at least 1 + the largest class in the mask); null for <see cref="DefaultPalette"/>.</param>
        /// <exception cref="ArgumentException">The mask's length is not width×height, the palette is too short, or the folder does not exist.</exception>
        public static void SaveMask(string path, IReadOnlyList<uint> mask, int width, int height, IReadOnlyList<(byte R, byte G, byte B)>? palette = null)
        {
            var colours = CheckMask(path, mask, width, height, palette);
            var rgba = new byte[4 * width * height];
            for (int i = 0; i < mask.Count; i++)
            {
                var (r, g, b) = colours[(int)mask[i]];
                rgba[4 * i] = r;
                rgba[4 * i + 1] = g;
                rgba[4 * i + 2] = b;
                rgba[4 * i + 3] = 255;
            }

            Write(path, rgba, width, height);
        }

        /// <summary>
        /// Writes <paramref name="image"/>, resized bilinearly to <paramref name="width"/>×<paramref name="height"/>, with the mask blended
        /// over it: a pixel of class c ≥ 1 becomes (1 − opacity)·image + opacity·colour(c), rounded; class 0 (background) keeps the image's colour.
        /// </summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="image">The image the mask belongs to (alpha is dropped).</param>
        /// <param name="mask">width×height class indices, row-major.</param>
        /// <param name="width">Mask width in pixels: the output's width.</param>
        /// <param name="height">Mask height in pixels: the output's height.</param>
        /// <param name="opacity">Weight of the class colour, 0 (image only) to 1 (colour only).</param>
        /// <param name="palette">A colour per class (at least 1 + the largest class in the mask); null for <see cref="DefaultPalette"/>.</param>
        /// <exception cref="ArgumentException">A size, the opacity or the palette is invalid, or the folder does not exist.</exception>
        public static void SaveOverlay(string path, MLImage image, IReadOnlyList<uint> mask, int width, int height, double opacity = 0.5,
            IReadOnlyList<(byte R, byte G, byte B)>? palette = null)
        {
            if (image is null) throw new ArgumentNullException(nameof(image));
            var colours = CheckMask(path, mask, width, height, palette);
            CheckOpacity(opacity);
            if (image.Width <= 0 || image.Height <= 0) throw new ArgumentException("The image is empty.", nameof(image));
            var chw = new float[3 * width * height];
            PixelOps.ImageToChw(image, chw, height, width);
            Overlay(path, chw, 3, mask, width, height, opacity, colours);
        }

        /// <summary>
        /// Writes the C×H×W image <paramref name="chwPixels"/> (C = 1 or 3, values 0–255, as the pixel vectors of
        /// <c>ExtractPixels</c> hold them) with the mask blended over it: a pixel of class c ≥ 1 becomes
        /// (1 − opacity)·image + opacity·colour(c), rounded; class 0 (background) keeps the image's colour. Values are clamped to 0–255.
        /// </summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="chwPixels">1×height×width (gray) or 3×height×width (R, G, B planes) finite values.</param>
        /// <param name="mask">width×height class indices, row-major.</param>
        /// <param name="width">Mask and image width in pixels.</param>
        /// <param name="height">Mask and image height in pixels.</param>
        /// <param name="opacity">Weight of the class colour, 0 (image only) to 1 (colour only).</param>
        /// <param name="palette">A colour per class (at least 1 + the largest class in the mask); null for <see cref="DefaultPalette"/>.</param>
        /// <exception cref="ArgumentException">A size, a pixel value, the opacity or the palette is invalid, or the folder does not exist.</exception>
        public static void SaveOverlay(string path, float[] chwPixels, IReadOnlyList<uint> mask, int width, int height, double opacity = 0.5,
            IReadOnlyList<(byte R, byte G, byte B)>? palette = null)
        {
            if (chwPixels is null) throw new ArgumentNullException(nameof(chwPixels));
            var colours = CheckMask(path, mask, width, height, palette);
            CheckOpacity(opacity);
            int plane = width * height;
            if (chwPixels.Length != plane && chwPixels.Length != 3 * plane)
                throw new ArgumentException(
                    $"The image has {chwPixels.Length} values; a {width}×{height} image needs {plane} (gray) or {3 * plane} (R, G, B planes, CHW).",
                    nameof(chwPixels));
            for (int i = 0; i < chwPixels.Length; i++)
                if (!float.IsFinite(chwPixels[i]))
                    throw new ArgumentException(
                        $"Image value {i} (channel {i / plane}, x {i % plane % width}, y {i % plane / width}) is {chwPixels[i]}; pixels must be finite numbers in 0–255.",
                        nameof(chwPixels));
            Overlay(path, chwPixels, chwPixels.Length / plane, mask, width, height, opacity, colours);
        }

        private static void Overlay(string path, float[] chw, int channels, IReadOnlyList<uint> mask, int width, int height, double opacity,
            IReadOnlyList<(byte R, byte G, byte B)> colours)
        {
            int plane = width * height;
            int g = channels == 3 ? plane : 0, b = channels == 3 ? 2 * plane : 0;
            var rgba = new byte[4 * plane];
            for (int i = 0; i < plane; i++)
            {
                double red = Clamp(chw[i]), green = Clamp(chw[g + i]), blue = Clamp(chw[b + i]);
                uint c = mask[i];
                if (c != 0)
                {
                    var colour = colours[(int)c];
                    red = (1 - opacity) * red + opacity * colour.R;
                    green = (1 - opacity) * green + opacity * colour.G;
                    blue = (1 - opacity) * blue + opacity * colour.B;
                }

                rgba[4 * i] = ToByte(red);
                rgba[4 * i + 1] = ToByte(green);
                rgba[4 * i + 2] = ToByte(blue);
                rgba[4 * i + 3] = 255;
            }

            Write(path, rgba, width, height);
        }

        private static double Clamp(float value) => Math.Clamp(value, 0f, 255f);

        private static byte ToByte(double value) => (byte)Math.Clamp(Math.Round(value, MidpointRounding.AwayFromZero), 0, 255);

        private static void CheckOpacity(double opacity)
        {
            if (!(opacity >= 0 && opacity <= 1))
                throw new ArgumentOutOfRangeException(nameof(opacity), opacity, "The opacity must be in [0, 1]: 0 shows only the image, 1 only the class colours.");
        }

        private static IReadOnlyList<(byte R, byte G, byte B)> CheckMask(string path, IReadOnlyList<uint> mask, int width, int height,
            IReadOnlyList<(byte R, byte G, byte B)>? palette)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("Give the path of the PNG file to write.", nameof(path));
            if (mask is null) throw new ArgumentNullException(nameof(mask));
            if (width <= 0 || height <= 0 || (long)width * height > int.MaxValue / 4)
                throw new ArgumentOutOfRangeException(nameof(width), $"The mask size {width}×{height} is not a valid image size.");
            if (mask.Count != width * height)
                throw new ArgumentException(
                    $"The mask has {mask.Count} values; a {width}×{height} mask needs width×height = {width * height} (row-major).", nameof(mask));
            string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
            if (folder is null || !Directory.Exists(folder))
                throw new ArgumentException($"The folder of '{path}' does not exist; create it first.", nameof(path));

            uint max = 0;
            int at = 0;
            for (int i = 0; i < mask.Count; i++)
                if (mask[i] > max)
                {
                    max = mask[i];
                    at = i;
                }

            if (palette is null)
            {
                if (max >= int.MaxValue / 4)
                    throw new ArgumentException($"The mask holds class {max} at pixel (x {at % width}, y {at / width}), too large for a palette.", nameof(mask));
                return DefaultPalette((int)max + 1);
            }

            if (max >= (uint)palette.Count)
                throw new ArgumentException(
                    $"The mask holds class {max} at pixel (x {at % width}, y {at / width}), but the palette has {palette.Count} colours; " +
                    $"give at least {(long)max + 1} (one per class), or pass null for the default palette.", nameof(palette));
            return palette;
        }

        // MLImage picks the encoder from the extension, so the temporary file ends in .png.
        private static void Write(string path, byte[] rgba, int width, int height) => AtomicFile.Write(path, temporary =>
        {
            using var image = MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, rgba);
            image.Save(temporary);
        }, ".tmp.png");

        private static (byte R, byte G, byte B) FromHsv(double hue, double saturation, double value)
        {
            double h = hue * 6;
            int sector = (int)Math.Floor(h) % 6;
            double f = h - Math.Floor(h);
            double p = value * (1 - saturation), q = value * (1 - saturation * f), t = value * (1 - saturation * (1 - f));
            var (r, g, b) = sector switch
            {
                0 => (value, t, p),
                1 => (q, value, p),
                2 => (p, value, t),
                3 => (p, q, value),
                4 => (t, p, value),
                _ => (value, p, q),
            };
            return (ToByte(255 * r), ToByte(255 * g), ToByte(255 * b));
        }
    }
}
