using System;
using System.IO;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>Moves the raw (little-endian) bytes of contiguous CPU tensors to and from streams, in bounded chunks.</summary>
internal static class TensorBytes
{
    /// <summary>At most this many bytes pass through one span; keeps every span far below 2 GB.</summary>
    private const long ChunkBytes = 16L << 20;

    public static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Weights files store little-endian data; big-endian hosts are not supported.");
        }
    }

    /// <summary>Fills <paramref name="tensor"/> (contiguous, on the CPU) with exactly its byte size read from <paramref name="source"/>.</summary>
    /// <exception cref="EndOfStreamException">The stream ended first.</exception>
    public static void Fill(torch.Tensor tensor, Stream source)
    {
        ForEachChunk(tensor, chunk => source.ReadExactly(chunk.bytes));
    }

    /// <summary>Writes the bytes of <paramref name="tensor"/> (contiguous, on the CPU) to <paramref name="destination"/>.</summary>
    public static void Write(torch.Tensor tensor, Stream destination)
    {
        ForEachChunk(tensor, chunk => destination.Write(chunk.bytes));
    }

    private static void ForEachChunk(torch.Tensor tensor, Action<torch.Tensor> action)
    {
        long count = tensor.numel();
        if (count == 0) return;
        long elementSize = tensor.element_size();
        long perChunk = Math.Max(1, ChunkBytes / elementSize);
        using var scope = torch.NewDisposeScope();
        var flat = tensor.view(-1);
        for (long start = 0; start < count; start += perChunk)
        {
            using var chunkScope = torch.NewDisposeScope();
            action(flat.narrow(0, start, Math.Min(perChunk, count - start)));
        }
    }
}
