using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Tests.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Plots;

[TestClass]
public sealed class LineChartTests : TempFolderTest
{
    private static readonly double[] Epochs = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

    private static SKColor Colour(int series) => ChartStyle.Palette[series].ToSKColor();

    private static LineChart TrainingCurves() => new LineChart { Title = "Loss", XLabel = "epoch", YLabel = "loss" }
        .Add("train", Epochs, Epochs.Select(e => 2.0 / e).ToArray())
        .Add("validation", Epochs, Epochs.Select(e => 2.5 / e + 0.1).ToArray());

    [TestMethod]
    public void LineChart_Save_WritesPngOfRequestedSize()
    {
        string path = Path.Combine(Root, "loss.png");
        var chart = TrainingCurves();
        chart.Width = 640;
        chart.Height = 360;

        chart.Save(path);

        var png = PngImage.Read(path);
        Assert.AreEqual(640, png.Width);
        Assert.AreEqual(360, png.Height);
        Assert.AreEqual(SKColors.White, png[0, 0], "white background");
        PngImage.AssertOnlyFiles(Root, "loss.png");
    }

    [TestMethod]
    public void LineChart_Save_DrawsEachSeriesInItsOwnColourInsideThePlotAndInTheLegend()
    {
        var plot = TrainingCurves().Render();

        var png = new PngImage(plot.Png);
        for (int i = 0; i < 2; i++)
        {
            Assert.IsGreaterThan(200, png.Count(Colour(i), plot.PlotLeft, plot.PlotTop, plot.PlotRight, plot.PlotBottom), $"series {i} is drawn in the plot");
            Assert.IsGreaterThan(20, png.Count(Colour(i), plot.PlotRight + 2, 0, png.Width, png.Height), $"series {i} has a legend swatch right of the plot");
        }

        for (int other = 2; other < ChartStyle.Palette.Count; other++)
            Assert.AreEqual(0, png.Count(Colour(other), 0, 0, png.Width, png.Height, tolerance: 8), $"only two series, two colours (not palette colour {other})");
        Assert.AreEqual(0, png.Count(Colour(0), 0, plot.PlotBottom + 2, plot.PlotLeft - 2, png.Height), "nothing of a series below-left of the plot");
    }

    [TestMethod]
    public void LineChart_Text_TitleAxisLabelsTicksAndLegendAreDrawnWithTheEmbeddedFont()
    {
        var plot = TrainingCurves().Render();

        CollectionAssert.AreEqual(Enumerable.Repeat(ChartFont.Name, plot.FontNames.Count).ToArray(), plot.FontNames.ToArray(), string.Join(", ", plot.FontNames));
        var png = new PngImage(plot.Png);
        Assert.IsGreaterThan(30, png.CountDark(plot.PlotLeft, 0, plot.PlotRight, plot.PlotTop - 2), "the title above the plot");
        Assert.IsGreaterThan(30, png.CountDark(0, plot.PlotTop, plot.PlotLeft - 2, plot.PlotBottom), "Y tick labels and the Y label left of the plot");
        Assert.IsGreaterThan(30, png.CountDark(plot.PlotLeft, plot.PlotBottom + 2, plot.PlotRight, png.Height), "X tick labels and the X label under the plot");
        Assert.IsGreaterThan(30, png.CountDark(plot.PlotRight + 2, plot.PlotTop, png.Width, plot.PlotBottom), "the legend's names");
    }

    [TestMethod]
    public void LineChart_SeriesWithNaNInTheMiddle_BreaksTheLineButDrawsBothSides()
    {
        var y = Epochs.Select(e => e == 5 ? double.NaN : e).ToArray();
        var plot = new LineChart().Add("validation", Epochs, y).Render();

        var png = new PngImage(plot.Png);
        int ColumnPixels(double x)
        {
            int column = plot.Column(x);
            return png.Count(Colour(0), column - 2, plot.PlotTop, column + 3, plot.PlotBottom);
        }

        Assert.IsGreaterThan(0, ColumnPixels(2.5), "drawn before the gap");
        Assert.IsGreaterThan(0, ColumnPixels(8.5), "drawn after the gap");
        Assert.AreEqual(0, ColumnPixels(5), "no line through the missing point");
        Assert.IsGreaterThan(0, ColumnPixels(4), "the point before the gap is drawn");
        Assert.IsGreaterThan(0, ColumnPixels(6), "the point after the gap is drawn");
    }

