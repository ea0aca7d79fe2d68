using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Tests.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Plots;

[TestClass]
public sealed class ConfusionMatrixChartTests : TempFolderTest
{
    private static readonly string[] Animals = { "cat", "dog", "horse" };

    private static readonly SKColor Ink = ChartStyle.Ink.ToSKColor();

    private static IReadOnlyList<IReadOnlyList<double>> Matrix(params double[][] rows) => rows;

    private static IReadOnlyList<IReadOnlyList<double>> DiagonalHeavy(int classes) =>
        Enumerable.Range(0, classes).Select(t => (IReadOnlyList<double>)Enumerable.Range(0, classes)
            .Select(p => t == p ? 80.0 + t % 7 : (t * 31 + p * 17) % 5).ToArray()).ToArray();

    // A pixel inside the cell but away from its centred count and its grid lines.
    private static SKColor CellColour(PngImage png, ConfusionMatrixRendering layout, int row, int column)
    {
        var (x, y) = layout.CellCorner(row, column);
        return png[x + Math.Max(1, layout.Cell / 6), y + Math.Max(1, layout.Cell / 6)];
    }

    private static double Luminance(SKColor colour) => ChartStyle.Luminance(new ScottPlot.Color(colour.Red, colour.Green, colour.Blue));

    [TestMethod]
    public void ConfusionMatrix_DiagonalHeavyMatrix_ShadesEachCellByItsRowShare()
    {
        string path = Path.Combine(Root, "cm.png");
        var counts = Matrix(new double[] { 50, 3, 2 }, new double[] { 5, 40, 10 }, new double[] { 0, 1, 120 });
        var chart = new ConfusionMatrixChart(Animals, counts);
        var layout = chart.Render();

        chart.Save(path);

        var png = PngImage.Read(path);
        Assert.AreEqual(layout.Width, png.Width);
        Assert.AreEqual(layout.Height, png.Height);
        Assert.AreEqual(56, layout.Cell);
        for (int t = 0; t < 3; t++)
            for (int p = 0; p < 3; p++)
            {
                var colour = CellColour(png, layout, t, p);
                double share = counts[t][p] / counts[t].Sum();
                Assert.IsTrue(PngImage.Near(colour, chart.CellColour(t, p).ToSKColor(), tolerance: 2),
                    $"cell ({t}, {p}) is {colour}, shaded by its row share {share:F3} as {chart.CellColour(t, p)}");
                if (t != p)
                {
                    var diagonal = CellColour(png, layout, t, t);
                    Assert.IsLessThan(Luminance(colour), Luminance(diagonal), $"row {t}: the diagonal is darker than column {p}");
                    Assert.IsGreaterThan(diagonal.Red, diagonal.Blue, "and blue");
                }
            }

        Assert.AreEqual(SKColors.White, CellColour(png, layout, 2, 0), "a zero count stays white");
        PngImage.AssertOnlyFiles(Root, "cm.png");
    }

    [TestMethod]
    public void ConfusionMatrix_PrintsCountsInWhiteOnDarkCellsAndDarkOnLightCells()
    {
        var chart = new ConfusionMatrixChart(Animals, Matrix(new double[] { 90, 5, 5 }, new double[] { 5, 90, 5 }, new double[] { 5, 5, 90 }));
        var layout = chart.Render();

        var png = new PngImage(layout.Png);
        int Count(int row, int column, SKColor colour)
        {
            var (x, y) = layout.CellCorner(row, column);
            return png.Count(colour, x + 2, y + 2, x + layout.Cell - 2, y + layout.Cell - 2, tolerance: 40);
        }

        Assert.IsGreaterThan(0f, layout.CountFontSize, "the counts fit");
        Assert.IsGreaterThan(10, Count(0, 0, SKColors.White), "white digits on the dark diagonal");
        Assert.IsGreaterThan(10, Count(0, 1, Ink), "dark digits on a light cell");
        Assert.AreEqual(0, Count(0, 0, Ink), "no dark digits on the dark diagonal");

        var empty = new ConfusionMatrixChart(Animals, Matrix(new double[] { 90, 0, 0 }, new double[] { 0, 90, 0 }, new double[] { 0, 0, 90 })).Render();
        var blank = new PngImage(empty.Png);
        var (ex, ey) = empty.CellCorner(0, 1);
        Assert.IsGreaterThan(10, blank.CountDark(ex + 2, ey + 2, ex + empty.Cell - 2, ey + empty.Cell - 2), "a zero count is printed too");
    }

    [TestMethod]
    public void ConfusionMatrix_TextUsesTheEmbeddedFontAndNamesEveryClass()
    {
        var layout = new ConfusionMatrixChart(Animals, DiagonalHeavy(3)).Render();

        Assert.IsTrue(layout.FontNames.All(name => name == ChartFont.Name), string.Join(", ", layout.FontNames));
        Assert.IsGreaterThanOrEqualTo(3 + 9 + 4, layout.FontNames.Count, "title, axis labels, tick labels, legend and nine counts");
        var png = new PngImage(layout.Png);
        int grid = 3 * layout.Cell;
        for (int i = 0; i < 3; i++)
        {
            Assert.IsGreaterThan(15, png.CountDark(0, layout.GridTop + i * layout.Cell, layout.GridLeft - 2, layout.GridTop + (i + 1) * layout.Cell), $"row name {i}");
            Assert.IsGreaterThan(15, png.CountDark(layout.GridLeft + i * layout.Cell, layout.GridTop + grid + 2, layout.GridLeft + (i + 1) * layout.Cell, png.Height),
                $"column name {i}");
        }

        Assert.IsGreaterThan(30, png.CountDark(0, 0, png.Width, layout.GridTop - 2), "the title");
    }

