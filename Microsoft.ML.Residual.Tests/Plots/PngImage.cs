using System;
using System.IO;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Plots;

/// <summary>A PNG decoded by SkiaSharp into unpremultiplied RGBA pixels, with counts of the pixels near a colour in a rectangle.</summary>
internal sealed class PngImage
{
    private static readonly byte[] Signature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };

    private readonly SKColor[] pixels;

    public PngImage(byte[] png)
    {
        CollectionAssert.AreEqual(Signature, png.Take(8).ToArray(), "a PNG file starts with the PNG signature");
        using var decoded = SKBitmap.Decode(png) ?? throw new AssertFailedException("SkiaSharp cannot decode the PNG.");
        using var bitmap = decoded.Copy(SKColorType.Rgba8888) ?? throw new AssertFailedException("The PNG cannot be converted to RGBA.");
        Width = bitmap.Width;
        Height = bitmap.Height;
        pixels = bitmap.Pixels;
    }

    public static PngImage Read(string path) => new(File.ReadAllBytes(path));

    public int Width { get; }

    public int Height { get; }

    public SKColor this[int x, int y] => pixels[y * Width + x];

    /// <summary>The pixels, row by row.</summary>
    public SKColor[] Pixels => pixels;

    /// <summary>Whether every channel of <paramref name="pixel"/> is within <paramref name="tolerance"/> of <paramref name="colour"/>'s.</summary>
    public static bool Near(SKColor pixel, SKColor colour, int tolerance = 24) =>
        Math.Abs(pixel.Red - colour.Red) <= tolerance && Math.Abs(pixel.Green - colour.Green) <= tolerance && Math.Abs(pixel.Blue - colour.Blue) <= tolerance;

    /// <summary>How many pixels in x ∈ [left, right), y ∈ [top, bottom) are near <paramref name="colour"/>.</summary>
    public int Count(SKColor colour, int left, int top, int right, int bottom, int tolerance = 24) =>
        Count(pixel => Near(pixel, colour, tolerance), left, top, right, bottom);

    /// <summary>How many pixels in x ∈ [left, right), y ∈ [top, bottom) are dark (every channel below 110): text, frame, ticks.</summary>
    public int CountDark(int left, int top, int right, int bottom) =>
        Count(pixel => pixel.Red < 110 && pixel.Green < 110 && pixel.Blue < 110, left, top, right, bottom);

    /// <summary>The mean row of the pixels near <paramref name="colour"/> in the rectangle (NaN if there are none).</summary>
    public double MeanRow(SKColor colour, int left, int top, int right, int bottom) => Mean(colour, left, top, right, bottom, (_, y) => y);

    /// <summary>The mean column of the pixels near <paramref name="colour"/> in the rectangle (NaN if there are none).</summary>
    public double MeanColumn(SKColor colour, int left, int top, int right, int bottom) => Mean(colour, left, top, right, bottom, (x, _) => x);

    private double Mean(SKColor colour, int left, int top, int right, int bottom, Func<int, int, int> coordinate)
    {
        double sum = 0;
        int count = 0;
        for (int y = Math.Max(0, top); y < Math.Min(Height, bottom); y++)
            for (int x = Math.Max(0, left); x < Math.Min(Width, right); x++)
                if (Near(this[x, y], colour))
                {
                    sum += coordinate(x, y);
                    count++;
                }

        return count == 0 ? double.NaN : sum / count;
    }

    private int Count(Func<SKColor, bool> match, int left, int top, int right, int bottom)
    {
        int count = 0;
        for (int y = Math.Max(0, top); y < Math.Min(Height, bottom); y++)
            for (int x = Math.Max(0, left); x < Math.Min(Width, right); x++)
                if (match(this[x, y]))
                    count++;
        return count;
    }

    public static void AssertOnlyFiles(string folder, params string[] names) =>
        CollectionAssert.AreEquivalent(names, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray(), "no temporary file may be left");
}