    [TestMethod]
    public void LineChart_WithoutConnectedPoints_DrawsMarkersOnlyAsAScatterPlot()
    {
        var x = new double[] { 1, 5, 9 };
        var plot = new LineChart { ConnectPoints = false }.Add("trials", x, new double[] { 0.2, 0.8, 0.4 }).Render();

        var png = new PngImage(plot.Png);
        foreach (var (px, py) in new[] { (1.0, 0.2), (5.0, 0.8), (9.0, 0.4) })
            Assert.IsGreaterThanOrEqualTo(9, png.Count(Colour(0), plot.Column(px) - 5, plot.Row(py) - 5, plot.Column(px) + 6, plot.Row(py) + 6), $"a marker at ({px}, {py})");
        int between = plot.Column(3);
        Assert.AreEqual(0, png.Count(Colour(0), between - 2, plot.PlotTop, between + 3, plot.PlotBottom), "nothing between the points");
    }

    [TestMethod]
    public void LineChart_SinglePointSeries_DrawsAMarkerWithWholeNumberTicksAroundIt()
    {
        var plot = new LineChart().Add("accuracy", new double[] { 3 }, new double[] { 0.75 }).Render();

        var png = new PngImage(plot.Png);
        int x = plot.Column(3), y = plot.Row(0.75);
        Assert.IsTrue(PngImage.Near(png[x, y], Colour(0)), $"the point's pixel is {png[x, y]}");
        Assert.IsGreaterThanOrEqualTo(9, png.Count(Colour(0), x - 5, y - 5, x + 6, y + 6), "a marker, not a lone pixel");
        CollectionAssert.AreEqual(new[] { "2", "3", "4" }, plot.XTicks.Select(t => t.Label).ToArray(), "one epoch: whole-number ticks around it");
    }

    [TestMethod]
    public void LineChart_AllYEqual_PadsTheRangeAndStillDraws()
    {
        var plot = new LineChart().Add("flat", Epochs, Epochs.Select(_ => 0.5).ToArray()).Render();

        Assert.IsLessThan(0.5, plot.YLimits.Low);
        Assert.IsGreaterThan(0.5, plot.YLimits.High);
        Assert.IsGreaterThanOrEqualTo(2, plot.YTicks.Count);
        Assert.IsGreaterThan(100, new PngImage(plot.Png).Count(Colour(0), plot.PlotLeft, plot.PlotTop, plot.PlotRight, plot.PlotBottom));
    }

    [TestMethod]
    public void LineChart_IntegerX_GetsIntegerTicks()
    {
        var plot = new LineChart().Add("loss", new double[] { 1, 2, 3 }, new double[] { 3, 2, 1 }).Render();

        Assert.IsGreaterThanOrEqualTo(2, plot.XTicks.Count);
        foreach (var tick in plot.XTicks)
        {
            Assert.AreEqual(Math.Round(tick.Position), tick.Position, $"tick {tick.Label}");
            Assert.DoesNotContain(".", tick.Label);
        }
    }

    [TestMethod]
    public void LineChart_LinearTicks_HaveTheSameDecimalsThroughout()
    {
        var plot = new LineChart().Add("loss", new double[] { 1, 2, 3, 4 }, new[] { 1.112, 1.102, 1.088, 1.074 }).Render();

        string[] labels = plot.YTicks.Select(t => t.Label).ToArray();
        Assert.IsGreaterThanOrEqualTo(3, labels.Length, string.Join(" ", labels));
        int decimals = labels[0].Length - labels[0].IndexOf('.', StringComparison.Ordinal) - 1;
        Assert.IsGreaterThan(0, decimals, string.Join(" ", labels));
        foreach (string label in labels)
            Assert.AreEqual(decimals, label.Length - label.IndexOf('.', StringComparison.Ordinal) - 1, string.Join(" ", labels));
    }