    [TestMethod]
    public void ConfusionMatrix_Save_IsByteIdenticalForIdenticalInput()
    {
        string a = Path.Combine(Root, "a.png"), b = Path.Combine(Root, "b.png");

        new ConfusionMatrixChart(Animals, DiagonalHeavy(3)).Save(a);
        new ConfusionMatrixChart(Animals, DiagonalHeavy(3)).Save(b);

        CollectionAssert.AreEqual(File.ReadAllBytes(a), File.ReadAllBytes(b));
        PngImage.AssertOnlyFiles(Root, "a.png", "b.png");
    }

    [TestMethod]
    public void ConfusionMatrix_HundredClasses_StillRenderTheGridWithNames()
    {
        var names = Enumerable.Range(0, 100).Select(i => $"a rather long class name number {i}").ToArray();
        var layout = new ConfusionMatrixChart(names, DiagonalHeavy(100)).Render();

        var png = new PngImage(layout.Png);
        Assert.AreEqual(10, layout.Cell);
        Assert.IsLessThanOrEqualTo(4000, png.Width);
        Assert.IsGreaterThanOrEqualTo(100 * layout.Cell, png.Width);
        foreach (int t in new[] { 0, 37, 99 })
            Assert.IsLessThan(Luminance(CellColour(png, layout, t, (t + 1) % 100)), Luminance(CellColour(png, layout, t, t)), $"row {t}");
        Assert.IsGreaterThan(100, png.CountDark(0, layout.GridTop, layout.GridLeft - 2, layout.GridTop + 100 * layout.Cell), "class names left of the grid");
    }

    [TestMethod]
    public void ConfusionMatrix_FourHundredClasses_KeepCellsOfThreePixels()
    {
        var chart = new ConfusionMatrixChart(Enumerable.Range(0, 400).Select(i => $"c{i}").ToArray(), DiagonalHeavy(400));
        var layout = chart.Render();

        var png = new PngImage(layout.Png);
        Assert.AreEqual(3, layout.Cell);
        Assert.AreEqual(0f, layout.CountFontSize, "no room for counts");
        foreach (var (t, p) in new[] { (200, 200), (200, 201), (201, 200) })
        {
            var (x, y) = layout.CellCorner(t, p);
            Assert.IsTrue(PngImage.Near(png[x + 1, y + 1], chart.CellColour(t, p).ToSKColor(), tolerance: 2),
                $"cell ({t}, {p}) is its colour {chart.CellColour(t, p)}, not {png[x + 1, y + 1]}; no grid lines over it");
        }
    }

    [TestMethod]
    public void ConfusionMatrix_MismatchedRow_ThrowsNamingTheRow()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            new ConfusionMatrixChart(Animals, Matrix(new double[] { 1, 2, 3 }, new double[] { 1, 2 }, new double[] { 1, 2, 3 })));

        StringAssert.Contains(error.Message, "Row 1");
        StringAssert.Contains(error.Message, "2 values");
        StringAssert.Contains(error.Message, "3 classes");
    }

    [TestMethod]
    public void ConfusionMatrix_WrongRowCount_ThrowsWithBothCounts()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            new ConfusionMatrixChart(Animals, Matrix(new double[] { 1, 2, 3 }, new double[] { 1, 2, 3 })));

        StringAssert.Contains(error.Message, "2 rows");
        StringAssert.Contains(error.Message, "3 class names");
    }

    [TestMethod]
    public void ConfusionMatrix_NegativeOrNonFiniteCount_ThrowsNamingTheCell()
    {
        foreach (double bad in new[] { -1, double.NaN, double.PositiveInfinity })
        {
            var error = Assert.ThrowsExactly<ArgumentException>(() =>
                new ConfusionMatrixChart(new[] { "a", "b" }, Matrix(new double[] { 1, 2 }, new double[] { bad, 2 })));
            StringAssert.Contains(error.Message, "row 1, column 0");
            StringAssert.Contains(error.Message, "finite and 0 or more");
        }
    }

    [TestMethod]
    public void ConfusionMatrix_NoClassesOrNull_Throws()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ConfusionMatrixChart(Array.Empty<string>(), Matrix()));
        StringAssert.Contains(error.Message, "at least one class");
        Assert.ThrowsExactly<ArgumentNullException>(() => new ConfusionMatrixChart(Animals, null!));
    }

    [TestMethod]
    public void ConfusionMatrix_OneClassAndAnEmptyRow_Render()
    {
        string path = Path.Combine(Root, "cm.png");
        var chart = new ConfusionMatrixChart(new[] { "only" }, Matrix(new double[] { 0 })) { Title = "" };
        var layout = chart.Render();

        chart.Save(path);

        Assert.AreEqual(SKColors.White, CellColour(PngImage.Read(path), layout, 0, 0), "an empty row has no shares");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => chart.Save(Path.Combine(Root, "no", "cm.png"))).Message, "create it first");
        PngImage.AssertOnlyFiles(Root, "cm.png");
    }
}
