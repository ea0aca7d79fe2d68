using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Weights;

[TestClass]
public sealed class PyTorchReaderTests
{
    // ---- the torch.save fixtures written by PyTorch 1.13 (Fixtures/make_weights_fixtures.py)

    [TestMethod]
    [DataRow("tensors.pth")]
    [DataRow("tensors_protocol4.pth")]
    public void Read_Torch113Fixture_GivesTheExactValuesOfEveryDtype(string fixture)
    {
        using var read = StateDict.Read(WeightsFixtures.Path(fixture));

        CollectionAssert.AreEqual(
            new[] { "f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool", "param", "base", "column", "transposed", "row", "scalar_i64", "scalar_f32", "empty" },
            read.Keys.ToList());
        CollectionAssert.AreEqual(new[] { 0.1f, -2.5f, 3f, 1e-8f, float.PositiveInfinity, -0f }, read["f32"].data<float>().ToArray());
        Assert.IsTrue(float.IsNegative(read["f32"].data<float>()[5]), "-0.0 keeps its sign");
        CollectionAssert.AreEqual(new long[] { 2, 3 }, read["f32"].shape);
        AssertHalf(read["f16"], ScalarType.Float16, 0.5f, -1.25f, 65504f, (float)(Half)0.0001f);
        AssertHalf(read["bf16"], ScalarType.BFloat16, 1f, -3.140625f, MathF.Pow(2, 100));
        CollectionAssert.AreEqual(new[] { 1.0 / 3.0, -1e300 }, read["f64"].data<double>().ToArray());
        CollectionAssert.AreEqual(new[] { -(1L << 62), 0L, (1L << 40) + 7 }, read["i64"].data<long>().ToArray());
        CollectionAssert.AreEqual(new[] { int.MinValue, int.MaxValue }, read["i32"].data<int>().ToArray());
        CollectionAssert.AreEqual(new short[] { -300, 300 }, read["i16"].data<short>().ToArray());
        CollectionAssert.AreEqual(new sbyte[] { -128, 127 }, read["i8"].data<sbyte>().ToArray());
        CollectionAssert.AreEqual(new byte[] { 0, 255 }, read["u8"].data<byte>().ToArray());
        CollectionAssert.AreEqual(new[] { true, false, true }, read["bool"].data<bool>().ToArray());
        CollectionAssert.AreEqual(new[] { 1.5f, -2f }, read["param"].data<float>().ToArray());
        Assert.IsFalse(read["param"].requires_grad);
        Assert.AreEqual(7L, read["scalar_i64"].item<long>());
        Assert.AreEqual(0, read["scalar_i64"].shape.Length);
        Assert.AreEqual(2.5f, read["scalar_f32"].item<float>());
        CollectionAssert.AreEqual(new long[] { 0, 3 }, read["empty"].shape);
    }

