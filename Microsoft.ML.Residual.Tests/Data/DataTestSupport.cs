using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Data;

/// <summary>A row with a CHW pixel vector and a text label.</summary>
public sealed class PixelRow
{
    public float[] Pixels { get; set; } = Array.Empty<float>();
    public string Label { get; set; } = "";
}

/// <summary>A row with an image file path and a text label.</summary>
public sealed class PathRow
{
    public string Path { get; set; } = "";
    public string Label { get; set; } = "";
}

/// <summary>Builds the small data views the data tests read.</summary>
internal static class DataTestSupport
{
    /// <summary>Deterministic pixel value 0–255 of (row, c, y, x).</summary>
    public static float Pixel(int row, int c, int y, int x) => (row * 37 + c * 71 + y * 13 + x * 5) % 256;

    public static float[] Chw(int row, int channels, int height, int width, Func<int, int, int, int, float>? pixel = null)
    {
        pixel ??= (c, y, x, _) => Pixel(row, c, y, x);
        var values = new float[channels * height * width];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    values[(c * height + y) * width + x] = pixel(c, y, x, row);
        return values;
    }

    /// <summary>A data view with a C×H×W "Pixels" vector and a key "Label" (MapValueToKey over the text labels).</summary>
    public static IDataView VectorData(MLContext ml, IEnumerable<PixelRow> rows, int size, bool keyLabel = true)
    {
        var schema = SchemaDefinition.Create(typeof(PixelRow));
        schema[nameof(PixelRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        return keyLabel ? ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data) : data;
    }

    public static IDataView VectorData(MLContext ml, int rows, int channels, int height, int width, int classes = 3) =>
        VectorData(ml, Enumerable.Range(0, rows).Select(r => new PixelRow { Pixels = Chw(r, channels, height, width), Label = $"c{r % classes}" }).ToList(),
            channels * height * width);

    /// <summary>Writes an RGBA PNG of the RGB planes of <paramref name="chw"/> (3×H×W).</summary>
    public static void WriteRgbPng(string path, float[] chw, int height, int width)
    {
        var bytes = new byte[height * width * 4];
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            bytes[4 * i] = (byte)chw[i];
            bytes[4 * i + 1] = (byte)chw[plane + i];
            bytes[4 * i + 2] = (byte)chw[2 * plane + i];
            bytes[4 * i + 3] = 255;
        }

        using var image = MLImage.CreateFromPixels(width, height, MLPixelFormat.Rgba32, bytes);
        image.Save(path);
    }

    /// <summary>Writes an 8-bit grayscale PNG.</summary>
    public static void WriteGrayPng(string path, byte[] gray, int height, int width)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(gray, 0, bitmap.GetPixels(), gray.Length);
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, encoded.ToArray());
    }

    /// <summary>LoadImages("Image") over the "Path" column and MapValueToKey("Label").</summary>
    public static IDataView ImageData(MLContext ml, string folder, IEnumerable<PathRow> rows)
    {
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.LoadImages("Image", folder, "Path").Append(ml.Transforms.Conversion.MapValueToKey("Label"));
        return pipeline.Fit(data).Transform(data);
    }

    public static string NewFolder(Microsoft.VisualStudio.TestTools.UnitTesting.TestContext context)
    {
        string folder = Path.Combine(TestRunFiles.Folder, "data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>Pixels and labels of every batch, copied out (the batches are disposed).</summary>
    public static List<(float[] Pixels, long[] Labels, long[] Rows)> Collect(IEnumerable<ImageBatch> batches)
    {
        var result = new List<(float[], long[], long[])>();
        foreach (var batch in batches)
        {
            using (batch)
                result.Add((batch.Images.data<float>().ToArray(), batch.Labels?.data<long>().ToArray() ?? Array.Empty<long>(), batch.RowIndices));
        }

        return result;
    }

    /// <summary>An enumerable that counts how many rows have been taken from it.</summary>
    public sealed class CountingRows<T> : IEnumerable<T>
    {
        private readonly IReadOnlyList<T> rows;
        private int taken;

        public CountingRows(IReadOnlyList<T> rows) => this.rows = rows;

        public int Taken => Volatile.Read(ref taken);

        public IEnumerator<T> GetEnumerator()
        {
            foreach (var row in rows)
            {
                Interlocked.Increment(ref taken);
                yield return row;
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
