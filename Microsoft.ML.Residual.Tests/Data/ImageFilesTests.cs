using System;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;
using static Microsoft.ML.Residual.Tests.Data.TestImageFiles;

namespace Microsoft.ML.Residual.Tests.Data;

[TestClass]
public sealed class ImageFilesTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "images");

    private string folder = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateFolder() => folder = DataTestSupport.NewFolder(TestContext);

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void AssertMentions(Exception error, params string[] parts)
    {
        foreach (string part in parts) StringAssert.Contains(error.Message, part, $"the message should mention '{part}'");
    }

    // ---- files that are not images ----

    [TestMethod]
    public void MissingFile_IsFileNotFoundNamingThePath()
    {
        string path = Path.Combine(folder, "nowhere.png");
        var error = Assert.ThrowsExactly<FileNotFoundException>(() => ImageFiles.Load(path));
        Assert.AreEqual(path, error.FileName);
        AssertMentions(error, path, "does not exist");
        Assert.ThrowsExactly<FileNotFoundException>(() => ImageFiles.Probe(path));
    }

    [TestMethod]
    public void ZeroByteFile_IsInvalidImageSayingItIsEmpty()
    {
        string path = Write("empty.png", Array.Empty<byte>());
        var error = Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Load(path));
        Assert.AreEqual(path, error.FilePath);
        AssertMentions(error, path, "empty", "remove it");
        Assert.IsInstanceOfType<IOException>(error, "an IOException, caught where file errors are");
        Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Probe(path));
    }

    [TestMethod]
    public void TextRenamedPng_IsInvalidImageSayingItIsNotAnImage()
    {
        string path = Write("notes.png", System.Text.Encoding.UTF8.GetBytes("label,path\ncat,1.png\n"));
        var error = Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Load(path));
        AssertMentions(error, path, "not an image", "looks like text", "PNG or JPEG");
        Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Probe(path));
    }

    [TestMethod]
    public void BinaryGarbage_IsInvalidImageShowingTheFirstBytes()
    {
        string path = Write("garbage.jpg", new byte[] { 0x00, 0x01, 0x02, 0xFE, 0x10, 0x20, 0x30, 0x40, 0x50 });
        var error = Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Load(path));
        AssertMentions(error, path, "not an image", "000102FE");
    }

    // ---- truncated and damaged files ----

    [TestMethod]
    [DataRow("png")]
    [DataRow("jpg")]
    public void FileCutInItsPixelData_IsInvalidImageSayingTruncated_ButItsHeaderProbes(string extension)
    {
        byte[] whole = Noise(64, 64, extension == "png" ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg);
        string path = Write("cut." + extension, whole.Take(whole.Length * 2 / 3).ToArray());

        var error = Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Load(path));
        AssertMentions(error, path, "truncated", "Copy it again");
        Assert.AreEqual(path, error.FilePath);
        Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Verify(path));

        ImageFileInfo header = ImageFiles.Probe(path);
        Assert.AreEqual((64, 64), (header.Width, header.Height), "the header is whole; only decoding finds the cut");
    }

    [TestMethod]
    public void FileCutInsideItsHeader_IsInvalidImageSayingTruncated()
    {
        byte[] whole = Noise(8, 8, SKEncodedImageFormat.Png);
        string path = Write("stub.png", whole.Take(20).ToArray());
        var error = Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Probe(path));
        AssertMentions(error, path, "truncated", "header");
    }

    [TestMethod]
    public void MlNetsOwnDecoder_LoadsTheTruncatedFileWithoutComplaint_WhichIsWhyTheCheckExists()
    {
        byte[] whole = Noise(64, 64, SKEncodedImageFormat.Png);
        string path = Write("cut.png", whole.Take(whole.Length / 2).ToArray());
        using MLImage partial = MLImage.CreateFromFile(path);
        Assert.AreEqual(64, partial.Width);
        Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.Load(path));
    }

    // ---- the pixel limit ----

    [TestMethod]
    public void DecompressionBomb_ProbesItsClaimedSize_AndLoadRefusesItBeforeDecoding()
    {
        string path = Write("bomb.png", PngBomb(100_000, 100_000));
        Assert.IsTrue(new FileInfo(path).Length < 1000, "a tiny file");

        ImageFileInfo info = ImageFiles.Probe(path);
        Assert.AreEqual((ImageFileFormat.Png, 100_000, 100_000, 10_000_000_000L), (info.Format, info.Width, info.Height, info.PixelCount));

        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.ThrowsExactly<ImageTooLargeException>(() => ImageFiles.Load(path));
        Assert.IsTrue(GC.GetAllocatedBytesForCurrentThread() - allocated < 1 << 20, "no pixel buffer");
        Assert.AreEqual((100_000, 100_000, ImageLoadOptions.DefaultMaxPixels, path), (error.Width, error.Height, error.MaxPixels, error.FilePath));
        AssertMentions(error, path, "100,000×100,000", "67,108,864", "ImageLoadOptions.MaxPixels", "not decoded");
        Assert.IsInstanceOfType<InvalidImageException>(error);
        Assert.ThrowsExactly<ImageTooLargeException>(() => ImageFiles.Verify(path));
    }

    [TestMethod]
    public void DefaultLimit_Is8192By8192()
    {
        Assert.AreEqual(67_108_864L, ImageLoadOptions.DefaultMaxPixels);
        Assert.AreEqual(ImageLoadOptions.DefaultMaxPixels, new ImageLoadOptions().MaxPixels);
        string justOver = Write("over.png", PngBomb(8193, 8192));
        Assert.ThrowsExactly<ImageTooLargeException>(() => ImageFiles.Load(justOver));
    }

    [TestMethod]
    public void ConfiguredLimit_LoadsAnImageOfExactlyThatManyPixels_AndRefusesOneMore()
    {
        string atLimit = Write("at.png", Noise(64, 32, SKEncodedImageFormat.Png));
        string over = Write("over.png", Noise(65, 32, SKEncodedImageFormat.Png));
        var options = new ImageLoadOptions { MaxPixels = 64 * 32 };
        using (MLImage image = ImageFiles.Load(atLimit, options)) Assert.AreEqual((64, 32), (image.Width, image.Height));
        var error = Assert.ThrowsExactly<ImageTooLargeException>(() => ImageFiles.Load(over, options));
        AssertMentions(error, over, "65×32", "2,048");
    }

    [TestMethod]
    [DataRow(0L)]
    [DataRow(-1L)]
    [DataRow(ImageLoadOptions.LargestMaxPixels + 1)]
    public void LimitOutsideItsRange_IsRejectedNamingTheOption(long value)
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageLoadOptions { MaxPixels = value });
        AssertMentions(error, "MaxPixels");
    }

    // ---- pixel layouts that load ----

    [TestMethod]
    public void OnePixelImage_Loads()
    {
        string path = Write("one.png", Encode(1, 1, (_, _) => (10, 20, 30, 255), SKEncodedImageFormat.Png));
        using MLImage image = ImageFiles.Load(path);
        Assert.AreEqual((1, 1, MLPixelFormat.Bgra32, path), (image.Width, image.Height, image.PixelFormat, image.Tag));
        Assert.AreEqual(((byte)30, (byte)20, (byte)10, (byte)255), At(image, 0, 0));
    }

    [TestMethod]
    public void GrayscalePng_LoadsAsBgraWithEqualColourChannels()
    {
        string path = Path.Combine(folder, "gray.png");
        byte[] gray = Enumerable.Range(0, 12).Select(i => (byte)(i * 20)).ToArray();
        DataTestSupport.WriteGrayPng(path, gray, 3, 4);
        Assert.IsTrue(ImageFiles.Probe(path).IsGrayscale);
        using MLImage image = ImageFiles.Load(path);
        for (int i = 0; i < 12; i++)
            Assert.AreEqual((gray[i], gray[i], gray[i], (byte)255), At(image, i % 4, i / 4));
    }

    [TestMethod]
    public void RgbaPng_KeepsAlpha_PremultipliedAsLoadImagesGivesIt()
    {
        string path = Write("rgba.png", Encode(2, 1, (x, _) => x == 0 ? ((byte)200, (byte)100, (byte)50, (byte)255) : ((byte)200, (byte)100, (byte)50, (byte)128), SKEncodedImageFormat.Png));
        Assert.IsTrue(ImageFiles.Probe(path).HasAlpha);
        using MLImage image = ImageFiles.Load(path);
        Assert.AreEqual(((byte)50, (byte)100, (byte)200, (byte)255), At(image, 0, 0));
        var half = At(image, 1, 0);
        Assert.AreEqual(128, half.A);
        Assert.AreEqual(100, half.R, 1, "200 × 128/255");
        using MLImage mlnet = MLImage.CreateFromFile(path);
        CollectionAssert.AreEqual(Bgra(mlnet), Bgra(image));
    }

    [TestMethod]
    [DataRow((byte)2, 3, DisplayName = "16-bit RGB")]
    [DataRow((byte)6, 4, DisplayName = "16-bit RGBA")]
    [DataRow((byte)0, 1, DisplayName = "16-bit gray")]
    public void SixteenBitPng_LoadsWithTheHighByteOfEachSample(byte colorType, int channels)
    {
        // Samples 0x0000, 0x8080, 0xFFFF, 0x3C3C: each 16-bit value v·257 maps to the 8-bit v exactly.
        ushort[] samples = { 0x0000, 0x8080, 0xFFFF, 0x3C3C };
        byte[] row = samples.SelectMany(s => Enumerable.Repeat(s, channels)).Select((s, i) => (s, i))
            .SelectMany(p => channels == 4 && p.i % 4 == 3 ? new byte[] { 0xFF, 0xFF } : new[] { (byte)(p.s >> 8), (byte)p.s }).ToArray();
        string path = Write("deep.png", Png(4, 1, 16, colorType, new[] { row }));

        using MLImage image = ImageFiles.Load(path);
        for (int x = 0; x < 4; x++)
        {
            byte v = (byte)(samples[x] >> 8);
            Assert.AreEqual((v, v, v, (byte)255), At(image, x, 0), $"pixel {x}");
        }
    }

    [TestMethod]
    public void CmykJpeg_LoadsWithItsRgbColours()
    {
        string path = Path.Combine(Fixtures, "cmyk.jpg");
        ImageFileInfo info = ImageFiles.Probe(path);
        Assert.AreEqual((ImageFileFormat.Jpeg, 32, 16), (info.Format, info.Width, info.Height));
        using MLImage image = ImageFiles.Load(path);
        AssertColour(At(image, 4, 8), 255, 0, 0, "left half: C0 M100 Y100 K0 is red");
        AssertColour(At(image, 27, 8), 0, 0, 255, "right half: C100 M100 Y0 K0 is blue");
    }

    [TestMethod]
    public void ExifRotatedJpeg_LoadsUpright()
    {
        string path = Path.Combine(Fixtures, "exif_orientation6.jpg");
        ImageFileInfo info = ImageFiles.Probe(path);
        Assert.AreEqual((32, 48, 6, 48, 32), (info.Width, info.Height, info.Orientation, info.OrientedWidth, info.OrientedHeight));
        using MLImage image = ImageFiles.Load(path);
        Assert.AreEqual((48, 32), (image.Width, image.Height));
        AssertColour(At(image, 6, 6), 255, 0, 0, "top left red");
        AssertColour(At(image, 41, 6), 0, 255, 0, "top right green");
        AssertColour(At(image, 6, 25), 0, 0, 255, "bottom left blue");
        AssertColour(At(image, 41, 25), 255, 255, 255, "bottom right white");

        using MLImage stored = ImageFiles.Load(path, new ImageLoadOptions { ApplyExifOrientation = false });
        Assert.AreEqual((32, 48), (stored.Width, stored.Height), "as stored, as ML.NET's LoadImages gives it");
        using MLImage mlnet = MLImage.CreateFromFile(path);
        CollectionAssert.AreEqual(Bgra(mlnet), Bgra(stored));
    }

    // Where the stored image's top-left, top-right and bottom-left corners are shown, for each EXIF orientation, from the
    // tag's definition ("the 0th row is the visual top/bottom/left/right, the 0th column the visual left/right/top/bottom").
    [TestMethod]
    [DataRow(1, "TL", "TR", "BL")]
    [DataRow(2, "TR", "TL", "BR")]
    [DataRow(3, "BR", "BL", "TR")]
    [DataRow(4, "BL", "BR", "TL")]
    [DataRow(5, "TL", "BL", "TR")]
    [DataRow(6, "TR", "BR", "TL")]
    [DataRow(7, "BR", "TR", "BL")]
    [DataRow(8, "BL", "TL", "BR")]
    public void EveryExifOrientation_PutsTheStoredCornersWhereTheTagSays(int orientation, string topLeft, string topRight, string bottomLeft)
    {
        // Stored 32×16: quadrants red (top left), green (top right), blue (bottom left), white (bottom right).
        byte[] jpeg = Encode(32, 16, (x, y) => (x < 16, y < 8) switch
        {
            (true, true) => (255, 0, 0, 255),
            (false, true) => (0, 255, 0, 255),
            (true, false) => (0, 0, 255, 255),
            _ => (255, 255, 255, 255),
        }, SKEncodedImageFormat.Jpeg, quality: 100);
        string path = Write($"o{orientation}.jpg", WithExifOrientation(jpeg, orientation));
        Assert.AreEqual(orientation, ImageFiles.Probe(path).Orientation);

        using MLImage image = ImageFiles.Load(path);
        bool transposed = orientation >= 5;
        Assert.AreEqual(transposed ? (16, 32) : (32, 16), (image.Width, image.Height));
        (int, int) Corner(string name) => (name[1] == 'L' ? image.Width / 4 : image.Width * 3 / 4, name[0] == 'T' ? image.Height / 4 : image.Height * 3 / 4);
        var (x, y) = Corner(topLeft);
        AssertColour(At(image, x, y), 255, 0, 0, $"the stored top left (red) at {topLeft}");
        (x, y) = Corner(topRight);
        AssertColour(At(image, x, y), 0, 255, 0, $"the stored top right (green) at {topRight}");
        (x, y) = Corner(bottomLeft);
        AssertColour(At(image, x, y), 0, 0, 255, $"the stored bottom left (blue) at {bottomLeft}");
    }

    [TestMethod]
    [DataRow("png")]
    [DataRow("jpg")]
    [DataRow("webp")]
    public void PlainImages_LoadToTheSamePixelsAsMlNetsLoadImages(string extension)
    {
        var format = extension switch { "png" => SKEncodedImageFormat.Png, "jpg" => SKEncodedImageFormat.Jpeg, _ => SKEncodedImageFormat.Webp };
        string path = Write("plain." + extension, Noise(23, 17, format));
        ImageFileInfo info = ImageFiles.Probe(path);
        Assert.AreEqual((23, 17, 1), (info.Width, info.Height, info.Orientation));
        using MLImage ours = ImageFiles.Load(path);
        using MLImage mlnet = MLImage.CreateFromFile(path);
        Assert.AreEqual((mlnet.Width, mlnet.Height, MLPixelFormat.Bgra32), (ours.Width, ours.Height, ours.PixelFormat));
        CollectionAssert.AreEqual(Bgra(mlnet), Bgra(ours));
    }

    [TestMethod]
    public void LoadedImage_GoesThroughMlNetsImageTransforms()
    {
        string path = Write("plain.png", Noise(20, 10, SKEncodedImageFormat.Png));
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new ImageRow { Image = ImageFiles.Load(path) } });
        var pixels = ml.Transforms.ResizeImages("Image", 4, 4).Append(ml.Transforms.ExtractPixels("Pixels", "Image")).Fit(data).Transform(data);
        float[] values = pixels.GetColumn<float[]>("Pixels").Single();
        Assert.AreEqual(3 * 4 * 4, values.Length);
    }

    [TestMethod]
    public void MlNetsResize_IsIsoCropWithSkiaSharpsMitchellFilter_AndLeavesImagesOfTheTargetSizeAlone()
    {
        // Every image column of the estimators goes through ResizeImages with ML.NET's defaults (IsoCrop, centred), in
        // training and in a saved model. The expected values are derived here, not stored: IsoCrop scales the 20×10 image
        // by max(4/20, 4/10) = 0.4 to 8×4 and centres it on the 4×4 output, i.e. draws it into the rectangle (-2, 0)–(6, 4);
        // ImageAnalytics 6.0.0 samples with SkiaSharp 3's Mitchell cubic resampler (5.0.1 used SkiaSharp 2.88's
        // high-quality filter, and these values differ from its output).
        string path = Write("plain.png", Noise(20, 10, SKEncodedImageFormat.Png));
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new ImageRow { Image = ImageFiles.Load(path) } });
        float[] Resized(int width, int height) => ml.Transforms.ResizeImages("Resized", width, height, "Image").Append(ml.Transforms.ExtractPixels("Pixels", "Resized"))
            .Fit(data).Transform(data).GetColumn<float[]>("Pixels").Single();

        using SKBitmap source = SKBitmap.Decode(path);
        using SKImage image = SKImage.FromBitmap(source);
        using var drawn = new SKBitmap(new SKImageInfo(4, 4, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using (var canvas = new SKCanvas(drawn))
            canvas.DrawImage(image, new SKRect(0, 0, 20, 10), new SKRect(-2, 0, 6, 4), new SKSamplingOptions(SKCubicResampler.Mitchell));
        CollectionAssert.AreEqual(Planes(drawn), Resized(4, 4), "4×4");

        // The image's own size: the file's pixels, unchanged.
        CollectionAssert.AreEqual(Planes(source), Resized(20, 10), "20×10");
    }

    /// <summary>The R, G and B planes of <paramref name="bitmap"/>, as ExtractPixels gives them by default (CHW, 0–255).</summary>
    private static float[] Planes(SKBitmap bitmap)
    {
        int plane = bitmap.Width * bitmap.Height;
        var values = new float[3 * plane];
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                SKColor colour = bitmap.GetPixel(x, y);
                int i = y * bitmap.Width + x;
                (values[i], values[plane + i], values[2 * plane + i]) = (colour.Red, colour.Green, colour.Blue);
            }

        return values;
    }

    public sealed class ImageRow
    {
        [Microsoft.ML.Transforms.Image.ImageType(10, 20)]
        public MLImage? Image { get; set; }
    }

    // ---- checking many files ----

    [TestMethod]
    public void CheckAll_NamesTheFirstBadFileItsRowAndColumn_AndCountsTheOthers()
    {
        string good = Write("good.png", Noise(8, 8, SKEncodedImageFormat.Png));
        string empty = Write("empty.png", Array.Empty<byte>());
        string text = Write("text.png", "hello"u8.ToArray());
        ImageFiles.CheckAll(new[] { good, good });

        var error = Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.CheckAll(new[] { good, empty, good, text }, columnName: "ImagePath"));
        Assert.AreEqual(empty, error.FilePath);
        AssertMentions(error, "Row 1, column 'ImagePath'", empty, "empty", "1 other file is bad too", text);
    }

    [TestMethod]
    public void CheckAll_HeaderOnlyMissesATruncatedFile_DecodeFindsIt()
    {
        byte[] whole = Noise(64, 64, SKEncodedImageFormat.Png);
        string cut = Write("cut.png", whole.Take(whole.Length / 2).ToArray());
        string bomb = Write("bomb.png", PngBomb(20_000, 20_000));
        ImageFiles.CheckAll(new[] { cut }, ImageCheck.Header);
        ImageFiles.CheckAll(new[] { cut, bomb }, ImageCheck.None);
        Assert.ThrowsExactly<InvalidImageException>(() => ImageFiles.CheckAll(new[] { cut }, ImageCheck.Decode));
        var big = Assert.ThrowsExactly<ImageTooLargeException>(() => ImageFiles.CheckAll(new[] { bomb }, ImageCheck.Header));
        Assert.AreEqual(20_000, big.Width);
        Assert.ThrowsExactly<FileNotFoundException>(() => ImageFiles.CheckAll(new[] { Path.Combine(folder, "gone.png") }));
    }

    [TestMethod]
    public void LoadImageFolder_WithCheckImages_FailsNamingRowColumnAndFile_AndWithoutItListsAsBefore()
    {
        Directory.CreateDirectory(Path.Combine(folder, "cat"));
        Directory.CreateDirectory(Path.Combine(folder, "dog"));
        File.WriteAllBytes(Path.Combine(folder, "cat", "1.png"), Noise(8, 8, SKEncodedImageFormat.Png));
        File.WriteAllBytes(Path.Combine(folder, "dog", "1.png"), Noise(8, 8, SKEncodedImageFormat.Png));
        string bad = Path.Combine(folder, "dog", "2.png");
        File.WriteAllBytes(bad, PngBomb(10_000, 10_000));
        var ml = new MLContext(1);

        Assert.AreEqual(3, ml.Data.LoadImageFolder(folder).GetColumn<string>("ImagePath").Count(), "unchecked by default");
        var error = Assert.ThrowsExactly<ImageTooLargeException>(() => ml.Data.LoadImageFolder(folder, new ImageFolderOptions { CheckImages = ImageCheck.Header, PathColumnName = "File" }));
        AssertMentions(error, "Row 2, column 'File'", bad, "MaxPixels");
        byte[] whole = Noise(64, 64, SKEncodedImageFormat.Png);
        File.WriteAllBytes(bad, whole.Take(whole.Length / 2).ToArray());
        Assert.AreEqual(3, ml.Data.LoadImageFolder(folder, new ImageFolderOptions { CheckImages = ImageCheck.Header }).GetColumn<string>("ImagePath").Count());
        var truncated = Assert.ThrowsExactly<InvalidImageException>(() => ml.Data.LoadImageFolder(folder, new ImageFolderOptions { CheckImages = ImageCheck.Decode }));
        AssertMentions(truncated, "Row 2", bad, "truncated");
    }

    private static void AssertColour((byte B, byte G, byte R, byte A) pixel, int r, int g, int b, string what)
    {
        // Not a rounding bound: JPEG is lossy and decoders convert CMYK and chroma differently. The test asks which colour a
        // region is; every other expected colour differs by 255 in some channel, so 40 tells them apart with room for the codec.
        const int tolerance = 40;
        Assert.IsTrue(Math.Abs(pixel.R - r) <= tolerance && Math.Abs(pixel.G - g) <= tolerance && Math.Abs(pixel.B - b) <= tolerance,
            $"{what}: expected RGB ({r}, {g}, {b}), got ({pixel.R}, {pixel.G}, {pixel.B})");
    }
}
