using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Microsoft.ML.Residual.Plots;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Plots;

/// <summary>The raster, the bitmap font and the axis arithmetic under the charts.</summary>
[TestClass]
public sealed class DrawingTests
{
    private static readonly Rgb Red = new(255, 0, 0);

    private static List<(int X, int Y)> Lit(Raster raster)
    {
        var lit = new List<(int, int)>();
        for (int y = 0; y < raster.Height; y++)
            for (int x = 0; x < raster.Width; x++)
                if (raster.GetPixel(x, y) != Rgb.White)
                    lit.Add((x, y));
        return lit;
    }

    [TestMethod]
    public void Raster_DrawLine_IsTwoPixelsThickAndStaysInsideTheClip()
    {
        var raster = new Raster(20, 10, Rgb.White);
        raster.SetClip(5, 2, 15, 8);

        raster.DrawLine(-30, 4, 50, 4, 2, Red);

        var lit = Lit(raster);
        Assert.HasCount(2 * 10, lit, "rows 4 and 5, columns 5 to 14");
        Assert.IsTrue(lit.All(p => p.X >= 5 && p.X < 15 && (p.Y == 4 || p.Y == 5)));
    }

    [TestMethod]
    public void Raster_DrawLine_DiagonalIsContinuous()
    {
        var raster = new Raster(30, 30, Rgb.White);

        raster.DrawLine(2, 3, 25, 20, 1, Red);

        for (int x = 2; x <= 25; x++)
            Assert.IsTrue(Enumerable.Range(0, 30).Any(y => raster.GetPixel(x, y) == Red), $"column {x}");
        Assert.AreEqual(Red, raster.GetPixel(2, 3));
        Assert.AreEqual(Red, raster.GetPixel(25, 20));
    }

    [TestMethod]
    public void Raster_FillRectOutsideTheImage_IsClipped()
    {
        var raster = new Raster(4, 4, Rgb.White);

        raster.FillRect(-10, -10, 12, 11, Red);
        raster.FillRect(3, 3, int.MaxValue, int.MaxValue, Red);

        CollectionAssert.AreEquivalent(new[] { (0, 0), (1, 0), (3, 3) }, Lit(raster));
    }

    [TestMethod]
    public void Font_CoversPrintableAsciiWithDistinctGlyphs()
    {
        var unknown = Render(BitmapFont.GlyphOf(new Rune(0x4E2D)));
        var seen = new Dictionary<string, char>();
        for (char c = '!'; c <= '~'; c++)
        {
            string pixels = Render(BitmapFont.GlyphOf(new Rune(c)));
            Assert.AreNotEqual(unknown, pixels, $"'{c}' has a glyph of its own");
            Assert.IsTrue(seen.TryAdd(pixels, c), $"'{c}' looks like '{(seen.TryGetValue(pixels, out char other) ? other : ' ')}'");
        }

        Assert.AreEqual(4, BitmapFont.GlyphOf(new Rune(' ')).Advance, "a space is blank but has a width");

        static string Render(BitmapFont.Glyph glyph) =>
            string.Join("/", Enumerable.Range(0, BitmapFont.LineHeight).Select(row =>
                new string(Enumerable.Range(0, 5).Select(column => glyph.IsLit(column, row) ? '#' : '.').ToArray())));
    }

    [TestMethod]
    public void Font_DrawnText_HasTheMeasuredWidthAndCapHeight()
    {
        foreach (int scale in new[] { 1, 2 })
        {
            var raster = new Raster(200, 40, Rgb.White);
            const string text = "Loss 0.25 (val)";

            BitmapFont.Draw(raster, text, 10, 5, scale, Red);

            var lit = Lit(raster);
            Assert.AreEqual(10, lit.Min(p => p.X));
            Assert.AreEqual(10 + BitmapFont.Measure(text, scale) - 1, lit.Max(p => p.X), $"scale {scale}: the measured width");
            Assert.AreEqual(5, lit.Min(p => p.Y));
            Assert.AreEqual(5 + BitmapFont.CapHeight * scale - 1, lit.Max(p => p.Y), $"scale {scale}: no descender in the text");
        }

        Assert.AreEqual(0, BitmapFont.Measure("", 1));
        Assert.AreEqual(2 * BitmapFont.Measure("epoch", 1), BitmapFont.Measure("epoch", 2));
        Assert.IsLessThan(BitmapFont.Measure("m", 1), BitmapFont.Measure("i", 1), "proportional");
    }

