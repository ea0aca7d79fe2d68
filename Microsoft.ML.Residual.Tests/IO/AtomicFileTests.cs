using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.IO;

/// <summary>Files the library writes appear whole or not at all: a failure while writing never damages the file that was there.</summary>
[TestClass]
public sealed class AtomicFileTests
{
    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("residualml-atomic-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    public sealed class Row
    {
        public float X { get; set; }
    }

    public sealed class Doubled
    {
        public float Y { get; set; }
    }

    private static (MLContext Ml, IDataView Data, ITransformer Model) Pipeline()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new Row { X = i }));
        return (ml, data, ml.Transforms.NormalizeMinMax("X").Fit(data));
    }

    [TestMethod]
    public void SaveAtomically_WritesAModelThatLoadsAndScoresAsTheOriginal_AndLeavesNoTemporaryFile()
    {
        var (ml, data, model) = Pipeline();
        string path = Path.Combine(folder, "model.zip");
        ml.Model.SaveAtomically(model, data.Schema, path);

        ITransformer loaded = ml.Model.Load(path, out _);
        CollectionAssert.AreEqual(model.Transform(data).GetColumn<float>("X").ToArray(), loaded.Transform(data).GetColumn<float>("X").ToArray());
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder));
    }

    [TestMethod]
    public void SaveAtomically_WhenTheModelCannotBeSaved_LeavesTheExistingFileAsItWas()
    {
        var (ml, data, good) = Pipeline();
        string path = Path.Combine(folder, "model.zip");
        ml.Model.SaveAtomically(good, data.Schema, path);
        byte[] before = File.ReadAllBytes(path);

        // A custom mapping without a contract name cannot be saved: ML.NET fails part-way through writing the zip.
        ITransformer unsaveable = ml.Transforms.CustomMapping<Row, Doubled>((row, output) => output.Y = 2 * row.X, contractName: null).Fit(data);
        Assert.Throws<Exception>(() => ml.Model.SaveAtomically(unsaveable, data.Schema, path));

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path), "the good model is untouched");
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder), "no temporary file is left");
    }

    [TestMethod]
    public void SaveAtomically_WhenTheDiskFailsBeforeTheRename_LeavesTheExistingFileAsItWas()
    {
        var (ml, data, model) = Pipeline();
        string path = Path.Combine(folder, "model.zip");
        File.WriteAllText(path, "the previous model");
        using (FaultInjection.OnWrite(_ => throw new IOException("No space left on device")))
        {
            var error = Assert.ThrowsExactly<IOException>(() => ml.Model.SaveAtomically(model, data.Schema, path));
            StringAssert.Contains(error.Message, "No space left");
        }

        Assert.AreEqual("the previous model", File.ReadAllText(path));
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder));
    }

    [TestMethod]
    public void SaveAtomically_IntoAMissingFolder_NamesTheFolder()
    {
        var (ml, data, model) = Pipeline();
        string missing = Path.Combine(folder, "missing");
        var error = Assert.ThrowsExactly<DirectoryNotFoundException>(() => ml.Model.SaveAtomically(model, data.Schema, Path.Combine(missing, "model.zip")));
        StringAssert.Contains(error.Message, missing);
    }
}
