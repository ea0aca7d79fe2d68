using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// A confusion matrix written as a PNG image: a square grid with the true classes as rows and the predicted classes as columns
    /// (as ML.NET's <c>ConfusionMatrix.Counts</c>), each cell shaded from white to blue by its share of its row, so that the diagonal
    /// reads as each class's recall, with its count printed in white or dark, whichever contrasts more with the cell. Drawn with
    /// ScottPlot (a heatmap), with the DejaVu Sans font embedded in this package, so it needs no system fonts.
    /// </summary>
    /// <remarks>
    /// Cells are 56 pixels for up to 17 classes and shrink to fit about 1000 pixels for more (100 classes give 10-pixel cells; at
    /// least 3 pixels, so beyond 333 classes the image grows). Counts are printed when every count fits its cell (shortened to 1.2k,
    /// 3.4M if needed), class names when a row is tall enough for text (up to 100 classes); long names end in '…', and column names
    /// are turned to read upwards when one is wider than its column. The lines between cells are drawn when cells are 6 pixels or
    /// more. The same matrix always gives the same bytes.
    /// </remarks>
    public sealed class ConfusionMatrixChart
    {
        /// <summary>The colours of a cell with none (white) and all of its row's examples.</summary>
        internal static readonly Color Empty = ChartStyle.White, Full = new(20, 70, 160);

        internal static readonly Color GridColour = new(215, 215, 215);

        private const int Pad = 12, Gap = 6;
        private const float TitleSize = 18, AxisTitleSize = 14;

        private readonly string[] names;
        private readonly double[][] counts;
        private readonly double[] rowTotals;
        private string title = "Confusion matrix";

        /// <summary>Creates a chart of <paramref name="counts"/>.</summary>
        /// <param name="classNames">The class names, in the order of the rows and columns.</param>
        /// <param name="counts">
        /// counts[t][p]: how many examples of true class t were predicted as class p (finite, 0 or more; fractions allowed for weighted counts).
        /// One row per class, each with one value per class. The values are copied.
        /// </param>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="ArgumentException">There is no class, a name is null, the matrix is not square with one row per class, or a count is negative or not finite.</exception>
        public ConfusionMatrixChart(IReadOnlyList<string> classNames, IReadOnlyList<IReadOnlyList<double>> counts)
        {
            if (classNames is null) throw new ArgumentNullException(nameof(classNames));
            if (counts is null) throw new ArgumentNullException(nameof(counts));
            int n = classNames.Count;
            if (n == 0) throw new ArgumentException("There are no class names; give at least one class.", nameof(classNames));
            names = new string[n];
            for (int i = 0; i < n; i++)
                names[i] = classNames[i] ?? throw new ArgumentException($"Class name {i} is null; give a name for every class.", nameof(classNames));
            if (counts.Count != n)
                throw new ArgumentException(
                    $"The counts have {counts.Count} rows but there are {n} class names; give one row per true class (rows = true class, columns = predicted class).",
                    nameof(counts));
            this.counts = new double[n][];
            for (int t = 0; t < n; t++)
            {
                var row = counts[t] ?? throw new ArgumentException($"Row {t} of the counts is null; give {n} values per row.", nameof(counts));
                if (row.Count != n)
                    throw new ArgumentException(
                        $"Row {t} of the counts has {row.Count} values but there are {n} classes; the matrix must be square, one column per predicted class.",
                        nameof(counts));
                this.counts[t] = new double[n];
                for (int p = 0; p < n; p++)
                {
                    double value = row[p];
                    if (!double.IsFinite(value) || value < 0)
                        throw new ArgumentException(
                            FormattableString.Invariant($"The count in row {t}, column {p} is {value}; counts must be finite and 0 or more."), nameof(counts));
                    this.counts[t][p] = value;
                }
            }

            rowTotals = Array.ConvertAll(this.counts, row => row.Sum());
        }

        /// <summary>The title above the grid (default "Confusion matrix"); "" for none.</summary>
        public string Title { get => title; set => title = value ?? ""; }

        /// <summary>
        /// Writes the chart as a PNG image, atomically: to a temporary file in the same folder, then moved over <paramref name="path"/>,
        /// so that a reader never sees half a file and a failed save leaves <paramref name="path"/> as it was. The output is PNG
        /// whatever the extension of <paramref name="path"/>.
        /// </summary>
        /// <param name="path">The PNG file to write (replaced if it exists; its folder must exist).</param>
        /// <exception cref="ArgumentException">The path is empty or its folder does not exist.</exception>
        public void Save(string path)
        {
            PngFile.CheckPath(path);
            PngFile.Write(path, ToPng());
        }

        /// <summary>Draws the chart and returns it as the bytes of a PNG image (its size follows from the number of classes and the names).</summary>
        public byte[] ToPng() => Render().Png;

        /// <summary>The share of row <paramref name="row"/>'s examples in column <paramref name="column"/> (0 for an empty row).</summary>
        internal double Share(int row, int column) => rowTotals[row] > 0 ? counts[row][column] / rowTotals[row] : 0;

        /// <summary>The colour of the cell in row <paramref name="row"/> and column <paramref name="column"/>.</summary>
        internal Color CellColour(int row, int column) => ChartStyle.Blend(Empty, Full, Share(row, column));

        /// <summary>Draws the chart, with its layout (for <see cref="Save"/> and tests).</summary>
        internal ConfusionMatrixRendering Render()
        {
            ChartFont.EnsureRegistered();
            int n = names.Length, cell = Math.Clamp(1000 / n, 3, 56), grid = n * cell;

            // Class names: rows right-aligned left of the grid; columns under it, across if every name fits its column, else turned up.
            float nameSize = Math.Min(12, cell - 2);
            bool showNames = nameSize >= 7;
            string[] shortNames = showNames ? names.Select(name => ChartFont.Truncate(name, 140, nameSize)).ToArray() : new string[n];
            float nameWidth = showNames ? shortNames.Max(name => ChartFont.Measure(name, nameSize)) : 0;
            bool across = showNames && shortNames.All(name => ChartFont.Measure(name, nameSize) <= cell - 4);
            var (labels, countSize) = CountLabels(cell);
            string titleText = ChartFont.Truncate(Title, Math.Max(400, grid), TitleSize);

            int left = Pad + (int)Math.Ceiling(AxisTitleSize * 1.2) + Gap + (showNames ? (int)Math.Ceiling(nameWidth) + Gap : 0);
            int top = Pad + (titleText.Length > 0 ? (int)Math.Ceiling(TitleSize * 1.2) + Gap : 0);
            int columnNames = !showNames ? 0 : across ? (int)Math.Ceiling(nameSize * 1.2) : (int)Math.Ceiling(nameWidth);
            int bottom = Gap + columnNames + Gap + (int)Math.Ceiling(AxisTitleSize * 1.2) + Pad;
            int width = Math.Max(left + grid + Pad, (int)Math.Ceiling(ChartFont.Measure(titleText, TitleSize)) + 2 * Pad);
            int right = width - left - grid;
            int height = top + grid + bottom;

            var plot = new Plot();
            plot.FigureBackground.Color = ChartStyle.White;
            plot.DataBackground.Color = ChartStyle.White;
            plot.HideGrid();

            // Row t of the matrix at the top of the grid is y = n − 1 − t; column p is x = p.
            var shares = new double[n, n];
            for (int t = 0; t < n; t++)
                for (int p = 0; p < n; p++)
                    shares[t, p] = Share(t, p);
            var heatmap = plot.Add.Heatmap(shares);
            heatmap.Colormap = new ShareColours();
            heatmap.ManualRange = new ScottPlot.Range(0, 1);
            heatmap.Smooth = false;
            heatmap.Rectangle = new CoordinateRect(-0.5, n - 0.5, -0.5, n - 0.5);

            if (cell >= 6)
                for (int i = 1; i < n; i++)
                {
                    foreach (var line in new[] { plot.Add.Line(i - 0.5, -0.5, i - 0.5, n - 0.5), plot.Add.Line(-0.5, i - 0.5, n - 0.5, i - 0.5) })
                    {
                        line.LineWidth = 1;
                        line.LineColor = GridColour;
                        line.LineStyle.AntiAlias = false;
                    }
                }

            if (countSize > 0)
                for (int t = 0; t < n; t++)
                    for (int p = 0; p < n; p++)
                    {
                        var text = plot.Add.Text(labels[t][p], p, n - 1 - t);
                        text.LabelStyle.Alignment = Alignment.MiddleCenter;
                        text.LabelStyle.FontSize = countSize;
                        text.LabelStyle.ForeColor = ChartStyle.ReadableOn(CellColour(t, p));
                        text.LabelStyle.FontName = ChartFont.Name;
                    }

            plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
            var rows = new NumericManual();
            var columns = new NumericManual();
            for (int i = 0; i < n && showNames; i++)
            {
                rows.AddMajor(n - 1 - i, shortNames[i]);
                columns.AddMajor(i, shortNames[i]);
            }

            plot.Axes.Left.TickGenerator = rows;
            plot.Axes.Bottom.TickGenerator = columns;
            plot.Axes.Color(ChartStyle.Frame);
            foreach (IAxis axis in plot.Axes.GetAxes())
            {
                axis.MajorTickStyle.Length = 0;
                axis.MinorTickStyle.Length = 0;
                axis.TickLabelStyle.FontSize = nameSize;
                axis.TickLabelStyle.ForeColor = ChartStyle.Ink;
                axis.Label.FontSize = AxisTitleSize;
                axis.Label.Bold = false;
                axis.Label.ForeColor = ChartStyle.Ink;
            }

            if (!across)
            {
                plot.Axes.Bottom.TickLabelStyle.Rotation = -90;
                plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
            }

            plot.Axes.Bottom.Label.Text = "Predicted";
            plot.Axes.Left.Label.Text = "True";
            plot.Axes.Title.Label.Text = titleText;
            plot.Axes.Title.Label.FontSize = TitleSize;
            plot.Axes.Title.Label.Bold = false;
            plot.Axes.Title.Label.ForeColor = ChartStyle.Ink;
            // The grid fills exactly n × cell pixels; each axis panel fills its margin, so that its title sits at the image's edge.
            plot.Layout.Fixed(new PixelPadding(left, right, bottom, top));
            plot.Axes.Left.MinimumSize = plot.Axes.Left.MaximumSize = left;
            plot.Axes.Bottom.MinimumSize = plot.Axes.Bottom.MaximumSize = bottom;
            ChartFont.Apply(plot);
            byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
            return new ConfusionMatrixRendering(png, width, height, left, top, cell, countSize, ChartFont.FontNamesOf(plot));
        }

        // The label of every count and the font size (16 to 8 pixels) that fits all of them in a cell with a margin; 0 for none.
        // Whole numbers as they are, else with up to 2 decimals; shortened (1.2k, 34M) if needed.
        private (string[][] Labels, float Size) CountLabels(int cell)
        {
            bool whole = counts.All(row => row.All(value => value < 1e15 && Math.Floor(value) == value));
            foreach (bool shortened in new[] { false, true })
            {
                var labels = counts.Select(row => row.Select(value => shortened ? Shorten(value)
                    : value.ToString(whole ? "0" : "0.##", CultureInfo.InvariantCulture)).ToArray()).ToArray();
                string widest = labels.SelectMany(row => row).OrderByDescending(label => label.Length).First();
                foreach (float size in new float[] { 16, 14, 12, 10, 9, 8 })
                    if (ChartFont.Measure(widest, size) <= cell - 6 && 0.75f * size <= cell - 6)
                        return (labels, size);
            }

            return (Array.Empty<string[]>(), 0);
        }

        private static string Shorten(double value)
        {
            foreach (var (size, suffix) in new[] { (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k") })
                if (value >= size)
                {
                    double scaled = value / size;
                    return scaled.ToString(scaled < 10 ? "0.#" : "0", CultureInfo.InvariantCulture) + suffix;
                }

            return value.ToString(value < 10 ? "0.#" : "0", CultureInfo.InvariantCulture);
        }

        /// <summary>A cell's share of its row (0 to 1) as a colour from white to blue.</summary>
        private sealed class ShareColours : IColormap
        {
            public string Name => "White to blue";

            public Color GetColor(double normalizedIntensity) =>
                double.IsFinite(normalizedIntensity) ? ChartStyle.Blend(Empty, Full, normalizedIntensity) : Empty;
        }
    }

    /// <summary>
    /// A drawn confusion matrix: the PNG, its size, the grid's top left pixel, the cell size, the counts' font size (0: none) and the
    /// font of everything that draws text.
    /// </summary>
    internal sealed record ConfusionMatrixRendering(byte[] Png, int Width, int Height, int GridLeft, int GridTop, int Cell, float CountFontSize, IReadOnlyList<string> FontNames)
    {
        /// <summary>The top left pixel of the cell of true class <paramref name="row"/> and predicted class <paramref name="column"/>.</summary>
        public (int X, int Y) CellCorner(int row, int column) => (GridLeft + column * Cell, GridTop + row * Cell);
    }
}
