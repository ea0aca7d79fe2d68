using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Weights;

[TestClass]
public sealed class SafeTensorsTests
{
    private const string ValidEntry = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    [TestMethod]
    public void WriteThenRead_EveryDtype_RoundTripsBitExact()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new("f32", torch.tensor(new[] { 0.1f, float.NaN, float.PositiveInfinity, -0f, float.Epsilon, -3e38f })),
            new("f16", torch.randn(3, 5).to(ScalarType.Float16)),
            new("bf16", torch.randn(2, 3, 4).to(ScalarType.BFloat16)),
            new("f64", torch.tensor(new[] { 1.0 / 3.0, double.NaN, -1e300, double.Epsilon })),
            new("i64", torch.tensor(new[] { long.MinValue, -1L, 0L, long.MaxValue })),
            new("i32", torch.tensor(new[] { int.MinValue, 7, int.MaxValue }).reshape(3, 1)),
            new("i16", torch.tensor(new short[] { short.MinValue, 5, short.MaxValue })),
            new("i8", torch.tensor(new sbyte[] { sbyte.MinValue, 0, sbyte.MaxValue })),
            new("u8", torch.tensor(new byte[] { 0, 128, 255 })),
            new("bool", torch.tensor(new[] { true, false, true, true })),
        };
        string path = folder.File("all.safetensors");

        SafeTensors.Write(path, tensors);
        using var read = SafeTensors.Read(path);

        CollectionAssert.AreEqual(tensors.Select(t => t.Key).ToList(), read.Keys.ToList(), "insertion order");
        foreach (var (key, expected) in tensors)
        {
            var actual = read[key];
            Assert.AreEqual(expected.dtype, actual.dtype, key);
            CollectionAssert.AreEqual(expected.shape, actual.shape, key);
            Assert.AreEqual(DeviceType.CPU, actual.device_type, key);
            CollectionAssert.AreEqual(WeightsFixtures.Bytes(expected), WeightsFixtures.Bytes(actual), key);
        }
    }

    [TestMethod]
    public void WriteThenRead_Metadata_RoundTrips()
    {
        using var folder = new TempFolder();
        using var tensor = torch.ones(2);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "Größe \"quoted\" ✓", ["empty"] = "" };
        string path = folder.File("meta.safetensors");

        SafeTensors.Write(path, new[] { new KeyValuePair<string, Tensor>("w", tensor) }, metadata);
        using var read = SafeTensors.Read(path);

        CollectionAssert.AreEquivalent(metadata.ToList(), read.Metadata.ToList());
    }

    [TestMethod]
    public void Write_Header_IsPaddedWithSpacesToMultipleOf8AndValidJson()
    {
        using var folder = new TempFolder();
        using var tensor = torch.ones(3);
        string path = folder.File("pad.safetensors");

        SafeTensors.Write(path, new[] { new KeyValuePair<string, Tensor>("abc", tensor) }, new Dictionary<string, string> { ["k"] = "v" });

        byte[] file = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.AreEqual(0UL, headerLength % 8);
        string header = Encoding.UTF8.GetString(file, 8, (int)headerLength);
        Assert.IsTrue(header[(header.LastIndexOf('}') + 1)..].All(c => c == ' '), "padding is spaces");
        using var json = JsonDocument.Parse(header);
        Assert.AreEqual("__metadata__", json.RootElement.EnumerateObject().First().Name);
        Assert.AreEqual(8 + (long)headerLength + 12, file.LongLength);
    }

    [TestMethod]
    public void Write_NonContiguousAndZeroDimAndEmptyTensors_RoundTrip()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var transposed = TensorTestExtensions.FloatRange(6).reshape(2, 3).t();
        var scalar = torch.tensor(4.5f);
        var empty = torch.zeros(0, 3);
        string path = folder.File("shapes.safetensors");

        SafeTensors.Write(path, new Dictionary<string, Tensor> { ["t"] = transposed, ["s"] = scalar, ["e"] = empty });
        using var read = SafeTensors.Read(path);

        CollectionAssert.AreEqual(new[] { 0f, 3f, 1f, 4f, 2f, 5f }, read["t"].data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 3, 2 }, read["t"].shape);
        Assert.AreEqual(0, read["s"].shape.Length);
        Assert.AreEqual(4.5f, read["s"].item<float>());
        CollectionAssert.AreEqual(new long[] { 0, 3 }, read["e"].shape);
    }

    [TestMethod]
    public void Read_HandWrittenFile_FollowsTheFormatDescription()
    {
        using var folder = new TempFolder();
        string header = "{\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]},\"__metadata__\":{\"a\":\"b\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ";
        byte[] data = WeightsFixtures.FloatBytes(1.5f, -2f).Concat(BitConverter.GetBytes(42L)).ToArray();
        string path = folder.Write("hand.safetensors", WeightsFixtures.SafeTensorsBytes((ulong)header.Length, header, data));

        using var read = SafeTensors.Read(path);

        CollectionAssert.AreEqual(new[] { "b", "a" }, read.Keys.ToList(), "header order");
        Assert.AreEqual(42L, read["b"].item<long>());
        CollectionAssert.AreEqual(new[] { 1.5f, -2f }, read["a"].data<float>().ToArray());
        Assert.AreEqual("b", read.Metadata["a"]);
    }

    [TestMethod]
    public void Write_Success_LeavesNoTemporaryFiles()
    {
        using var folder = new TempFolder();
        using var tensor = torch.ones(2);
        SafeTensors.Write(folder.File("w.safetensors"), new[] { new KeyValuePair<string, Tensor>("w", tensor) });
        SafeTensors.Write(folder.File("w.safetensors"), new[] { new KeyValuePair<string, Tensor>("w", tensor) });

        CollectionAssert.AreEqual(new[] { "w.safetensors" }, Directory.GetFiles(folder.Path).Select(Path.GetFileName).ToList());
    }

    [TestMethod]
    public void Write_FailingInput_LeavesExistingFileUntouched()
    {
        using var folder = new TempFolder();
        string path = folder.Write("keep.safetensors", Encoding.ASCII.GetBytes("previous content"));
        using var good = torch.ones(2);
        using var complex = torch.zeros(2, ScalarType.ComplexFloat32);

        var error = Assert.ThrowsExactly<ArgumentException>(() => SafeTensors.Write(path, new Dictionary<string, Tensor> { ["good"] = good, ["c"] = complex }));
        StringAssert.Contains(error.Message, "'c'");

        IEnumerable<KeyValuePair<string, Tensor>> Throwing()
        {
            yield return new("good", good);
            throw new IOException("source failed");
        }
        Assert.ThrowsExactly<IOException>(() => SafeTensors.Write(path, Throwing()));

        Assert.AreEqual("previous content", File.ReadAllText(path));
        Assert.AreEqual(1, Directory.GetFiles(folder.Path).Length, "no temporary file is left behind");
    }

    [TestMethod]
    public void Write_DuplicateOrReservedName_ThrowsNamingIt()
    {
        using var folder = new TempFolder();
        using var tensor = torch.ones(1);
        var duplicate = new[] { new KeyValuePair<string, Tensor>("x", tensor), new KeyValuePair<string, Tensor>("x", tensor) };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => SafeTensors.Write(folder.File("d.safetensors"), duplicate)).Message, "'x'");
        var reserved = new[] { new KeyValuePair<string, Tensor>("__metadata__", tensor) };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => SafeTensors.Write(folder.File("r.safetensors"), reserved)).Message, "__metadata__");
        Assert.AreEqual(0, Directory.GetFiles(folder.Path).Length);
    }

    // ---- malformed files: every one gives a WeightsFormatException naming the file (and the key when there is one)

    [TestMethod]
    public void Read_FileShorterThan8Bytes_ThrowsWithFileName()
    {
        var error = ReadCorrupt(new byte[] { 1, 2, 3 });
        StringAssert.Contains(error.Message, "8-byte");
    }

    [TestMethod]
    public void Read_HeaderLengthBeyondFileEnd_ThrowsWithFileName()
    {
        string header = "{" + ValidEntry + "}";
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes(1000, header, new byte[8]));
        StringAssert.Contains(error.Message, "beyond the end of the file");
    }

    [TestMethod]
    [DataRow(200UL << 20)]
    [DataRow(ulong.MaxValue)]
    public void Read_AbsurdHeaderLength_ThrowsWithoutAllocating(ulong declared)
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes(declared, "{}", Array.Empty<byte>()));
        StringAssert.Contains(error.Message, "100 MB");
    }

    [TestMethod]
    public void Read_GarbageText_SaysItIsNeitherFormat()
    {
        var error = ReadCorrupt(Encoding.ASCII.GetBytes("hello, this is not a weights file at all"));
        StringAssert.Contains(error.Message, "neither a safetensors file nor a PyTorch zip archive");
    }

    [TestMethod]
    public void Read_HeaderNotJson_Throws()
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{\"w\": {dtype", 0));
        StringAssert.Contains(error.Message, "not valid JSON");
        Assert.IsInstanceOfType<JsonException>(error.InnerException);
    }

    [TestMethod]
    public void Read_HeaderNotUtf8_Throws()
    {
        using var folder = new TempFolder();
        byte[] file = WeightsFixtures.SafeTensorsBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        file[10] = 0xFF; // inside the key "w"
        string path = folder.Write("latin1.safetensors", file);

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => SafeTensors.Read(path));
        StringAssert.Contains(error.Message, "not valid UTF-8");
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    [DataRow("[1, 2]", "array")]
    [DataRow("\"text\"", "string")]
    public void Read_HeaderNotAnObject_Throws(string header, string kind)
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes(header, 0));
        StringAssert.Contains(error.Message, kind);
    }

    [TestMethod]
    [DataRow("dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}")]
    [DataRow("shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}")]
    [DataRow("data_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}")]
    public void Read_EntryMissingField_ThrowsNamingKeyAndField(string field, string header)
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes(header, 8));
        Assert.AreEqual("w", error.TensorKey);
        StringAssert.Contains(error.Message, "'w'");
        StringAssert.Contains(error.Message, $"'{field}'");
    }

    [TestMethod]
    [DataRow("F33", "unknown")]
    [DataRow("F8_E4M3", "no TorchSharp tensor type")]
    public void Read_UnknownOrUnsupportedDtype_ThrowsNamingIt(string dtype, string expected)
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));
        StringAssert.Contains(error.Message, dtype);
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    [DataRow("[-1]", "[0,8]", "'shape' dimension 0")]
    [DataRow("[1.5]", "[0,8]", "'shape' dimension 0")]
    [DataRow("[\"2\"]", "[0,8]", "'shape' dimension 0")]
    [DataRow("[2]", "[-8,0]", "begin of 'data_offsets'")]
    [DataRow("[2]", "[0,8.0]", "end of 'data_offsets'")]
    [DataRow("[2]", "[0]", "'data_offsets' is [0]")]
    public void Read_NegativeOrNonIntegerShapeOrOffsets_Throws(string shape, string offsets, string expected)
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}", 8));
        Assert.AreEqual("w", error.TensorKey);
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    public void Read_BeginAfterEnd_Throws()
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8));
        StringAssert.Contains(error.Message, "begins after it ends");
    }

    [TestMethod]
    public void Read_EndBeyondDataBuffer_Throws()
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{" + ValidEntry + "}", 4));
        StringAssert.Contains(error.Message, "ends beyond the data buffer");
        StringAssert.Contains(error.Message, "4 bytes");
    }

    [TestMethod]
    public void Read_ByteSizeDisagreesWithShape_Throws()
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12));
        StringAssert.Contains(error.Message, "needs 16 bytes");
        StringAssert.Contains(error.Message, "span 12");
    }

    [TestMethod]
    [DataRow("[4294967296,4294967296,16]", "2^63")]
    [DataRow("[1099511627776]", "needs 4398046511104 bytes")]
    public void Read_HugeDeclaredShape_IsAClearErrorNotOverflowOrAllocation(string shape, string expected)
    {
        using var folder = new TempFolder();
        string path = folder.Write("huge.safetensors", WeightsFixtures.SafeTensorsBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,8]}}", 8));
        var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    public void Read_OverlappingTensors_ThrowsNamingBoth()
    {
        string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes(header, 12));
        StringAssert.Contains(error.Message, "overlaps");
        StringAssert.Contains(error.Message, "'a'");
        StringAssert.Contains(error.Message, "'b'");
    }

    [TestMethod]
    public void Read_DuplicateTensorName_Throws()
    {
        string header = "{" + ValidEntry + "," + ValidEntry + "}";
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes(header, 8));
        Assert.AreEqual("w", error.TensorKey);
        StringAssert.Contains(error.Message, "twice");
    }

    [TestMethod]
    public void Read_GapOrTrailingBytes_Throws()
    {
        string gap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        StringAssert.Contains(ReadCorrupt(WeightsFixtures.SafeTensorsBytes(gap, 12)).Message, "gaps");
        StringAssert.Contains(ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{" + ValidEntry + "}", 12)).Message, "trailing bytes");
    }

    [TestMethod]
    public void Read_MetadataValueNotString_Throws()
    {
        var error = ReadCorrupt(WeightsFixtures.SafeTensorsBytes("{\"__metadata__\":{\"epoch\":3}," + ValidEntry + "}", 8));
        StringAssert.Contains(error.Message, "'epoch'");
    }

    [TestMethod]
    public void Read_MissingFile_ThrowsFileNotFoundNamingPath()
    {
        string path = Path.Combine(Path.GetTempPath(), "no-such-" + Guid.NewGuid().ToString("N") + ".safetensors");
        var error = Assert.ThrowsExactly<FileNotFoundException>(() => SafeTensors.Read(path));
        Assert.AreEqual(path, error.FileName);
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    public void Read_PyTorchArchive_SaysToUseStateDictRead()
    {
        var error = Assert.ThrowsExactly<WeightsFormatException>(() => SafeTensors.Read(WeightsFixtures.Path("sequential.pth")));
        StringAssert.Contains(error.Message, "StateDict.Read");
    }

    [TestMethod]
    public void Write_IntoMissingFolder_ThrowsNamingTheTarget()
    {
        using var folder = new TempFolder();
        using var tensor = torch.ones(1);
        string path = Path.Combine(folder.Path, "no-such-folder", "w.safetensors");

        var error = Assert.ThrowsExactly<DirectoryNotFoundException>(() => SafeTensors.Write(path, new[] { new KeyValuePair<string, Tensor>("w", tensor) }));

        StringAssert.Contains(error.Message, path);
    }

    private static WeightsFormatException ReadCorrupt(byte[] content)
    {
        using var folder = new TempFolder();
        string path = folder.Write("corrupt.safetensors", content);
        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        Assert.AreEqual(path, error.FilePath);
        StringAssert.Contains(error.Message, path);
        return error;
    }
}
