using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>A tensor described by a weights file: its key, element type and shape. Reading its data is separate.</summary>
internal class TensorEntry
{
    public TensorEntry(string key, torch.ScalarType dtype, long[] shape)
    {
        Key = key;
        DType = dtype;
        Shape = shape;
    }

    public string Key { get; }

    public torch.ScalarType DType { get; }

    public long[] Shape { get; }
}

/// <summary>
/// An open weights file whose header (safetensors) or pickle (PyTorch) has been read and fully validated;
/// tensor data is read on demand, one tensor at a time.
/// </summary>
internal abstract class WeightsReader : IDisposable
{
    private static readonly IReadOnlyDictionary<string, string> NoMetadata = new Dictionary<string, string>();

    protected WeightsReader(string filePath)
    {
        FilePath = filePath;
    }

    public string FilePath { get; }

    /// <summary>The tensors, in file order; keys are unique.</summary>
    public abstract IReadOnlyList<TensorEntry> Entries { get; }

    public virtual IReadOnlyDictionary<string, string> Metadata => NoMetadata;

    /// <summary>Reads one tensor as a new contiguous CPU tensor of its stored type, registered in the current dispose scope.</summary>
    public abstract torch.Tensor ReadTensor(TensorEntry entry);

    public abstract void Dispose();

    /// <summary>Opens <paramref name="path"/>, choosing the format by the file's first bytes.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="WeightsFormatException">The file is not a valid weights file.</exception>
    public static WeightsReader Open(string path)
    {
        TensorBytes.EnsureLittleEndianHost();
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The weights file '{path}' does not exist.", path);
        }

        Span<byte> magic = stackalloc byte[4];
        int length;
        using (var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
        {
            length = probe.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        }

        if (length >= 2 && magic[0] == (byte)'P' && magic[1] == (byte)'K')
        {
            return PyTorchReader.Open(path);
        }
        if (length >= 2 && magic[0] == 0x80 && magic[1] <= 5)
        {
            throw new WeightsFormatException(path, null,
                "this is a bare pickle stream: the legacy torch.save format (PyTorch before 1.6, or "
                + "_use_new_zipfile_serialization=False), which this library does not read. Re-save it with a current "
                + "torch.save(model.state_dict(), path), or better as safetensors with "
                + "safetensors.torch.save_file(model.state_dict(), path).");
        }
        return SafeTensorsReader.Open(path);
    }

    /// <summary>Reads every tensor into a dictionary that owns them.</summary>
    public TensorDictionary ReadAll()
    {
        var result = new TensorDictionary(FilePath, Metadata);
        try
        {
            foreach (var entry in Entries)
            {
                using var scope = torch.NewDisposeScope();
                var tensor = ReadTensor(entry);
                result.Add(entry.Key, scope.MoveToOuter(tensor));
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>A new uninitialised CPU tensor, with allocation failure reported as a clear error.</summary>
    protected torch.Tensor Allocate(TensorEntry entry, long[] shape)
    {
        try
        {
            return torch.empty(shape, entry.DType);
        }
        catch (ExternalException e)
        {
            long bytes = WeightsDType.CheckedElementCount(shape) * WeightsDType.ElementSize(entry.DType);
            throw new InsufficientMemoryException(
                $"Weights file '{FilePath}', tensor '{entry.Key}': could not allocate {bytes} bytes for its data. "
                + "Free memory or use a machine with more of it.", e);
        }
    }
}

/// <summary>Serves tensors that are already in memory through the reader interface (they stay owned by the dictionary).</summary>
internal sealed class InMemoryWeightsReader : WeightsReader
{
    private readonly TensorDictionary tensors;
    private readonly List<TensorEntry> entries;

    public InMemoryWeightsReader(TensorDictionary tensors) : base(tensors.FilePath)
    {
        this.tensors = tensors;
        entries = new List<TensorEntry>();
        foreach (var (key, tensor) in tensors) entries.Add(new TensorEntry(key, tensor.dtype, tensor.shape));
    }

    public override IReadOnlyList<TensorEntry> Entries => entries;

    public override IReadOnlyDictionary<string, string> Metadata => tensors.Metadata;

    public override torch.Tensor ReadTensor(TensorEntry entry) => tensors[entry.Key].alias();

    public override void Dispose()
    {
    }
}
