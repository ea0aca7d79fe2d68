using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Tests.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Plots;

[TestClass]
public sealed class ConfusionMatrixChartTests : TempFolderTest
{
    private static readonly string[] Animals = { "cat", "dog", "horse" };

    private static IReadOnlyList<IReadOnlyList<double>> Matrix(params double[][] rows) => rows;

    private static IReadOnlyList<IReadOnlyList<double>> DiagonalHeavy(int classes) =>
        Enumerable.Range(0, classes).Select(t => (IReadOnlyList<double>)Enumerable.Range(0, classes)
            .Select(p => t == p ? 80.0 + t % 7 : (t * 31 + p * 17) % 5).ToArray()).ToArray();

    // A pixel inside the cell but away from its centred count and its grid lines.
    private static Rgb CellColour(PngPixels png, ConfusionMatrixRendering layout, int row, int column)
    {
        var (x, y) = layout.CellCorner(row, column);
        return png[x + Math.Max(2, layout.Cell / 6), y + Math.Max(2, layout.Cell / 6)];
    }

    [TestMethod]
    public void ConfusionMatrix_DiagonalHeavyMatrix_HasBluerDiagonalCells()
    {
        string path = Path.Combine(Root, "cm.png");
        var counts = Matrix(new double[] { 50, 3, 2 }, new double[] { 5, 40, 10 }, new double[] { 0, 1, 120 });
        var chart = new ConfusionMatrixChart(Animals, counts);
        var layout = chart.Render();

        chart.Save(path);

        var png = new PngPixels(path);
        Assert.AreEqual(layout.Raster.Width, png.Width);
        Assert.AreEqual(layout.Raster.Height, png.Height);
        for (int t = 0; t < 3; t++)
            for (int p = 0; p < 3; p++)
            {
                var colour = CellColour(png, layout, t, p);
                double share = counts[t][p] / counts[t].Sum();
                Assert.AreEqual(Rgb.Blend(ConfusionMatrixChart.Empty, ConfusionMatrixChart.Full, share), colour, $"cell ({t}, {p}) is shaded by its row share {share:F3}");
                if (t != p)
                {
                    var diagonal = CellColour(png, layout, t, t);
                    Assert.IsLessThan(colour.Luminance, diagonal.Luminance, $"row {t}: the diagonal is darker than column {p}");
                    Assert.IsGreaterThan(diagonal.R, diagonal.B, "and blue");
                }
            }

        Assert.AreEqual(Rgb.White, CellColour(png, layout, 2, 0), "a zero count stays white");
        PngPixels.AssertOnlyFiles(Root, "cm.png");
    }

    [TestMethod]
    public void ConfusionMatrix_PrintsCountsInWhiteOnDarkCellsAndDarkOnLightCells()
    {
        string path = Path.Combine(Root, "cm.png");
        var chart = new ConfusionMatrixChart(Animals, Matrix(new double[] { 90, 5, 5 }, new double[] { 5, 90, 5 }, new double[] { 5, 5, 90 }));
        var layout = chart.Render();

        chart.Save(path);

        var png = new PngPixels(path);
        int Ink(int row, int column, Rgb colour)
        {
            var (x, y) = layout.CellCorner(row, column);
            return png.Count(colour, x + 1, y + 1, x + layout.Cell, y + layout.Cell);
        }

        Assert.IsGreaterThan(10, Ink(0, 0, Rgb.White), "white digits on the dark diagonal");
        Assert.IsGreaterThan(10, Ink(0, 1, LineChart.Ink), "dark digits on a light cell");
        Assert.AreEqual(0, Ink(0, 1, Rgb.White), "a light cell is not white");
    }

    [TestMethod]
    public void ConfusionMatrix_Save_IsByteIdenticalForIdenticalInput()
    {
        string a = Path.Combine(Root, "a.png"), b = Path.Combine(Root, "b.png");

        new ConfusionMatrixChart(Animals, DiagonalHeavy(3)).Save(a);
        new ConfusionMatrixChart(Animals, DiagonalHeavy(3)).Save(b);

        CollectionAssert.AreEqual(File.ReadAllBytes(a), File.ReadAllBytes(b));
        PngPixels.AssertOnlyFiles(Root, "a.png", "b.png");
    }

    [TestMethod]
    public void ConfusionMatrix_HundredClasses_StillRenderTheGrid()
    {
        string path = Path.Combine(Root, "cm100.png");
        var names = Enumerable.Range(0, 100).Select(i => $"a rather long class name number {i}").ToArray();
        var chart = new ConfusionMatrixChart(names, DiagonalHeavy(100));
        var layout = chart.Render();

        chart.Save(path);

        var png = new PngPixels(path);
        Assert.IsGreaterThanOrEqualTo(6, layout.Cell);
        Assert.IsLessThanOrEqualTo(4000, png.Width);
        Assert.IsGreaterThanOrEqualTo(100 * layout.Cell, png.Width);
        foreach (int t in new[] { 0, 37, 99 })
            Assert.IsLessThan(CellColour(png, layout, t, (t + 1) % 100).Luminance, CellColour(png, layout, t, t).Luminance, $"row {t}");
        Assert.IsGreaterThan(100, png.Count(LineChart.Ink, 0, layout.GridTop, layout.GridLeft, layout.GridTop + 100 * layout.Cell), "class names left of the grid");
        PngPixels.AssertOnlyFiles(Root, "cm100.png");
    }

    [TestMethod]
    public void ConfusionMatrix_FourHundredClasses_KeepCellsOfThreePixels()
    {
        var chart = new ConfusionMatrixChart(Enumerable.Range(0, 400).Select(i => $"c{i}").ToArray(), DiagonalHeavy(400));
        var layout = chart.Render();

        Assert.AreEqual(3, layout.Cell);
        foreach (var (t, p) in new[] { (200, 200), (200, 201), (201, 200) })
        {
            var (x, y) = layout.CellCorner(t, p);
            var expected = Rgb.Blend(ConfusionMatrixChart.Empty, ConfusionMatrixChart.Full, chart.Share(t, p));
            for (int dy = 0; dy < 3; dy++)
                for (int dx = 0; dx < 3; dx++)
                    Assert.AreEqual(expected, layout.Raster.GetPixel(x + dx, y + dy), $"cell ({t}, {p}) is all its colour, no grid lines over it");
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
    public void ConfusionMatrix_NoClasses_Throws()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ConfusionMatrixChart(Array.Empty<string>(), Matrix()));
        StringAssert.Contains(error.Message, "at least one class");
    }

    [TestMethod]
    public void ConfusionMatrix_OneClassAndAnEmptyRow_Render()
    {
        string path = Path.Combine(Root, "cm.png");
        var chart = new ConfusionMatrixChart(new[] { "only" }, Matrix(new double[] { 0 })) { Title = "" };
        var layout = chart.Render();

        chart.Save(path);

        Assert.AreEqual(Rgb.White, CellColour(new PngPixels(path), layout, 0, 0), "an empty row has no shares");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => chart.Save(Path.Combine(Root, "no", "cm.png"))).Message, "create it first");
    }
}
