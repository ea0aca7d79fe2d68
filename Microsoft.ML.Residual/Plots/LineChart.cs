using System;
using System.Collections.Generic;
using System.Globalization;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// A line chart written as a PNG image, such as training and validation loss per epoch: one line per series with point markers,
    /// round axis ticks, axis labels, a title and a legend. It needs no system fonts and no graphics library.
    /// </summary>
    /// <remarks>
    /// The X axis spans the X values of all series; the Y axis the Y values that can be drawn (finite, and above 0 on a logarithmic
    /// axis). Both are padded a little so that no point sits on the frame. A point whose Y cannot be drawn is left out and breaks its line.
    /// Lines are 2 pixels thick; points get a marker when they are sparse enough to be told apart, and always when they stand alone.
    /// Series take their colours from a fixed palette of 10 well separated colours, in order, starting again after the 10th.
    /// Images larger than 1600×1000 draw text and lines at a larger integer scale. The same chart always gives the same bytes.
    /// </remarks>
    public sealed class LineChart
    {
        private const int MinWidth = 200, MaxWidth = 4000, MinHeight = 150, MaxHeight = 4000;

        /// <summary>The series colours, in order.</summary>
        internal static readonly IReadOnlyList<Rgb> Palette = new Rgb[]
        {
            new(31, 100, 200), new(235, 110, 20), new(40, 160, 60), new(205, 35, 50), new(135, 75, 195),
            new(20, 170, 180), new(145, 95, 50), new(225, 70, 165), new(150, 155, 20), new(30, 40, 120),
        };

        internal static readonly Rgb Ink = new(30, 30, 30), FrameColour = new(70, 70, 70), GridColour = new(228, 228, 228);

        private string title = "", xLabel = "", yLabel = "";
        private int width = 800, height = 500;

        /// <summary>The title above the chart; "" for none.</summary>
        public string Title { get => title; set => title = value ?? ""; }

        /// <summary>The label under the X axis; "" for none.</summary>
        public string XLabel { get => xLabel; set => xLabel = value ?? ""; }

        /// <summary>The label beside the Y axis, read bottom to top; "" for none.</summary>
        public string YLabel { get => yLabel; set => yLabel = value ?? ""; }

        /// <summary>
        /// A base-10 logarithmic Y axis (for values spanning orders of magnitude, such as gradient norms): ticks at powers of ten,
        /// with 2× and 5× between them when the range is small. Points with a Y of 0 or less are left out.
        /// </summary>
        public bool LogarithmicY { get; set; }

        /// <summary>
        /// Whether consecutive points of a series are joined by lines (default true). False draws a scatter plot: every point a
        /// marker, for values that are not a sequence, such as the trials of a sweep.
        /// </summary>
        public bool ConnectPoints { get; set; } = true;

        /// <summary>The image width in pixels, 200 to 4000 (default 800).</summary>
        /// <exception cref="ArgumentOutOfRangeException">The value is outside 200–4000.</exception>
        public int Width
        {
            get => width;
            set => width = value >= MinWidth && value <= MaxWidth ? value
                : throw new ArgumentOutOfRangeException(nameof(Width), value, $"The chart width must be {MinWidth} to {MaxWidth} pixels.");
        }

        /// <summary>The image height in pixels, 150 to 4000 (default 500).</summary>
        /// <exception cref="ArgumentOutOfRangeException">The value is outside 150–4000.</exception>
        public int Height
        {
            get => height;
            set => height = value >= MinHeight && value <= MaxHeight ? value
                : throw new ArgumentOutOfRangeException(nameof(Height), value, $"The chart height must be {MinHeight} to {MaxHeight} pixels.");
        }

        /// <summary>The series, in legend order (series i takes palette colour i, modulo 10).</summary>
        public IList<ChartSeries> Series { get; } = new List<ChartSeries>();

        /// <summary>Adds a series (see <see cref="ChartSeries"/>) and returns this chart, to add several in a row.</summary>
        /// <param name="name">The name shown in the legend.</param>
        /// <param name="x">The points' X values (finite).</param>
        /// <param name="y">The points' Y values, as many as X values; NaN (or ±∞) for a missing value, which breaks the line.</param>
        /// <returns>This chart.</returns>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="ArgumentException">X and Y have different lengths, or an X value is not finite.</exception>
        public LineChart Add(string name, IReadOnlyList<double> x, IReadOnlyList<double> y)
        {
            if (name is null) throw new ArgumentNullException(nameof(name));
            if (x is null) throw new ArgumentNullException(nameof(x));
            if (y is null) throw new ArgumentNullException(nameof(y));
            var series = new ChartSeries(name, x, y);
            CheckSeries(Series.Count, series);
            Series.Add(series);
            return this;
        }

        /// <summary>
        /// Writes the chart as a PNG image, atomically: to a temporary file in the same folder, then moved over <paramref name="path"/>,
        /// so that a reader never sees half a file and a failed save leaves <paramref name="path"/> as it was. The output is PNG
        /// whatever the extension of <paramref name="path"/>.
        /// </summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <exception cref="ArgumentException">
        /// The path is empty or its folder does not exist; there is no series, or no series has a point to draw; a series' X and Y differ
        /// in length or it has a non-finite X; or the values span a range too wide to draw.
        /// </exception>
        public void Save(string path)
        {
            Raster.CheckPath(path);
            Render().Raster.SavePng(path);
        }

        /// <summary>Draws the chart in memory, with its layout (for <see cref="Save"/> and tests).</summary>
        internal LineChartRendering Render()
        {
            var (xMin, xMax, yMin, yMax, integers) = CheckData();
            int s = Math.Clamp(Math.Min(Width / 800, Height / 500), 1, 4);
            int pad = 10 * s, tick = 4 * s, line = BitmapFont.LineHeight * s, cap = BitmapFont.CapHeight * s;

            // Vertical layout: title, plot, X tick labels, X label.
            string titleText = BitmapFont.Truncate(Title, Width - 2 * pad, 2 * s);
            string xLabelText = BitmapFont.Truncate(XLabel, Width - 2 * pad, s);
            int frameTop = pad + (titleText.Length > 0 ? 2 * line + 6 * s : 0) + cap / 2 + s;
            int frameBottom = Height - pad - (xLabelText.Length > 0 ? line + 4 * s : 0) - line - 4 * s - tick;
            int innerTop = frameTop + s, innerBottom = frameBottom - s;

            var yAxis = Axis.Create(yMin, yMax, LogarithmicY, integers: false, innerBottom - innerTop, 45 * s, _ => cap, 6 * s);
            int yTickWidth = 0;
            foreach (var t in yAxis.Ticks) yTickWidth = Math.Max(yTickWidth, BitmapFont.Measure(t.Label, s));
            string yLabelText = BitmapFont.Truncate(YLabel, innerBottom - innerTop, s);

            // Horizontal layout: Y label, Y tick labels, plot, legend.
            int frameLeft = pad + (yLabelText.Length > 0 ? line + 5 * s : 0) + yTickWidth + 3 * s + tick;
            int innerLeft = frameLeft + s;
            // Legend names get a fifth of the width (at least 60 pixels), less if the plot would be under a third of the width.
            int swatch = 18 * s, legendGap = 12 * s;
            int nameRoom = Math.Min(Math.Max(60 * s, Width / 5), Width - Width / 3 - frameLeft - pad - legendGap - swatch - 5 * s);
            var names = new string[Series.Count];
            int nameWidth = 0;
            for (int i = 0; i < names.Length; i++)
            {
                names[i] = BitmapFont.Truncate(Series[i].Name, Math.Max(0, nameRoom), s);
                nameWidth = Math.Max(nameWidth, BitmapFont.Measure(names[i], s));
            }

            int legendWidth = swatch + 5 * s + nameWidth;
            int legendLeft = Width - pad - legendWidth;
            int frameRight = legendLeft - legendGap, innerRight = frameRight - s;
            Axis xAxis = null!;
            for (int attempt = 0; attempt < 4; attempt++)
            {
                frameRight = legendLeft - legendGap;
                innerRight = frameRight - s;
                xAxis = Axis.Create(xMin, xMax, logarithmic: false, integers, innerRight - innerLeft, 70 * s, label => BitmapFont.Measure(label, s), 10 * s);
                var last = xAxis.Ticks[^1];
                int overflow = (int)Math.Ceiling(xAxis.ToPixel(last.Value, innerLeft, innerRight - 1) + BitmapFont.Measure(last.Label, s) / 2.0) - (legendLeft - 4 * s);
                if (overflow <= 0) break;
                legendGap += overflow;
            }

            var raster = new Raster(Width, Height, Rgb.White);
            var rendering = new LineChartRendering(raster, innerLeft, innerTop, innerRight, innerBottom, xAxis, yAxis);

            // Grid lines, then the series clipped to the plot, then the frame over their ends.
            foreach (var t in yAxis.Ticks) raster.FillRect(innerLeft, rendering.Row(t.Value), innerRight - innerLeft, s, GridColour);
            foreach (var t in xAxis.Ticks) raster.FillRect(rendering.Column(t.Value), innerTop, s, innerBottom - innerTop, GridColour);
            raster.SetClip(innerLeft, innerTop, innerRight, innerBottom);
            for (int i = 0; i < Series.Count; i++) DrawSeries(rendering, Series[i], Palette[i % Palette.Count], s);
            raster.ResetClip();
            raster.DrawRect(frameLeft, frameTop, frameRight - frameLeft, frameBottom - frameTop, s, FrameColour);

            foreach (var t in yAxis.Ticks)
            {
                int row = rendering.Row(t.Value);
                raster.FillRect(frameLeft - tick, row, tick, s, FrameColour);
                BitmapFont.Draw(raster, t.Label, frameLeft - tick - 3 * s - BitmapFont.Measure(t.Label, s), row + s / 2 - cap / 2, s, Ink);
            }

            foreach (var t in xAxis.Ticks)
            {
                int column = rendering.Column(t.Value), labelWidth = BitmapFont.Measure(t.Label, s);
                raster.FillRect(column, frameBottom, s, tick, FrameColour);
                int x = Math.Clamp(column + s / 2 - labelWidth / 2, 0, Math.Max(0, Width - labelWidth));
                BitmapFont.Draw(raster, t.Label, x, frameBottom + tick + 4 * s, s, Ink);
            }

            int plotCentre = (frameLeft + frameRight) / 2;
            if (xLabelText.Length > 0)
                BitmapFont.Draw(raster, xLabelText, plotCentre - BitmapFont.Measure(xLabelText, s) / 2, frameBottom + tick + 4 * s + line + 4 * s, s, Ink);
            if (yLabelText.Length > 0)
                BitmapFont.DrawUp(raster, yLabelText, pad, (frameTop + frameBottom) / 2 + BitmapFont.Measure(yLabelText, s) / 2, s, Ink);
            if (titleText.Length > 0)
            {
                int titleWidth = BitmapFont.Measure(titleText, 2 * s);
                BitmapFont.Draw(raster, titleText, Math.Clamp(plotCentre - titleWidth / 2, pad, Width - pad - titleWidth), pad, 2 * s, Ink);
            }

            DrawLegend(raster, names, legendLeft, frameTop, frameBottom, s);
            return rendering;
        }

        /// <summary>Lines between consecutive drawable points, and markers on points that stand alone or are sparse enough.</summary>
        private void DrawSeries(LineChartRendering rendering, ChartSeries series, Rgb colour, int s)
        {
            int radius = 2 * s + 1, drawable = 0;
            for (int j = 0; j < series.Y.Count; j++)
                if (IsDrawable(series.Y[j]))
                    drawable++;
            bool allMarkers = drawable <= (rendering.PlotRight - rendering.PlotLeft) / (4 * radius);

            (int X, int Y)? previous = null;
            for (int j = 0; j < series.Y.Count; j++)
            {
                if (!IsDrawable(series.Y[j]))
                {
                    previous = null;
                    continue;
                }

                var point = (rendering.Column(series.X[j]), rendering.Row(series.Y[j]));
                if (previous is { } p && ConnectPoints) rendering.Raster.DrawLine(p.X, p.Y, point.Item1, point.Item2, 2 * s, colour);
                bool alone = previous is null && (j + 1 >= series.Y.Count || !IsDrawable(series.Y[j + 1]));
                if (allMarkers || alone || !ConnectPoints) rendering.Raster.FillDisc(point.Item1, point.Item2, radius, colour);
                previous = point;
            }
        }

        private void DrawLegend(Raster raster, string[] names, int left, int top, int bottom, int s)
        {
            int line = BitmapFont.LineHeight * s, rowHeight = line + 4 * s, swatch = 18 * s;
            int rows = Math.Max(1, (bottom - top) / rowHeight);
            int shown = names.Length <= rows ? names.Length : rows - 1;
            for (int i = 0; i < shown; i++)
            {
                int y = top + i * rowHeight, middle = y + BitmapFont.CapHeight * s / 2;
                var colour = Palette[i % Palette.Count];
                if (ConnectPoints) raster.DrawLine(left, middle, left + swatch - 1, middle, 2 * s, colour);
                raster.FillDisc(left + swatch / 2, middle, 2 * s, colour);
                BitmapFont.Draw(raster, names[i], left + swatch + 5 * s, y, s, Ink);
            }

            if (shown < names.Length)
                BitmapFont.Draw(raster, FormattableString.Invariant($"+{names.Length - shown} more"), left, top + shown * rowHeight, s, Ink);
        }

        private bool IsDrawable(double y) => double.IsFinite(y) && (!LogarithmicY || y > 0);

        // Checks every series; returns the range of all X values, the range of the drawable Y values, and whether all X are whole numbers.
        private (double XMin, double XMax, double YMin, double YMax, bool Integers) CheckData()
        {
            if (Series.Count == 0)
                throw new ArgumentException("The chart has no series; add one with Add(name, x, y) before saving.", nameof(Series));
            double xMin = double.PositiveInfinity, xMax = double.NegativeInfinity, yMin = double.PositiveInfinity, yMax = double.NegativeInfinity;
            bool integers = true;
            for (int i = 0; i < Series.Count; i++)
            {
                var series = Series[i];
                CheckSeries(i, series);
                for (int j = 0; j < series.X.Count; j++)
                {
                    double x = series.X[j], y = series.Y[j];
                    xMin = Math.Min(xMin, x);
                    xMax = Math.Max(xMax, x);
                    integers &= Math.Abs(x) < 1e15 && Math.Floor(x) == x;
                    if (!IsDrawable(y)) continue;
                    yMin = Math.Min(yMin, y);
                    yMax = Math.Max(yMax, y);
                }
            }

            if (yMin > yMax)
            {
                var names = new List<string>();
                for (int i = 0; i < Series.Count; i++) names.Add(Describe(i, Series[i].Name));
                string drawable = LogarithmicY ? "finite Y above 0 (the Y axis is logarithmic)" : "finite Y";
                throw new ArgumentException(
                    $"No series has a point to draw: {string.Join(", ", names)} — none has a point with a {drawable}. " +
                    "Give at least one such point.", nameof(Series));
            }

            if (!double.IsFinite(xMax - xMin))
                throw new ArgumentException(Invariant($"The X values run from {xMin} to {xMax}, a range too wide to draw; rescale them."), nameof(Series));
            if (!double.IsFinite(yMax - yMin))
                throw new ArgumentException(
                    Invariant($"The Y values run from {yMin} to {yMax}, a range too wide to draw; rescale them or use LogarithmicY."), nameof(Series));
            return (xMin, xMax, yMin, yMax, integers);
        }

        private static void CheckSeries(int index, ChartSeries series)
        {
            if (series is null) throw new ArgumentException($"Series {index} is null; add series with Add(name, x, y).", nameof(Series));
            string described = Describe(index, series.Name);
            if (series.Name is null)
                throw new ArgumentException($"{described} has no name (null); give the name to show in the legend (\"\" for none).", nameof(Series));
            if (series.X is null || series.Y is null)
                throw new ArgumentException($"{described} has no {(series.X is null ? "X" : "Y")} values (null); give X and Y lists of the same length.", nameof(Series));
            if (series.X.Count != series.Y.Count)
                throw new ArgumentException(
                    $"{described} has {series.X.Count} X values but {series.Y.Count} Y values; give one Y per X (NaN for a missing Y).", nameof(Series));
            for (int j = 0; j < series.X.Count; j++)
                if (!double.IsFinite(series.X[j]))
                    throw new ArgumentException(
                        Invariant($"{described} has X = {series.X[j]} at index {j}; X values must be finite (to leave a point out, make its Y NaN)."),
                        nameof(Series));
        }

        private static string Describe(int index, string? name) => name is null ? $"Series {index}" : $"Series {index} ('{name}')";

        private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>A drawn line chart: the image, the plot area (the frame's inside; right and bottom exclusive) and the axes.</summary>
    internal sealed record LineChartRendering(Raster Raster, int PlotLeft, int PlotTop, int PlotRight, int PlotBottom, Axis X, Axis Y)
    {
        /// <summary>The image column of the data value <paramref name="x"/>.</summary>
        public int Column(double x) => ToInt(X.ToPixel(x, PlotLeft, PlotRight - 1));

        /// <summary>The image row of the data value <paramref name="y"/> (larger values are higher up).</summary>
        public int Row(double y) => ToInt(Y.ToPixel(y, PlotBottom - 1, PlotTop));

        private static int ToInt(double pixel) => (int)Math.Clamp(Math.Round(pixel, MidpointRounding.AwayFromZero), -1_000_000, 1_000_000);
    }
}
