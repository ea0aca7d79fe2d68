using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Tests.Interpretation;

/// <summary>
/// Images of one object on grey noise, its kind the class and its place known: a red square, a green disc or a blue triangle,
/// 8 to 11 pixels across, anywhere in a 32-pixel image.
/// </summary>
internal static class ObjectImages
{
    public const int Size = 32;

    public static readonly string[] Classes = { "disc", "square", "triangle" };

    private static readonly (int R, int G, int B)[] Colours = { (60, 200, 70), (220, 60, 60), (70, 90, 230) };

    /// <summary>One image: C×H×W pixels (0–255), its class and the object's bounding box.</summary>
    public sealed record Image(float[] Pixels, string Label, int Left, int Top, int Side)
    {
        /// <summary>Whether (<paramref name="x"/>, <paramref name="y"/>) lies in the object's bounding box.</summary>
        public bool Contains(int x, int y) => x >= Left && x < Left + Side && y >= Top && y < Top + Side;
    }

    public sealed class Row
    {
        [VectorType(3 * Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = string.Empty;
    }

    public static List<Image> Generate(int count, int seed)
    {
        var random = new Random(seed);
        var images = new List<Image>(count);
        for (int n = 0; n < count; n++)
        {
            int kind = n % Classes.Length;
            int side = random.Next(8, 12), left = random.Next(0, Size - side + 1), top = random.Next(0, Size - side + 1);
            int background = random.Next(60, 150);
            var pixels = new float[3 * Size * Size];
            for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                bool inside = Covers(kind, x - left, y - top, side);
                int noise = random.Next(-25, 26);
                var (r, g, b) = inside ? Colours[kind] : (background, background, background);
                pixels[y * Size + x] = Math.Clamp(r + noise, 0, 255);
                pixels[Size * Size + y * Size + x] = Math.Clamp(g + noise, 0, 255);
                pixels[2 * Size * Size + y * Size + x] = Math.Clamp(b + noise, 0, 255);
            }

            images.Add(new Image(pixels, Classes[kind], left, top, side));
        }

        return images;
    }

    public static List<Row> Rows(IEnumerable<Image> images) => images.Select(i => new Row { Image = i.Pixels, Label = i.Label }).ToList();

    // Whether the object of kind k covers (u, v), measured from its box's top-left corner.
    private static bool Covers(int kind, int u, int v, int side)
    {
        if (u < 0 || v < 0 || u >= side || v >= side) return false;
        double centre = (side - 1) / 2.0;
        return Classes[kind] switch
        {
            "disc" => (u - centre) * (u - centre) + (v - centre) * (v - centre) <= side * side / 4.0,
            "square" => true,
            _ => Math.Abs(u - centre) <= (v + 1) / 2.0, // the apex at the top, the base along the bottom row
        };
    }
}
