using System;
using System.Collections.Generic;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>One image of an in-memory pixel dataset: C×H×W values 0–255 in CHW order, and its class name.</summary>
    public sealed class PixelImageRow
    {
        /// <summary>The pixels, C×H×W in CHW order, values 0–255 (the classifier's pixel-vector input).</summary>
        public float[] Image { get; set; } = Array.Empty<float>();

        /// <summary>The class name.</summary>
        public string Label { get; set; } = string.Empty;
    }

    /// <summary>
    /// Images held as bytes (image after image, each C×H×W in CHW order) with their class names, exposed as an ML.NET data
    /// view of <c>Image</c> (a known-size Single vector C×H×W, 0–255, for <c>ImageColumnKind.PixelVector</c>) and
    /// <c>Label</c> (text). Rows are converted to floats when a cursor reads them, so the data view costs the bytes only.
    /// </summary>
    internal sealed class PixelDataset
    {
        private readonly byte[] pixels;
        private readonly int offset;
        private readonly string[] labels;

        /// <summary>The images are the bytes of <paramref name="pixels"/> from <paramref name="offset"/> on, one C×H×W image per label.</summary>
        public PixelDataset(int channels, int height, int width, byte[] pixels, string[] labels, int offset = 0)
        {
            if (pixels.LongLength - offset != (long)channels * height * width * labels.Length)
                throw new ArgumentException("The pixel buffer must hold exactly one C×H×W image per label after the offset.");
            Channels = channels;
            Height = height;
            Width = width;
            this.pixels = pixels;
            this.offset = offset;
            this.labels = labels;
        }

        public int Channels { get; }

        public int Height { get; }

        public int Width { get; }

        public int Count => labels.Length;

        public IDataView ToDataView(DataOperationsCatalog data, string imageColumnName, string labelColumnName)
        {
            SchemaDefinition schema = SchemaDefinition.Create(typeof(PixelImageRow));
            schema[nameof(PixelImageRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Channels, Height, Width);
            schema[nameof(PixelImageRow.Image)].ColumnName = imageColumnName;
            schema[nameof(PixelImageRow.Label)].ColumnName = labelColumnName;
            return data.LoadFromEnumerable(Rows(), schema);
        }

        private IEnumerable<PixelImageRow> Rows()
        {
            int size = Channels * Height * Width;
            for (int i = 0; i < labels.Length; i++)
            {
                yield return new PixelImageRow { Image = ToFloats(offset + i * size, size), Label = labels[i] };
            }
        }

        private float[] ToFloats(int start, int size)
        {
            var image = new float[size];
            ReadOnlySpan<byte> source = pixels.AsSpan(start, size);
            for (int j = 0; j < size; j++) image[j] = source[j];
            return image;
        }
    }
}
