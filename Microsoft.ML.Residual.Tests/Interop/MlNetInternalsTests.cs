using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Runtime;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;

namespace Microsoft.ML.Residual.Tests.Interop;

/// <summary>
/// Fails loudly when an ML.NET upgrade changes one of the internals the library relies on: the reflected members, and the
/// layout of the ONNX graph inside a saved model.zip.
/// </summary>
[TestClass]
public sealed class MlNetInternalsTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Pixels
    {
        [VectorType(3 * 2 * 2)]
        public float[] input { get; set; } = new float[3 * 2 * 2];
    }

    [TestMethod]
    public void EveryInternalTheLibraryUses_ExistsInThisMicrosoftML()
    {
        var missing = MlNetInternals.Missing();
        Assert.AreEqual(0, missing.Count, "Microsoft.ML changed internals ResidualML uses: " + string.Join("; ", missing));

        var ml = new MLContext(seed: 1) { GpuDeviceId = 3, FallbackToCpu = true };
        IHostEnvironment environment = MlNetInternals.EnvironmentOf(ml.Transforms);
        Assert.AreEqual((3, true), MlNetInternals.DeviceSettings(environment), "the catalog's environment carries MLContext's device settings");

        var model = MlNetInternals.NewMaximumEntropyModel(environment, new[] { new VBuffer<float>(2, new[] { 1f, 0f }), new VBuffer<float>(2, new[] { 0f, 1f }) },
            new float[2], 2, new[] { "a", "b" });
        Assert.IsNotNull(model);
    }

    [TestMethod]
    public void SavedModel_HoldsTheOnnxGraphWhereTheWeightsReaderLooks()
    {
        var ml = new MLContext(seed: 1);
        var network = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1));
        network.eval();
        byte[] onnx = OnnxExporter.ExportToBytes(network, new long[] { 1, 3, 2, 2 });
        IDataView data = ml.Data.LoadFromEnumerable(new[] { new Pixels() });
        ITransformer transformer = ml.Transforms.ApplyOnnxModel(new[] { "output" }, new[] { "input" }, new MemoryStream(onnx)).Fit(data);
        string path = Path.Combine(TestContext.TestRunDirectory ?? Path.GetTempPath(), $"internals-{System.Guid.NewGuid():N}.zip");
        ml.Model.Save(transformer, data.Schema, path);
        try
        {
            using ZipArchive zip = ZipFile.OpenRead(path);
            var entries = MlNetInternals.OnnxModelEntries(zip);
            Assert.AreEqual(1, entries.Count, "one OnnxModel entry: " + string.Join(", ", zip.Entries.Select(e => e.FullName)));
            CollectionAssert.AreEqual(onnx, MlNetInternals.ReadOnnxModel(entries[0], new FileInfo(path).Length), "the entry holds the graph, length-prefixed");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
