using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Text;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Microsoft.ML.Residual.Tests.Weights;

/// <summary>A fresh folder under the system temp folder, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "residualml-weights-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, byte[] content)
    {
        string path = File(name);
        System.IO.File.WriteAllBytes(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class WeightsFixtures
{
    /// <summary>
    /// Reads <paramref name="path"/>, expecting a <see cref="WeightsFormatException"/>, and asserts what the refusal
    /// allocated (managed bytes on this thread, a count that does not depend on the machine's speed or load): at most
    /// 1 MiB for the reader's fixed cost (the zip directory and stream buffers, ~80 KB measured) plus 128 bytes per byte of
    /// the file, room to keep every object the file spells out (a million nested lists take 45 bytes per file byte). A
    /// reader that followed a declared size (gigabytes here) or copied a growing stack at every step allocates orders of
    /// magnitude more, where the tests once timed the refusal.
    /// </summary>
    public static Microsoft.ML.Residual.Weights.WeightsFormatException RefusedWithoutAllocating(string path, Func<string, object> read)
    {
        long limit = (1 << 20) + 128 * new FileInfo(path).Length;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Microsoft.VisualStudio.TestTools.UnitTesting.Assert.ThrowsExactly<Microsoft.ML.Residual.Weights.WeightsFormatException>(() => read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Microsoft.VisualStudio.TestTools.UnitTesting.Assert.IsTrue(allocated <= limit, $"refusing {path} allocated {allocated} bytes (limit {limit})");
        return error;
    }

    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", "weights", name);

    /// <summary>conv (3→4, 3×3), bn, flatten, fc (4→<paramref name="classes"/>): state-dict keys conv.*, bn.*, fc.*.</summary>
    public static Sequential TinyNet(int classes = 2, long seed = 1)
    {
        torch.manual_seed(seed);
        return Sequential(
            ("conv", (Module<Tensor, Tensor>)Conv2d(3, 4, 3)),
            ("bn", new BatchNormalization2d(4)),
            ("flatten", Flatten()),
            ("fc", Linear(4, classes)));
    }

    /// <summary>The same layers unnamed, as PyTorch's nn.Sequential names them: 0.*, 1.*, 3.*.</summary>
    public static Sequential TorchOrderNet()
        => Sequential(Conv2d(3, 4, 3), new BatchNormalization2d(4), Flatten(), Linear(4, 2));

    /// <summary>
    /// <see cref="Tensor.TotalCount"/> after finalizing garbage left by earlier tests (finalizers lower the count,
    /// so a baseline taken without this drifts).
    /// </summary>
    /// <summary>Sets the compressed and uncompressed sizes of <paramref name="name"/> in its local and central zip headers.</summary>
    public static void SetZipEntrySizes(byte[] zip, string name, uint compressed, uint uncompressed)
    {
        byte[] nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
        int patched = 0;
        for (int i = 0; i + 46 + nameBytes.Length <= zip.Length; i++)
        {
            if (zip[i] != (byte)'P' || zip[i + 1] != (byte)'K') continue;
            (int nameAt, int sizesAt) = (zip[i + 2], zip[i + 3]) switch
            {
                (3, 4) => (30, 18),
                (1, 2) => (46, 20),
                _ => (-1, -1),
            };
            if (nameAt < 0 || !zip.AsSpan(i + nameAt, nameBytes.Length).SequenceEqual(nameBytes)) continue;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + sizesAt), compressed);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + sizesAt + 4), uncompressed);
            patched++;
        }
        Microsoft.VisualStudio.TestTools.UnitTesting.Assert.AreEqual(2, patched, "the local and the central header of " + name);
    }

    public static long LiveTensorCount()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        return Tensor.TotalCount;
    }

    /// <summary>Raw little-endian bytes of a tensor's values (any layout, any device).</summary>
    public static byte[] Bytes(Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        return tensor.detach().cpu().contiguous().bytes.ToArray();
    }

    /// <summary>Copies of every state-dict value, for checking that a module did or did not change.</summary>
    public static Dictionary<string, byte[]> Snapshot(nn.Module module)
    {
        var result = new Dictionary<string, byte[]>();
        foreach (var (key, value) in module.state_dict()) result[key] = Bytes(value);
        return result;
    }

    /// <summary>A safetensors file from a header text and a data buffer of the given size (zeros).</summary>
    public static byte[] SafeTensorsBytes(string header, int dataLength) => SafeTensorsBytes((ulong)Encoding.UTF8.GetByteCount(header), header, new byte[dataLength]);

    public static byte[] SafeTensorsBytes(ulong declaredHeaderLength, string header, byte[] data)
    {
        byte[] text = Encoding.UTF8.GetBytes(header);
        var result = new byte[8 + text.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, declaredHeaderLength);
        text.CopyTo(result, 8);
        data.CopyTo(result, 8 + text.Length);
        return result;
    }

    /// <summary>A zip laid out like torch.save's: &lt;prefix&gt;/data.pkl, &lt;prefix&gt;/data/&lt;key&gt;, &lt;prefix&gt;/version.</summary>
    public static byte[] TorchZip(byte[] pickle, IReadOnlyDictionary<string, byte[]>? storages = null, string prefix = "archive", bool includePickle = true)
    {
        var entries = new List<(string, byte[])>();
        if (includePickle) entries.Add((prefix + "/data.pkl", pickle));
        foreach (var (key, content) in storages ?? new Dictionary<string, byte[]>()) entries.Add((prefix + "/data/" + key, content));
        entries.Add((prefix + "/version", Encoding.ASCII.GetBytes("3\n")));
        return Zip(entries.ToArray());
    }

    /// <summary>A zip archive of stored (uncompressed) entries.</summary>
    public static byte[] Zip(params (string Name, byte[] Content)[] entries)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
            {
                var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
                using var stream = entry.Open();
                stream.Write(content);
            }
        }
        return buffer.ToArray();
    }

    public static byte[] FloatBytes(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }
}