    [TestMethod]
    public void LineChart_LogarithmicY_PlacesPointsByTheirLogarithm()
    {
        var plot = new LineChart { LogarithmicY = true, YLabel = "gradient norm" }
            .Add("tiny", new double[] { 0 }, new double[] { 1e-6 })
            .Add("middle", new double[] { 1 }, new double[] { 1e-3 })
            .Add("one", new double[] { 2 }, new double[] { 1 })
            .Render();

        var png = new PngImage(plot.Png);
        double Row(int series) => png.MeanRow(Colour(series), plot.PlotLeft, plot.PlotTop, plot.PlotRight, plot.PlotBottom);
        double tiny = Row(0), middle = Row(1), one = Row(2);
        Assert.IsTrue(tiny > middle && middle > one, $"larger values are higher up: rows {tiny}, {middle}, {one}");
        Assert.AreEqual(tiny - middle, middle - one, 1.0, "1e-3 is halfway between 1e-6 and 1 on a log axis");
        Assert.AreEqual(plot.Row(1e-3), middle, 1.0);
        var labels = plot.YTicks.Select(t => t.Label).ToArray();
        CollectionAssert.IsSubsetOf(new[] { "1e-6", "1e-3", "1e0" }, labels, string.Join(" ", labels));
    }

    [TestMethod]
    public void LineChart_LogarithmicX_PlacesPointsByTheirLogarithmAndLabelsPowersOfTen()
    {
        var plot = new LineChart { LogarithmicX = true, XLabel = "learning rate" }
            .Add("tiny", new double[] { 1e-6 }, new double[] { 0 })
            .Add("middle", new double[] { 1e-3 }, new double[] { 0 })
            .Add("one", new double[] { 1 }, new double[] { 0 })
            .Render();

        var png = new PngImage(plot.Png);
        double Column(int series) => png.MeanColumn(Colour(series), plot.PlotLeft, plot.PlotTop, plot.PlotRight, plot.PlotBottom);
        double tiny = Column(0), middle = Column(1), one = Column(2);
        Assert.IsTrue(tiny < middle && middle < one, $"larger values are further right: columns {tiny}, {middle}, {one}");
        Assert.AreEqual(middle - tiny, one - middle, 1.0, "1e-3 is halfway between 1e-6 and 1 on a log axis");
        Assert.AreEqual(plot.Column(1e-3), middle, 1.0);
        var labels = plot.XTicks.Select(t => t.Label).ToArray();
        CollectionAssert.IsSubsetOf(new[] { "1e-6", "1e-3", "1e0" }, labels, string.Join(" ", labels));
    }

    [TestMethod]
    public void LineChart_LogarithmicX_RejectsAnXOfZeroNamingTheSeriesAndPoint()
    {
        var chart = new LineChart { LogarithmicX = true }.Add("rates", new double[] { 1e-3, 0 }, new double[] { 1, 2 });
        var error = Assert.ThrowsExactly<ArgumentException>(() => chart.Render());
        StringAssert.Contains(error.Message, "'rates'");
        StringAssert.Contains(error.Message, "point 1");
        StringAssert.Contains(error.Message, "above 0");
    }

