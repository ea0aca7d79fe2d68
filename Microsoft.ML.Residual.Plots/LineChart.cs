using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ScottPlot;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// A line chart written as a PNG image, such as training and validation loss per epoch: one line per series with point markers,
    /// round axis ticks, axis labels, a title and a legend, drawn with ScottPlot. Its text uses the DejaVu Sans font embedded in this
    /// package, so it needs no system fonts.
    /// </summary>
    /// <remarks>
    /// The X axis spans the X values of all series; the Y axis the Y values that can be drawn (finite, and above 0 on a logarithmic
    /// axis). Both are padded a little so that no point sits on the frame; X values that are all whole numbers (epochs, blocks) get
    /// whole-number ticks. A point whose Y cannot be drawn is left out and breaks its line. Lines are 2 pixels thick; points get a
    /// marker when they are sparse enough to be told apart, and always when they stand alone. Series take their colours from a fixed
    /// palette of 10 well separated colours, in order, starting again after the 10th. The legend is right of the plot, or in its top
    /// right corner in images under 500 pixels wide. Images from 1600×1000 up draw text, lines and markers at a larger integer scale,
    /// images under 800×500 at a smaller one (down to 0.65). The same chart always gives the same bytes.
    /// </remarks>
    public sealed class LineChart
    {
        private const int MinWidth = 200, MaxWidth = 4000, MinHeight = 150, MaxHeight = 4000;

        /// <summary>The share of the data's range added on each side of an axis, so that no point sits on the frame.</summary>
        internal const double Padding = 0.04;

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
        /// A base-10 logarithmic X axis (for X values spanning orders of magnitude, such as learning rates), ticked as
        /// <see cref="LogarithmicY"/>. Every X value must then be above 0.
        /// </summary>
        public bool LogarithmicX { get; set; }

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
            PngFile.CheckPath(path);
            PngFile.Write(path, ToPng());
        }

        /// <summary>Draws the chart and returns it as the bytes of a PNG image, <see cref="Width"/> × <see cref="Height"/> pixels.</summary>
        /// <exception cref="ArgumentException">As for <see cref="Save"/>, except for the path.</exception>
        public byte[] ToPng() => Render().Png;

        /// <summary>Draws the chart, with its layout (for <see cref="Save"/> and tests).</summary>
        internal LineChartRendering Render()
        {
            var (xMin, xMax, yMin, yMax, integers) = CheckData();
            float s = Scale();
            var plot = new Plot();
            plot.FigureBackground.Color = ChartStyle.White;
            plot.DataBackground.Color = ChartStyle.White;

            // Markers on every point when a series has few enough points (about 12 pixels apart across the plot).
            int sparse = (int)(Width * 0.75f / (12 * s));
            for (int i = 0; i < Series.Count; i++)
            {
                var colour = ChartStyle.Palette[i % ChartStyle.Palette.Count];
                var segments = Segments(Series[i]);
                bool allMarkers = !ConnectPoints || segments.Sum(p => p.Count) <= sparse;
                foreach (var segment in segments)
                {
                    var scatter = plot.Add.Scatter(segment.Select(p => AxisX(p.X)).ToArray(), segment.Select(p => AxisY(p.Y)).ToArray(), colour);
                    scatter.LineWidth = ConnectPoints ? 2 * s : 0;
                    scatter.MarkerShape = MarkerShape.FilledCircle;
                    scatter.MarkerSize = allMarkers || segment.Count == 1 ? 7 * s : 0;
                }
            }

            // Axes: the data's range padded on both sides (a range around a single value).
            var (xLow, xHigh) = Range(AxisX(xMin), AxisX(xMax), LogarithmicX, integers && !LogarithmicX);
            var (yLow, yHigh) = Range(AxisY(yMin), AxisY(yMax), LogarithmicY, integers: false);
            plot.Axes.SetLimits(xLow, xHigh, yLow, yHigh);
            plot.Axes.Bottom.TickGenerator = LogarithmicX ? new LogarithmicTicks() : new EvenDecimalTicks(integers, minimumSpacing: 50 * s);
            plot.Axes.Left.TickGenerator = LogarithmicY ? new LogarithmicTicks() : new EvenDecimalTicks(integers: false, minimumSpacing: 32 * s);
            plot.Axes.Color(ChartStyle.Frame);
            plot.Grid.MajorLineColor = ChartStyle.Grid;

            plot.Axes.Title.Label.Text = Title;
            plot.Axes.Title.Label.FontSize = 18 * s;
            plot.Axes.Title.Label.Bold = false;
            plot.Axes.Bottom.Label.Text = XLabel;
            plot.Axes.Left.Label.Text = YLabel;
            foreach (IAxis axis in plot.Axes.GetAxes())
            {
                axis.Label.FontSize = 14 * s;
                axis.Label.Bold = false;
                axis.TickLabelStyle.FontSize = 12 * s;
                axis.MajorTickStyle.Length = 4 * s;
                axis.MinorTickStyle.Length = 2 * s;
                axis.FrameLineStyle.Width = s;
            }

            foreach (var label in new[] { plot.Axes.Title.Label, plot.Axes.Bottom.Label, plot.Axes.Left.Label, plot.Axes.Bottom.TickLabelStyle, plot.Axes.Left.TickLabelStyle })
                label.ForeColor = ChartStyle.Ink;

            AddLegend(plot, s);
            ChartFont.Apply(plot);
            byte[] png = plot.GetImageBytes(Width, Height, ImageFormat.Png);
            return new LineChartRendering(png, plot, LogarithmicX, LogarithmicY);
        }

        /// <summary>The legend, right of the plot: a swatch and the (shortened) name of every series, as many as fit the height.</summary>
        private void AddLegend(Plot plot, float s)
        {
            float fontSize = 12 * s;
            int rows = Math.Max(1, (int)((Height - 60 * s) / (21 * s)));
            int shown = Series.Count <= rows ? Series.Count : rows - 1;
            float room = Math.Max(60 * s, Width / 5);
            for (int i = 0; i < shown; i++)
            {
                var colour = ChartStyle.Palette[i % ChartStyle.Palette.Count];
                plot.Legend.ManualItems.Add(new LegendItem
                {
                    LabelText = ChartFont.Truncate(Series[i].Name, room, fontSize),
                    LineColor = colour,
                    LineWidth = ConnectPoints ? 2 * s : 0,
                    MarkerShape = MarkerShape.FilledCircle,
                    MarkerFillColor = colour,
                    MarkerLineColor = colour,
                    MarkerSize = 7 * s,
                });
            }

            if (shown < Series.Count)
                plot.Legend.ManualItems.Add(new LegendItem { LabelText = string.Create(CultureInfo.InvariantCulture, $"+{Series.Count - shown} more") });
            plot.Legend.FontSize = fontSize;
            plot.Legend.FontColor = ChartStyle.Ink;
            plot.Legend.OutlineColor = ChartStyle.Grid;
            plot.Legend.ShadowColor = Colors.Transparent;
            plot.Legend.Padding = new PixelPadding(8 * s);
            // Beside the plot, unless the image is too narrow for both: then in the plot's top right corner.
            if (Width >= 500)
                plot.ShowLegend(Edge.Right).Alignment = Alignment.UpperCenter;
            else
                plot.ShowLegend(Alignment.UpperRight);
        }

        // The size of text, lines and markers relative to an 800×500 chart: an integer from 1600×1000 up (at most 4), down to 0.65 for
        // small charts.
        private float Scale()
        {
            float relative = Math.Min(Width / 800f, Height / 500f);
            return relative >= 1 ? Math.Clamp((int)relative, 1, 4) : Math.Max(0.65f, relative);
        }

        // The runs of consecutive drawable points of a series: each one line (a lone point a marker).
        private List<List<(double X, double Y)>> Segments(ChartSeries series)
        {
            var segments = new List<List<(double, double)>>();
            List<(double, double)>? current = null;
            for (int j = 0; j < series.Y.Count; j++)
            {
                if (!IsDrawable(series.Y[j]))
                {
                    current = null;
                    continue;
                }

                if (current is null) segments.Add(current = new List<(double, double)>());
                current.Add((series.X[j], series.Y[j]));
            }

            return segments;
        }

        /// <summary>An X value in axis coordinates: its base-10 logarithm on a logarithmic axis.</summary>
        internal double AxisX(double x) => LogarithmicX ? Math.Log10(x) : x;

        /// <summary>A Y value in axis coordinates: its base-10 logarithm on a logarithmic axis.</summary>
        internal double AxisY(double y) => LogarithmicY ? Math.Log10(y) : y;

        // An axis from low to high in axis coordinates, padded; one value gets half a decade, one unit or a tenth of it either side.
        private static (double Low, double High) Range(double low, double high, bool logarithmic, bool integers)
        {
            if (high == low)
            {
                double half = logarithmic ? 0.5 : integers || low == 0 ? 1 : Math.Abs(low) / 10;
                low -= half;
                high += half;
            }

            double pad = Padding * (high - low);
            return (low - pad, high + pad);
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
                    if (LogarithmicX && x <= 0)
                        throw new ArgumentException(
                            Invariant($"{Describe(i, series.Name)} has the X value {x} at point {j}; on a logarithmic X axis every X must be above 0."), nameof(Series));
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

    /// <summary>A drawn line chart: the PNG, and the plot that drew it (for its layout: data area, axis limits, ticks).</summary>
    internal sealed class LineChartRendering
    {
        private readonly Plot plot;
        private readonly bool logarithmicX, logarithmicY;

        public LineChartRendering(byte[] png, Plot plot, bool logarithmicX, bool logarithmicY)
        {
            Png = png;
            this.plot = plot;
            this.logarithmicX = logarithmicX;
            this.logarithmicY = logarithmicY;
            PixelRect area = plot.LastRender.DataRect;
            (PlotLeft, PlotTop, PlotRight, PlotBottom) = ((int)Math.Ceiling(area.Left), (int)Math.Ceiling(area.Top), (int)Math.Floor(area.Right), (int)Math.Floor(area.Bottom));
        }

        public byte[] Png { get; }

        /// <summary>The font of everything that draws text (<see cref="ChartFont.FontNamesOf"/>).</summary>
        public IReadOnlyList<string> FontNames => ChartFont.FontNamesOf(plot);

        /// <summary>The data area, in whole pixels inside it (right and bottom exclusive).</summary>
        public int PlotLeft { get; }

        public int PlotTop { get; }

        public int PlotRight { get; }

        public int PlotBottom { get; }

        /// <summary>The Y axis' limits in axis coordinates (base-10 logarithms on a logarithmic axis).</summary>
        public (double Low, double High) YLimits => (plot.Axes.Left.Min, plot.Axes.Left.Max);

        /// <summary>The labelled ticks of the axis, as drawn.</summary>
        public IReadOnlyList<Tick> XTicks => plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor && t.Position >= plot.Axes.Bottom.Min && t.Position <= plot.Axes.Bottom.Max).ToArray();

        /// <summary>The labelled ticks of the Y axis, as drawn (positions in axis coordinates).</summary>
        public IReadOnlyList<Tick> YTicks => plot.Axes.Left.TickGenerator.Ticks.Where(t => t.IsMajor && t.Position >= plot.Axes.Left.Min && t.Position <= plot.Axes.Left.Max).ToArray();

        /// <summary>The image column of the data value <paramref name="x"/>.</summary>
        public int Column(double x) => (int)Math.Round(plot.GetPixel(new Coordinates(logarithmicX ? Math.Log10(x) : x, plot.Axes.Left.Min)).X);

        /// <summary>The image row of the data value <paramref name="y"/> (larger values are higher up).</summary>
        public int Row(double y) => (int)Math.Round(plot.GetPixel(new Coordinates(plot.Axes.Bottom.Min, logarithmicY ? Math.Log10(y) : y)).Y);
    }
}
