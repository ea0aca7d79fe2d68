using System;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static Microsoft.ML.Residual.Tests.Data.DataTestSupport;

namespace Microsoft.ML.Residual.Tests.Data;

/// <summary>A row whose label is a key of count 3.</summary>
public sealed class KeyRow
{
    public float[] Pixels { get; set; } = Array.Empty<float>();
    public uint Label { get; set; }
}

[TestClass]
public sealed class ImageBatchReaderErrorTests
{
    public TestContext TestContext { get; set; } = null!;

    private static void AssertMentions(Exception error, params string[] parts)
    {
        foreach (var part in parts)
            StringAssert.Contains(error.Message, part, $"the message should mention '{part}'");
    }

    private static ImageBatchOptions Options(int size = 2) => new() { ImageColumnName = "Pixels", Width = size, Height = size, BatchSize = 2, Shuffle = false };

    [TestMethod]
    public void MissingImageColumnIsNamedAndTheExistingColumnsListed()
    {
        var data = VectorData(new MLContext(1), 3, 3, 2, 2);
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(data, new ImageBatchOptions { ImageColumnName = "Img", Width = 2, Height = 2 }));
        AssertMentions(error, "'Img'", "'Pixels'", "'Label'");
    }

    [TestMethod]
    public void MissingLabelColumnIsNamedAndTheExistingColumnsListed()
    {
        var data = VectorData(new MLContext(1), 3, 3, 2, 2);
        var options = Options();
        options.LabelColumnName = "Class";
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(data, options));
        AssertMentions(error, "'Class'", "'Pixels'", "'Label'");
    }

    [TestMethod]
    public void NonKeyLabelSaysToUseMapValueToKey()
    {
        var data = VectorData(new MLContext(1), new[] { new PixelRow { Pixels = new float[4], Label = "a" } }, 4, keyLabel: false);
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(data, Options()));
        AssertMentions(error, "'Label'", "MapValueToKey");
        Assert.ThrowsExactly<ArgumentException>(() => LabelKeyInfo.FromSchema(data.Schema, "Label"));
    }

    [TestMethod]
    public void VectorLengthThatIsNotChannelsTimesHeightTimesWidthIsReported()
    {
        var data = VectorData(new MLContext(1), 3, 3, 4, 4); // 48 values
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(data, Options(size: 5)));
        AssertMentions(error, "'Pixels'", "48", "multiple of 25");
    }

    [TestMethod]
    public void ColumnOfAnotherTypeIsReported()
    {
        var data = VectorData(new MLContext(1), 3, 3, 2, 2);
        var error = Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(data, new ImageBatchOptions { ImageColumnName = "Label", LabelColumnName = null }));
        AssertMentions(error, "'Label'", "LoadImages", "ExtractPixels");
    }

    [TestMethod]
    [DataRow(float.NaN)]
    [DataRow(float.PositiveInfinity)]
    public void NonFinitePixelNamesTheRow(float bad)
    {
        var rows = Enumerable.Range(0, 5).Select(r => new PixelRow { Pixels = Chw(r, 1, 2, 2), Label = "a" }).ToList();
        rows[3].Pixels[2] = bad;
        var reader = new ImageBatchReader(VectorData(new MLContext(1), rows, 4), Options());
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadAll()));
        AssertMentions(error, "'Pixels'", "row 3", "y 1, x 0");
    }

    [TestMethod]
    public void MissingKeyValueNamesTheRow()
    {
        var ml = new MLContext(1);
        var schema = SchemaDefinition.Create(typeof(KeyRow));
        schema[nameof(KeyRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 4);
        schema[nameof(KeyRow.Label)].ColumnType = new KeyDataViewType(typeof(uint), 3);
        // LoadFromEnumerable stores a field value v < count as key v + 1 and anything else as the missing key 0.
        var rows = new uint[] { 0, 2, 1, 3, 0 }.Select(k => new KeyRow { Pixels = new float[4], Label = k }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        CollectionAssert.AreEqual(new uint[] { 1, 3, 2, 0, 1 }, data.GetColumn<uint>("Label").ToArray());
        var reader = new ImageBatchReader(data, Options());
        Assert.AreEqual(3, reader.Label!.ClassCount);
        Assert.IsNull(reader.Label.ClassNames);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadAll()));
        AssertMentions(error, "'Label'", "row 3", "key value is 0");
    }

    [TestMethod]
    public void BatchesBeforeABadRowAreStillDelivered()
    {
        var rows = Enumerable.Range(0, 6).Select(r => new PixelRow { Pixels = Chw(r, 1, 2, 2), Label = "a" }).ToList();
        rows[5].Pixels[0] = float.NaN;
        var reader = new ImageBatchReader(VectorData(new MLContext(1), rows, 4), Options());
        int delivered = 0;
        Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (var batch in reader.ReadAll())
            {
                batch.Dispose();
                delivered++;
            }
        });
        Assert.AreEqual(2, delivered);
    }

    [TestMethod]
    public void UnreadableImageFileNamesTheRow()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        WriteRgbPng(Path.Combine(folder, "good.png"), Chw(0, 3, 2, 2), 2, 2);
        File.WriteAllText(Path.Combine(folder, "bad.png"), "not a png");
        var data = ImageData(ml, folder, new[] { new PathRow { Path = "good.png", Label = "a" }, new PathRow { Path = "bad.png", Label = "a" } });
        var reader = new ImageBatchReader(data, new ImageBatchOptions { Width = 2, Height = 2, BatchSize = 1 });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadAll()));
        AssertMentions(error, "'Image'", "row 1");
        TestContext.WriteLine(error.Message);
    }

    [TestMethod]
    public void MissingImageNamesTheRow()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        WriteRgbPng(Path.Combine(folder, "good.png"), Chw(0, 3, 2, 2), 2, 2);
        var data = ImageData(ml, folder, new[] { new PathRow { Path = "good.png", Label = "a" }, new PathRow { Path = "", Label = "a" } });
        var reader = new ImageBatchReader(data, new ImageBatchOptions { Width = 2, Height = 2, BatchSize = 1 });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadAll()));
        AssertMentions(error, "'Image'", "row 1");
        TestContext.WriteLine(error.Message);
    }

    [TestMethod]
    public void EmptyDataViewIsReported()
    {
        var ml = new MLContext(1);
        var known = VectorData(ml, Array.Empty<PixelRow>(), 4);
        Assert.ThrowsExactly<ArgumentException>(() => new ImageBatchReader(known, Options()));

        // A data view that does not know its row count fails when the epoch finds no row.
        var lazy = VectorData(ml, new CountingRows<PixelRow>(Array.Empty<PixelRow>()), 4, keyLabel: false);
        var options = Options();
        options.LabelColumnName = null;
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(new ImageBatchReader(lazy, options).ReadEpoch(0)));
        AssertMentions(error, "no rows");
    }

    [TestMethod]
    public void DropLastWithFewerRowsThanABatchIsReported()
    {
        var options = Options();
        options.BatchSize = 8;
        options.DropLast = true;
        var reader = new ImageBatchReader(VectorData(new MLContext(1), 3, 1, 2, 2), options);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadEpoch(0)));
        AssertMentions(error, "BatchSize", "DropLast");
    }

    [TestMethod]
    public void InvalidOptionsAreRejected()
    {
        var data = VectorData(new MLContext(1), 3, 3, 2, 2);
        var options = Options();
        options.BatchSize = 0;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchReader(data, options));
        options = Options();
        options.Augmentation = new ImageAugmentation { CropPadding = 2, CropPaddingMode = PaddingMode.Reflect };
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchReader(data, options));
        options.Augmentation = new ImageAugmentation { RandomResizedCropScale = (0.5, 0.2) };
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchReader(data, options));
    }
}