    [TestMethod]
    public void LineChart_LogarithmicY_SkipsNonPositiveValuesAndASeriesWithNothingToDraw()
    {
        var chart = new LineChart { LogarithmicY = true }
            .Add("zeros", new double[] { 0, 1 }, new double[] { 0, -1 })
            .Add("norms", new double[] { 0, 1, 2 }, new double[] { 1e-2, -5, 1e2 });
        var plot = chart.Render();

        var png = new PngImage(plot.Png);
        Assert.AreEqual(0, png.Count(Colour(0), plot.PlotLeft, plot.PlotTop, plot.PlotRight, plot.PlotBottom), "nothing to draw for 'zeros'");
        Assert.IsGreaterThan(0, png.Count(Colour(0), plot.PlotRight + 2, 0, png.Width, png.Height), "but it is in the legend");
        Assert.IsTrue(PngImage.Near(png[plot.Column(0), plot.Row(1e-2)], Colour(1)), "the marker of 1e-2");
        Assert.IsTrue(PngImage.Near(png[plot.Column(2), plot.Row(1e2)], Colour(1)), "the marker of 1e2");
        Assert.AreEqual(0, png.Count(Colour(1), plot.Column(1) - 2, plot.PlotTop, plot.Column(1) + 3, plot.PlotBottom), "-5 breaks the line");
    }

    [TestMethod]
    public void LogarithmicTicks_LabelPowersOfTenWithTwoAndFiveOnShortRangesAndMultiplesBetween()
    {
        static string[] Labels(double low, double high, int count) =>
            LogarithmicTicks.Create(low, high, count).Where(t => t.IsMajor).Select(t => t.Label).ToArray();

        CollectionAssert.AreEqual(new[] { "0.01", "0.02", "0.05", "0.1", "0.2" }, Labels(-2.05, -0.6, 10), "under two decades: 1×, 2×, 5×");
        CollectionAssert.AreEqual(new[] { "1e-9", "1e-8", "1e-7", "1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1" }, Labels(-9.2, -0.8, 10), "every decade");
        CollectionAssert.AreEqual(new[] { "1e-8", "1e-6", "1e-4", "1e-2" }, Labels(-9.2, -0.8, 4), "every 2nd decade when space is short");
        CollectionAssert.AreEqual(new[] { "2", "3", "4", "5" }, Labels(Math.Log10(1.9), Math.Log10(5.2), 10), "within a decade: 1× to 9×");
        var ticks = LogarithmicTicks.Create(-2.05, -0.6, 10);
        Assert.IsTrue(ticks.Any(t => !t.IsMajor && Math.Abs(t.Position - Math.Log10(0.03)) < 1e-12), "a minor tick at 0.03");
        foreach (var tick in ticks) Assert.IsTrue(tick.Position >= -2.05 && tick.Position <= -0.6, $"{tick.Position} is in range");
    }

    [TestMethod]
    public void LineChart_Save_IsByteIdenticalForIdenticalInput()
    {
        string a = Path.Combine(Root, "a.png"), b = Path.Combine(Root, "b.png"), c = Path.Combine(Root, "c.png");

        TrainingCurves().Save(a);
        TrainingCurves().Save(b);
        var other = TrainingCurves();
        other.Title = "Loss!";
        other.Save(c);

        CollectionAssert.AreEqual(File.ReadAllBytes(a), File.ReadAllBytes(b));
        CollectionAssert.AreNotEqual(File.ReadAllBytes(a), File.ReadAllBytes(c), "a different title gives a different image");
    }

    [TestMethod]
    public void LineChart_Save_ReplacesAnExistingFileAndLeavesNoTemporaryFile()
    {
        string path = Path.Combine(Root, "loss.png");
        File.WriteAllText(path, "old");

        TrainingCurves().Save(path);

        Assert.AreEqual(800, PngImage.Read(path).Width);
        PngImage.AssertOnlyFiles(Root, "loss.png");
    }

