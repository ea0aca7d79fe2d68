using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Interpretation;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Tests.Interpretation;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Plots;

/// <summary>The Grad-CAM pages: where the colours of the map land, the text drawn, the same bytes for the same maps, and errors.</summary>
[TestClass]
public sealed class ExplanationPagesTests
{
    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("residualml-explanation-pages-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    // A 16×16 gray (128) image whose map is 1 on the left half and 0 on the right.
    private static ClassActivationMap HalfMap(string source = "images/cat.png") =>
        ClassificationInterpretationTests.Map(new[] { 0.9f, 0.05f, 0.05f }, source, Enumerable.Range(0, 256).Select(i => i % 16 < 8 ? 1f : 0f).ToArray(), size: 16);

    [TestMethod]
    public void SaveOverlay_DrawsTheImageBesideItBlendedRedWhereTheMapIsHighAndBlueWhereItIsNot()
    {
        string path = Path.Combine(folder, "overlay.png");
        ExplanationPages.SaveOverlay(path, HalfMap(), tileSize: 256);
        var png = PngImage.Read(path);
        // Tiles start below the title (16 + 30) at x = 16 and x = 16 + 256 + 12; the 16-pixel image is scaled 16 times.
        int top = 46, second = 284;
        var gray = new SKColor(128, 128, 128);
        Assert.IsTrue(PngImage.Near(png[16 + 64, top + 128], gray, 2), "the image alone on the left");
        // Half image, half colour: 0.5·128 + 0.5·(140, 0, 0) on the map's peak, 0.5·128 + 0.5·(0, 0, 140) where it is 0.
        Assert.IsTrue(PngImage.Near(png[second + 64, top + 128], new SKColor(134, 64, 64), 2), $"red where the map is 1: {png[second + 64, top + 128]}");
        Assert.IsTrue(PngImage.Near(png[second + 192, top + 128], new SKColor(64, 64, 134), 2), $"blue where it is 0: {png[second + 192, top + 128]}");
        Assert.IsGreaterThan(30, png.CountDark(0, 0, png.Width, top), "the file name is drawn as the title");
        Assert.IsGreaterThan(30, png.CountDark(second, top + 256, png.Width, top + 256 + 40), "the caption is drawn under the overlay");
    }

    [TestMethod]
    public void Colour_RunsFromDarkBlueThroughCyanAndYellowToDarkRed()
    {
        Assert.AreEqual(((byte)0, (byte)0, (byte)140), ExplanationPages.Colour(0));
        Assert.AreEqual(((byte)0, (byte)255, (byte)255), ExplanationPages.Colour(0.375));
        Assert.AreEqual(((byte)255, (byte)255, (byte)0), ExplanationPages.Colour(0.625));
        Assert.AreEqual(((byte)140, (byte)0, (byte)0), ExplanationPages.Colour(1));
        Assert.AreEqual(ExplanationPages.Colour(1), ExplanationPages.Colour(7), "clamped");
    }

    [TestMethod]
    public void Pages_AreTheSameBytesForTheSameMaps_AndHoldEveryTile()
    {
        var maps = Enumerable.Range(0, 5).Select(i => HalfMap($"images/{i}.png")).ToList();
        string first = Path.Combine(folder, "a.png"), second = Path.Combine(folder, "b.png");
        ExplanationPages.SaveGrid(first, "Grad-CAM", maps, columns: 2);
        ExplanationPages.SaveGrid(second, "Grad-CAM", maps, columns: 2);
        CollectionAssert.AreEqual(File.ReadAllBytes(first), File.ReadAllBytes(second));
        var png = PngImage.Read(first);
        Assert.AreEqual(2 * 16 + 2 * 160 + 12, png.Width, "two columns of 160-pixel tiles");

        int[] actual = { 1, 0, 0, 2, 0 };
        string losses = Path.Combine(folder, "losses.png"), confused = Path.Combine(folder, "confused.png");
        ExplanationPages.SaveTopLosses(losses, ClassificationInterpretation.TopLosses(maps, actual, 3), new[] { "a", "b", "c" }, columns: 3);
        Assert.AreEqual(2 * 16 + 3 * 160 + 2 * 12, PngImage.Read(losses).Width);
        ExplanationPages.SaveMostConfused(confused, ClassificationInterpretation.MostConfused(maps, actual), maps, actual, new[] { "a", "b", "c" }, examples: 2);
        // Two pairs (b → a, c → a), one image each: two rows with headings.
        var page = PngImage.Read(confused);
        Assert.IsGreaterThan(30, page.CountDark(0, 46, page.Width, 70), "the first pair's heading");
    }

    [TestMethod]
    public void BadArguments_AreRefusedNamingThem()
    {
        var maps = new[] { HalfMap() };
        Assert.AreEqual("maps", Assert.ThrowsExactly<ArgumentException>(() => ExplanationPages.SaveGrid(Path.Combine(folder, "x.png"), "t", Array.Empty<ClassActivationMap>())).ParamName);
        Assert.AreEqual("tileSize", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ExplanationPages.SaveOverlay(Path.Combine(folder, "x.png"), maps[0], tileSize: 4)).ParamName);
        Assert.AreEqual("path", Assert.ThrowsExactly<ArgumentException>(() => ExplanationPages.SaveOverlay(Path.Combine(folder, "missing", "x.png"), maps[0])).ParamName);
        var none = Assert.ThrowsExactly<ArgumentException>(() => ExplanationPages.SaveMostConfused(Path.Combine(folder, "x.png"), Array.Empty<ConfusedPair>(), maps, new[] { 0 }, new[] { "a", "b", "c" }));
        StringAssert.Contains(none.Message, "every image was classified correctly");
    }
}