    [TestMethod]
    public void Font_OtherCharacters_DrawAsAHollowBox()
    {
        var raster = new Raster(20, 20, Rgb.White);

        BitmapFont.Draw(raster, "é", 2, 2, 1, Red);

        var lit = Lit(raster);
        int left = lit.Min(p => p.X), right = lit.Max(p => p.X), top = lit.Min(p => p.Y), bottom = lit.Max(p => p.Y);
        Assert.IsTrue(lit.All(p => p.X == left || p.X == right || p.Y == top || p.Y == bottom), "only the outline");
        Assert.HasCount(2 * (right - left + 1) + 2 * (bottom - top - 1), lit, "the whole outline");
        Assert.IsGreaterThanOrEqualTo(3, right - left);
        Assert.AreEqual(BitmapFont.Measure("\U0001F600", 1), BitmapFont.Measure("é", 1), "a character outside the BMP is one box too");
    }

    [TestMethod]
    public void Font_DrawUp_TurnsTheTextAQuarterCounterClockwise()
    {
        var raster = new Raster(40, 80, Rgb.White);
        const string text = "loss";

        BitmapFont.DrawUp(raster, text, 10, 70, 1, Red);

        var lit = Lit(raster);
        Assert.AreEqual(70 - BitmapFont.Measure(text, 1), lit.Min(p => p.Y));
        Assert.AreEqual(69, lit.Max(p => p.Y), "starts at the bottom");
        Assert.AreEqual(10, lit.Min(p => p.X), "the tall letters' tops face left");
        Assert.AreEqual(10 + BitmapFont.CapHeight - 1, lit.Max(p => p.X));
    }

    [TestMethod]
    public void Font_Truncate_FitsTheWidthAndEndsWithAnEllipsis()
    {
        const string name = "automobile-with-a-very-long-name";
        string cut = BitmapFont.Truncate(name, 50, 1);

        Assert.EndsWith(BitmapFont.Ellipsis, cut);
        Assert.IsLessThanOrEqualTo(50, BitmapFont.Measure(cut, 1));
        Assert.StartsWith(cut[..^1], name);
        Assert.IsGreaterThan(50 - 12, BitmapFont.Measure(cut, 1), "keeps as much as fits");
        Assert.AreEqual("cat", BitmapFont.Truncate("cat", 50, 1));
        Assert.AreEqual("", BitmapFont.Truncate("cat", 2, 1));
    }

