using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Plots;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Plots;

/// <summary>A PNG file decoded by ML.NET (MLImage), with its pixels as RGB whatever order the decoder gives them in.</summary>
internal sealed class PngPixels
{
    private static readonly byte[] Signature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };

    private readonly byte[] pixels;
    private readonly int stride;
    private readonly bool bgra;

    public PngPixels(string path)
    {
        var bytes = File.ReadAllBytes(path);
        CollectionAssert.AreEqual(Signature, bytes.Take(8).ToArray(), "a PNG file starts with the PNG signature");
        using var image = MLImage.CreateFromFile(path);
        Width = image.Width;
        Height = image.Height;
        pixels = image.Pixels.ToArray();
        stride = pixels.Length / Height;
        bgra = image.PixelFormat == MLPixelFormat.Bgra32;
    }

    public int Width { get; }

    public int Height { get; }

    public Rgb this[int x, int y]
    {
        get
        {
            int o = y * stride + 4 * x;
            return bgra ? new Rgb(pixels[o + 2], pixels[o + 1], pixels[o]) : new Rgb(pixels[o], pixels[o + 1], pixels[o + 2]);
        }
    }

    /// <summary>How many pixels of <paramref name="colour"/> lie in x ∈ [left, right), y ∈ [top, bottom).</summary>
    public int Count(Rgb colour, int left, int top, int right, int bottom)
    {
        int count = 0;
        for (int y = Math.Max(0, top); y < Math.Min(Height, bottom); y++)
            for (int x = Math.Max(0, left); x < Math.Min(Width, right); x++)
                if (this[x, y] == colour)
                    count++;
        return count;
    }

    /// <summary>The mean row of the pixels of <paramref name="colour"/> in the rectangle (NaN if there are none).</summary>
    public double MeanRow(Rgb colour, int left, int top, int right, int bottom)
    {
        double sum = 0;
        int count = 0;
        for (int y = Math.Max(0, top); y < Math.Min(Height, bottom); y++)
            for (int x = Math.Max(0, left); x < Math.Min(Width, right); x++)
                if (this[x, y] == colour)
                {
                    sum += y;
                    count++;
                }

        return count == 0 ? double.NaN : sum / count;
    }

    public static void AssertOnlyFiles(string folder, params string[] names) =>
        CollectionAssert.AreEquivalent(names, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray(), "no temporary file may be left");
}
