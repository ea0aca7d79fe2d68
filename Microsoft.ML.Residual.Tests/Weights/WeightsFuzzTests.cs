using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Weights;

/// <summary>
/// Mutates valid safetensors and torch.save files (bit flips, interesting byte values, truncations, insertions,
/// header-length and zip-header tampering, pickle and storage mutations inside a rebuilt zip) with a fixed seed and
/// checks that reading or loading them either succeeds or throws a documented exception: never an
/// IndexOutOfRange, Overflow, OutOfMemory, a native abort or anything else.
/// </summary>
[TestClass]
public sealed class WeightsFuzzTests
{
    private const int Seed = 20_251_123;

    /// <summary>Cases per seed file and mutation family (kept so the whole test runs in a few seconds).</summary>
    private const int CasesPerFamily = 60;

    private static readonly byte[] Interesting8 = { 0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x20, (byte)'(', (byte)'.', (byte)'}' };

    private static readonly ulong[] Interesting64 =
    {
        0, 1, 7, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue, ulong.MaxValue - 7, 100UL << 20, (100UL << 20) + 1,
    };

    [TestMethod]
    public void ReadAndLoad_MutatedWeightsFiles_ThrowOnlyDocumentedExceptions()
    {
        using var folder = new TempFolder();
        var seeds = SeedFiles(folder);
        var random = new Random(Seed);
        var failures = new List<string>();
        int cases = 0, valid = 0;
        string path = folder.File("case.bin");
        using var module = WeightsFixtures.TinyNet();
        var watch = Stopwatch.StartNew();

        foreach (var (name, bytes) in seeds)
        {
            bool isZip = bytes[0] == (byte)'P';
            foreach (var (family, mutate) in Families(isZip))
            {
                for (int i = 0; i < CasesPerFamily; i++)
                {
                    byte[] mutated = mutate(bytes, random);
                    // A new file per case through a plain FileStream, deleted after the case: File.WriteAllBytes over one
                    // file took ~3 ms per case on the build machine, this takes well under 0.1 ms.
                    using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1)) file.Write(mutated);
                    cases++;
                    string label = $"{name} / {family} #{i} ({mutated.Length} bytes)";
                    if (Attempt(label, () => { using var read = StateDict.Read(path); }, failures)) valid++;
                    if (!isZip) Attempt(label + " via SafeTensors.Read", () => { using var read = SafeTensors.Read(path); }, failures);
                    if (i % 4 == 0)
                    {
                        Attempt(label + " via StateDict.Load", () => StateDict.Load(module, path, strict: i % 8 == 0), failures);
                    }
                    File.Delete(path);
                }
            }
        }

        watch.Stop();
        Console.WriteLine($"{cases} mutated files ({valid} still valid) in {watch.Elapsed.TotalSeconds:F1} s");
        Assert.IsTrue(cases >= 3000, $"only {cases} cases");
        var kinds = failures.GroupBy(f => f[(f.IndexOf(": ", f.IndexOf("bytes)", StringComparison.Ordinal), StringComparison.Ordinal) + 2)..]).Select(g => $"{g.Count()} x {g.First()}");
        Assert.AreEqual(0, failures.Count, $"{failures.Count} undocumented exception(s), first of each kind:{Environment.NewLine}{string.Join(Environment.NewLine, kinds.Take(30))}");
    }

    /// <summary>Runs one read; returns whether it succeeded. A documented exception must name the file.</summary>
    private static bool Attempt(string label, Action read, List<string> failures)
    {
        try
        {
            read();
            return true;
        }
        catch (WeightsFormatException e)
        {
            if (!e.Message.Contains(e.FilePath, StringComparison.Ordinal) || string.IsNullOrEmpty(e.FilePath))
            {
                failures.Add($"{label}: WeightsFormatException without the file name: {e.Message}");
            }
        }
        catch (StateDictMismatchException)
        {
        }
        catch (Exception e)
        {
            failures.Add($"{label}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
        }
        return false;
    }

    private static List<(string Name, byte[] Bytes)> SeedFiles(TempFolder folder)
    {
        var result = new List<(string, byte[])>();

        string written = folder.File("written.safetensors");
        using (var scope = torch.NewDisposeScope())
        {
            var tensors = new List<KeyValuePair<string, Tensor>>
            {
                new("f32", TensorTestExtensions.FloatRange(6).reshape(2, 3)),
                new("f16", torch.ones(4, ScalarType.Float16)),
                new("bf16", torch.ones(2, ScalarType.BFloat16)),
                new("i64", torch.tensor(new long[] { -1, long.MaxValue })),
                new("bool", torch.tensor(new[] { true, false, true })),
                new("u8", torch.tensor(new byte[] { 0, 1, 2, 3, 4 })),
                new("scalar", torch.tensor(3.5)),
                new("empty", torch.empty(0, 2)),
            };
            SafeTensors.Write(written, tensors, new Dictionary<string, string> { ["source"] = "fuzz" });
        }
        result.Add(("SafeTensors.Write", File.ReadAllBytes(written)));

        string saved = folder.File("saved.safetensors");
        using (var module = WeightsFixtures.TinyNet()) StateDict.Save(module, saved);
        result.Add(("StateDict.Save", File.ReadAllBytes(saved)));

        foreach (string fixture in new[] { "tensors.safetensors", "tensors.pth", "tensors_protocol4.pth", "sequential.pth" })
        {
            result.Add((fixture, File.ReadAllBytes(WeightsFixtures.Path(fixture))));
        }
        return result;
    }

    private static IEnumerable<(string Family, Func<byte[], Random, byte[]> Mutate)> Families(bool isZip)
    {
        yield return ("bit flips", BitFlips);
        yield return ("interesting bytes", InterestingBytes);
        yield return ("interesting integer", InterestingInteger);
        yield return ("truncation", Truncation);
        yield return ("insertion", Insertion);
        yield return ("deletion", Deletion);
        if (isZip)
        {
            yield return ("zip header fields", ZipHeaderFields);
            yield return ("pickle mutation", (bytes, random) => RezipWithMutatedEntry(bytes, random, "data.pkl"));
            yield return ("storage mutation", (bytes, random) => RezipWithMutatedEntry(bytes, random, "/data/"));
        }
        else
        {
            yield return ("header length", HeaderLength);
            yield return ("header text", HeaderText);
        }
    }

    private static byte[] BitFlips(byte[] source, Random random)
    {
        byte[] result = (byte[])source.Clone();
        int flips = random.Next(1, 5);
        for (int i = 0; i < flips; i++) result[random.Next(result.Length)] ^= (byte)(1 << random.Next(8));
        return result;
    }

    private static byte[] InterestingBytes(byte[] source, Random random)
    {
        byte[] result = (byte[])source.Clone();
        int count = random.Next(1, 4);
        for (int i = 0; i < count; i++)
        {
            result[random.Next(result.Length)] = random.Next(4) == 0 ? (byte)random.Next(256) : Interesting8[random.Next(Interesting8.Length)];
        }
        return result;
    }

    /// <summary>An interesting 2-, 4- or 8-byte little-endian value written over a random position.</summary>
    private static byte[] InterestingInteger(byte[] source, Random random)
    {
        byte[] result = (byte[])source.Clone();
        int width = new[] { 2, 4, 8 }[random.Next(3)];
        if (result.Length < width) return result;
        WriteValue(result, random.Next(result.Length - width + 1), width, Interesting64[random.Next(Interesting64.Length)]);
        return result;
    }

    private static byte[] Truncation(byte[] source, Random random) => source[..random.Next(source.Length)];

    private static byte[] Insertion(byte[] source, Random random)
    {
        int at = random.Next(source.Length + 1);
        var inserted = new byte[random.Next(1, 17)];
        for (int i = 0; i < inserted.Length; i++) inserted[i] = random.Next(2) == 0 ? Interesting8[random.Next(Interesting8.Length)] : (byte)random.Next(256);
        return source[..at].Concat(inserted).Concat(source[at..]).ToArray();
    }

    private static byte[] Deletion(byte[] source, Random random)
    {
        int at = random.Next(source.Length);
        int length = Math.Min(source.Length - at, random.Next(1, 33));
        return source[..at].Concat(source[(at + length)..]).ToArray();
    }

    /// <summary>The safetensors header length: an interesting value, or off by a little from the true one.</summary>
    private static byte[] HeaderLength(byte[] source, Random random)
    {
        byte[] result = (byte[])source.Clone();
        ulong actual = BinaryPrimitives.ReadUInt64LittleEndian(result);
        ulong value = random.Next(2) == 0 ? Interesting64[random.Next(Interesting64.Length)] : actual + (ulong)random.Next(-16, 17);
        BinaryPrimitives.WriteUInt64LittleEndian(result, value);
        return result;
    }

    /// <summary>Digits, signs, quotes and brackets of the JSON header replaced by others, so that numbers and structure change.</summary>
    private static byte[] HeaderText(byte[] source, Random random)
    {
        byte[] result = (byte[])source.Clone();
        int headerEnd = (int)Math.Min((ulong)result.Length, 8 + BinaryPrimitives.ReadUInt64LittleEndian(result));
        byte[] replacements = "0123456789-.eE\"[]{},:9".Select(c => (byte)c).ToArray();
        int count = random.Next(1, 4);
        for (int i = 0; i < count; i++)
        {
            int at = random.Next(8, headerEnd);
            if (result[at] is (byte)' ' && random.Next(2) == 0) continue;
            result[at] = replacements[random.Next(replacements.Length)];
        }
        return result;
    }

    /// <summary>A size, offset, CRC, name-length or count field of a local or central zip header set to an interesting value.</summary>
    private static byte[] ZipHeaderFields(byte[] source, Random random)
    {
        byte[] result = (byte[])source.Clone();
        var fields = new List<(int Offset, int Width)>();
        for (int i = 0; i + 4 <= result.Length; i++)
        {
            if (result[i] != (byte)'P' || result[i + 1] != (byte)'K') continue;
            int signature = result[i + 2] | (result[i + 3] << 8);
            int[] offsets;
            int[] widths;
            switch (signature)
            {
                case 0x0403: // local file header: crc, compressed size, size, name length, extra length
                    offsets = new[] { 8, 14, 18, 22, 26, 28 };
                    widths = new[] { 2, 4, 4, 4, 2, 2 };
                    break;
                case 0x0201: // central directory header: method, crc, sizes, name/extra/comment lengths, local header offset
                    offsets = new[] { 10, 16, 20, 24, 28, 30, 32, 42 };
                    widths = new[] { 2, 4, 4, 4, 2, 2, 2, 4 };
                    break;
                case 0x0605: // end of central directory: entry counts, directory size and offset
                    offsets = new[] { 8, 10, 12, 16 };
                    widths = new[] { 2, 2, 4, 4 };
                    break;
                case 0x0606: // zip64 end of central directory
                    offsets = new[] { 24, 32, 40, 48 };
                    widths = new[] { 8, 8, 8, 8 };
                    break;
                default:
                    continue;
            }
            for (int f = 0; f < offsets.Length; f++)
            {
                if (i + offsets[f] + widths[f] <= result.Length) fields.Add((i + offsets[f], widths[f]));
            }
        }
        if (fields.Count == 0) return result;
        int changes = random.Next(1, 3);
        for (int c = 0; c < changes; c++)
        {
            var (offset, width) = fields[random.Next(fields.Count)];
            ulong current = ReadValue(result, offset, width);
            ulong value = random.Next(3) switch
            {
                0 => Interesting64[random.Next(Interesting64.Length)],
                1 => current + (ulong)random.Next(1, 9),
                _ => current - (ulong)random.Next(1, 9),
            };
            WriteValue(result, offset, width, value);
        }
        return result;
    }

    /// <summary>
    /// The archive rebuilt (so its CRCs and sizes are consistent again) after mutating one entry whose name contains
    /// <paramref name="entryPart"/>: this reaches the unpickler and the storage checks behind the zip layer.
    /// </summary>
    private static byte[] RezipWithMutatedEntry(byte[] source, Random random, string entryPart)
    {
        var entries = new List<(string Name, byte[] Content)>();
        using (var zip = new ZipArchive(new MemoryStream(source), ZipArchiveMode.Read))
        {
            foreach (var entry in zip.Entries)
            {
                using var stream = entry.Open();
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                entries.Add((entry.FullName, copy.ToArray()));
            }
        }
        var targets = Enumerable.Range(0, entries.Count).Where(i => entries[i].Name.Contains(entryPart, StringComparison.Ordinal)).ToList();
        int target = targets[random.Next(targets.Count)];
        byte[] content = entries[target].Content;
        if (content.Length > 0)
        {
            content = random.Next(6) switch
            {
                0 => BitFlips(content, random),
                1 => InterestingBytes(content, random),
                2 => InterestingInteger(content, random),
                3 => Truncation(content, random),
                4 => Insertion(content, random),
                _ => Deletion(content, random),
            };
        }
        entries[target] = (entries[target].Name, content);
        return WeightsFixtures.Zip(entries.ToArray());
    }

    private static ulong ReadValue(byte[] bytes, int offset, int width) => width switch
    {
        2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset)),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset)),
    };

    private static void WriteValue(byte[] bytes, int offset, int width, ulong value)
    {
        switch (width)
        {
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(offset), (ushort)value); break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)value); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(offset), value); break;
        }
    }
}
