using System;
using System.Collections.Generic;
using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Detection;
using SkiaSharp;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// An image with boxes drawn over it as a PNG: the detections in orange, each labelled with its class and score, and, when
    /// given, the true objects in green, labelled with their class, with a legend at the foot. Boxes are 2-pixel outlines; a
    /// small image is scaled up (to at least <see cref="MinimumSide"/> pixels on its shorter side) so that labels stay readable.
    /// Text uses the DejaVu Sans font embedded in this package. The same input always gives the same bytes.
    /// </summary>
    public static class DetectionOverlay
    {
        /// <summary>The shorter side, in pixels, a smaller image is scaled up to.</summary>
        public const int MinimumSide = 256;

        private const float TextSize = 11, LineWidth = 2, LabelPadding = 2, LegendHeight = 20;

        /// <summary>The colour of the detections' boxes and labels.</summary>
        public static readonly (byte R, byte G, byte B) PredictedColour = (255, 120, 0);

        /// <summary>The colour of the true boxes and labels.</summary>
        public static readonly (byte R, byte G, byte B) TruthColour = (40, 220, 60);

        /// <summary>Writes <paramref name="image"/> with <paramref name="detections"/> and, if given, the true objects drawn over it.</summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="image">The image (its own pixels: boxes are in its pixel coordinates).</param>
        /// <param name="detections">The detections (0-based labels into <paramref name="classNames"/>); drawn best last, so on top.</param>
        /// <param name="classNames">The class names, by 0-based label.</param>
        /// <param name="truth">The true objects, or null to draw the detections only (and no legend).</param>
        /// <exception cref="ArgumentException">The path is invalid, the image is empty, or a label is not a class index.</exception>
        public static void Save(string path, MLImage image, IReadOnlyList<ScoredBox> detections, IReadOnlyList<string> classNames, IReadOnlyList<DetectionBox>? truth = null)
        {
            if (image is null) throw new ArgumentNullException(nameof(image));
            if (detections is null) throw new ArgumentNullException(nameof(detections));
            if (classNames is null) throw new ArgumentNullException(nameof(classNames));
            PngFile.CheckPath(path);
            if (image.Width <= 0 || image.Height <= 0) throw new ArgumentException("The image is empty.", nameof(image));
            foreach (ScoredBox box in detections) CheckLabel(box.Label, classNames, nameof(detections));
            if (truth is not null)
                foreach (DetectionBox box in truth) CheckLabel(box.Label, classNames, nameof(truth));

            float scale = Math.Max(1f, (float)MinimumSide / Math.Min(image.Width, image.Height));
            int width = (int)Math.Round(image.Width * scale), height = (int)Math.Round(image.Height * scale);
            int pageHeight = height + (truth is null ? 0 : (int)LegendHeight);
            using var surface = SKSurface.Create(new SKImageInfo(width, pageHeight, SKColorType.Rgba8888, SKAlphaType.Premul));
            SKCanvas canvas = surface.Canvas;
            canvas.Clear(SKColors.White);
            using (SKBitmap bitmap = Picture(image))
            using (SKImage picture = SKImage.FromBitmap(bitmap))
                canvas.DrawImage(picture, SKRect.Create(0, 0, width, height), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));

            using var font = new SKFont(ChartFont.Typeface, TextSize);
            if (truth is not null)
            {
                foreach (DetectionBox box in truth)
                {
                    if (box.IsCrowd) continue;
                    DrawBox(canvas, font, Colour(TruthColour), box.X1 * scale, box.Y1 * scale, box.X2 * scale, box.Y2 * scale, classNames[box.Label], width, height, below: true);
                }
            }

            // Lowest score first, so the best detection is drawn on top.
            var ordered = new List<ScoredBox>(detections);
            ordered.Sort((a, b) => a.Score.CompareTo(b.Score));
            foreach (ScoredBox box in ordered)
            {
                string label = $"{classNames[box.Label]} {box.Score.ToString("0.00", CultureInfo.InvariantCulture)}";
                DrawBox(canvas, font, Colour(PredictedColour), box.X1 * scale, box.Y1 * scale, box.X2 * scale, box.Y2 * scale, label, width, height, below: false);
            }

            if (truth is not null) DrawLegend(canvas, font, height);
            using SKImage snapshot = surface.Snapshot();
            using SKData png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
            PngFile.Write(path, png.ToArray());
        }

        private static void CheckLabel(int label, IReadOnlyList<string> classNames, string parameter)
        {
            if (label < 0 || label >= classNames.Count)
                throw new ArgumentException($"Label {label} is not a class index 0–{classNames.Count - 1}.", parameter);
        }

        private static SKColor Colour((byte R, byte G, byte B) c) => new(c.R, c.G, c.B);

        // A 2-pixel outline and a filled tag with the text: above the box for detections, below its top edge (inside) for the truth,
        // so that the two tags of a well-found object do not cover each other; moved inside the image where it would leave it.
        private static void DrawBox(SKCanvas canvas, SKFont font, SKColor colour, float x1, float y1, float x2, float y2, string text, int width, int height, bool below)
        {
            if (!(float.IsFinite(x1) && float.IsFinite(y1) && float.IsFinite(x2) && float.IsFinite(y2))) return;
            using var stroke = new SKPaint { Color = colour, Style = SKPaintStyle.Stroke, StrokeWidth = LineWidth, IsAntialias = false };
            canvas.DrawRect(SKRect.Create(x1, y1, Math.Max(0, x2 - x1), Math.Max(0, y2 - y1)), stroke);

            float textWidth = ChartFont.Measure(text, TextSize), tagWidth = (float)Math.Ceiling(textWidth) + 2 * LabelPadding + 2, tagHeight = TextSize + 2 * LabelPadding + 1;
            float left = Math.Clamp(x1 - LineWidth / 2, 0, Math.Max(0, width - tagWidth));
            float top = below ? y1 + LineWidth / 2 : y1 - LineWidth / 2 - tagHeight;
            top = Math.Clamp(top, 0, Math.Max(0, height - tagHeight));
            using var fill = new SKPaint { Color = colour, Style = SKPaintStyle.Fill };
            canvas.DrawRect(SKRect.Create(left, top, tagWidth, tagHeight), fill);
            using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            canvas.DrawText(text, left + LabelPadding, top + LabelPadding + TextSize - 1, SKTextAlign.Left, font, ink);
        }

        private static void DrawLegend(SKCanvas canvas, SKFont font, int top)
        {
            using var ink = new SKPaint { Color = new SKColor(30, 30, 30), IsAntialias = true };
            float x = 6, y = top + (LegendHeight - 10) / 2;
            foreach (var (colour, name) in new[] { (PredictedColour, "predicted"), (TruthColour, "true") })
            {
                using var fill = new SKPaint { Color = Colour(colour), Style = SKPaintStyle.Fill };
                canvas.DrawRect(SKRect.Create(x, y, 10, 10), fill);
                canvas.DrawText(name, x + 14, y + 9, SKTextAlign.Left, font, ink);
                x += 14 + ChartFont.Measure(name, TextSize) + 16;
            }
        }

        // The image's pixels as an opaque RGBA bitmap (alpha dropped).
        private static SKBitmap Picture(MLImage image)
        {
            bool bgra = image.PixelFormat switch
            {
                MLPixelFormat.Bgra32 => true,
                MLPixelFormat.Rgba32 => false,
                _ => throw new ArgumentException($"The image's pixel format {image.PixelFormat} is not supported; give a Bgra32 or Rgba32 image.", nameof(image)),
            };
            ReadOnlySpan<byte> source = image.Pixels;
            int w = image.Width, h = image.Height, stride = source.Length / h;
            var pixels = new SKColor[w * h];
            for (int y = 0; y < h; y++)
            {
                ReadOnlySpan<byte> row = source.Slice(y * stride, 4 * w);
                for (int x = 0; x < w; x++)
                {
                    byte first = row[4 * x], second = row[4 * x + 1], third = row[4 * x + 2];
                    pixels[y * w + x] = bgra ? new SKColor(third, second, first) : new SKColor(first, second, third);
                }
            }

            var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque)) { Pixels = pixels };
            return bitmap;
        }
    }
}
