using System;
using System.Linq;
using Microsoft.ML.Residual.Detection;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Detection;

[TestClass]
public sealed class BoxAugmentationTests
{
    private const int Size = 64;

    // A 3×64×64 black image with a white square over pixels 20–29 (box [20, 20, 30, 30]).
    private static float[] WhiteSquare()
    {
        var image = new float[3 * Size * Size];
        for (int c = 0; c < 3; c++)
            for (int y = 20; y < 30; y++)
                for (int x = 20; x < 30; x++)
                    image[c * Size * Size + y * Size + x] = 255;
        return image;
    }

    // The box of the pixels of channel 0 above half white (the crossing of a bilinear edge is at the edge itself).
    private static (int X1, int Y1, int X2, int Y2) BrightBox(float[] image)
    {
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
                if (image[y * Size + x] > 127.5f)
                    (minX, minY, maxX, maxY) = (Math.Min(minX, x), Math.Min(minY, y), Math.Max(maxX, x), Math.Max(maxY, y));
        return (minX, minY, maxX + 1, maxY + 1);
    }

    [TestMethod]
    public void FlipMirrorsPixelsAndBoxesExactly()
    {
        float[] source = WhiteSquare();
        source[5 * Size + 3] = 77; // pixel (x 3, y 5) of channel 0
        var destination = new float[source.Length];
        var options = new DetectionAugmentation { HorizontalFlipProbability = 1, ScaleRange = (1, 1) };

        var (boxes, labels) = BoxAugmentation.Apply(options, new Random(1), source, destination, 3, Size, Size, new float[] { 10, 5, 20, 15 }, new[] { 4 });

        // x → 64 − x: [10, 5, 20, 15] → [44, 5, 54, 15]; pixel x → 63 − x.
        CollectionAssert.AreEqual(new float[] { 44, 5, 54, 15 }, boxes);
        CollectionAssert.AreEqual(new[] { 4 }, labels);
        Assert.AreEqual(77f, destination[5 * Size + 60]);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < Size; y++)
                for (int x = 0; x < Size; x++)
                    Assert.AreEqual(source[c * Size * Size + y * Size + (Size - 1 - x)], destination[c * Size * Size + y * Size + x]);
    }

    [TestMethod]
    public void ZoomByTwoMapsClipsAndDropsBoxes()
    {
        // Scale 2 with the scaled image's corner at (−32, −32): source [16, 48] fills the output; x → 2x − 32.
        float[] source = WhiteSquare();
        var destination = new float[source.Length];
        float[] boxes =
        {
            20, 20, 30, 30,   // → [8, 8, 28, 28]
            0, 0, 10, 10,     // → [−32, −32, −12, −12]: outside, dropped
            10, 40, 20, 60,   // → [−12, 48, 8, 88] → clipped to [0, 48, 8, 64]
            15, 20, 16.5f, 30, // → [−2, 8, 1, 28] → [0, 8, 1, 28]: 1 px wide, under the 2 px minimum, dropped
        };

        var (kept, labels) = BoxAugmentation.Transform(source, destination, 3, Size, Size, boxes, new[] { 0, 1, 2, 3 }, flip: false, scale: 2, offsetX: -32, offsetY: -32, fill: 114, minimumSide: 2);

        CollectionAssert.AreEqual(new float[] { 8, 8, 28, 28, 0, 48, 8, 64 }, kept);
        CollectionAssert.AreEqual(new[] { 0, 2 }, labels);
        // The square's pixels follow: the bright pixels' box is the square's mapped box [8, 8, 28, 28].
        Assert.AreEqual((8, 8, 28, 28), BrightBox(destination));
    }

    [TestMethod]
    public void ZoomOutFillsTheUncoveredPixels()
    {
        // Scale 0.5 at (10, 20): the image covers [10, 42) × [20, 52); the rest is the fill value.
        var source = new float[3 * Size * Size];
        var destination = new float[source.Length];

        var (kept, _) = BoxAugmentation.Transform(source, destination, 3, Size, Size, new float[] { 0, 0, 64, 64 }, new[] { 1 }, false, 0.5, 10, 20, 114, 2);

        CollectionAssert.AreEqual(new float[] { 10, 20, 42, 52 }, kept);
        Assert.AreEqual(114f, destination[5 * Size + 5]);
        Assert.AreEqual(0f, destination[2 * Size * Size + 30 * Size + 30]);
        Assert.AreEqual(114f, destination[2 * Size * Size + 60 * Size + 30]);
    }

    [TestMethod]
    public void PixelsMoveWithTheBoxesUnderRandomFlipsAndZooms()
    {
        // The bilinear edge of the white square crosses half white where the mapped edge lies, so the bright pixels' box
        // differs from the mapped box by less than a pixel on each side.
        var options = DetectionAugmentation.Default;
        var random = new Random(11);
        for (int trial = 0; trial < 20; trial++)
        {
            float[] source = WhiteSquare();
            var destination = new float[source.Length];
            var (boxes, labels) = BoxAugmentation.Apply(options, random, source, destination, 3, Size, Size, new float[] { 20, 20, 30, 30 }, new[] { 0 });

            Assert.AreEqual(1, labels.Length);
            var bright = BrightBox(destination);
            Assert.AreEqual(boxes[0], bright.X1, 1.0, $"trial {trial}");
            Assert.AreEqual(boxes[1], bright.Y1, 1.0, $"trial {trial}");
            Assert.AreEqual(boxes[2], bright.X2, 1.0, $"trial {trial}");
            Assert.AreEqual(boxes[3], bright.Y2, 1.0, $"trial {trial}");
        }
    }

    [TestMethod]
    public void SeededRandomGivesTheSameAugmentation()
    {
        float[] source = WhiteSquare();
        var a = new float[source.Length];
        var b = new float[source.Length];
        var first = BoxAugmentation.Apply(DetectionAugmentation.Default, new Random(3), source, a, 3, Size, Size, new float[] { 20, 20, 30, 30 }, new[] { 0 });
        var again = BoxAugmentation.Apply(DetectionAugmentation.Default, new Random(3), source, b, 3, Size, Size, new float[] { 20, 20, 30, 30 }, new[] { 0 });

        CollectionAssert.AreEqual(first.Boxes, again.Boxes);
        CollectionAssert.AreEqual(a, b);
    }

    [TestMethod]
    public void NoneLeavesImageAndBoxesUnchanged()
    {
        float[] source = WhiteSquare();
        var destination = new float[source.Length];

        var (boxes, _) = BoxAugmentation.Apply(DetectionAugmentation.None, new Random(1), source, destination, 3, Size, Size, new float[] { 20, 20, 30, 30 }, new[] { 0 });

        Assert.IsTrue(DetectionAugmentation.None.IsIdentity);
        CollectionAssert.AreEqual(new float[] { 20, 20, 30, 30 }, boxes);
        CollectionAssert.AreEqual(source, destination);
    }

    [TestMethod]
    public void BadSettingsAreRefusedByName()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DetectionAugmentation { ScaleRange = (1.5, 1.0) }.Validate()).Message, "ScaleRange");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DetectionAugmentation { HorizontalFlipProbability = 2 }.Validate()).Message, "HorizontalFlipProbability");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DetectionAugmentation { MinimumBoxSide = -1 }.Validate()).Message, "MinimumBoxSide");
        DetectionAugmentation.Default.Validate();
    }
}