/// <summary>Writes pickle opcodes by hand, to build the streams torch.save writes and the ones an attacker would.</summary>
internal sealed class PickleWriter
{
    private readonly List<byte> _bytes = new();

    public PickleWriter Proto(byte version = 2) => Op(0x80, version);

    public PickleWriter Global(string module, string name)
    {
        Op((byte)'c');
        _bytes.AddRange(Encoding.UTF8.GetBytes(module + "\n" + name + "\n"));
        return this;
    }

    public PickleWriter StackGlobal(string module, string name) => Str(module).Str(name).Op(0x93);

    public PickleWriter Str(string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        Op((byte)'X');
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
        _bytes.AddRange(length.ToArray());
        _bytes.AddRange(utf8);
        return this;
    }

    public PickleWriter Int(int value)
    {
        Op((byte)'J');
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        _bytes.AddRange(bytes.ToArray());
        return this;
    }

    /// <summary>BININT when the value fits 32 bits, else LONG1 with 8 bytes (as pickle writes big ints).</summary>
    public PickleWriter Number(long value)
    {
        if (value is >= int.MinValue and <= int.MaxValue) return Int((int)value);
        Op(0x8a, 8);
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        _bytes.AddRange(bytes.ToArray());
        return this;
    }

    public PickleWriter IntTuple(params long[] values)
    {
        Mark();
        foreach (long value in values) Number(value);
        return Op((byte)'t');
    }

    public PickleWriter Mark() => Op((byte)'(');

    public PickleWriter Tuple() => Op((byte)'t');

    public PickleWriter Tuple1() => Op(0x85);

    public PickleWriter EmptyTuple() => Op((byte)')');

    public PickleWriter EmptyDict() => Op((byte)'}');

    public PickleWriter EmptyList() => Op((byte)']');

    public PickleWriter Reduce() => Op((byte)'R');

    public PickleWriter SetItem() => Op((byte)'s');

    public PickleWriter SetItems() => Op((byte)'u');

    public PickleWriter False() => Op(0x89);

    public PickleWriter PersistentId() => Op((byte)'Q');

    public PickleWriter Stop() => Op((byte)'.');

    public PickleWriter Op(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    /// <summary>An empty OrderedDict, as torch.save starts a state dict.</summary>
    public PickleWriter OrderedDict() => Global("collections", "OrderedDict").EmptyTuple().Reduce();

    /// <summary>_rebuild_tensor_v2(('storage', torch.&lt;storageClass&gt;, key, 'cpu', numel), offset, size, stride, False, OrderedDict()).</summary>
    public PickleWriter Tensor(string storageClass, string storageKey, long elementCount, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageClass).Str(storageKey).Str("cpu").Number(elementCount).Tuple().PersistentId();
        Number(offset).IntTuple(size).IntTuple(stride).False().OrderedDict();
        Tuple();
        return Reduce();
    }

    public byte[] ToArray() => _bytes.ToArray();
}
