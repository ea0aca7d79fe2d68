using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Residual.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static Microsoft.ML.Residual.Tests.Data.DataTestSupport;

namespace Microsoft.ML.Residual.Tests.Data;

[TestClass]
public sealed class TrivialAugmentTests
{
    private const double DefaultFraction = 32.0 / 224.0;

    private static float[] Ramp(int channels, int height, int width) =>
        Chw(0, channels, height, width, (c, y, x, _) => 1 + c * 60 + y * 10 + x);

    private static float At(float[] image, int height, int width, int c, int y, int x) => image[(c * height + y) * width + x];

    private static float[] Random255(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (float)random.Next(256)).ToArray();
    }

    private static float[] Applied(float[] image, int channels, int height, int width, TrivialAugmentOp op, int bin, bool negative = false,
        double fraction = DefaultFraction)
    {
        var copy = (float[])image.Clone();
        TrivialAugmentOps.Apply(copy, channels, height, width, op, bin, negative, fraction);
        return copy;
    }

    // ---- value operations -----------------------------------------------------------------------------------

    [TestMethod]
    public void SolarizeInvertsValuesAtOrAboveTheThreshold()
    {
        var image = new float[] { 0, 100, 127, 128, 200, 255 };
        TrivialAugmentOps.Solarize(image, 128);
        CollectionAssert.AreEqual(new float[] { 0, 100, 127, 127, 55, 0 }, image);
    }

    [TestMethod]
    public void SolarizeThresholdRunsFrom255AtBinZeroToZeroAtBin30()
    {
        var image = new float[] { 0, 10, 254, 255 };
        CollectionAssert.AreEqual(new float[] { 0, 10, 254, 0 }, Applied(image, 1, 1, 4, TrivialAugmentOp.Solarize, 0));
        CollectionAssert.AreEqual(new float[] { 255, 245, 1, 0 }, Applied(image, 1, 1, 4, TrivialAugmentOp.Solarize, 30));
        // Bin 15: threshold 127.5.
        CollectionAssert.AreEqual(new float[] { 0, 10, 1, 0 }, Applied(image, 1, 1, 4, TrivialAugmentOp.Solarize, 15));
    }

    [TestMethod]
    public void PosterizeRoundsAndKeepsTheTopBits()
    {
        var image = new float[] { 0, 63, 64, 127.6f, 200, 255 };
        TrivialAugmentOps.Posterize(image, 2);
        CollectionAssert.AreEqual(new float[] { 0, 0, 64, 128, 192, 192 }, image);

        var eight = new float[] { 3.4f, 3.6f, 254.9f };
        TrivialAugmentOps.Posterize(eight, 8);
        CollectionAssert.AreEqual(new float[] { 3, 4, 255 }, eight);
    }

    [TestMethod]
    public void PosterizeBitsRunFromEightAtBinZeroToTwoAtBin30()
    {
        Assert.AreEqual(8, TrivialAugmentOps.PosterizeBits(0));
        Assert.AreEqual(8, TrivialAugmentOps.PosterizeBits(2));
        Assert.AreEqual(7, TrivialAugmentOps.PosterizeBits(3));
        Assert.AreEqual(5, TrivialAugmentOps.PosterizeBits(15));
        Assert.AreEqual(2, TrivialAugmentOps.PosterizeBits(30));
        for (int bin = 1; bin < TrivialAugmentOps.Bins; bin++)
            Assert.IsTrue(TrivialAugmentOps.PosterizeBits(bin) <= TrivialAugmentOps.PosterizeBits(bin - 1));
        // Through the policy: bin 30 keeps 2 bits.
        CollectionAssert.AreEqual(new float[] { 0, 64, 128, 192 }, Applied(new float[] { 10, 100, 150, 250 }, 1, 2, 2, TrivialAugmentOp.Posterize, 30));
    }

    [TestMethod]
    public void AutoContrastStretchesEachChannelsMinMaxTo0And255()
    {
        // Channel 0 spans 50..150, channel 1 is constant, channel 2 spans 0..51.
        var image = new float[] { 50, 100, 150, 75, /**/ 9, 9, 9, 9, /**/ 0, 51, 17, 34 };
        TrivialAugmentOps.AutoContrast(image, 3, 2, 2);
        CollectionAssert.AreEqual(new float[] { 0, 127.5f, 255, 63.75f, 9, 9, 9, 9, 0, 255, 85, 170 }, image);
    }

    [TestMethod]
    public void EqualizeSpreadsAKnownHistogramOverTheRange()
    {
        // 765 pixels: 255 each of 10, 20, 30. step = (765 - 255) / 255 = 2, so 10 → ⌊1/2⌋ = 0, 20 → ⌊256/2⌋ = 128, 30 → ⌊511/2⌋ = 255.
        const int h = 15, w = 51;
        var image = Chw(0, 1, h, w, (_, y, x, _) => new float[] { 10, 20, 30 }[(y * w + x) % 3]);
        TrivialAugmentOps.Equalize(image, 1, h, w);
        for (int i = 0; i < image.Length; i++)
            Assert.AreEqual(new float[] { 0, 128, 255 }[i % 3], image[i], $"pixel {i}");
    }

    [TestMethod]
    public void EqualizeLeavesASingleValueOrTooFewPixelsAloneButRoundsToIntegers()
    {
        var constant = Enumerable.Repeat(70.4f, 600).ToArray();
        TrivialAugmentOps.Equalize(constant, 1, 20, 30);
        Assert.IsTrue(constant.All(v => v == 70));

        var few = new float[] { 0, 100, 200, 200.2f };
        TrivialAugmentOps.Equalize(few, 1, 2, 2);
        CollectionAssert.AreEqual(new float[] { 0, 100, 200, 200 }, few);
    }

    [TestMethod]
    public void EqualizeWorksPerChannel()
    {
        const int h = 15, w = 51, plane = h * w;
        var image = Chw(0, 2, h, w, (c, y, x, _) => c == 0 ? new float[] { 10, 20, 30 }[(y * w + x) % 3] : 5);
        TrivialAugmentOps.Equalize(image, 2, h, w);
        Assert.AreEqual(128f, image[1]);
        Assert.IsTrue(image.Skip(plane).All(v => v == 5));
    }

    // ---- enhancements ---------------------------------------------------------------------------------------

    [TestMethod]
    public void BrightnessScalesByTheFactorAndClamps()
    {
        var image = new float[] { 0, 100, 200 };
        TrivialAugmentOps.Brightness(image, 1.5f);
        CollectionAssert.AreEqual(new float[] { 0, 150, 255 }, image);

        // Bin 30 negative: factor 1 − 0.99 = 0.01; bin 30 positive: 1.99. The factor is rounded to float32 (after a float64
        // difference, 1e-14 of it at most) and the product rounds: within γ₃ of the exact value.
        var dark = Applied(new float[] { 100, 200 }, 1, 1, 2, TrivialAugmentOp.Brightness, 30, negative: true);
        Assert.AreEqual(1f, dark[0], Numerics.Gamma(3) * 1);
        Assert.AreEqual(2f, dark[1], Numerics.Gamma(3) * 2);
        var bright = Applied(new float[] { 100, 200 }, 1, 1, 2, TrivialAugmentOp.Brightness, 30);
        Assert.AreEqual(199f, bright[0], Numerics.Gamma(3) * 199);
        Assert.AreEqual(255f, bright[1]);
        CollectionAssert.AreEqual(new float[] { 100, 200 }, Applied(new float[] { 100, 200 }, 1, 1, 2, TrivialAugmentOp.Brightness, 0));
    }

    [TestMethod]
    public void ColorBlendsWithTheLumaOfThreeChannels()
    {
        // (R, G, B) = (200, 100, 0): luma 0.299·200 + 0.587·100 = 118.5. In float32 the three weights, three products and
        // two sums round: within γ₅·118.5 (Σ|terms| is the luma itself); factor 0 then gives 0·v + 1·luma, the luma exactly.
        double lumaBound = Numerics.Gamma(5) * 118.5;
        var gray = new float[] { 200, 100, 0 };
        TrivialAugmentOps.Color(gray, 3, 1, 1, 0f);
        foreach (float v in gray) Assert.AreEqual(118.5f, v, lumaBound);

        var vivid = new float[] { 200, 100, 0 };
        TrivialAugmentOps.Color(vivid, 3, 1, 1, 2f);
        Assert.AreEqual(255f, vivid[0]);          // 118.5 + 2·81.5 = 281.5, clamped
        Assert.AreEqual(81.5f, vivid[1], lumaBound + Numerics.Gamma(1) * 81.5);  // 118.5 − 2·18.5: 2·100 − luma, one more rounding
        Assert.AreEqual(0f, vivid[2]);            // 118.5 − 2·118.5 < 0, clamped
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(4)]
    public void ColorIsTheIdentityUnlessThereAreThreeChannels(int channels)
    {
        var image = Ramp(channels, 3, 3);
        var result = Applied(image, channels, 3, 3, TrivialAugmentOp.Color, 30, negative: true);
        CollectionAssert.AreEqual(image, result);
    }

    [TestMethod]
    public void ContrastBlendsWithTheMeanGrayLevel()
    {
        var single = new float[] { 0, 100, 100, 200 };   // mean 100
        TrivialAugmentOps.Contrast(single, 1, 2, 2, 0.5f);
        CollectionAssert.AreEqual(new float[] { 50, 100, 100, 150 }, single);

        // Two RGB pixels: (255, 255, 255) has luma 255, (0, 0, 0) has 0; mean gray 127.5. Factor 0 gives the mean everywhere:
        // the luma within γ₅·255 (as above), halved, and rounded to float32 once more.
        var rgb = new float[] { 255, 0, 255, 0, 255, 0 };
        TrivialAugmentOps.Contrast(rgb, 3, 1, 2, 0f);
        foreach (float v in rgb) Assert.AreEqual(127.5f, v, Numerics.Gamma(6) * 127.5);

        var stretched = new float[] { 0, 100, 100, 200 };
        TrivialAugmentOps.Contrast(stretched, 1, 2, 2, 3f);
        CollectionAssert.AreEqual(new float[] { 0, 100, 100, 255 }, stretched);
    }

    [TestMethod]
    public void SharpnessBlendsInteriorPixelsWithTheSmoothedImageAndKeepsTheBorder()
    {
        // A spike of 130 at the centre of a 5×5 zero image. Smoothed: centre 130·5/13 = 50, its neighbours 130/13 = 10. Every
        // step is exact in float32 (integer sums, 650/13 and 130/13 are integers, blends with factors 0 and 2 of integers).
        const int n = 5;
        var image = new float[n * n];
        image[2 * n + 2] = 130;

        var blurred = (float[])image.Clone();
        TrivialAugmentOps.Sharpness(blurred, 1, n, n, 0f);
        Assert.AreEqual(50f, blurred[2 * n + 2]);
        Assert.AreEqual(10f, blurred[1 * n + 1]);
        Assert.AreEqual(10f, blurred[2 * n + 3]);
        Assert.AreEqual(0f, blurred[0]);

        var sharpened = (float[])image.Clone();
        TrivialAugmentOps.Sharpness(sharpened, 1, n, n, 2f);
        Assert.AreEqual(210f, sharpened[2 * n + 2]);   // 50 + 2·(130 − 50)
        Assert.AreEqual(0f, sharpened[1 * n + 1]);             // 10 + 2·(0 − 10) < 0, clamped

        // A spike on the border is not smoothed (PIL keeps the border of the filtered image).
        var border = new float[n * n];
        border[2] = 130;
        TrivialAugmentOps.Sharpness(border, 1, n, n, 0f);
        Assert.AreEqual(130f, border[2]);
        Assert.AreEqual(10f, border[n + 2]);
    }

    // ---- geometric ------------------------------------------------------------------------------------------

    [TestMethod]
    public void TranslateMovesAKnownPixelAndFillsZeros()
    {
        const int h = 5, w = 5;
        var image = new float[2 * h * w];
        image[2 * w + 1] = 77;              // channel 0, (x 1, y 2)
        image[h * w + 2 * w + 1] = 88;      // channel 1, same pixel
        TrivialAugmentOps.Translate(image, 2, h, w, 2, -1);
        Assert.AreEqual(77f, image[1 * w + 3]);
        Assert.AreEqual(88f, image[h * w + 1 * w + 3]);
        Assert.AreEqual(165f, image.Sum());

        var ramp = Ramp(1, 3, 4);
        var shifted = Applied(ramp, 1, 3, 4, TrivialAugmentOp.TranslateX, 30, negative: true, fraction: 0.5);   // 2 pixels left
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                Assert.AreEqual(x + 2 < 4 ? At(ramp, 3, 4, 0, y, x + 2) : 0f, At(shifted, 3, 4, 0, y, x));
    }

    [TestMethod]
    public void TranslationIsAFractionOfTheSizeInWholePixels()
    {
        Assert.AreEqual(32, TrivialAugmentOps.TranslationPixels(224, DefaultFraction, 1));
        Assert.AreEqual(4, TrivialAugmentOps.TranslationPixels(32, DefaultFraction, 1));
        Assert.AreEqual(16, TrivialAugmentOps.TranslationPixels(224, DefaultFraction, 0.5));
        Assert.AreEqual(32, TrivialAugmentOps.TranslationPixels(32, 1.0, 1));
        Assert.AreEqual(0, TrivialAugmentOps.TranslationPixels(224, DefaultFraction, 0));

        // TranslateY at the largest bin with fraction 1 moves everything out of a 3-row image.
        var gone = Applied(Ramp(1, 3, 2), 1, 3, 2, TrivialAugmentOp.TranslateY, 30, fraction: 1);
        Assert.IsTrue(gone.All(v => v == 0));
    }

    [TestMethod]
    public void ShearXShiftsEachRowByTheFactorTimesItsCentreHeight()
    {
        // Output (x, y) takes input ⌊x + ½ + 0.5·(y + ½)⌋: rows shift left by 0, 1, 1, 2.
        const int h = 4, w = 5;
        var image = Ramp(1, h, w);
        var sheared = (float[])image.Clone();
        TrivialAugmentOps.ShearX(sheared, 1, h, w, 0.5);
        int[] shift = { 0, 1, 1, 2 };
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                Assert.AreEqual(x + shift[y] < w ? At(image, h, w, 0, y, x + shift[y]) : 0f, At(sheared, h, w, 0, y, x), $"({x}, {y})");
    }

    [TestMethod]
    public void ShearYShiftsEachColumnByTheFactorTimesItsCentreX()
    {
        const int h = 5, w = 4;
        var image = Ramp(2, h, w);
        var sheared = (float[])image.Clone();
        TrivialAugmentOps.ShearY(sheared, 2, h, w, -0.5);
        // Output (x, y) takes input row ⌊y + ½ − 0.5·(x + ½)⌋: columns shift down by 0, 1, 1, 2.
        int[] shift = { 0, 1, 1, 2 };
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    Assert.AreEqual(y - shift[x] >= 0 ? At(image, h, w, c, y - shift[x], x) : 0f, At(sheared, h, w, c, y, x), $"({c}, {x}, {y})");
    }

    [TestMethod]
    [DataRow(3)]
    [DataRow(4)]
    public void RotateBy90DegreesTurnsTheImageCounterClockwiseOrClockwiseWhenNegative(int n)
    {
        var image = Ramp(3, n, n);
        // Bin 20 is 135·20/30 = 90 degrees.
        var ccw = Applied(image, 3, n, n, TrivialAugmentOp.Rotate, 20);
        var cw = Applied(image, 3, n, n, TrivialAugmentOp.Rotate, 20, negative: true);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++)
                {
                    // Counter-clockwise: what was on the right of the centre is now above it.
                    Assert.AreEqual(At(image, n, n, c, x, n - 1 - y), At(ccw, n, n, c, y, x), $"ccw ({c}, {x}, {y})");
                    Assert.AreEqual(At(image, n, n, c, n - 1 - x, y), At(cw, n, n, c, y, x), $"cw ({c}, {x}, {y})");
                }
    }

    [TestMethod]
    public void RotateBy180DegreesOfANonSquareImageReversesBothAxes()
    {
        const int h = 3, w = 4;
        var image = Ramp(1, h, w);
        var turned = (float[])image.Clone();
        TrivialAugmentOps.Rotate(turned, 1, h, w, 180);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                Assert.AreEqual(At(image, h, w, 0, h - 1 - y, w - 1 - x), At(turned, h, w, 0, y, x));
    }

    [TestMethod]
    public void RotateBy45DegreesFillsTheCornersWithZero()
    {
        const int n = 8;
        var image = Enumerable.Repeat(200f, n * n).ToArray();
        TrivialAugmentOps.Rotate(image, 1, n, n, 45);
        Assert.AreEqual(0f, image[0]);
        Assert.AreEqual(0f, image[n * n - 1]);
        Assert.AreEqual(200f, image[(n / 2) * n + n / 2]);
    }

    // ---- the policy ----------------------------------------------------------------------------------------

    [TestMethod]
    public void BinZeroOfEveryOperationExceptTheValueOpsIsTheIdentity()
    {
        var image = Random255(3 * 6 * 7, 1);
        foreach (var op in new[] { TrivialAugmentOp.Identity, TrivialAugmentOp.ShearX, TrivialAugmentOp.ShearY, TrivialAugmentOp.TranslateX,
                     TrivialAugmentOp.TranslateY, TrivialAugmentOp.Rotate, TrivialAugmentOp.Brightness, TrivialAugmentOp.Color,
                     TrivialAugmentOp.Contrast, TrivialAugmentOp.Sharpness, TrivialAugmentOp.Posterize })
        {
            foreach (bool negative in new[] { false, true })
                CollectionAssert.AreEqual(image, Applied(image, 3, 6, 7, op, 0, negative), $"{op} negative={negative}");
        }
    }

    [TestMethod]
    [DataRow(1, 8, 8)]
    [DataRow(2, 5, 7)]
    [DataRow(3, 8, 8)]
    [DataRow(4, 6, 3)]
    [DataRow(3, 1, 1)]
    [DataRow(1, 2, 3)]
    public void EveryOperationAtEveryBinGivesFiniteValuesIn0To255(int channels, int height, int width)
    {
        var image = Random255(channels * height * width, 7);
        image[0] = 0.4f;
        if (image.Length > 1) image[^1] = 254.6f;
        for (int op = 0; op < TrivialAugmentOps.OperationCount; op++)
            for (int bin = 0; bin < TrivialAugmentOps.Bins; bin++)
                foreach (bool negative in new[] { false, true })
                {
                    var result = Applied(image, channels, height, width, (TrivialAugmentOp)op, bin, negative, fraction: 1);
                    Assert.AreEqual(image.Length, result.Length);
                    foreach (float v in result)
                        Assert.IsTrue(float.IsFinite(v) && v >= 0 && v <= 255, $"{(TrivialAugmentOp)op} bin {bin} negative={negative}: {v}");
                }
    }

    [TestMethod]
    public void ARandomDrawIsAlwaysOneOfTheOperationsAtOneOfTheBinsAndTheDrawsCoverTheOperations()
    {
        // 18×18: enough pixels per channel (324) for Equalize to change a random image; translations up to the full size.
        const int c = 3, h = 18, w = 18;
        var image = Random255(c * h * w, 3);
        var candidates = new List<(TrivialAugmentOp Op, float[] Output)>();
        for (int op = 0; op < TrivialAugmentOps.OperationCount; op++)
            for (int bin = 0; bin < TrivialAugmentOps.Bins; bin++)
                foreach (bool negative in new[] { false, true })
                    candidates.Add(((TrivialAugmentOp)op, Applied(image, c, h, w, (TrivialAugmentOp)op, bin, negative, fraction: 1)));

        var uniquelyExplained = new HashSet<TrivialAugmentOp>();
        for (int seed = 0; seed < 300; seed++)
        {
            var output = (float[])image.Clone();
            TrivialAugmentOps.ApplyRandom(output, c, h, w, 1, new Random(seed));
            var ops = candidates.Where(k => k.Output.SequenceEqual(output)).Select(k => k.Op).Distinct().ToList();
            Assert.AreNotEqual(0, ops.Count, $"seed {seed}: the output is no operation of the policy");
            if (ops.Count == 1) uniquelyExplained.Add(ops[0]);
        }

        // Identity coincides with bin 0 of the others; each of the other 13 operations is drawn about 21 times in 300.
        Assert.AreEqual(13, uniquelyExplained.Count, $"only {string.Join(", ", uniquelyExplained)} were drawn");
    }

    [TestMethod]
    public void SameSeedGivesTheSameOutputAndDifferentSeedsDifferOverABatch()
    {
        const int c = 3, h = 8, w = 8;
        var augmentation = ImageAugmentation.TrivialAugment();
        float[] Run(int seed, float[] image)
        {
            var output = new float[image.Length];
            PixelOps.Augment(image, output, c, h, w, augmentation, new Random(seed));
            return output;
        }

        var images = Enumerable.Range(0, 16).Select(i => Random255(c * h * w, 100 + i)).ToList();
        var first = images.Select(image => Run(42, image)).ToList();
        var again = images.Select(image => Run(42, image)).ToList();
        for (int i = 0; i < images.Count; i++) CollectionAssert.AreEqual(first[i], again[i]);

        int differing = images.Select((image, i) => !Run(43 + i, image).SequenceEqual(Run(1043 + i, image))).Count(d => d);
        Assert.IsTrue(differing >= 8, $"only {differing} of 16 differ between seeds");
    }

    [TestMethod]
    public void AugmentWithThePolicyDoesNotModifyTheSource()
    {
        const int c = 3, h = 8, w = 8;
        var augmentation = new ImageAugmentation { Policy = AugmentationPolicy.TrivialAugmentWide };
        for (int seed = 0; seed < 40; seed++)
        {
            var image = Random255(c * h * w, seed);
            var copy = (float[])image.Clone();
            PixelOps.Augment(image, new float[image.Length], c, h, w, augmentation, new Random(seed));
            CollectionAssert.AreEqual(copy, image);
        }
    }

    [TestMethod]
    public void ThePolicyRunsBeforeTheFlip()
    {
        // With the flip always on, the output is the mirror of the policy's output for the same draws.
        const int c = 1, h = 4, w = 5;
        var image = Random255(c * h * w, 9);
        for (int seed = 0; seed < 30; seed++)
        {
            var flipped = new float[image.Length];
            PixelOps.Augment(image, flipped, c, h, w, new ImageAugmentation { Policy = AugmentationPolicy.TrivialAugmentWide, HorizontalFlipProbability = 1 }, new Random(seed));
            var policyOnly = (float[])image.Clone();
            TrivialAugmentOps.ApplyRandom(policyOnly, c, h, w, DefaultFraction, new Random(seed));
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    Assert.AreEqual(policyOnly[y * w + w - 1 - x], flipped[y * w + x], $"seed {seed}");
        }
    }

    // ---- options and the reader -----------------------------------------------------------------------------

    [TestMethod]
    public void PresetTurnsOnThePolicyAndTheFlipAndIsNotTheIdentity()
    {
        var preset = ImageAugmentation.TrivialAugment();
        Assert.AreEqual(AugmentationPolicy.TrivialAugmentWide, preset.Policy);
        Assert.AreEqual(0.5, preset.HorizontalFlipProbability);
        Assert.AreEqual(AugmentationPolicy.None, new ImageAugmentation().Policy);
        Assert.IsTrue(new ImageAugmentation().IsIdentity);
        Assert.IsFalse(new ImageAugmentation { Policy = AugmentationPolicy.TrivialAugmentWide }.IsIdentity);
    }

    [TestMethod]
    [DataRow(-0.1)]
    [DataRow(1.5)]
    [DataRow(double.NaN)]
    [DataRow(double.PositiveInfinity)]
    public void ValidateRejectsATranslateFractionOutside0To1(double fraction)
    {
        var augmentation = new ImageAugmentation { Policy = AugmentationPolicy.TrivialAugmentWide, PolicyMaxTranslateFraction = fraction };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => augmentation.Validate(8, 8));
        Assert.AreEqual(nameof(ImageAugmentation.PolicyMaxTranslateFraction), error.ParamName);
    }

    [TestMethod]
    public void ValidateRejectsAnUndefinedPolicyAndTheReaderReportsIt()
    {
        var options = new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = 2, Height = 2, Augmentation = new ImageAugmentation { Policy = (AugmentationPolicy)7 },
        };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchReader(VectorData(new MLContext(1), 3, 3, 2, 2), options));
        Assert.AreEqual(nameof(ImageAugmentation.Policy), error.ParamName);
        new ImageAugmentation { Policy = AugmentationPolicy.TrivialAugmentWide, PolicyMaxTranslateFraction = 1 }.Validate(2, 2);
    }

    [TestMethod]
    [DataRow(3)]
    [DataRow(1)]
    public void ImageBatchReaderWithTrivialAugmentYieldsReproducibleAugmentedBatches(int channels)
    {
        const int rows = 24, size = 8;
        var ml = new MLContext(1);
        var data = VectorData(ml, rows, channels, size, size);
        ImageBatchOptions Options(int seed) => new()
        {
            ImageColumnName = "Pixels", Width = size, Height = size, BatchSize = 8, Shuffle = false, Seed = seed,
            Augmentation = new ImageAugmentation { Policy = AugmentationPolicy.TrivialAugmentWide, CropPadding = 1 },
        };

        var reader = new ImageBatchReader(data, Options(5));
        var epoch0 = Collect(reader.ReadEpoch(0));
        Assert.AreEqual(3, epoch0.Count);
        var pixels = epoch0.SelectMany(b => b.Pixels).ToArray();
        Assert.AreEqual(rows * channels * size * size, pixels.Length);
        Assert.IsTrue(pixels.All(v => float.IsFinite(v) && v >= 0 && v <= 255));

        var plain = Collect(reader.ReadAll()).SelectMany(b => b.Pixels).ToArray();
        Assert.IsFalse(plain.SequenceEqual(pixels), "training batches are not augmented");

        var again = Collect(new ImageBatchReader(data, Options(5)).ReadEpoch(0)).SelectMany(b => b.Pixels).ToArray();
        CollectionAssert.AreEqual(pixels, again);
        var nextEpoch = Collect(reader.ReadEpoch(1)).SelectMany(b => b.Pixels).ToArray();
        Assert.IsFalse(pixels.SequenceEqual(nextEpoch), "epochs 0 and 1 gave the same augmentation");
    }
}
