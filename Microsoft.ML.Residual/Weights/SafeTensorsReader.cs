using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// Reads a safetensors file: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data
/// buffer. The whole header is validated when the file is opened; tensor data is streamed on demand.
/// </summary>
internal sealed class SafeTensorsReader : WeightsReader
{
    /// <summary>The largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private const string NotSafeTensorsHint =
        "It is neither a safetensors file nor a PyTorch zip archive, or it is truncated or corrupt. "
        + "Export the weights again, e.g. with safetensors.torch.save_file(model.state_dict(), path).";

    private readonly FileStream _stream;
    private readonly long _dataStart;
    private readonly List<SafeTensorsEntry> _entries;
    private readonly IReadOnlyDictionary<string, string> _metadata;

    private SafeTensorsReader(string path, FileStream stream, long dataStart, List<SafeTensorsEntry> entries, IReadOnlyDictionary<string, string> metadata)
        : base(path)
    {
        _stream = stream;
        _dataStart = dataStart;
        _entries = entries;
        _metadata = metadata;
    }

    public override IReadOnlyList<TensorEntry> Entries => _entries;

    public override IReadOnlyDictionary<string, string> Metadata => _metadata;

    public static new SafeTensorsReader Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        try
        {
            long fileLength = stream.Length;
            if (fileLength < 8)
            {
                throw new WeightsFormatException(path, null,
                    $"the file is {fileLength} bytes long, shorter than the 8-byte header length that starts a safetensors file. " + NotSafeTensorsHint);
            }

            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerLength > MaxHeaderBytes)
            {
                throw new WeightsFormatException(path, null,
                    $"the header length field says {headerLength} bytes, more than the {MaxHeaderBytes / (1 << 20)} MB limit for a safetensors header. "
                    + NotSafeTensorsHint);
            }
            if ((long)headerLength > fileLength - 8)
            {
                throw new WeightsFormatException(path, null,
                    $"the header length field says {headerLength} bytes, beyond the end of the file ({fileLength} bytes in all). "
                    + NotSafeTensorsHint);
            }

