using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.IO;
using Microsoft.ML.Residual.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;

namespace Microsoft.ML.Residual.Tests.IO;

/// <summary>ml.Model.LoadChecked: a damaged model file is an <see cref="InvalidModelException"/> that names it.</summary>
[TestClass]
public sealed class LoadCheckedTests
{
    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("residualml-load-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    public sealed class Row
    {
        [VectorType(1, 4, 4)]
        public float[] Pixels { get; set; } = new float[16];
    }

    // A model.zip whose pipeline scores an ONNX graph (a 1×1 convolution), as the classifiers' pipelines do.
    private (MLContext Ml, IDataView Data, string Path) SavedOnnxModel()
    {
        var ml = new MLContext(seed: 1);
        torch.manual_seed(1);
        var convolution = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1));
        convolution.eval();
        byte[] onnx = OnnxExporter.ExportToBytes(convolution, new long[] { 1, 1, 4, 4 },
            new OnnxExportOptions { InputName = "Pixels", OutputName = "Output" });
        IDataView data = ml.Data.LoadFromEnumerable(new[] { new Row(), new Row { Pixels = Enumerable.Range(0, 16).Select(i => (float)i).ToArray() } });
        ITransformer model = ml.Transforms.ApplyOnnxModel(new[] { "Output" }, new[] { "Pixels" }, new MemoryStream(onnx)).Fit(data);
        string path = Path.Combine(folder, "model.zip");
        ml.Model.SaveAtomically(model, data.Schema, path);
        return (ml, data, path);
    }

    [TestMethod]
    public void LoadChecked_OfAGoodModel_ScoresAsTheSavedOne()
    {
        var (ml, data, path) = SavedOnnxModel();
        ITransformer loaded = ml.Model.LoadChecked(path, out DataViewSchema schema);
        Assert.IsNotNull(schema.GetColumnOrNull("Pixels"));
        Assert.AreEqual(2, loaded.Transform(data).GetColumn<float[]>("Output").Count());
    }

    [TestMethod]
    [DataRow(0.5, DisplayName = "cut in half")]
    [DataRow(0.95, DisplayName = "last 5 % missing")]
    public void LoadChecked_OfATruncatedModelZip_NamesTheFile(double kept)
    {
        var (ml, _, path) = SavedOnnxModel();
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * kept)]);

        var error = Assert.ThrowsExactly<InvalidModelException>(() => ml.Model.LoadChecked(path, out _));
        Assert.AreEqual(path, error.FilePath);
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, "truncated or damaged");
        Assert.IsNotNull(error.InnerException, "ML.NET's own error is kept");
    }

    [TestMethod]
    public void LoadChecked_OfAModelWhoseOnnxGraphIsDamaged_NamesTheFileAndOnnxRuntimesReason()
    {
        var (ml, _, path) = SavedOnnxModel();
        using (ZipArchive zip = ZipFile.Open(path, ZipArchiveMode.Update))
        {
            ZipArchiveEntry entry = zip.Entries.Single(e => e.FullName.EndsWith("OnnxModel", StringComparison.Ordinal));
            byte[] content;
            using (var read = new MemoryStream())
            {
                using (Stream stream = entry.Open()) stream.CopyTo(read);
                content = read.ToArray();
            }

            // Keep ML.NET's length prefix (8 bytes) and overwrite the protobuf after it with garbage.
            for (int i = 8; i < content.Length; i++) content[i] = (byte)(i * 37);
            entry.Delete();
            using Stream write = zip.CreateEntry(entry.FullName).Open();
            write.Write(content);
        }

        var error = Assert.ThrowsExactly<InvalidModelException>(() => ml.Model.LoadChecked(path, out _));
        StringAssert.Contains(error.Message, path);
        Assert.IsTrue(error.Message.Contains("OnnxRuntimeException", StringComparison.Ordinal) || error.Message.Contains("Protobuf", StringComparison.OrdinalIgnoreCase), error.Message);
    }

    [TestMethod]
    public void LoadChecked_OfAFileThatIsNotAModel_OrIsMissing_SaysSo()
    {
        var ml = new MLContext(seed: 1);
        string text = Path.Combine(folder, "notes.zip");
        File.WriteAllText(text, "not a zip at all");
        var error = Assert.ThrowsExactly<InvalidModelException>(() => ml.Model.LoadChecked(text, out _));
        StringAssert.Contains(error.Message, text);

        string missing = Path.Combine(folder, "missing.zip");
        var notFound = Assert.ThrowsExactly<FileNotFoundException>(() => ml.Model.LoadChecked(missing, out _));
        StringAssert.Contains(notFound.Message, missing);
    }
}
