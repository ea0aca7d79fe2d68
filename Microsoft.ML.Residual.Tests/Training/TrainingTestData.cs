using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

/// <summary>Noisy, randomly coloured textures of three kinds (horizontal stripes, vertical stripes, checkerboard), normalised.</summary>
internal sealed class TrainingTestData : IDisposable
{
    public TrainingTestData(int count, int size, int seed)
    {
        var random = new Random(seed);
        var pixels = new float[count * 3 * size * size];
        var labels = new long[count];
        for (int n = 0; n < count; n++)
        {
            int label = n % 3;
            labels[n] = label;
            int period = random.Next(2, 5);
            int phase = random.Next(period);
            float[] on = { random.NextSingle(), random.NextSingle(), random.NextSingle() };
            float[] off = { random.NextSingle(), random.NextSingle(), random.NextSingle() };
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool lit = label switch
                {
                    0 => (y + phase) / period % 2 == 0,
                    1 => (x + phase) / period % 2 == 0,
                    _ => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                };
                for (int c = 0; c < 3; c++)
                    pixels[((n * 3 + c) * size + y) * size + x] = ((lit ? on[c] : off[c]) + 0.1f * (random.NextSingle() - 0.5f) - 0.5f) * 4;
            }
        }

        Images = tensor(pixels, new long[] { count, 3, size, size }).DetachFromDisposeScope();
        Labels = tensor(labels).DetachFromDisposeScope();
    }

    public Tensor Images { get; }

    public Tensor Labels { get; }

    public long Count => Labels.shape[0];

    public long StepsPerEpoch(int batchSize) => (Count + batchSize - 1) / batchSize;

    /// <summary>The batches of an epoch in an order that depends only on the epoch (so a resumed run sees the same data).</summary>
    public IEnumerable<(Tensor Images, Tensor Labels)> Epoch(int epoch, int batchSize, bool shuffle = true)
    {
        // No arange(Count): it passes libtorch a temporary Scalar, which GcStormTests must not do.
        Tensor order = shuffle ? randperm(Count, generator: new Generator((ulong)(1000 + epoch))) : ScalarSafe.Range(Count);
        for (long start = 0; start < Count; start += batchSize)
        {
            Tensor index = order.slice(0, start, Math.Min(start + batchSize, Count), 1);
            var batch = (Images.index_select(0, index), Labels.index_select(0, index));
            index.Dispose();
            yield return batch;
        }

        order.Dispose();
    }

    /// <summary><see cref="Epoch"/>'s batches with every pixel of batch <paramref name="nanBatch"/> (0-based) set to NaN: a loss that diverges there.</summary>
    public IEnumerable<(Tensor Images, Tensor Labels)> EpochWithNaNBatch(int epoch, int batchSize, int nanBatch)
    {
        int index = 0;
        foreach (var (images, labels) in Epoch(epoch, batchSize))
        {
            if (index++ == nanBatch) images.Fill(double.NaN);
            yield return (images, labels);
        }
    }

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
