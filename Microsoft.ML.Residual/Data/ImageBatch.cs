using System;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>One batch of an <see cref="ImageBatchReader"/>. Dispose it (or an enclosing dispose scope does) when done.</summary>
    public sealed class ImageBatch : IDisposable
    {
        internal ImageBatch(Tensor images, Tensor? labels, long[] rowIndices)
        {
            Images = images;
            Labels = labels;
            RowIndices = rowIndices;
        }

        /// <summary>float32 N×C×H×W, channels R,G,B (or the vector's channels), values 0–255, not normalised.</summary>
        public Tensor Images { get; }

        /// <summary>int64 N class indices (key value − 1), the segmenter's int64 N×H×W masks (−1: ignored pixel), or null when the reader has no label column.</summary>
        public Tensor? Labels { get; }

        /// <summary>For each image of the batch, the index of its row in the data view.</summary>
        public long[] RowIndices { get; }

        /// <summary>Number of images N.</summary>
        public int Count => RowIndices.Length;

        /// <summary>Disposes <see cref="Images"/> and <see cref="Labels"/>.</summary>
        public void Dispose()
        {
            Images.Dispose();
            Labels?.Dispose();
        }
    }
}
