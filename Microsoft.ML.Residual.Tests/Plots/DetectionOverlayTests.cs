using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Plots;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Plots;

/// <summary>Detections and true boxes drawn over an image: where the outlines and tags land, the scaling of small images, the legend, the same bytes for the same input, and errors.</summary>
[TestClass]
public sealed class DetectionOverlayTests
{
    private static readonly string[] Classes = { "circle", "square" };
    private static readonly SKColor Predicted = new(255, 120, 0), Truth = new(40, 220, 60), Gray = new(128, 128, 128);

    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("residualml-detection-overlay-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    // A gray (128) image of width × height, stored in the given pixel order.
    private static MLImage GrayImage(int width, int height, MLPixelFormat format = MLPixelFormat.Rgba32) =>
        MLImage.CreateFromPixels(width, height, format, Enumerable.Range(0, 4 * width * height).Select(i => (byte)(i % 4 == 3 ? 255 : 128)).ToArray());

    [TestMethod]
    public void Save_DrawsDetectionsInOrangeWithATagAboveAndTrueBoxesInGreen_OverTheUnchangedImage()
    {
        string path = Path.Combine(folder, "overlay.png");
        using MLImage image = GrayImage(256, 256);
        DetectionOverlay.Save(path, image, new[] { new ScoredBox(1, 0.87f, 40, 60, 140, 160) }, Classes, new[] { new DetectionBox(0, 150, 30, 220, 100) });
        var png = PngImage.Read(path);
        Assert.AreEqual(256, png.Width, "a 256-pixel image is not scaled");
        Assert.AreEqual(256 + 20, png.Height, "the legend adds a strip at the foot");

        // A 2-pixel outline centred on each edge: columns 39–40 for x = 40, 139–140 for x = 140.
        Assert.AreEqual(2 * 60, png.Count(Predicted, 38, 90, 42, 150, tolerance: 2), "the left edge of the detection, 2 pixels wide");
        Assert.AreEqual(2 * 60, png.Count(Predicted, 138, 90, 142, 150, tolerance: 2), "its right edge");
        Assert.AreEqual(2 * 40, png.Count(Truth, 148, 50, 152, 90, tolerance: 2), "the left edge of the true box, in green");
        Assert.IsTrue(PngImage.Near(png[90, 110], Gray, 1), $"inside the box the image is unchanged: {png[90, 110]}");
        Assert.IsTrue(PngImage.Near(png[20, 200], Gray, 1), "outside every box too");

        // The tag "square 0.87" sits on top of the detection's top edge: orange with dark text in the rows above y = 60.
        int tagOrange = png.Count(Predicted, 39, 40, 140, 59, tolerance: 2), tagText = png.CountDark(39, 40, 140, 59);
        Assert.IsTrue(tagOrange > 300, $"an orange tag above the detection ({tagOrange} pixels)");
        Assert.IsTrue(tagText > 20, $"text in the tag ({tagText} dark pixels)");
        Assert.IsTrue(png.CountDark(152, 33, 219, 50) > 10, "the true box's tag, with its class, inside its top edge");

        // The legend: an orange and a green square on the strip below the image.
        Assert.IsTrue(png.Count(Predicted, 0, 256, 256, 276, tolerance: 2) >= 100, "the legend's orange square");
        Assert.IsTrue(png.Count(Truth, 0, 256, 256, 276, tolerance: 2) >= 100, "the legend's green square");
        PngImage.AssertOnlyFiles(folder, "overlay.png");
    }

    [TestMethod]
    public void Save_ScalesASmallImageAndItsBoxesUpToTheMinimumSide_AndDrawsNoLegendWithoutTruth()
    {
        string path = Path.Combine(folder, "small.png");
        using MLImage image = GrayImage(64, 32, MLPixelFormat.Bgra32);
        DetectionOverlay.Save(path, image, new[] { new ScoredBox(0, 0.5f, 8, 8, 24, 24) }, Classes);
        var png = PngImage.Read(path);
        // The shorter side, 32, becomes 256: a scale of 8, so the box spans 64–192 and its left edge is at columns 63–64.
        Assert.AreEqual(512, png.Width);
        Assert.AreEqual(256, png.Height, "no legend strip without true boxes");
        Assert.AreEqual(2 * 100, png.Count(Predicted, 61, 80, 67, 180, tolerance: 2), "the scaled left edge");
        Assert.IsTrue(PngImage.Near(png[300, 128], Gray, 1), $"a BGRA image keeps its colours: {png[300, 128]}");
    }

    [TestMethod]
    public void Save_TheSameInputTwice_GivesTheSameBytes()
    {
        using MLImage image = GrayImage(100, 80);
        var detections = new[] { new ScoredBox(0, 0.9f, 10, 10, 50, 50), new ScoredBox(1, 0.4f, 30, 20, 90, 70) };
        var truth = new[] { new DetectionBox(0, 12, 9, 49, 52) };
        DetectionOverlay.Save(Path.Combine(folder, "a.png"), image, detections, Classes, truth);
        DetectionOverlay.Save(Path.Combine(folder, "b.png"), image, detections, Classes, truth);
        CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(folder, "a.png")), File.ReadAllBytes(Path.Combine(folder, "b.png")));
    }

    [TestMethod]
    public void Save_WithALabelThatIsNotAClass_ThrowsNamingItAndWritesNothing()
    {
        using MLImage image = GrayImage(40, 40);
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            DetectionOverlay.Save(Path.Combine(folder, "bad.png"), image, new[] { new ScoredBox(2, 0.9f, 1, 1, 5, 5) }, Classes));
        StringAssert.Contains(e.Message, "Label 2");
        Assert.ThrowsExactly<ArgumentException>(() => DetectionOverlay.Save(Path.Combine(folder, "missing", "x.png"), image, Array.Empty<ScoredBox>(), Classes));
        PngImage.AssertOnlyFiles(folder);
    }
}
