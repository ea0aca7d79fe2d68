using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static Microsoft.ML.Residual.Tests.Data.DataTestSupport;

namespace Microsoft.ML.Residual.Tests.Segmentation;

[TestClass]
public sealed class MaskRendererTests
{
    private const int H = 2, W = 3;

    public TestContext TestContext { get; set; } = null!;

    private static (byte R, byte G, byte B) PixelAt(MLImage image, int x, int y)
    {
        var pixels = image.Pixels;
        int stride = pixels.Length / image.Height, o = y * stride + 4 * x;
        return image.PixelFormat == MLPixelFormat.Bgra32
            ? (pixels[o + 2], pixels[o + 1], pixels[o])
            : (pixels[o], pixels[o + 1], pixels[o + 2]);
    }

    private static void AssertOnlyFiles(string folder, params string[] names) =>
        CollectionAssert.AreEquivalent(names, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray(), "no temporary file may be left");

    [TestMethod]
    public void SavedMaskHasThePaletteColourOfEveryPixel()
    {
        string folder = NewFolder(TestContext), path = Path.Combine(folder, "mask.png");
        var mask = new uint[] { 0, 1, 2, 2, 1, 0 };

        MaskRenderer.SaveMask(path, mask, W, H);

        var palette = MaskRenderer.DefaultPalette(3);
        using var image = MLImage.CreateFromFile(path);
        Assert.AreEqual(W, image.Width);
        Assert.AreEqual(H, image.Height);
        for (int i = 0; i < mask.Length; i++)
            Assert.AreEqual(palette[(int)mask[i]], PixelAt(image, i % W, i / W), $"pixel {i}");
        Assert.AreEqual(((byte)0, (byte)0, (byte)0), PixelAt(image, 0, 0), "class 0 is black");
        AssertOnlyFiles(folder, "mask.png");
    }

    [TestMethod]
    public void SavedMaskUsesAGivenPaletteAndReplacesAnExistingFile()
    {
        string folder = NewFolder(TestContext), path = Path.Combine(folder, "mask.png");
        File.WriteAllText(path, "old");
        var palette = new (byte, byte, byte)[] { (10, 20, 30), (200, 100, 50) };

        MaskRenderer.SaveMask(path, new uint[] { 1, 0, 0, 0, 0, 1 }, W, H, palette);

        using var image = MLImage.CreateFromFile(path);
        Assert.AreEqual(((byte)200, (byte)100, (byte)50), PixelAt(image, 0, 0));
        Assert.AreEqual(((byte)10, (byte)20, (byte)30), PixelAt(image, 1, 0));
        Assert.AreEqual(((byte)200, (byte)100, (byte)50), PixelAt(image, 2, 1));
        AssertOnlyFiles(folder, "mask.png");
    }

    [TestMethod]
    public void OverlayKeepsBackgroundPixelsAndBlendsClassPixelsWithTheOpacity()
    {
        string folder = NewFolder(TestContext), path = Path.Combine(folder, "overlay.png");
        var chw = Chw(0, 3, H, W, (c, y, x, _) => 40 * c + 20 * y + 10 * x + 5);
        var mask = new uint[] { 0, 1, 2, 0, 2, 1 };
        var palette = new (byte, byte, byte)[] { (255, 255, 255), (200, 0, 100), (0, 240, 40) };

        MaskRenderer.SaveOverlay(path, chw, mask, W, H, opacity: 0.25, palette: palette);

        using var image = MLImage.CreateFromFile(path);
        for (int i = 0; i < mask.Length; i++)
        {
            int x = i % W, y = i / W;
            double[] rgb = { chw[i], chw[H * W + i], chw[2 * H * W + i] };
            var colour = palette[mask[i]];
            (byte, byte, byte) expected = mask[i] == 0
                ? ((byte)rgb[0], (byte)rgb[1], (byte)rgb[2])
                : (Blend(rgb[0], colour.Item1), Blend(rgb[1], colour.Item2), Blend(rgb[2], colour.Item3));
            Assert.AreEqual(expected, PixelAt(image, x, y), $"pixel (x {x}, y {y}), class {mask[i]}");
        }

        AssertOnlyFiles(folder, "overlay.png");

        static byte Blend(double image, byte colour) => (byte)Math.Round(0.75 * image + 0.25 * colour, MidpointRounding.AwayFromZero);
    }

