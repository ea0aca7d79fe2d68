using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Google.Protobuf;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.ML.Residual.Tests.Weights;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>
/// A damaged or foreign model.zip or ONNX graph, read by ML.NET (<c>ml.Model.Load</c>, <c>ApplyOnnxModel</c>) and by our own
/// readers (<see cref="SavedModelWeights"/> behind <see cref="ImageClassifierOptions.ResumeFromModelPath"/>, <see cref="OnnxWeights"/>):
/// always an exception with a clear message, never a crash.
/// </summary>
[TestClass]
public sealed class SavedModelBadInputTests
{
    private const int Size = 16;
    private static byte[] validModel = Array.Empty<byte>();
    private static string folder = string.Empty;

    [ClassInitialize]
    public static void TrainOnce(TestContext context)
    {
        folder = Path.Combine(TestRunFiles.Folder, "saved-model-bad-input-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 1));
        ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(Options())).Fit(data);
        string path = Path.Combine(folder, "valid.zip");
        ml.Model.Save(model, data.Schema, path);
        validModel = File.ReadAllBytes(path);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static ImageClassifierOptions Options() => new()
    {
        Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 32, Seed = 1,
    };

    private const string OnnxEntry = "TransformerChain/Transform_001/Transform_000/OnnxModel";
    private const string OnnxModelKey = "TransformerChain/Transform_001/Transform_000/Model.key";

    // ---- model.zip: truncated

    [TestMethod]
    [DataRow(100)]
    [DataRow(50_000)]
    [DataRow(-30)] // the end of the central directory cut off
    public void TruncatedModelZip_MLNetThrowsFormatException_OurReaderNamesTheFile(int cut)
    {
        string path = Write($"cut{cut}.zip", validModel[..(cut > 0 ? cut : validModel.Length + cut)]);

        // What ML.NET itself throws: a FormatException that does not name the file.
        var load = Assert.ThrowsExactly<FormatException>(() => new MLContext().Model.Load(path, out _));
        StringAssert.Contains(load.Message, "zip");
        Assert.IsInstanceOfType<InvalidDataException>(load.InnerException);

        AssertOurReaderRejects(path, "cannot be read as a saved model");
    }

    [TestMethod]
    public void TruncatedModelZip_AsResumeFromModelPath_FailsTheFitNamingOptionAndFile()
    {
        string path = Write("resume-cut.zip", validModel[..(validModel.Length / 2)]);
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(16, seed: 1));
        var options = Options();
        options.ResumeFromModelPath = path;

        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data));
        StringAssert.Contains(error.Message, "ResumeFromModelPath");
        StringAssert.Contains(error.Message, path);
    }

    // ---- model.zip: the ONNX entry corrupted

    [TestMethod]
    [DataRow("garbage", "not a readable ONNX model")]
    [DataRow("truncated protobuf", "not a readable ONNX model")]
    [DataRow("wrong length prefix", "declares")]
    [DataRow("huge declared size", "the zip directory is corrupt")]
    public void CorruptOnnxEntry_MLNetThrowsInvalidOperation_OurReaderNamesFileAndEntry(string damage, string expected)
    {
        byte[] zip = damage switch
        {
            "garbage" => ReplaceEntry(validModel, OnnxEntry, _ => Prefixed(Garbage(1000))),
            "truncated protobuf" => ReplaceEntry(validModel, OnnxEntry, content => Prefixed(content[4..(content.Length / 2)])),
            "wrong length prefix" => ReplaceEntry(validModel, OnnxEntry, content => content[..^10]),
            _ => ClaimSize(ReplaceEntry(validModel, OnnxEntry, _ => Prefixed(Garbage(100))), OnnxEntry, 0x7FFF_FF00),
        };
        string path = Write(damage.Replace(' ', '-') + ".zip", zip);

        // What ML.NET itself throws when OnnxTransformer cannot be re-created: "Error during class instantiation".
        if (damage != "huge declared size")
        {
            var load = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext().Model.Load(path, out _));
            Console.WriteLine($"{damage}: Model.Load: {Describe(load)}");
        }
        else
        {
            var load = Assert.Throws<Exception>(() => new MLContext().Model.Load(path, out _));
            Console.WriteLine($"{damage}: Model.Load: {Describe(load)}");
            Assert.IsNotInstanceOfType<OutOfMemoryException>(load);
        }

        var error = AssertOurReaderRejects(path, expected);
        StringAssert.Contains(error.Message, OnnxEntry);
    }

    // ---- model.zip: "from another version"

    [TestMethod]
    public void ModelKeyOfANewerMLNetVersion_MLNetThrowsInvalidOperation_OurReaderStillReadsTheWeights()
    {
        // ML.NET's model header: the version a reader needs at 0x5C. Claim one no ML.NET has.
        string path = Write("newer-model-key.zip", ReplaceEntry(validModel, OnnxModelKey, content => Patch(content, 0x5C, 0x7FFF_0000)));

        var load = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext().Model.Load(path, out _));
        Console.WriteLine($"newer Model.key: Model.Load: {Describe(load)}");

        // Our reader takes the weights from the ONNX graph, which is intact.
        using TensorDictionary weights = SavedModelWeights.Read(path, "ResumeFromModelPath");
        Assert.IsTrue(weights.ContainsKey("fc.weight"));
    }

    [TestMethod]
    public void EditedVersionTxt_IsIgnoredByMLNetAndByOurReader()
    {
        string path = Write("version.zip", ReplaceEntry(validModel, "TrainingInfo/Version.txt", _ => System.Text.Encoding.UTF8.GetBytes("99.0.0.0 @BuildCommit:0")));

        Assert.IsNotNull(new MLContext().Model.Load(path, out _));
        using TensorDictionary weights = SavedModelWeights.Read(path, "ResumeFromModelPath");
        Assert.IsTrue(weights.ContainsKey("fc.weight"));
    }

    [TestMethod]
    public void OnnxGraphOfAFutureIrVersion_MLNetThrowsInvalidOperation_OurReaderStillReadsTheWeights()
    {
        string path = Write("ir99.zip", ReplaceEntry(validModel, OnnxEntry, content => EditOnnx(content, model => model.IrVersion = 99)));

        var load = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext().Model.Load(path, out _));
        Console.WriteLine($"IR version 99: Model.Load: {Describe(load)}");
        using TensorDictionary weights = SavedModelWeights.Read(path, "ResumeFromModelPath");
        Assert.IsTrue(weights.ContainsKey("fc.weight"));
    }

    [TestMethod]
    public void OnnxGraphWithoutOurMetadata_IsNotTakenForAResidualMLModel()
    {
        string path = Write("no-metadata.zip", ReplaceEntry(validModel, OnnxEntry, content => EditOnnx(content, model => model.MetadataProps.Clear())));

        Assert.IsNotNull(new MLContext().Model.Load(path, out _), "ML.NET does not read the graph's metadata");
        AssertOurReaderRejects(path, "none of its ONNX graphs was exported by a ResidualML classifier");
    }

    [TestMethod]
    public void OnnxGraphNamingAnUnknownArchitecture_FailsTheResumeNamingBoth()
    {
        string path = Write("resnet999.zip", ReplaceEntry(validModel, OnnxEntry, content => EditOnnx(content,
            model => model.MetadataProps.Single(p => p.Key == SavedModelWeights.ArchitectureKey).Value = "resnet999")));
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(16, seed: 1));
        var options = Options();
        options.ResumeFromModelPath = path;

        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data));
        StringAssert.Contains(error.Message, "resnet999");
        StringAssert.Contains(error.Message, "resnet20");
        StringAssert.Contains(error.Message, path);
    }

    // ---- plain ONNX files that fail to load

    [TestMethod]
    [DataRow("garbage")]
    [DataRow("truncated")]
    [DataRow("empty")]
    public void BadOnnxFile_ApplyOnnxModelAndOurReadersGiveClearErrors(string damage)
    {
        byte[] onnx = OnnxBytes(validModel);
        byte[] bytes = damage switch
        {
            "garbage" => Garbage(5000),
            "truncated" => onnx[..(onnx.Length / 2)],
            _ => Array.Empty<byte>(),
        };
        string path = Write(damage + ".onnx", bytes);

        // ML.NET: InvalidOperationException "Error initializing model", whose message (from ONNX Runtime) names the file.
        var apply = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext().Transforms.ApplyOnnxModel(path));
        StringAssert.Contains(apply.Message, path);
        Console.WriteLine($"{damage}.onnx: ApplyOnnxModel: {Describe(apply)}");

        var read = Assert.ThrowsExactly<WeightsFormatException>(() => OnnxWeights.Read(path));
        StringAssert.Contains(read.Message, path);
        using (var module = WeightsFixtures.TinyNet())
        {
            Assert.ThrowsExactly<WeightsFormatException>(() => OnnxWeights.Load(module, path));
        }
        AssertOurReaderRejects(path, "cannot be read as a saved model");
    }

    [TestMethod]
    [DataRow("huge dims", "declares more than 2^63 bytes")]
    [DataRow("terabyte dims", "needs 4398046511104 bytes")]
    [DataRow("negative dim", "negative dimension")]
    [DataRow("duplicate initializer", "two initializers of this name")]
    [DataRow("duplicate metadata", "names 'architecture' twice")]
    public void OnnxGraphWithCorruptInitializersOrMetadata_IsRejectedBeforeAllocating(string damage, string expected)
    {
        ModelProto model = ModelProto.Parser.ParseFrom(OnnxBytes(validModel));
        TensorProto weight = model.Graph.Initializer.First(i => i.Name == "fc.weight");
        switch (damage)
        {
            case "huge dims": weight.Dims.Clear(); weight.Dims.Add(new[] { 1L << 40, 1L << 40 }); break;
            case "terabyte dims": weight.Dims.Clear(); weight.Dims.Add(new[] { 1L << 20, 1L << 20 }); break;
            case "negative dim": weight.Dims[0] = -weight.Dims[0]; break;
            case "duplicate initializer": model.Graph.Initializer.Add(weight.Clone()); break;
            default: model.MetadataProps.Add(new StringStringEntryProto { Key = SavedModelWeights.ArchitectureKey, Value = "resnet18" }); break;
        }
        string path = Write(damage.Replace(' ', '-') + ".onnx", model.ToByteArray());

        var error = Assert.ThrowsExactly<WeightsFormatException>(() => OnnxWeights.Read(path));
        StringAssert.Contains(error.Message, expected);
        StringAssert.Contains(error.Message, path);
    }

    private static ArgumentException AssertOurReaderRejects(string path, string expected)
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => SavedModelWeights.Read(path, "ResumeFromModelPath"));
        StringAssert.Contains(error.Message, "ResumeFromModelPath");
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, expected);
        return error;
    }

    private static string Describe(Exception e)
    {
        var chain = new List<string>();
        for (Exception? inner = e; inner is not null; inner = inner.InnerException) chain.Add($"{inner.GetType().Name}: {inner.Message.Split('\n')[0]}");
        return string.Join(" <- ", chain);
    }

    private static string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Sets the compressed and uncompressed sizes of <paramref name="name"/> in its local and central zip headers.</summary>
    private static byte[] ClaimSize(byte[] zip, string name, uint size)
    {
        Weights.WeightsFixtures.SetZipEntrySizes(zip, name, size, size);
        return zip;
    }

    private static byte[] Garbage(int length)
    {
        var bytes = new byte[length];
        new Random(7).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Prefixed(byte[] onnx)
    {
        var result = new byte[4 + onnx.Length];
        BinaryPrimitives.WriteInt32LittleEndian(result, onnx.Length);
        onnx.CopyTo(result, 4);
        return result;
    }

    private static byte[] Patch(byte[] content, int offset, uint value)
    {
        byte[] result = (byte[])content.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(offset), value);
        return result;
    }

    private static byte[] EditOnnx(byte[] prefixed, Action<ModelProto> edit)
    {
        ModelProto model = ModelProto.Parser.ParseFrom(prefixed.AsSpan(4).ToArray());
        edit(model);
        return Prefixed(model.ToByteArray());
    }

    private static byte[] OnnxBytes(byte[] zipBytes)
    {
        using var zip = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        ZipArchiveEntry entry = zip.Entries.Single(e => e.FullName.EndsWith("/OnnxModel", StringComparison.Ordinal));
        using var stream = entry.Open();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray()[4..];
    }

    /// <summary>The archive rebuilt (deflated, as ML.NET writes it) with the content of <paramref name="name"/> replaced.</summary>
    private static byte[] ReplaceEntry(byte[] zipBytes, string name, Func<byte[], byte[]> replace)
    {
        using var output = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read))
        using (var target = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (ZipArchiveEntry entry in source.Entries)
            {
                using var buffer = new MemoryStream();
                using (var stream = entry.Open()) stream.CopyTo(buffer);
                using var write = target.CreateEntry(entry.FullName, CompressionLevel.Fastest).Open();
                byte[] content = buffer.ToArray();
                write.Write(entry.FullName == name ? replace(content) : content);
            }
        }
        return output.ToArray();
    }
}