    [TestMethod]
    public void Axis_LinearTicks_AreRoundWithTheDecimalsOfTheStep()
    {
        var ticks = Axis.LinearTicks(-0.04, 1.54, 4, integers: false);

        CollectionAssert.AreEqual(new[] { "0.0", "0.5", "1.0", "1.5" }, ticks.Select(t => t.Label).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0.5, 1.0, 1.5 }, ticks.Select(t => t.Value).ToArray());
        CollectionAssert.AreEqual(new[] { "1", "2", "3" }, Axis.LinearTicks(0.9, 3.1, 10, integers: true).Select(t => t.Label).ToArray(),
            "whole numbers never get a step below 1");
        CollectionAssert.AreEqual(new[] { "-20", "0", "20", "40" }, Axis.LinearTicks(-25, 45, 4, integers: false).Select(t => t.Label).ToArray());
    }

    [TestMethod]
    public void Axis_TickLabels_UseAnExponentForTinyStepsAndHugeValues()
    {
        CollectionAssert.AreEqual(new[] { "1e-5", "2e-5", "3e-5" }, Axis.LinearTicks(0.9e-5, 3.1e-5, 3, integers: false).Select(t => t.Label).ToArray());
        Assert.AreEqual("1.5e-5", Axis.FormatExponent(1.5e-5, -6));
        Assert.AreEqual("2e6", Axis.FormatExponent(2e6, 5));
        Assert.AreEqual("-3e-7", Axis.FormatExponent(-3e-7, -8));
        Assert.AreEqual("0", Axis.FormatExponent(0, -8));
    }

    [TestMethod]
    public void Axis_LogarithmicTicks_ArePowersOfTenWithTwoAndFiveOnSmallRanges()
    {
        var wide = Axis.LogarithmicTicks(-6.2, 0.2, 10);
        CollectionAssert.AreEqual(new[] { "1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1e0" }, wide.Select(t => t.Label).ToArray());
        Assert.AreEqual(1e-3, wide[3].Value, 1e-18);

        var sparse = Axis.LogarithmicTicks(-30.5, 30.5, 8);
        Assert.IsLessThanOrEqualTo(8, sparse.Count);
        CollectionAssert.Contains(sparse.Select(t => t.Label).ToArray(), "1e0");

        var small = Axis.LogarithmicTicks(-2.1, 0.1, 10);
        CollectionAssert.AreEqual(new[] { "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1" }, small.Select(t => t.Label).ToArray());

        var withinADecade = Axis.LogarithmicTicks(Math.Log10(0.018), Math.Log10(0.095), 10);
        CollectionAssert.AreEqual(new[] { "0.02", "0.03", "0.04", "0.05", "0.06", "0.07", "0.08", "0.09" }, withinADecade.Select(t => t.Label).ToArray());
    }

    [TestMethod]
    public void Axis_Logarithmic_MapsEqualRatiosToEqualDistances()
    {
        var axis = Axis.Create(1e-6, 1, logarithmic: true, integers: false, 400, 40, _ => 7, 6);

        double tiny = axis.ToPixel(1e-6, 400, 0), middle = axis.ToPixel(1e-3, 400, 0), one = axis.ToPixel(1, 400, 0);

        Assert.AreEqual((tiny + one) / 2, middle, 1e-9);
        Assert.IsGreaterThan(one, tiny);
        Assert.AreEqual(-6 - Axis.Padding * 6, axis.Low, 1e-12, "padded by a share of the range in exponents");
    }

    [TestMethod]
    public void Axis_EqualValues_GetARangeAroundThem()
    {
        foreach (var (value, log) in new[] { (0.0, false), (2.5, false), (-7.0, false), (3e-4, true) })
        {
            var axis = Axis.Create(value, value, log, integers: false, 300, 40, _ => 7, 6);
            Assert.IsLessThan(axis.Transform(value), axis.Low, $"{value}");
            Assert.IsGreaterThan(axis.Transform(value), axis.High, $"{value}");
            Assert.IsGreaterThanOrEqualTo(2, axis.Ticks.Count, $"{value}: {string.Join(" ", axis.Ticks.Select(t => t.Label))}");
        }
    }

    [TestMethod]
    public void Axis_Create_AlwaysGivesTicksWithinTheRange()
    {
        var random = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            bool log = i % 2 == 0, integers = !log && i % 3 == 0;
            double a = log ? Math.Pow(10, random.NextDouble() * 40 - 20) : Math.Round((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-6, 7)), integers ? 0 : 9);
            double b = log ? a * Math.Pow(10, random.NextDouble() * random.Next(0, 6)) : a + (integers ? random.Next(0, 50) : random.NextDouble() * Math.Pow(10, random.Next(-6, 7)));
            int length = random.Next(5, 600);
            var axis = Axis.Create(a, b, log, integers, length, 40, label => 6 * label.Length, 6);

            string what = $"[{a}, {b}] log {log} integers {integers} length {length}: {string.Join(" ", axis.Ticks.Select(t => t.Label))}";
            Assert.IsGreaterThanOrEqualTo(1, axis.Ticks.Count, what);
            Assert.IsTrue(axis.Low < axis.Transform(a) && axis.Transform(b) < axis.High, what);
            foreach (var tick in axis.Ticks)
            {
                Assert.IsTrue(axis.Transform(tick.Value) >= axis.Low - 1e-9 && axis.Transform(tick.Value) <= axis.High + 1e-9, $"{tick.Label} in {what}");
                Assert.IsFalse(tick.Label.StartsWith("-0", StringComparison.Ordinal) && tick.Value == 0, $"no negative zero: {what}");
            }

            Assert.HasCount(axis.Ticks.Count, axis.Ticks.Select(t => t.Label).Distinct().ToArray(), $"distinct labels: {what}");
        }
    }

    [TestMethod]
    public void Axis_Create_DropsTicksUntilTheLabelsDoNotOverlap()
    {
        var axis = Axis.Create(0, 1000, logarithmic: false, integers: true, 100, 10, label => 30, 10);

        for (int i = 1; i < axis.Ticks.Count; i++)
            Assert.IsGreaterThanOrEqualTo(40, axis.ToPixel(axis.Ticks[i].Value, 0, 100) - axis.ToPixel(axis.Ticks[i - 1].Value, 0, 100));
        Assert.IsGreaterThanOrEqualTo(2, axis.Ticks.Count);
    }
}
