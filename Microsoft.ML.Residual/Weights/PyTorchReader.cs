using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// Reads a file written by <c>torch.save</c> (PyTorch 1.6 and later): a zip archive with
/// <c>&lt;prefix&gt;/data.pkl</c> (the pickled dict), <c>&lt;prefix&gt;/data/&lt;key&gt;</c> (one entry per storage)
/// and small bookkeeping entries. The pickle goes through <see cref="RestrictedUnpickler"/>; every tensor view
/// and storage entry is validated when the file is opened; storages are read when a tensor needs them.
/// </summary>
internal sealed class PyTorchReader : WeightsReader
{
    /// <summary>The largest pickle accepted; a state dict with 100 000 tensors needs about 15 MB.</summary>
    public const long MaxPickleBytes = 256L << 20;

    /// <summary>Nested dicts (checkpoints such as {"state_dict": {...}}) are flattened to at most this depth.</summary>
    public const int MaxDictDepth = 32;

    /// <summary>Deflate cannot expand data more than about 1032 times.</summary>
    private const long MaxDeflateRatio = 1100;

    private readonly ZipArchive _archive;
    private readonly string _prefix;
    private readonly List<PyTorchEntry> _entries;
    private readonly Dictionary<string, torch.Tensor> _storages = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _pendingReads = new(StringComparer.Ordinal);

    private PyTorchReader(string path, ZipArchive archive, string prefix, List<PyTorchEntry> entries)
        : base(path)
    {
        _archive = archive;
        _prefix = prefix;
        _entries = entries;
        foreach (var entry in entries)
        {
            _pendingReads[entry.Tensor.Storage.Key] = _pendingReads.GetValueOrDefault(entry.Tensor.Storage.Key) + 1;
        }
    }

    public override IReadOnlyList<TensorEntry> Entries => _entries;

