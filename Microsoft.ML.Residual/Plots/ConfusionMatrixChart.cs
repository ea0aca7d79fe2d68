using System;
using System.Collections.Generic;
using System.Globalization;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// A confusion matrix written as a PNG image: a square grid with the true classes as rows and the predicted classes as columns
    /// (as ML.NET's <c>ConfusionMatrix.Counts</c>), each cell shaded from white to blue by its share of its row, so that the diagonal
    /// reads as each class's recall, with its count printed in white or dark, whichever contrasts more with the cell.
    /// </summary>
    /// <remarks>
    /// Cells are 56 pixels for up to 17 classes and shrink to fit about 1000 pixels for more (100 classes give 10-pixel cells; at
    /// least 3 pixels, so beyond 333 classes the image grows). Counts are printed when every count fits its cell (shortened to 1.2k,
    /// 3.4M if needed), class names when a row is tall enough for text (up to 100 classes); long names end in '…'. The cells and the
    /// frame are always drawn, the lines between cells when cells are 6 pixels or more. The same matrix always gives the same bytes.
    /// </remarks>
    public sealed class ConfusionMatrixChart
    {
        internal static readonly Rgb Empty = Rgb.White, Full = new(20, 70, 160), GridColour = new(215, 215, 215);

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

            rowTotals = Array.ConvertAll(this.counts, row =>
            {
                double total = 0;
                foreach (double value in row) total += value;
                return total;
            });
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
            Raster.CheckPath(path);
            Render().Raster.SavePng(path);
        }

        /// <summary>The share of row <paramref name="row"/>'s examples in column <paramref name="column"/> (0 for an empty row).</summary>
        internal double Share(int row, int column) => rowTotals[row] > 0 ? counts[row][column] / rowTotals[row] : 0;

        /// <summary>Draws the chart in memory, with its layout (for <see cref="Save"/> and tests).</summary>
        internal ConfusionMatrixRendering Render()
        {
            int n = names.Length, cell = Math.Clamp(1000 / n, 3, 56);
            int pad = 12, line = BitmapFont.LineHeight, gap = 6;
            bool showNames = cell >= line + 1;

            // Class names: rows right-aligned left of the grid; columns under it, across if every name fits its column, else turned up.
            var shortNames = new string[n];
            int nameWidth = 0;
            bool across = true;
            for (int i = 0; i < n; i++)
            {
                shortNames[i] = showNames ? BitmapFont.Truncate(names[i], 110, 1) : "";
                int width = BitmapFont.Measure(shortNames[i], 1);
                nameWidth = Math.Max(nameWidth, width);
                across &= width <= cell - 4;
            }

            var (labels, textScale) = CountLabels(cell);
            string titleText = BitmapFont.Truncate(Title, Math.Max(400, n * cell), 2);
            int titleWidth = BitmapFont.Measure(titleText, 2);
            const string PredictedTitle = "Predicted", TrueTitle = "True";

            int gridLeft = pad + line + gap + (showNames ? nameWidth + gap : 0);
            int gridTop = pad + (titleText.Length > 0 ? 2 * line + 10 : 0);
            int grid = n * cell + 1;
            int columnNames = !showNames ? 0 : across ? line : nameWidth;
            int imageWidth = Math.Max(gridLeft + grid + pad, Math.Max(titleWidth, BitmapFont.Measure(PredictedTitle, 1)) + 2 * pad);
            int imageHeight = gridTop + grid + gap + columnNames + gap + line + pad;
            imageHeight = Math.Max(imageHeight, gridTop + BitmapFont.Measure(TrueTitle, 1) + pad);

            var raster = new Raster(imageWidth, imageHeight, Rgb.White);
            var rendering = new ConfusionMatrixRendering(raster, gridLeft, gridTop, cell);
            for (int t = 0; t < n; t++)
                for (int p = 0; p < n; p++)
                {
                    var (x, y) = rendering.CellCorner(t, p);
                    var colour = Rgb.Blend(Empty, Full, Share(t, p));
                    raster.FillRect(x, y, cell, cell, colour);
                    if (textScale == 0) continue;
                    string label = labels[t][p];
                    var ink = colour.ReadableOn(LineChart.Ink);
                    BitmapFont.Draw(raster, label, x + (cell + 1 - BitmapFont.Measure(label, textScale)) / 2,
                        y + (cell + 1 - BitmapFont.CapHeight * textScale) / 2, textScale, ink);
                }

            // Grid lines between cells (unless they would hide them), a darker frame around the grid.
            for (int i = 1; i < n && cell >= 6; i++)
            {
                raster.FillRect(gridLeft + i * cell, gridTop, 1, grid, GridColour);
                raster.FillRect(gridLeft, gridTop + i * cell, grid, 1, GridColour);
            }

            raster.DrawRect(gridLeft, gridTop, grid, grid, 1, LineChart.FrameColour);

            if (showNames)
                for (int i = 0; i < n; i++)
                {
                    int width = BitmapFont.Measure(shortNames[i], 1), middle = i * cell + (cell + 1) / 2;
                    BitmapFont.Draw(raster, shortNames[i], gridLeft - gap - width, gridTop + middle - BitmapFont.CapHeight / 2 - 1, 1, LineChart.Ink);
                    if (across)
                        BitmapFont.Draw(raster, shortNames[i], gridLeft + middle - width / 2, gridTop + grid + gap, 1, LineChart.Ink);
                    else
                        BitmapFont.DrawUp(raster, shortNames[i], gridLeft + middle - BitmapFont.CapHeight / 2 - 1, gridTop + grid + gap + width, 1, LineChart.Ink);
                }

            int gridCentre = gridLeft + grid / 2, predictedWidth = BitmapFont.Measure(PredictedTitle, 1), trueWidth = BitmapFont.Measure(TrueTitle, 1);
            BitmapFont.Draw(raster, PredictedTitle, Math.Clamp(gridCentre - predictedWidth / 2, pad, imageWidth - pad - predictedWidth),
                gridTop + grid + gap + columnNames + gap, 1, LineChart.Ink);
            BitmapFont.DrawUp(raster, TrueTitle, pad, Math.Max(gridTop + grid / 2 + trueWidth / 2, gridTop + trueWidth), 1, LineChart.Ink);
            if (titleText.Length > 0)
                BitmapFont.Draw(raster, titleText, Math.Clamp(gridCentre - titleWidth / 2, pad, imageWidth - pad - titleWidth), pad, 2, LineChart.Ink);
            return rendering;
        }

        // The label of every count and the text scale that fits all of them in a cell with a margin (2, else 1, else 0 for none):
        // whole numbers as they are, else with up to 2 decimals; shortened (1.2k, 34M) if needed.
        private (string[][] Labels, int Scale) CountLabels(int cell)
        {
            if (BitmapFont.CapHeight > cell - 6) return (Array.Empty<string[]>(), 0);
            bool whole = true;
            foreach (var row in counts)
                foreach (double value in row)
                    whole &= value < 1e15 && Math.Floor(value) == value;

            foreach (bool shortened in new[] { false, true })
            {
                var labels = new string[counts.Length][];
                int widest = 0;
                for (int t = 0; t < counts.Length; t++)
                {
                    labels[t] = new string[counts.Length];
                    for (int p = 0; p < counts.Length; p++)
                    {
                        labels[t][p] = shortened ? Shorten(counts[t][p]) : counts[t][p].ToString(whole ? "0" : "0.##", CultureInfo.InvariantCulture);
                        widest = Math.Max(widest, BitmapFont.Measure(labels[t][p], 1));
                    }
                }

                for (int scale = 2; scale >= 1; scale--)
                    if (widest * scale <= cell - 6 && BitmapFont.CapHeight * scale <= cell - 6 && (scale == 1 || cell >= 40))
                        return (labels, scale);
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
    }

    /// <summary>A drawn confusion matrix: the image and the grid's layout.</summary>
    internal sealed record ConfusionMatrixRendering(Raster Raster, int GridLeft, int GridTop, int Cell)
    {
        /// <summary>The top left pixel of the cell of true class <paramref name="row"/> and predicted class <paramref name="column"/> (on its grid line).</summary>
        public (int X, int Y) CellCorner(int row, int column) => (GridLeft + column * Cell, GridTop + row * Cell);
    }
}