            var header = new byte[headerLength];
            stream.ReadExactly(header);
            long dataStart = 8 + (long)headerLength;
            long dataLength = fileLength - dataStart;
            var (entries, metadata) = ParseHeader(path, header, dataLength);
            return new SafeTensorsReader(path, stream, dataStart, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public override torch.Tensor ReadTensor(TensorEntry entry)
    {
        var located = (SafeTensorsEntry)entry;
        var tensor = Allocate(entry, entry.Shape);
        try
        {
            _stream.Seek(_dataStart + located.Begin, SeekOrigin.Begin);
            TensorBytes.Fill(tensor, _stream);
            return tensor;
        }
        catch (EndOfStreamException e)
        {
            tensor.Dispose();
            throw new WeightsFormatException(FilePath, entry.Key,
                "the file ended before the tensor's data; it was truncated after it was opened. Copy or download it again.", e);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    public override void Dispose() => _stream.Dispose();

    private static (List<SafeTensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata) ParseHeader(string path, byte[] header, long dataLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw new WeightsFormatException(path, null, "the header is not valid UTF-8 text, so it is not the JSON a safetensors header must be. " + NotSafeTensorsHint);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new WeightsFormatException(path, null, $"the header is not valid JSON ({e.Message}). " + NotSafeTensorsHint, e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new WeightsFormatException(path, null,
                    $"the header is a JSON {Describe(root.ValueKind)}, not the object of tensor entries a safetensors header must be. " + NotSafeTensorsHint);
            }

            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    throw new WeightsFormatException(path, property.Name,
                        "the header names this entry twice; a reader could pick either, so the file is rejected. Export the weights again.");
                }
                if (property.Name == "__metadata__")
                {
                    ParseMetadata(path, property.Value, metadata);
                    continue;
                }
                entries.Add(ParseEntry(path, property.Name, property.Value, dataLength));
            }

            CheckLayout(path, entries, dataLength);
            return (entries, metadata);
        }
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new WeightsFormatException(path, null,
                $"'__metadata__' is a JSON {Describe(value.ValueKind)}; it must be an object of strings. Export the weights again.");
        }
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new WeightsFormatException(path, null,
                    $"'__metadata__' entry '{item.Name}' is a JSON {Describe(item.Value.ValueKind)}; metadata values must be strings. Export the weights again.");
            }
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
            {
                throw new WeightsFormatException(path, null, $"'__metadata__' names '{item.Name}' twice. Export the weights again.");
            }
        }
    }

    private static SafeTensorsEntry ParseEntry(string path, string key, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new WeightsFormatException(path, key,
                $"the header entry is a JSON {Describe(value.ValueKind)}; it must be an object with 'dtype', 'shape' and 'data_offsets'. Export the weights again.");
        }

        var dtypeElement = Field(path, key, value, "dtype");
        if (dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new WeightsFormatException(path, key, $"'dtype' is a JSON {Describe(dtypeElement.ValueKind)}; it must be a string such as \"F32\".");
        }
        string dtypeName = dtypeElement.GetString()!;
        if (!WeightsDType.TryParseSafeTensors(dtypeName, out var dtype))
        {
            string why = WeightsDType.IsKnownButUnsupportedSafeTensors(dtypeName)
                ? $"the dtype '{dtypeName}' has no TorchSharp tensor type. Convert the tensor (e.g. to F32) before saving."
                : $"the dtype '{dtypeName}' is unknown. Supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.";
            throw new WeightsFormatException(path, key, why);
        }

        var shapeElement = Field(path, key, value, "shape");
        if (shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw new WeightsFormatException(path, key, $"'shape' is a JSON {Describe(shapeElement.ValueKind)}; it must be an array of non-negative integers.");
        }
        var shape = new long[shapeElement.GetArrayLength()];
        int dimension = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
            {
                throw new WeightsFormatException(path, key,
                    $"'shape' dimension {dimension} is {dim.GetRawText()}; dimensions must be non-negative integers. Export the weights again.");
            }
            shape[dimension++] = size;
        }

        var offsetsElement = Field(path, key, value, "data_offsets");
        if (offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
        {
            throw new WeightsFormatException(path, key,
                $"'data_offsets' is {offsetsElement.GetRawText()}; it must be an array [begin, end] of two non-negative integers.");
        }
        long begin = Offset(path, key, offsetsElement[0], "begin");
        long end = Offset(path, key, offsetsElement[1], "end");
        if (begin > end)
        {
            throw new WeightsFormatException(path, key, $"'data_offsets' [{begin}, {end}] begins after it ends. Export the weights again.");
        }
        if (end > dataLength)
        {
            throw new WeightsFormatException(path, key,
                $"'data_offsets' [{begin}, {end}] ends beyond the data buffer, which holds {dataLength} bytes. The file is truncated or corrupt; copy or export it again.");
        }

        long expected;
        try
        {
            expected = checked(WeightsDType.CheckedElementCount(shape) * WeightsDType.ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw new WeightsFormatException(path, key,
                $"the shape {StateDictShapeMismatch.FormatShape(shape)} of {dtypeName} declares more than 2^63 bytes; the header is corrupt.");
        }
        if (expected != end - begin)
        {
            throw new WeightsFormatException(path, key,
                $"the shape {StateDictShapeMismatch.FormatShape(shape)} of {dtypeName} needs {expected} bytes, but 'data_offsets' [{begin}, {end}] span {end - begin}. The header is corrupt; export the weights again.");
        }

        return new SafeTensorsEntry(key, dtype, shape, begin, end);
    }

    /// <summary>The data ranges must tile the data buffer: no overlaps, no gaps, nothing after the last tensor (as the format requires).</summary>
    private static void CheckLayout(string path, List<SafeTensorsEntry> entries, long dataLength)
    {
        var byOffset = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long covered = 0;
        SafeTensorsEntry? previous = null;
        foreach (var entry in byOffset)
        {
            if (entry.Begin < covered)
            {
                throw new WeightsFormatException(path, entry.Key,
                    $"its data [{entry.Begin}, {entry.End}] overlaps that of '{previous!.Key}' [{previous.Begin}, {previous.End}]. The header is corrupt or crafted; export the weights again.");
            }
            if (entry.Begin > covered)
            {
                throw new WeightsFormatException(path, entry.Key,
                    $"its data begins at {entry.Begin}, leaving bytes [{covered}, {entry.Begin}) of the data buffer unused; the format forbids gaps. Export the weights again.");
            }
            if (entry.End > entry.Begin) previous = entry;
            covered = Math.Max(covered, entry.End);
        }
        if (covered != dataLength)
        {
            throw new WeightsFormatException(path, null,
                $"the tensors cover {covered} bytes of the data buffer but the file holds {dataLength}; the format forbids trailing bytes. The file is corrupt; export it again.");
        }
    }

    private static JsonElement Field(string path, string key, JsonElement entry, string name)
    {
        JsonElement found = default;
        int count = 0;
        foreach (var property in entry.EnumerateObject())
        {
            if (property.Name != name) continue;
            found = property.Value;
            count++;
        }
        if (count == 0)
        {
            throw new WeightsFormatException(path, key, $"the header entry has no '{name}' field. Export the weights again.");
        }
        if (count > 1)
        {
            throw new WeightsFormatException(path, key, $"the header entry has the field '{name}' twice. Export the weights again.");
        }
        return found;
    }

    private static long Offset(string path, string key, JsonElement element, string which)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long offset) || offset < 0)
        {
            throw new WeightsFormatException(path, key,
                $"the {which} of 'data_offsets' is {element.GetRawText()}; offsets must be non-negative integers. Export the weights again.");
        }
        return offset;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };

    private sealed class SafeTensorsEntry : TensorEntry
    {
        public SafeTensorsEntry(string key, torch.ScalarType dtype, long[] shape, long begin, long end)
            : base(key, dtype, shape)
        {
            Begin = begin;
            End = end;
        }

        public long Begin { get; }

        public long End { get; }
    }
}