    [TestMethod]
    public void GrayOverlayRepeatsTheGrayValueInEveryChannel()
    {
        string folder = NewFolder(TestContext), path = Path.Combine(folder, "gray.png");
        var gray = new float[] { 0, 50, 100, 150, 200, 300 };

        MaskRenderer.SaveOverlay(path, gray, new uint[] { 0, 0, 0, 0, 0, 1 }, W, H, opacity: 1, palette: new (byte, byte, byte)[] { (0, 0, 0), (1, 2, 3) });

        using var image = MLImage.CreateFromFile(path);
        Assert.AreEqual(((byte)150, (byte)150, (byte)150), PixelAt(image, 0, 1));
        Assert.AreEqual(((byte)1, (byte)2, (byte)3), PixelAt(image, 2, 1), "opacity 1 shows only the class colour");
    }

    [TestMethod]
    public void OverlayOnALargerImageResizesItToTheMask()
    {
        string folder = NewFolder(TestContext), path = Path.Combine(folder, "overlay.png");
        var chw = Chw(0, 3, 4, 6, (c, _, _, _) => 60 + 50 * c); // uniform colour (60, 110, 160)
        WriteRgbPng(Path.Combine(folder, "image.png"), chw, 4, 6);
        using var source = MLImage.CreateFromFile(Path.Combine(folder, "image.png"));

        MaskRenderer.SaveOverlay(path, source, new uint[] { 0, 0, 1, 0, 0, 0 }, W, H, palette: new (byte, byte, byte)[] { (0, 0, 0), (0, 0, 0) });

        using var image = MLImage.CreateFromFile(path);
        Assert.AreEqual(W, image.Width);
        Assert.AreEqual(H, image.Height);
        Assert.AreEqual(((byte)60, (byte)110, (byte)160), PixelAt(image, 1, 1));
        Assert.AreEqual(((byte)30, (byte)55, (byte)80), PixelAt(image, 2, 0), "half image, half black");
    }

    [TestMethod]
    public void BadInputsAreRejectedAndNothingIsWritten()
    {
        string folder = NewFolder(TestContext), path = Path.Combine(folder, "bad.png");
        var pixels = new float[3 * H * W];

        var error = Assert.ThrowsExactly<ArgumentException>(() => MaskRenderer.SaveMask(path, new uint[5], W, H));
        StringAssert.Contains(error.Message, "5 values");
        StringAssert.Contains(error.Message, "3×2");
        Assert.ThrowsExactly<ArgumentException>(() => MaskRenderer.SaveOverlay(path, pixels, new uint[7], W, H));
        Assert.ThrowsExactly<ArgumentException>(() => MaskRenderer.SaveOverlay(path, new float[2 * H * W], new uint[6], W, H));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MaskRenderer.SaveOverlay(path, pixels, new uint[6], W, H, opacity: 1.5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MaskRenderer.SaveOverlay(path, pixels, new uint[6], W, H, opacity: double.NaN));
        error = Assert.ThrowsExactly<ArgumentException>(() =>
            MaskRenderer.SaveMask(path, new uint[] { 0, 0, 0, 0, 2, 0 }, W, H, new (byte, byte, byte)[] { (0, 0, 0), (1, 1, 1) }));
        StringAssert.Contains(error.Message, "class 2");
        StringAssert.Contains(error.Message, "2 colours");
        Assert.ThrowsExactly<ArgumentException>(() => MaskRenderer.SaveMask(Path.Combine(folder, "no-such-folder", "m.png"), new uint[6], W, H));
        AssertOnlyFiles(folder);
    }

    [TestMethod]
    public void DefaultPaletteStartsBlackAndGivesDistinctColours()
    {
        var palette = MaskRenderer.DefaultPalette(64);

        Assert.AreEqual(64, palette.Count);
        Assert.AreEqual(((byte)0, (byte)0, (byte)0), palette[0]);
        Assert.AreEqual(64, palette.Distinct().Count());
        CollectionAssert.AreEqual(palette.Take(5).ToArray(), MaskRenderer.DefaultPalette(5).ToArray(), "a longer palette extends a shorter one");
    }
}