    public static new PyTorchReader Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        long fileLength = stream.Length;
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            throw new WeightsFormatException(path, null,
                $"the file starts like a zip archive (a PyTorch .pt/.pth file) but cannot be opened as one ({e.Message}). "
                + "It is probably truncated or corrupt: copy or download it again.", e);
        }
        catch
        {
            stream.Dispose();
            throw;
        }

        try
        {
            string prefix = FindPrefix(path, archive);
            CheckByteOrder(path, archive, prefix);
            byte[] pickle = ReadPickle(path, archive, prefix + "data.pkl");
            var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
            var unpickler = new RestrictedUnpickler(pickle, path, prefix + "data.pkl",
                (pid, offset) => PersistentLoad(path, prefix, pid, offset, storages));
            object? root = unpickler.Load();
            if (root is not PickleDict dict)
            {
                throw new WeightsFormatException(path, null,
                    $"the file holds a pickled {RestrictedUnpickler.Describe(root)}, not a dict of tensors. Save a state dict: torch.save(model.state_dict(), path).");
            }

            var entries = new List<PyTorchEntry>();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            Flatten(path, dict, prefix: "", depth: 0, entries, keys);
            foreach (var storage in storages.Values) CheckStorageEntry(path, archive, prefix, storage, fileLength);
            foreach (var entry in entries) CheckView(path, entry);
            return new PyTorchReader(path, archive, prefix, entries);
        }
        catch (InvalidDataException e)
        {
            // ZipArchive reads its central directory lazily: a corrupt one surfaces here rather than in its constructor.
            archive.Dispose();
            throw new WeightsFormatException(path, null,
                $"the file starts like a zip archive (a PyTorch .pt/.pth file) but its zip structure is corrupt ({e.Message}). "
                + "It is probably truncated or damaged: copy or download it again.", e);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    public override torch.Tensor ReadTensor(TensorEntry entry)
    {
        var located = (PyTorchEntry)entry;
        var view = located.Tensor;
        var storage = GetStorage(view.Storage, entry.Key);
        using var scope = torch.NewDisposeScope();
        var result = Allocate(entry, view.Size);
        try
        {
            using (torch.no_grad())
            {
                result.copy_(storage.as_strided(view.Size, view.Stride, view.StorageOffset));
            }
        }
        catch (ExternalException e)
        {
            throw new WeightsFormatException(FilePath, entry.Key, $"the tensor could not be rebuilt from its storage ({FirstLine(e.Message)}). The file is corrupt; save it again.", e);
        }
        ReleaseStorage(view.Storage.Key);
        return scope.MoveToOuter(result);
    }

    public override void Dispose()
    {
        foreach (var storage in _storages.Values) storage.Dispose();
        _storages.Clear();
        _archive.Dispose();
    }

    private torch.Tensor GetStorage(StorageRef storage, string tensorKey)
    {
        if (_storages.TryGetValue(storage.Key, out var cached)) return cached;

        var zipEntry = _archive.GetEntry(_prefix + "data/" + storage.Key)!;
        var tensor = Allocate(new TensorEntry(tensorKey, storage.DType, new[] { storage.ElementCount }), new[] { storage.ElementCount });
        tensor.DetachFromDisposeScope(); // cached across calls; disposed by Release or Dispose
        try
        {
            using var data = zipEntry.Open();
            TensorBytes.Fill(tensor, data);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            tensor.Dispose();
            throw new WeightsFormatException(FilePath, tensorKey,
                $"its storage '{zipEntry.FullName}' cannot be read ({e.Message}). The file is truncated or corrupt: copy or download it again.", e);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        _storages[storage.Key] = tensor;
        return tensor;
    }

    private void ReleaseStorage(string key)
    {
        int remaining = _pendingReads[key] - 1;
        _pendingReads[key] = remaining;
        if (remaining <= 0 && _storages.Remove(key, out var storage)) storage.Dispose();
    }

    private static string FindPrefix(string path, ZipArchive archive)
    {
        var candidates = archive.Entries
            .Select(e => e.FullName)
            .Where(name => name == "data.pkl" || (name.EndsWith("/data.pkl", StringComparison.Ordinal) && name.IndexOf('/') == name.Length - "/data.pkl".Length))
            .ToList();
        if (candidates.Count == 1) return candidates[0][..^"data.pkl".Length];
        if (candidates.Count > 1)
        {
            throw new WeightsFormatException(path, null,
                $"the zip archive holds several pickles ({string.Join(", ", candidates)}); a torch.save file holds one. Save the state dict again.");
        }
        bool torchScript = archive.Entries.Any(e => e.FullName.EndsWith("constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal));
        throw new WeightsFormatException(path, null, torchScript
            ? "this is a TorchScript archive (torch.jit.save), not a state dict. In Python, load it with torch.jit.load and save model.state_dict() with torch.save or safetensors."
            : "the zip archive has no '<name>/data.pkl' entry, so it is not a file written by torch.save. Save the weights with torch.save(model.state_dict(), path) or as safetensors.");
    }

    private static void CheckByteOrder(string path, ZipArchive archive, string prefix)
    {
        var entry = archive.GetEntry(prefix + "byteorder");
        if (entry is null) return; // older files: little-endian
        if (entry.Length > 16) throw new WeightsFormatException(path, null, "the 'byteorder' entry is not 'little' or 'big'; the file is corrupt.");
        string order;
        try
        {
            using var reader = new StreamReader(entry.Open());
            order = reader.ReadToEnd().Trim();
        }
        catch (InvalidDataException e)
        {
            throw new WeightsFormatException(path, null, $"the 'byteorder' entry cannot be read ({e.Message}); the file is corrupt.", e);
        }
        if (order != "little")
        {
            throw new WeightsFormatException(path, null,
                $"the tensors are stored {order}-endian; only little-endian files are supported. Save the file again on a little-endian machine (x86, ARM).");
        }
    }

    private static byte[] ReadPickle(string path, ZipArchive archive, string name)
    {
        var entry = archive.GetEntry(name)!;
        if (entry.Length > MaxPickleBytes)
        {
            throw new WeightsFormatException(path, null,
                $"'{name}' is {entry.Length} bytes, more than the {MaxPickleBytes >> 20} MB accepted for a state dict's pickle. The file is corrupt or not a state dict.");
        }
        var bytes = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new WeightsFormatException(path, null, $"'{name}' cannot be read ({e.Message}). The file is truncated or corrupt: copy or download it again.", e);
        }
        return bytes;
    }

    /// <summary>Resolves <c>('storage', storage class, key, location, numel)</c>; the data is read later.</summary>
    private static object PersistentLoad(string path, string prefix, object? pid, int offset, Dictionary<string, StorageRef> storages)
    {
        if (pid is not object?[] { Length: 5 } id || id[0] is not "storage")
        {
            throw new WeightsFormatException(path, null,
                $"in '{prefix}data.pkl': the persistent id at offset {offset} is not ('storage', class, key, location, size); only tensor storages are accepted.");
        }
        if (id[1] is not PickleGlobal { Kind: PickleGlobalKind.Storage } storageClass
            || id[2] is not string key || id[3] is not string location || id[4] is not long count || count < 0)
        {
            throw new WeightsFormatException(path, null,
                $"in '{prefix}data.pkl': the storage persistent id at offset {offset} is malformed (expected a torch.*Storage class, a key, a location and a size).");
        }
        if (storages.TryGetValue(key, out var existing))
        {
            if (existing.DType != storageClass.StorageType || existing.ElementCount != count)
            {
                throw new WeightsFormatException(path, null,
                    $"in '{prefix}data.pkl': storage '{key}' is declared as {existing.ElementCount} x {existing.DType} and as {count} x {storageClass.StorageType}; the file is corrupt.");
            }
            return existing;
        }
        var storage = new StorageRef(key, storageClass.StorageType, location, count);
        storages.Add(key, storage);
        return storage;
    }

    private static void Flatten(string path, PickleDict dict, string prefix, int depth, List<PyTorchEntry> entries, HashSet<string> keys)
    {
        if (depth > MaxDictDepth)
        {
            throw new WeightsFormatException(path, null, $"dicts nest more than {MaxDictDepth} levels deep (under '{prefix}'); the file is not a state dict.");
        }
        foreach (var (rawKey, value) in dict.Items)
        {
            string? name = rawKey switch
            {
                string text => text,
                long number => number.ToString(CultureInfo.InvariantCulture),
                _ => null,
            };
            if (name is null) continue;
            string key = prefix + name;
            switch (value)
            {
                case TensorRef tensor:
                    if (!keys.Add(key))
                    {
                        throw new WeightsFormatException(path, key, "two entries of the file's nested dicts flatten to this same key. Save a flat state dict.");
                    }
                    entries.Add(new PyTorchEntry(key, tensor));
                    break;
                case PickleDict nested:
                    Flatten(path, nested, key + ".", depth + 1, entries, keys);
                    break;
                default:
                    break; // numbers, strings, lists: checkpoint bookkeeping, not weights
            }
        }
    }

    private static void CheckStorageEntry(string path, ZipArchive archive, string prefix, StorageRef storage, long fileLength)
    {
        string name = prefix + "data/" + storage.Key;
        var entry = archive.GetEntry(name);
        if (entry is null)
        {
            throw new WeightsFormatException(path, null,
                $"the pickle refers to storage '{storage.Key}', but the archive has no entry '{name}'. The file is truncated or corrupt: save it again.");
        }
        long expected;
        try
        {
            expected = checked(storage.ElementCount * WeightsDType.ElementSize(storage.DType));
        }
        catch (OverflowException)
        {
            throw new WeightsFormatException(path, null, $"storage '{storage.Key}' declares {storage.ElementCount} elements of {storage.DType}, more than 2^63 bytes; the file is corrupt.");
        }
        if (entry.Length != expected)
        {
            throw new WeightsFormatException(path, null,
                $"storage entry '{name}' holds {entry.Length} bytes, but the pickle declares {storage.ElementCount} elements of {storage.DType} ({expected} bytes). The file is truncated or corrupt: save it again.");
        }
        if (entry.CompressedLength > fileLength)
        {
            throw new WeightsFormatException(path, null,
                $"storage entry '{name}' claims {entry.CompressedLength} stored bytes, but the whole file is {fileLength} bytes. The zip directory is corrupt or crafted: copy or download the file again.");
        }
        if (entry.Length > entry.CompressedLength * MaxDeflateRatio + 1024)
        {
            throw new WeightsFormatException(path, null,
                $"storage entry '{name}' claims to expand from {entry.CompressedLength} to {entry.Length} bytes, more than compression allows. The file is corrupt or crafted.");
        }
    }

    /// <summary>The view (offset, size, stride) must lie inside its storage and not be larger than it.</summary>
    private static void CheckView(string path, PyTorchEntry entry)
    {
        var view = entry.Tensor;
        long elements;
        long lastIndex = view.StorageOffset;
        try
        {
            elements = WeightsDType.CheckedElementCount(view.Size);
            if (elements > 0)
            {
                for (int i = 0; i < view.Size.Length; i++) lastIndex = checked(lastIndex + (view.Size[i] - 1) * view.Stride[i]);
            }
        }
        catch (OverflowException)
        {
            throw new WeightsFormatException(path, entry.Key,
                $"its size {StateDictShapeMismatch.FormatShape(view.Size)} and stride {StateDictShapeMismatch.FormatShape(view.Stride)} overflow 64-bit arithmetic; the file is corrupt.");
        }
        if (elements == 0) return;
        if (lastIndex >= view.Storage.ElementCount)
        {
            throw new WeightsFormatException(path, entry.Key,
                $"its view (offset {view.StorageOffset}, size {StateDictShapeMismatch.FormatShape(view.Size)}, stride {StateDictShapeMismatch.FormatShape(view.Stride)}) "
                + $"reaches element {lastIndex}, but storage '{view.Storage.Key}' holds only {view.Storage.ElementCount}. The file is corrupt: save it again.");
        }
        if (elements > view.Storage.ElementCount)
        {
            throw new WeightsFormatException(path, entry.Key,
                $"it has {elements} elements but its storage '{view.Storage.Key}' only {view.Storage.ElementCount} (an expanded, stride-0 view). "
                + "Save a materialised copy instead, e.g. state_dict[key] = tensor.contiguous().clone().");
        }
    }

    private static string FirstLine(string text)
    {
        int end = text.IndexOf('\n');
        return end < 0 ? text : text[..end];
    }

    private sealed class PyTorchEntry : TensorEntry
    {
        public PyTorchEntry(string key, TensorRef tensor)
            : base(key, tensor.Storage.DType, tensor.Size)
        {
            Tensor = tensor;
        }

        public TensorRef Tensor { get; }
    }
}
