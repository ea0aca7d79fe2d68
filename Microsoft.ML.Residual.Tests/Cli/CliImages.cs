using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Tests.Cli;

/// <summary>Tiny PNG datasets on disk, as users give them to the tool: class sub-folders, and images with class-index masks.</summary>
internal static class CliImages
{
    public const int Size = 16;

    public static readonly string[] Classes = { "checked", "horizontal", "vertical" };

    /// <summary>folder/CLASS/NNN.png: noisy stripes or checks, <paramref name="perClass"/> per class.</summary>
    public static void WriteClassFolders(string folder, int perClass, int seed)
    {
        var random = new Random(seed);
        foreach (string label in Classes)
        {
            Directory.CreateDirectory(Path.Combine(folder, label));
            for (int n = 0; n < perClass; n++)
            {
                int phase = random.Next(4);
                WritePng(Path.Combine(folder, label, $"{n:D3}.png"), (x, y) =>
                {
                    bool on = label switch
                    {
                        "vertical" => (x + phase) / 2 % 2 == 0,
                        "horizontal" => (y + phase) / 2 % 2 == 0,
                        _ => ((x + phase) / 4 + (y + phase) / 4) % 2 == 0,
                    };
                    byte v = (byte)Math.Clamp((on ? 200 : 50) + random.Next(-30, 31), 0, 255);
                    return (v, v, v);
                });
            }
        }
    }

    /// <summary>images/NNN.png with a bright square on a dark background, and masks/NNN.png with 1 inside the square, 0 outside.</summary>
    public static void WriteImagesWithMasks(string images, string masks, int count, int seed)
    {
        var random = new Random(seed);
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(masks);
        for (int n = 0; n < count; n++)
        {
            int side = random.Next(5, 9), left = random.Next(0, Size - side), top = random.Next(0, Size - side);
            bool Inside(int x, int y) => x >= left && x < left + side && y >= top && y < top + side;
            WritePng(Path.Combine(images, $"{n:D3}.png"), (x, y) =>
            {
                byte v = (byte)Math.Clamp((Inside(x, y) ? 210 : 40) + random.Next(-20, 21), 0, 255);
                return (v, (byte)(v / 2), (byte)(255 - v));
            });
            WritePng(Path.Combine(masks, $"{n:D3}.png"), (x, y) => Inside(x, y) ? ((byte)1, (byte)1, (byte)1) : ((byte)0, (byte)0, (byte)0));
        }
    }

    /// <summary>
    /// Writes <paramref name="count"/> PNGs with up to two tags ("top": horizontal stripes in the upper half, "bottom": vertical ones in
    /// the lower half) and <c>tags.csv</c> of <c>path,top;bottom</c> lines (an empty field for an untagged image) into <paramref name="folder"/>.
    /// </summary>
    public static void WriteTaggedImages(string folder, int count)
    {
        Directory.CreateDirectory(folder);
        var lines = new List<string>();
        for (int n = 0; n < count; n++)
        {
            bool top = n % 2 == 0, bottom = n / 2 % 2 == 0;
            string name = $"{n:D3}.png";
            WritePng(Path.Combine(folder, name), (x, y) =>
            {
                bool upper = y < Size / 2;
                byte value = upper ? (top ? (byte)(y / 2 % 2 == 0 ? 220 : 40) : (byte)128) : (bottom ? (byte)(x / 2 % 2 == 0 ? 220 : 40) : (byte)128);
                return (value, value, value);
            });
            lines.Add($"{name},{string.Join(";", new[] { top ? "top" : null, bottom ? "bottom" : null }.OfType<string>())}");
        }

        File.WriteAllLines(Path.Combine(folder, "tags.csv"), lines);
    }

    public static void WritePng(string path, Func<int, int, (byte R, byte G, byte B)> pixel)
    {
        var rgba = new byte[Size * Size * 4];
        for (int y = 0; y < Size; y++)
        for (int x = 0; x < Size; x++)
        {
            var (r, g, b) = pixel(x, y);
            int at = 4 * (y * Size + x);
            (rgba[at], rgba[at + 1], rgba[at + 2], rgba[at + 3]) = (r, g, b, 255);
        }

        using var image = MLImage.CreateFromPixels(Size, Size, MLPixelFormat.Rgba32, rgba);
        image.Save(path);
    }

    public static bool IsPng(string path)
    {
        byte[] signature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };
        using var file = File.OpenRead(path);
        var head = new byte[8];
        return file.Read(head, 0, 8) == 8 && head.AsSpan().SequenceEqual(signature);
    }

    public static (int Width, int Height) PngSize(string path)
    {
        using var image = MLImage.CreateFromFile(path);
        return (image.Width, image.Height);
    }

    public static IEnumerable<string> Lines(string path) => File.ReadAllLines(path);
}
