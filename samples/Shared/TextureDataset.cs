// Built-in data shared by the samples (compiled into each of them).
using System;
using System.Collections.Generic;
using Microsoft.ML.Data;

/// <summary>Built-in data: noisy, randomly coloured textures of three kinds, as ExtractPixels gives pixels (CHW, 0–255).</summary>
internal static class TextureDataset
{
    public const int Size = 32;

    public static readonly string[] Classes = { "horizontal stripes", "vertical stripes", "checkerboard" };

    public sealed class Row
    {
        [VectorType(3 * Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = string.Empty;
    }

    public static List<Row> Generate(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>(count);
        for (int n = 0; n < count; n++)
        {
            int label = n % Classes.Length;
            int period = random.Next(3, 8);
            int phase = random.Next(period);
            float[] on = { random.Next(256), random.Next(256), random.Next(256) };
            float[] off = { random.Next(256), random.Next(256), random.Next(256) };
            var pixels = new float[3 * Size * Size];
            for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                bool lit = label switch
                {
                    0 => (y + phase) / period % 2 == 0,
                    1 => (x + phase) / period % 2 == 0,
                    _ => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                };
                for (int c = 0; c < 3; c++)
                    pixels[(c * Size + y) * Size + x] = Math.Clamp((lit ? on[c] : off[c]) + random.Next(-20, 21), 0, 255);
            }

            rows.Add(new Row { Image = pixels, Label = Classes[label] });
        }

        return rows;
    }
}
