using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Interpretation;
using SkiaSharp;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// Grad-CAM maps drawn as PNG pages: one image with its overlay, a grid of overlays, the images of largest loss and the
    /// class pairs most confused (fastai's <c>plot_top_losses</c> and <c>most_confused</c>). An overlay is the image with the map
    /// blended over it in a blue (no evidence) to red (strongest evidence) scale, which a bar at the foot of each page explains;
    /// each tile says which class the map is for, what the model predicted and, for labelled images, the true class and the loss.
    /// Text uses the DejaVu Sans font embedded in this package. The same maps always give the same bytes.
    /// </summary>
    public static class ExplanationPages
    {
        private const int Margin = 16, Gap = 12, LineHeight = 16, TitleHeight = 30, HeadingHeight = 24, LegendHeight = 40;
        private const float TextSize = 11, TitleSize = 18, HeadingSize = 14;

        /// <summary>The weight of the map's colour over the image.</summary>
        private const double Opacity = 0.5;

        // The colour scale: dark blue, blue, cyan, yellow, red, dark red at 0, 1/8, 3/8, 5/8, 7/8 and 1 (a "jet" scale).
        private static readonly (double At, byte R, byte G, byte B)[] Scale =
        {
            (0, 0, 0, 140), (0.125, 0, 0, 255), (0.375, 0, 255, 255), (0.625, 255, 255, 0), (0.875, 255, 0, 0), (1, 140, 0, 0),
        };

        /// <summary>Writes one image beside its overlay, titled with the file name, the class explained and the prediction.</summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="map">The map and the image it belongs to.</param>
        /// <param name="tileSize">The side, in pixels, each of the two pictures is scaled to fit.</param>
        /// <exception cref="ArgumentException">The path or the tile size is invalid.</exception>
        public static void SaveOverlay(string path, ClassActivationMap map, int tileSize = 256)
        {
            if (map is null) throw new ArgumentNullException(nameof(map));
            PngFile.CheckPath(path);
            CheckTileSize(tileSize);
            string title = map.Source is string source ? ShortName(source) : "Grad-CAM";
            string[] lines = { $"Grad-CAM for {map.ClassName}", $"predicted {map.PredictedClassName} ({Percent(map.Scores[map.PredictedIndex])})" };
            var tiles = new[] { new Tile(map, false, new[] { "image" }), new Tile(map, true, lines) };
            Draw(path, title, new[] { new Section(null, tiles) }, columns: 2, tileSize);
        }

        /// <summary>Writes the overlays of <paramref name="maps"/> in a grid, each captioned with its file, its class and the prediction.</summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="title">The page's title.</param>
        /// <param name="maps">The maps, in reading order.</param>
        /// <param name="columns">Tiles per row.</param>
        /// <param name="tileSize">The side, in pixels, each overlay is scaled to fit.</param>
        /// <exception cref="ArgumentException">The path, the columns or the tile size is invalid, or there are no maps.</exception>
        public static void SaveGrid(string path, string title, IReadOnlyList<ClassActivationMap> maps, int columns = 4, int tileSize = 160)
        {
            CheckPage(path, maps, columns, tileSize);
            var tiles = maps.Select(m => new Tile(m, true, Caption(m, null, null))).ToList();
            Draw(path, title ?? string.Empty, new[] { new Section(null, tiles) }, columns, tileSize);
        }

        /// <summary>
        /// Writes the images of largest loss (<see cref="ClassificationInterpretation.TopLosses"/>), largest first, each captioned
        /// with its predicted and true class, its loss and the probability of its true class, as fastai's <c>plot_top_losses</c>.
        /// </summary>
        /// <exception cref="ArgumentException">The path, the columns or the tile size is invalid, or there are no images.</exception>
        public static void SaveTopLosses(string path, IReadOnlyList<TopLoss> losses, IReadOnlyList<string> classNames, int columns = 4, int tileSize = 160)
        {
            if (losses is null) throw new ArgumentNullException(nameof(losses));
            if (classNames is null) throw new ArgumentNullException(nameof(classNames));
            CheckPage(path, losses.Select(l => l.Map).ToList(), columns, tileSize);
            var tiles = losses.Select(l => new Tile(l.Map, true, Caption(l.Map, (classNames[l.Actual], l.Actual), l.Loss))).ToList();
            Draw(path, "Top losses: predicted / actual / loss / probability of actual", new[] { new Section(null, tiles) }, columns, tileSize);
        }

        /// <summary>
        /// Writes the class pairs most confused (<see cref="ClassificationInterpretation.MostConfused(IReadOnlyList{int}, IReadOnlyList{int}, int)"/>), one row per pair headed
        /// "actual → predicted: n images", with up to <paramref name="examples"/> of those images (the most confident mistakes first).
        /// </summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <param name="pairs">The pairs, in the order to draw them.</param>
        /// <param name="maps">The maps of the labelled images the pairs were counted on.</param>
        /// <param name="actual">Each image's true class.</param>
        /// <param name="classNames">The model's class names.</param>
        /// <param name="examples">Images per pair.</param>
        /// <param name="tileSize">The side, in pixels, each overlay is scaled to fit.</param>
        /// <exception cref="ArgumentException">The path, the examples or the tile size is invalid, or there is no pair.</exception>
        public static void SaveMostConfused(string path, IReadOnlyList<ConfusedPair> pairs, IReadOnlyList<ClassActivationMap> maps, IReadOnlyList<int> actual,
            IReadOnlyList<string> classNames, int examples = 4, int tileSize = 160)
        {
            if (pairs is null) throw new ArgumentNullException(nameof(pairs));
            if (maps is null) throw new ArgumentNullException(nameof(maps));
            if (actual is null) throw new ArgumentNullException(nameof(actual));
            if (classNames is null) throw new ArgumentNullException(nameof(classNames));
            PngFile.CheckPath(path);
            CheckTileSize(tileSize);
            if (examples < 1) throw new ArgumentOutOfRangeException(nameof(examples), examples, "examples must be at least 1.");
            if (pairs.Count == 0) throw new ArgumentException("There are no confused pairs to draw: every image was classified correctly.", nameof(pairs));
            if (maps.Count != actual.Count) throw new ArgumentException($"There are {maps.Count} maps but {actual.Count} true classes.", nameof(actual));
            var sections = pairs.Select(pair =>
            {
                var tiles = Enumerable.Range(0, maps.Count)
                    .Where(i => actual[i] == pair.Actual && maps[i].PredictedIndex == pair.Predicted)
                    .OrderByDescending(i => maps[i].Scores[pair.Predicted]).ThenBy(i => i)
                    .Take(examples)
                    .Select(i => new Tile(maps[i], true, Caption(maps[i], (classNames[actual[i]], actual[i]), null)))
                    .ToList();
                string heading = $"{classNames[pair.Actual]} → {classNames[pair.Predicted]}: {pair.Count} image{(pair.Count == 1 ? string.Empty : "s")}";
                return new Section(heading, tiles);
            }).ToList();
            Draw(path, "Most confused: actual → predicted", sections, examples, tileSize);
        }

        /// <summary>The colour of map value <paramref name="value"/> (clamped to [0, 1]) on the pages' scale.</summary>
        internal static (byte R, byte G, byte B) Colour(double value)
        {
            value = double.IsFinite(value) ? Math.Clamp(value, 0, 1) : 0;
            int upper = 1;
            while (upper < Scale.Length - 1 && Scale[upper].At < value) upper++;
            var (a, b) = (Scale[upper - 1], Scale[upper]);
            double t = (value - a.At) / (b.At - a.At);
            static byte Mix(byte from, byte to, double t) => (byte)Math.Round(from + (to - from) * t);
            return (Mix(a.R, b.R, t), Mix(a.G, b.G, t), Mix(a.B, b.B, t));
        }

        private sealed record Tile(ClassActivationMap Map, bool WithMap, IReadOnlyList<string> Lines);

        private sealed record Section(string? Heading, IReadOnlyList<Tile> Tiles);

        // The file, the prediction (and for a labelled image its true class, with the loss and the true class's probability when
        // given), and the class the map is for.
        private static string[] Caption(ClassActivationMap map, (string Name, int Index)? actual, double? loss)
        {
            var lines = new List<string>();
            if (map.Source is string source) lines.Add(ShortName(source));
            string predicted = $"predicted {map.PredictedClassName} ({Percent(map.Scores[map.PredictedIndex])})";
            if (actual is not (string name, int index))
            {
                lines.Add(predicted);
            }
            else if (loss is double l)
            {
                lines.Add($"{map.PredictedClassName} / {name}");
                lines.Add($"loss {l.ToString("0.00", CultureInfo.InvariantCulture)} / {Percent(map.Scores[index])}");
            }
            else
            {
                lines.Add(predicted);
                lines.Add($"actual {name}");
            }

            lines.Add($"map of {map.ClassName}");
            return lines.ToArray();
        }

        // The file and its folder (a class folder's name tells the class): "rose/017.jpg".
        private static string ShortName(string path)
        {
            string folder = Path.GetFileName(Path.GetDirectoryName(path) ?? string.Empty);
            return folder.Length == 0 ? Path.GetFileName(path) : $"{folder}/{Path.GetFileName(path)}";
        }

        private static string Percent(double p) => p.ToString("0.#%", CultureInfo.InvariantCulture);

        private static void CheckPage(string path, IReadOnlyList<ClassActivationMap> maps, int columns, int tileSize)
        {
            if (maps is null) throw new ArgumentNullException(nameof(maps));
            PngFile.CheckPath(path);
            CheckTileSize(tileSize);
            if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "columns must be at least 1.");
            if (maps.Count == 0) throw new ArgumentException("There are no maps to draw; give at least one.", nameof(maps));
        }

        private static void CheckTileSize(int tileSize)
        {
            if (tileSize is < 16 or > 2048) throw new ArgumentOutOfRangeException(nameof(tileSize), tileSize, "tileSize must be 16 to 2048 pixels.");
        }

        private static void Draw(string path, string title, IReadOnlyList<Section> sections, int columns, int tileSize)
        {
            int lines = sections.SelectMany(s => s.Tiles).Select(t => t.Lines.Count).DefaultIfEmpty(0).Max();
            int tileHeight = tileSize + 4 + lines * LineHeight;
            int width = 2 * Margin + columns * tileSize + (columns - 1) * Gap;
            int height = Margin + TitleHeight + LegendHeight + Margin
                + sections.Sum(s => (s.Heading is null ? 0 : HeadingHeight) + Math.Max(1, (s.Tiles.Count + columns - 1) / columns) * (tileHeight + Gap));
            using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            SKCanvas canvas = surface.Canvas;
            canvas.Clear(SKColors.White);
            using var titleFont = new SKFont(ChartFont.Typeface, TitleSize);
            using var headingFont = new SKFont(ChartFont.Typeface, HeadingSize);
            using var textFont = new SKFont(ChartFont.Typeface, TextSize);
            using var ink = new SKPaint { Color = new SKColor(30, 30, 30), IsAntialias = true };
            canvas.DrawText(ChartFont.Truncate(title, width - 2 * Margin, TitleSize), Margin, Margin + TitleSize, SKTextAlign.Left, titleFont, ink);

            float y = Margin + TitleHeight;
            foreach (Section section in sections)
            {
                if (section.Heading is string heading)
                {
                    canvas.DrawText(ChartFont.Truncate(heading, width - 2 * Margin, HeadingSize), Margin, y + HeadingSize + 4, SKTextAlign.Left, headingFont, ink);
                    y += HeadingHeight;
                }

                for (int i = 0; i < section.Tiles.Count; i++)
                {
                    float x = Margin + i % columns * (tileSize + Gap), top = y + i / columns * (tileHeight + Gap);
                    DrawTile(canvas, section.Tiles[i], x, top, tileSize, textFont, ink);
                }

                y += Math.Max(1, (section.Tiles.Count + columns - 1) / columns) * (tileHeight + Gap);
            }

            DrawLegend(canvas, Margin, y + 8, Math.Min(width - 2 * Margin, 420), textFont, ink);
            using SKImage image = surface.Snapshot();
            using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
            PngFile.Write(path, png.ToArray());
        }

        private static void DrawTile(SKCanvas canvas, Tile tile, float x, float y, int size, SKFont font, SKPaint ink)
        {
            ClassActivationMap map = tile.Map;
            using SKBitmap bitmap = Picture(map, tile.WithMap);
            float scale = Math.Min((float)size / map.Width, (float)size / map.Height);
            float w = map.Width * scale, h = map.Height * scale;
            var target = SKRect.Create(x + (size - w) / 2, y + (size - h) / 2, w, h);
            using SKImage picture = SKImage.FromBitmap(bitmap);
            canvas.DrawImage(picture, target, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));
            for (int i = 0; i < tile.Lines.Count; i++)
                canvas.DrawText(ChartFont.Truncate(tile.Lines[i], size, TextSize), x, y + size + 4 + (i + 1) * LineHeight - 4, SKTextAlign.Left, font, ink);
        }

        // The image as the network saw it (gray for one channel), with the map blended over it when asked.
        private static SKBitmap Picture(ClassActivationMap map, bool withMap)
        {
            int plane = map.Width * map.Height;
            bool rgb = map.Channels >= 3;
            var bitmap = new SKBitmap(new SKImageInfo(map.Width, map.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            var pixels = new SKColor[plane];
            for (int i = 0; i < plane; i++)
            {
                double r = Clamp(map.Pixels[i]), g = rgb ? Clamp(map.Pixels[plane + i]) : r, b = rgb ? Clamp(map.Pixels[2 * plane + i]) : r;
                if (withMap)
                {
                    var (cr, cg, cb) = Colour(map.Heatmap[i]);
                    (r, g, b) = ((1 - Opacity) * r + Opacity * cr, (1 - Opacity) * g + Opacity * cg, (1 - Opacity) * b + Opacity * cb);
                }

                pixels[i] = new SKColor((byte)Math.Round(r), (byte)Math.Round(g), (byte)Math.Round(b));
            }

            bitmap.Pixels = pixels;
            return bitmap;
        }

        private static double Clamp(float value) => float.IsFinite(value) ? Math.Clamp(value, 0, 255) : 0;

        // "no evidence ▬▬▬ strongest evidence" on one line: the colour scale of the overlays.
        private static void DrawLegend(SKCanvas canvas, float x, float y, float width, SKFont font, SKPaint ink)
        {
            const string low = "no evidence", high = "strongest evidence";
            float left = x + ChartFont.Measure(low, TextSize) + 8;
            int bar = (int)Math.Max(40, width - (left - x) - ChartFont.Measure(high, TextSize) - 8);
            for (int i = 0; i < bar; i++)
            {
                var (r, g, b) = Colour(i / (bar - 1.0));
                using var paint = new SKPaint { Color = new SKColor(r, g, b) };
                canvas.DrawRect(left + i, y, 1, 12, paint);
            }

            canvas.DrawText(low, x, y + 11, SKTextAlign.Left, font, ink);
            canvas.DrawText(high, left + bar + 8, y + 11, SKTextAlign.Left, font, ink);
        }
    }
}