    [TestMethod]
    public void LineChart_Save_WithoutSeries_Throws()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new LineChart().Save(Path.Combine(Root, "x.png")));
        StringAssert.Contains(error.Message, "no series");
        StringAssert.Contains(error.Message, "Add(");
        PngImage.AssertOnlyFiles(Root);
    }

    [TestMethod]
    public void LineChart_Save_WithoutAnyFinitePoint_ThrowsNamingTheSeries()
    {
        string path = Path.Combine(Root, "x.png");
        File.WriteAllText(path, "old");
        var chart = new LineChart().Add("train", new double[] { 1, 2 }, new double[] { double.NaN, double.PositiveInfinity });

        var error = Assert.ThrowsExactly<ArgumentException>(() => chart.Save(path));

        StringAssert.Contains(error.Message, "'train'");
        StringAssert.Contains(error.Message, "finite Y");
        Assert.AreEqual("old", File.ReadAllText(path), "a failed save leaves the file as it was");
        PngImage.AssertOnlyFiles(Root, "x.png");

        chart.LogarithmicY = true;
        chart.Series[0] = new ChartSeries("train", new double[] { 1 }, new double[] { 0 });
        error = Assert.ThrowsExactly<ArgumentException>(() => chart.Save(path));
        StringAssert.Contains(error.Message, "above 0");
    }

    [TestMethod]
    public void LineChart_XAndYOfDifferentLengths_ThrowsNamingTheSeriesAndBothCounts()
    {
        var chart = new LineChart().Add("train", new double[] { 1, 2 }, new double[] { 1, 2 });

        var error = Assert.ThrowsExactly<ArgumentException>(() => chart.Add("validation", new double[] { 1, 2, 3 }, new double[] { 1, 2 }));
        StringAssert.Contains(error.Message, "'validation'");
        StringAssert.Contains(error.Message, "3 X values");
        StringAssert.Contains(error.Message, "2 Y values");
        Assert.HasCount(1, chart.Series, "the bad series is not added");

        chart.Series.Add(new ChartSeries("late", new double[] { 1 }, new double[] { 1, 2 }));
        error = Assert.ThrowsExactly<ArgumentException>(() => chart.Save(Path.Combine(Root, "x.png")));
        StringAssert.Contains(error.Message, "Series 1 ('late')");
        StringAssert.Contains(error.Message, "1 X values but 2 Y values");
        PngImage.AssertOnlyFiles(Root);
    }

    [TestMethod]
    public void LineChart_NullOrNonFiniteX_ThrowsNamingTheSeriesAndIndex()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            new LineChart().Add("train", new double[] { 1, double.NaN, 3 }, new double[] { 1, 2, 3 }));

        StringAssert.Contains(error.Message, "'train'");
        StringAssert.Contains(error.Message, "NaN at index 1");
        StringAssert.Contains(error.Message, "finite");
        Assert.ThrowsExactly<ArgumentNullException>(() => new LineChart().Add("train", null!, new double[] { 1 }));
    }

    [TestMethod]
    public void LineChart_SizeOutOfRange_Throws()
    {
        var chart = new LineChart { Width = 200, Height = 150 };
        chart.Width = 4000;
        chart.Height = 4000;

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => chart.Width = 199).Message, "200 to 4000");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => chart.Width = 4001);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => chart.Height = 149).Message, "150 to 4000");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => chart.Height = 4001);
        Assert.AreEqual(4000, chart.Width);
    }

    [TestMethod]
    public void LineChart_SmallestAndLargeSizes_Render()
    {
        foreach (var (width, height) in new[] { (200, 150), (2000, 1200) })
        {
            var chart = TrainingCurves();
            chart.Width = width;
            chart.Height = height;
            var plot = chart.Render();
            var png = new PngImage(plot.Png);
            Assert.AreEqual(width, png.Width);
            Assert.AreEqual(height, png.Height);
            Assert.IsGreaterThan(plot.PlotLeft, plot.PlotRight, $"{width}×{height}: the plot has room");
            Assert.IsGreaterThan(plot.PlotTop, plot.PlotBottom, $"{width}×{height}: the plot has room");
        }
    }

    [TestMethod]
    public void LineChart_BadPath_ThrowsAndWritesNothing()
    {
        var chart = TrainingCurves();

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => chart.Save("")).Message, "Give the path");
        StringAssert.Contains(
            Assert.ThrowsExactly<ArgumentException>(() => chart.Save(Path.Combine(Root, "missing", "loss.png"))).Message, "does not exist; create it first");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => chart.Save(Root)).Message, "is a folder");
        PngImage.AssertOnlyFiles(Root);
    }
}