    [TestMethod]
    public void Read_ViewsSharingOneStorage_AreRebuiltFromOffsetSizeAndStride()
    {
        using var read = StateDict.Read(WeightsFixtures.Path("tensors.pth"));

        CollectionAssert.AreEqual(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), read["base"].data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 1f, 5f, 9f }, read["column"].data<float>().ToArray(), "base[:, 1]");
        CollectionAssert.AreEqual(new long[] { 4, 3 }, read["transposed"].shape);
        CollectionAssert.AreEqual(new[] { 0f, 4f, 8f, 1f, 5f, 9f, 2f, 6f, 10f, 3f, 7f, 11f }, read["transposed"].data<float>().ToArray(), "base.t()");
        CollectionAssert.AreEqual(new[] { 8f, 9f, 10f, 11f }, read["row"].data<float>().ToArray(), "base[2]");
        foreach (var key in new[] { "column", "transposed", "row" }) Assert.IsTrue(read[key].is_contiguous(), key);

        read["base"].Fill(-1.0);
        Assert.AreEqual(1f, read["column"].data<float>()[0], "views are independent copies");
    }

    [TestMethod]
    [DataRow("tensors.pth")]
    [DataRow("tensors_protocol4.pth")]
    public void Read_Torch113Fixture_MatchesTheSafetensorsExportBitForBit(string fixture)
    {
        using var fromPickle = StateDict.Read(WeightsFixtures.Path(fixture));
        using var fromSafeTensors = StateDict.Read(WeightsFixtures.Path("tensors.safetensors"));

        CollectionAssert.AreEqual(fromSafeTensors.Keys.ToList(), fromPickle.Keys.ToList());
        Assert.AreEqual("pt", fromSafeTensors.Metadata["format"]);
        foreach (var (key, expected) in fromSafeTensors)
        {
            Assert.AreEqual(expected.dtype, fromPickle[key].dtype, key);
            CollectionAssert.AreEqual(expected.shape, fromPickle[key].shape, key);
            CollectionAssert.AreEqual(WeightsFixtures.Bytes(expected), WeightsFixtures.Bytes(fromPickle[key]), key);
        }
    }

    [TestMethod]
    [DoNotParallelize] // Tensor.TotalCount is process-wide
    public void Read_DisposingTheDictionary_ReleasesEveryTensor()
    {
        using (StateDict.Read(WeightsFixtures.Path("tensors.pth")))
        {
        }
        long before = WeightsFixtures.LiveTensorCount();
        using (var read = StateDict.Read(WeightsFixtures.Path("tensors.pth")))
        {
            Assert.AreEqual(18, read.Count);
        }
        Assert.AreEqual(before, Tensor.TotalCount);
    }

    // ---- malicious pickles: rejected when the global is named, before anything could be called

    [TestMethod]
    [DataRow("os", "system")]
    [DataRow("posix", "system")]
    [DataRow("builtins", "eval")]
    [DataRow("builtins", "exec")]
    [DataRow("builtins", "getattr")]
    [DataRow("subprocess", "Popen")]
    [DataRow("torch.storage", "_load_from_bytes")]
    [DataRow("torch._utils", "_rebuild_tensor")]
    [DataRow("__builtin__", "eval")]
    [DataRow("nt", "system")]
    [DataRow("builtins", "__import__")]
    [DataRow("collections", "defaultdict")]
    public void Read_GlobalOutsideAllowList_IsRejectedAndNeverRuns(string module, string name)
    {
        using var folder = new TempFolder();
        string marker = folder.File("pwned");
        var pickle = new PickleWriter().Proto().Global(module, name).Str("touch " + marker).Tuple1().Reduce().Stop().ToArray();
        var stackGlobal = new PickleWriter().Proto(4).StackGlobal(module, name).Str("touch " + marker).Tuple1().Reduce().Stop().ToArray();

        foreach (var bytes in new[] { pickle, stackGlobal })
        {
            string path = folder.Write("evil.pth", WeightsFixtures.TorchZip(bytes));
            var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
            StringAssert.Contains(error.Message, $"'{module}.{name}'");
            StringAssert.Contains(error.Message, path);
            StringAssert.Contains(error.Message, "never executes code");
        }
        Assert.IsFalse(File.Exists(marker));
    }

    [TestMethod]
    public void Read_MaliciousGlobalInsideAValidStateDict_IsRejected()
    {
        using var folder = new TempFolder();
        string marker = folder.File("pwned");
        var pickle = new PickleWriter().Proto().OrderedDict().Mark()
            .Str("weight").Tensor("FloatStorage", "0", 2, 0, new long[] { 2 }, new long[] { 1 })
            .Str("bias").StackGlobal("subprocess", "Popen").Mark().Str("touch").Str(marker).Tuple().Tuple1().Reduce()
            .SetItems().Stop().ToArray();
        string path = folder.Write("evil.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2) }));

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        StringAssert.Contains(error.Message, "'subprocess.Popen'");
        Assert.IsFalse(File.Exists(marker));
    }

    [TestMethod]
    [DataRow((byte)'i', "INST")]
    [DataRow((byte)0x81, "NEWOBJ")]
    [DataRow((byte)0x82, "EXT")]
    [DataRow((byte)0xFF, "not a pickle opcode")]
    public void Read_UnsupportedOpcode_NamesOpcodeAndOffset(byte opcode, string name)
    {
        using var folder = new TempFolder();
        var pickle = new PickleWriter().Proto().EmptyDict().Op(opcode).Op(Encoding.ASCII.GetBytes("os\nsystem\n")).Stop().ToArray();
        string path = folder.Write("odd.pth", WeightsFixtures.TorchZip(pickle));

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        StringAssert.Contains(error.Message, $"0x{opcode:X2}");
        StringAssert.Contains(error.Message, name);
        StringAssert.Contains(error.Message, "offset 3");
    }

    [TestMethod]
    public void Read_DeeplyNestedPickle_FailsQuicklyWithClearError()
    {
        using var folder = new TempFolder();
        var writer = new PickleWriter().Proto();
        for (int i = 0; i < 100_000; i++) writer.Mark().EmptyList();
        string path = folder.Write("deep.pth", WeightsFixtures.TorchZip(writer.Stop().ToArray()));

        var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
        StringAssert.Contains(error.Message, "nests deeper than 1000");
    }

    [TestMethod]
    public void Read_PickleWithHugeStack_FailsQuicklyWithClearError()
    {
        using var folder = new TempFolder();
        var bytes = new byte[2 + 1_100_000 + 1];
        bytes[0] = 0x80;
        bytes[1] = 2;
        Array.Fill(bytes, (byte)']', 2, 1_100_000);
        bytes[^1] = (byte)'.';
        string path = folder.Write("wide.pth", WeightsFixtures.TorchZip(bytes));

        var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
        StringAssert.Contains(error.Message, "stack grows beyond");
    }

    [TestMethod]
    public void Read_PickleWithoutStop_SaysTruncated()
    {
        using var folder = new TempFolder();
        string path = folder.Write("cut.pth", WeightsFixtures.TorchZip(new PickleWriter().Proto().EmptyDict().ToArray()));

        StringAssert.Contains(Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path)).Message, "without a STOP");
    }

    // ---- structurally broken archives

    [TestMethod]
    public void Read_MissingStorageEntry_ThrowsNamingStorage()
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "FloatStorage", "0", 2, 0, new long[] { 2 }, new long[] { 1 }));
        string path = folder.Write("nostorage.pth", WeightsFixtures.TorchZip(pickle));

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        StringAssert.Contains(error.Message, "storage '0'");
        StringAssert.Contains(error.Message, "archive/data/0");
    }

    [TestMethod]
    public void Read_StorageTooSmallForView_ThrowsNamingTensor()
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "FloatStorage", "0", 4, 1, new long[] { 2, 2 }, new long[] { 2, 1 }));
        string path = folder.Write("small.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2, 3, 4) }));

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        Assert.AreEqual("w", error.TensorKey);
        StringAssert.Contains(error.Message, "reaches element 4");
    }

    [TestMethod]
    public void Read_StorageEntryOfWrongLength_Throws()
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "FloatStorage", "0", 4, 0, new long[] { 4 }, new long[] { 1 }));
        string path = folder.Write("short.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2, 3) }));

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        StringAssert.Contains(error.Message, "holds 12 bytes");
        StringAssert.Contains(error.Message, "16 bytes");
    }

    [TestMethod]
    public void Read_ExpandedStrideZeroView_IsRejectedWithAdvice()
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "FloatStorage", "0", 1, 0, new long[] { 1000, 1000 }, new long[] { 0, 0 }));
        string path = folder.Write("expanded.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1) }));

        StringAssert.Contains(Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path)).Message, "contiguous()");
    }

    [TestMethod]
    public void Read_TruncatedZip_SaysTruncated()
    {
        using var folder = new TempFolder();
        byte[] whole = File.ReadAllBytes(WeightsFixtures.Path("sequential.pth"));
        string path = folder.Write("cut.pth", whole[..(whole.Length / 2)]);

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        StringAssert.Contains(error.Message, "zip");
        StringAssert.Contains(error.Message, "truncated");
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    public void Read_LegacyTorchSaveFormat_SaysToResave()
    {
        using var folder = new TempFolder();
        // What torch.save(..., _use_new_zipfile_serialization=False) starts with: PROTO 2, then the magic number as LONG1.
        byte[] legacy = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e };
        string path = folder.Write("old.pth", legacy);

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(path));
        StringAssert.Contains(error.Message, "legacy torch.save format");
        StringAssert.Contains(error.Message, "Re-save");
    }

    [TestMethod]
    public void Read_ZipWithoutDataPkl_SaysNotATorchSaveFile()
    {
        using var folder = new TempFolder();
        string plain = folder.Write("plain.pth", WeightsFixtures.TorchZip(Array.Empty<byte>(), includePickle: false));
        StringAssert.Contains(Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(plain)).Message, "not a file written by torch.save");

        string script = folder.Write("script.pt", WeightsFixtures.Zip(("model/constants.pkl", new byte[] { 0x80, 2, (byte)'.' }), ("model/code/__torch__.py", new byte[1])));
        StringAssert.Contains(Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(script)).Message, "TorchScript");
    }

    [TestMethod]
    public void Read_CheckpointWithNestedStateDict_FlattensKeysAndSkipsNonTensors()
    {
        using var folder = new TempFolder();
        var pickle = new PickleWriter().Proto().EmptyDict().Mark()
            .Str("epoch").Int(3)
            .Str("state_dict").OrderedDict().Mark()
                .Str("w").Tensor("FloatStorage", "0", 2, 0, new long[] { 2 }, new long[] { 1 })
            .SetItems()
            .Str("best").Op((byte)'N')
            .SetItems().Stop().ToArray();
        string path = folder.Write("checkpoint.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(4, 5) }));

        using var read = StateDict.Read(path);

        CollectionAssert.AreEqual(new[] { "state_dict.w" }, read.Keys.ToList());
        CollectionAssert.AreEqual(new[] { 4f, 5f }, read["state_dict.w"].data<float>().ToArray());
    }

    [TestMethod]
    public void Read_FileStemAsArchivePrefix_IsFound()
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "LongStorage", "k", 1, 0, Array.Empty<long>(), Array.Empty<long>()));
        string path = folder.Write("my_model.pt", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["k"] = BitConverter.GetBytes(9L) }, prefix: "my_model"));

        using var read = StateDict.Read(path);

        Assert.AreEqual(9L, read["w"].item<long>());
    }

    // ---- hostile sizes and structures: clear errors before any allocation

    [TestMethod]
    [DataRow(1L << 40, "holds 8 bytes")]                  // 4 TB of floats declared, 8 bytes stored
    [DataRow(1L << 62, "more than 2^63 bytes")]           // the byte size overflows 64 bits
    public void Read_MultiGigabyteDeclaredStorage_IsRejectedWithoutAllocating(long elementCount, string expected)
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "FloatStorage", "0", elementCount, 0, new long[] { 2 }, new long[] { 1 }));
        string path = folder.Write("huge.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2) }));

        var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
        StringAssert.Contains(error.Message, expected);
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    [DataRow(new long[] { 65536, 65536, 65536 }, new long[] { 1L << 32, 65536, 1 }, 0L, "reaches element")]   // 1 PB view of a 2-element storage
    [DataRow(new long[] { 1L << 62, 4 }, new long[] { 4, 1 }, 0L, "overflow 64-bit arithmetic")]
    [DataRow(new long[] { 2 }, new long[] { 1 }, 1L << 50, "reaches element")]                                   // offset far past the storage
    public void Read_MultiGigabyteTensorShapeOrOffset_IsRejectedWithoutAllocating(long[] size, long[] stride, long offset, string expected)
    {
        using var folder = new TempFolder();
        var pickle = StateDictPickle(("w", "FloatStorage", "0", 2, offset, size, stride));
        string path = folder.Write("huge.pth", WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2) }));

        var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
        Assert.AreEqual("w", error.TensorKey);
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    public void Read_NegativeSizeOrStorageCount_IsRejected()
    {
        using var folder = new TempFolder();
        var storages = new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2) };
        string negativeSize = folder.Write("size.pth", WeightsFixtures.TorchZip(StateDictPickle(("w", "FloatStorage", "0", 2, 0, new long[] { -2 }, new long[] { 1 })), storages));
        string negativeCount = folder.Write("count.pth", WeightsFixtures.TorchZip(StateDictPickle(("w", "FloatStorage", "0", -2, 0, new long[] { 2 }, new long[] { 1 })), storages));

        StringAssert.Contains(Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(negativeSize)).Message, "not a non-negative integer");
        StringAssert.Contains(Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Read(negativeCount)).Message, "malformed");
    }

    [TestMethod]
    public void Read_ZipDirectoryClaimingGigabytesForATinyEntry_IsRejectedWithoutAllocating()
    {
        using var folder = new TempFolder();
        const uint claimed = 0xFFFF_FFF0; // ~4 GB, what the pickle declares too
        var pickle = StateDictPickle(("w", "FloatStorage", "0", claimed / 4, 0, new long[] { 2 }, new long[] { 1 }));
        byte[] zip = WeightsFixtures.TorchZip(pickle, new Dictionary<string, byte[]> { ["0"] = WeightsFixtures.FloatBytes(1, 2) });
        WeightsFixtures.SetZipEntrySizes(zip, "archive/data/0", claimed, claimed);
        string path = folder.Write("bomb.pth", zip);

        var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
        StringAssert.Contains(error.Message, "claims 4294967280 stored bytes");
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    public void Read_DictsNestedBeyondTheLimitOrCyclic_FailQuicklyWithClearError()
    {
        using var folder = new TempFolder();
        var nested = new PickleWriter().Proto();
        for (int i = 0; i < 10_000; i++) nested.EmptyDict().Str("k");
        nested.EmptyDict();
        for (int i = 0; i < 10_000; i++) nested.SetItem();
        string deep = folder.Write("deep.pth", WeightsFixtures.TorchZip(nested.Stop().ToArray()));
        // d = {}; d["self"] = d: a dict that contains itself through the memo.
        var cyclic = new PickleWriter().Proto().EmptyDict().Op((byte)'q', 0).Str("self").Op((byte)'h', 0).SetItem().Stop().ToArray();
        string cycle = folder.Write("cycle.pth", WeightsFixtures.TorchZip(cyclic));

        foreach (string path in new[] { deep, cycle })
        {
            var error = WeightsFixtures.RefusedWithoutAllocating(path, StateDict.Read);
            StringAssert.Contains(error.Message, "nest more than 32 levels");
        }
    }

    private static void AssertHalf(Tensor tensor, ScalarType dtype, params float[] expected)
    {
        Assert.AreEqual(dtype, tensor.dtype);
        using var asFloat = tensor.to(ScalarType.Float32);
        CollectionAssert.AreEqual(expected, asFloat.data<float>().ToArray());
    }

    private static byte[] StateDictPickle(params (string Key, string StorageClass, string StorageKey, long Count, long Offset, long[] Size, long[] Stride)[] tensors)
    {
        var writer = new PickleWriter().Proto().OrderedDict().Mark();
        foreach (var t in tensors) writer.Str(t.Key).Tensor(t.StorageClass, t.StorageKey, t.Count, t.Offset, t.Size, t.Stride);
        return writer.SetItems().Stop().ToArray();
    }
}
