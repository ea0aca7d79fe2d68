using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.ML.Residual.IO;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// Reads and writes the safetensors format: an 8-byte little-endian header length, a UTF-8 JSON header
/// (<c>{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {…}}</c>) and the raw little-endian data.
/// Supported dtypes: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
/// </summary>
public static class SafeTensors
{
    /// <summary>
    /// Reads every tensor of a safetensors file as CPU tensors of the stored dtype, in the file's order.
    /// The header is validated completely before any data is read.
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The tensors, owned by the returned dictionary (dispose it).</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="WeightsFormatException">The file is not a valid safetensors file.</exception>
    public static TensorDictionary Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TensorBytes.EnsureLittleEndianHost();
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The weights file '{path}' does not exist.", path);
        }
        RejectZip(path);
        using var reader = SafeTensorsReader.Open(path);
        return reader.ReadAll();
    }

    /// <summary>Throws a clear error when the caller handed a PyTorch archive to the safetensors reader.</summary>
    private static void RejectZip(string path)
    {
        Span<byte> magic = stackalloc byte[2];
        using (var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
        {
            if (probe.ReadAtLeast(magic, 2, throwOnEndOfStream: false) < 2) return;
        }
        if (magic[0] == (byte)'P' && magic[1] == (byte)'K')
        {
            throw new WeightsFormatException(path, null,
                "this is a zip archive (a PyTorch torch.save file), not safetensors. Read it with StateDict.Read or load it with StateDict.Load, which detect the format.");
        }
    }

    /// <summary>
    /// Writes tensors to a safetensors file, in the order given. The file is written under a temporary name
    /// in the same folder and then renamed over <paramref name="path"/>, so readers never see a partial file
    /// and a failure leaves any existing file untouched. The header is padded with spaces to a multiple of 8 bytes.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">Named tensors, on any device; each is written as its contiguous CPU values.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> strings.</param>
    /// <exception cref="ArgumentException">A name is null, empty, repeated or <c>__metadata__</c>, or a tensor has a dtype safetensors cannot hold.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        TensorBytes.EnsureLittleEndianHost();

        var items = new List<(string Name, torch.Tensor Tensor, string DType, long Begin, long End)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, tensor) in tensors)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException($"A tensor written to '{path}' has a null or empty name; every tensor needs a name.", nameof(tensors));
            }
            if (name == "__metadata__")
            {
                throw new ArgumentException($"A tensor written to '{path}' is named '__metadata__', which the safetensors format reserves. Rename it.", nameof(tensors));
            }
            if (!names.Add(name))
            {
                throw new ArgumentException($"The tensor name '{name}' appears twice among the tensors written to '{path}'; names must be unique.", nameof(tensors));
            }
            if (tensor is null || tensor.IsInvalid)
            {
                throw new ArgumentException($"The tensor '{name}' written to '{path}' is null or disposed.", nameof(tensors));
            }
            string dtype = WeightsDType.SafeTensorsName(tensor.dtype)
                ?? throw new ArgumentException(
                    $"The tensor '{name}' written to '{path}' has dtype {tensor.dtype}, which safetensors cannot hold here. Convert it (e.g. to Float32) first.",
                    nameof(tensors));
            long size = checked(tensor.numel() * WeightsDType.ElementSize(tensor.dtype));
            items.Add((name, tensor, dtype, offset, offset + size));
            offset = checked(offset + size);
        }

        byte[] header = BuildHeader(items, metadata);
        string fullPath = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(fullPath)!;
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Cannot write '{path}': the folder '{folder}' does not exist. Create it first.");
        }
        AtomicFile.Write(fullPath, temporary =>
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
            stream.Write(lengthBytes);
            stream.Write(header);
            foreach (var item in items)
            {
                using var scope = torch.NewDisposeScope();
                var values = item.Tensor.detach().cpu().contiguous();
                if (values.numel() * WeightsDType.ElementSize(values.dtype) != item.End - item.Begin)
                {
                    throw new InvalidOperationException($"The tensor '{item.Name}' changed size while '{path}' was being written.");
                }
                TensorBytes.Write(values, stream);
            }
            stream.Flush(flushToDisk: true);
        });
    }

    private static byte[] BuildHeader(List<(string Name, torch.Tensor Tensor, string DType, long Begin, long End)> items, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                {
                    if (key is null || value is null)
                    {
                        throw new ArgumentException("Safetensors metadata keys and values must not be null.", nameof(metadata));
                    }
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            foreach (var item in items)
            {
                json.WriteStartObject(item.Name);
                json.WriteString("dtype", item.DType);
                json.WriteStartArray("shape");
                foreach (long dim in item.Tensor.shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(item.Begin);
                json.WriteNumberValue(item.End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }

        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
