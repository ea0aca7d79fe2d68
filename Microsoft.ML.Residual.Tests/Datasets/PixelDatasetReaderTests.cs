using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Datasets;

/// <summary>The CIFAR-10/100 binary and MNIST IDX readers, on tiny files the tests write in the real formats.</summary>
[TestClass]
public sealed class PixelDatasetReaderTests : TempFolderTest
{
    // The pixel value of image i at CHW offset j, as the writers store it.
    private static byte Pixel(int image, int offset) => (byte)((image * 31 + offset * 7) % 256);

    // CIFAR records: label byte(s), then the R, G and B 32×32 planes.
    private void WriteCifar(string file, IReadOnlyList<byte[]> labels, int firstImage)
    {
        using var stream = File.Create(Path.Combine(Root, file));
        for (int i = 0; i < labels.Count; i++)
        {
            stream.Write(labels[i]);
            for (int j = 0; j < Cifar.ImageBytes; j++) stream.WriteByte(Pixel(firstImage + i, j));
        }
    }

    private void WriteCifar10(int imagesPerBatch, bool withMeta)
    {
        for (int b = 1; b <= 5; b++)
            WriteCifar($"data_batch_{b}.bin", Enumerable.Range(0, imagesPerBatch).Select(i => new[] { (byte)((b + i) % 10) }).ToArray(), (b - 1) * imagesPerBatch);
        WriteCifar("test_batch.bin", new[] { new byte[] { 9 }, new byte[] { 0 } }, 1000);
        if (withMeta) File.WriteAllLines(Path.Combine(Root, "batches.meta.txt"), Enumerable.Range(0, 10).Select(i => $"class{i}").Append(""));
    }

    private static List<(float[] Image, string Label)> Rows(IDataView data)
    {
        var rows = new List<(float[], string)>();
        using var cursor = data.GetRowCursor(data.Schema);
        var image = cursor.GetGetter<VBuffer<float>>(data.Schema["Image"]);
        var label = cursor.GetGetter<ReadOnlyMemory<char>>(data.Schema["Label"]);
        VBuffer<float> pixels = default;
        ReadOnlyMemory<char> name = default;
        while (cursor.MoveNext())
        {
            image(ref pixels);
            label(ref name);
            rows.Add((pixels.DenseValues().ToArray(), name.ToString()));
        }

        return rows;
    }

    [TestMethod]
    public void Cifar10_ReadsEveryBatchInOrderWithClassNamesAndChwPixels()
    {
        WriteCifar10(imagesPerBatch: 2, withMeta: true);
        var ml = new MLContext();

        IDataView train = ml.Data.LoadCifar10(Root, DatasetSplit.Train);
        IDataView test = ml.Data.LoadCifar10(Root, DatasetSplit.Test);

        var type = (VectorDataViewType)train.Schema["Image"].Type;
        CollectionAssert.AreEqual(new[] { 3, 32, 32 }, type.Dimensions.ToArray());
        var rows = Rows(train);
        Assert.AreEqual(10, rows.Count);
        CollectionAssert.AreEqual(new[] { "class1", "class2", "class2", "class3", "class3", "class4", "class4", "class5", "class5", "class6" }, rows.Select(r => r.Label).ToArray());
        // Image 7 is batch 4's second record; pixel (G, y=2, x=5) sits at plane 1, offset 2·32 + 5.
        int offset = 1024 + 2 * 32 + 5;
        Assert.AreEqual(Pixel(7, offset), rows[7].Image[offset]);
        Assert.IsTrue(rows.Select((r, i) => Enumerable.Range(0, Cifar.ImageBytes).All(j => r.Image[j] == Pixel(i, j))).All(ok => ok));
        CollectionAssert.AreEqual(new[] { "class9", "class0" }, Rows(test).Select(r => r.Label).ToArray());
    }

    [TestMethod]
    public void Cifar10_WithoutMetaFile_UsesTheStandardNames_AndFindsTheExtractedSubFolder()
    {
        // The batches go into the extracted folder's usual name; the loader is given the folder above it.
        string parent = Root;
        Root = Path.Combine(parent, "cifar-10-batches-bin");
        Directory.CreateDirectory(Root);
        WriteCifar10(imagesPerBatch: 1, withMeta: false);

        var labels = Rows(new MLContext().Data.LoadCifar10(parent, DatasetSplit.Test)).Select(r => r.Label).ToArray();

        CollectionAssert.AreEqual(new[] { "truck", "airplane" }, labels);
    }

    [TestMethod]
    public void Cifar100_ReadsFineOrCoarseLabels()
    {
        WriteCifar("train.bin", new[] { new byte[] { 4, 72 }, new byte[] { 19, 99 } }, 0);
        WriteCifar("test.bin", new[] { new byte[] { 0, 0 } }, 5);
        File.WriteAllLines(Path.Combine(Root, "fine_label_names.txt"), Enumerable.Range(0, 100).Select(i => $"fine{i}"));
        var ml = new MLContext();

        var fine = Rows(ml.Data.LoadCifar100(Root, DatasetSplit.Train));
        var coarse = Rows(ml.Data.LoadCifar100(Root, DatasetSplit.Train, fineLabels: false));

        CollectionAssert.AreEqual(new[] { "fine72", "fine99" }, fine.Select(r => r.Label).ToArray());
        CollectionAssert.AreEqual(new[] { "4", "19" }, coarse.Select(r => r.Label).ToArray(), "no coarse names file: label numbers");
        Assert.AreEqual(Pixel(1, 3000), fine[1].Image[3000]);
    }

    [TestMethod]
    public void Cifar_DamagedFiles_NameTheFileAndWhatIsWrong()
    {
        var data = new MLContext().Data;
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => data.LoadCifar10(Root));
        StringAssert.Contains(missing.Message, "data_batch_1.bin");

        WriteCifar10(imagesPerBatch: 1, withMeta: false);
        using (var stream = new FileStream(Path.Combine(Root, "data_batch_3.bin"), FileMode.Append)) stream.WriteByte(0);
        var truncated = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadCifar10(Root));
        StringAssert.Contains(truncated.Message, "data_batch_3.bin");
        StringAssert.Contains(truncated.Message, "3073-byte records");

        WriteCifar("test_batch.bin", new[] { new byte[] { 0 }, new byte[] { 10 } }, 0);
        var label = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadCifar10(Root, DatasetSplit.Test));
        StringAssert.Contains(label.Message, "record 1");
        StringAssert.Contains(label.Message, "label 10");

        Assert.ThrowsExactly<DirectoryNotFoundException>(() => data.LoadCifar100(Path.Combine(Root, "none")));
    }

    // IDX: big-endian magic, counts and dimensions, then one byte per pixel or label.
    private string WriteIdxImages(string name, int count, int rows, int columns, bool gzip, int? declaredCount = null)
    {
        var bytes = new byte[16 + count * rows * columns];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), declaredCount ?? count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), columns);
        for (int i = 0; i < count; i++)
            for (int j = 0; j < rows * columns; j++) bytes[16 + i * rows * columns + j] = Pixel(i, j);
        return Write(name, bytes, gzip);
    }

    private string WriteIdxLabels(string name, byte[] labels, bool gzip)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), labels.Length);
        labels.CopyTo(bytes, 8);
        return Write(name, bytes, gzip);
    }

    private string Write(string name, byte[] bytes, bool gzip)
    {
        string path = Path.Combine(Root, name);
        if (!gzip)
        {
            File.WriteAllBytes(path, bytes);
            return path;
        }

        using var file = File.Create(path);
        using var compressed = new GZipStream(file, CompressionLevel.Fastest);
        compressed.Write(bytes);
        return path;
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void Mnist_ReadsIdxFilesPlainOrGzipped(bool gzip)
    {
        string images = WriteIdxImages("images-idx3-ubyte" + (gzip ? ".gz" : ""), count: 3, rows: 28, columns: 28, gzip);
        string labels = WriteIdxLabels("labels-idx1-ubyte" + (gzip ? ".gz" : ""), new byte[] { 7, 2, 1 }, gzip);

        IDataView data = new MLContext().Data.LoadMnist(images, labels);

        CollectionAssert.AreEqual(new[] { 1, 28, 28 }, ((VectorDataViewType)data.Schema["Image"].Type).Dimensions.ToArray());
        var rows = Rows(data);
        CollectionAssert.AreEqual(new[] { "7", "2", "1" }, rows.Select(r => r.Label).ToArray());
        Assert.IsTrue(rows.Select((r, i) => Enumerable.Range(0, 784).All(j => r.Image[j] == Pixel(i, j))).All(ok => ok));
    }

    [TestMethod]
    public void Mnist_ClassNamesNameTheLabels()
    {
        string images = WriteIdxImages("i", count: 2, rows: 4, columns: 3, gzip: false);
        string labels = WriteIdxLabels("l", new byte[] { 1, 0 }, gzip: false);

        var rows = Rows(new MLContext().Data.LoadMnist(images, labels, classNames: new[] { "T-shirt", "Trouser" }));

        CollectionAssert.AreEqual(new[] { "Trouser", "T-shirt" }, rows.Select(r => r.Label).ToArray());
        Assert.AreEqual(12, rows[0].Image.Length);
    }

    [TestMethod]
    public void Mnist_BadFiles_NameTheFileAndWhatIsWrong()
    {
        var data = new MLContext().Data;
        string images = WriteIdxImages("images", count: 2, rows: 4, columns: 4, gzip: false);
        string labels = WriteIdxLabels("labels", new byte[] { 1, 2 }, gzip: false);

        var swapped = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadMnist(labels, images));
        StringAssert.Contains(swapped.Message, "2051");

        string shortImages = WriteIdxImages("short", count: 2, rows: 4, columns: 4, gzip: false, declaredCount: 3);
        var truncated = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadMnist(shortImages, labels));
        StringAssert.Contains(truncated.Message, "truncated");

        string threeLabels = WriteIdxLabels("three", new byte[] { 1, 2, 3 }, gzip: false);
        var counts = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadMnist(images, threeLabels));
        StringAssert.Contains(counts.Message, "3 labels");

        var names = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadMnist(images, labels, classNames: new[] { "a", "b" }));
        StringAssert.Contains(names.Message, "value 2");

        string notGzip = Path.Combine(Root, "bad.gz");
        File.WriteAllBytes(notGzip, new byte[] { 0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 });
        var inflate = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadMnist(notGzip, labels));
        StringAssert.Contains(inflate.Message, "bad.gz");

        Assert.ThrowsExactly<FileNotFoundException>(() => data.LoadMnist(Path.Combine(Root, "none"), labels));
    }

    [TestMethod]
    public void Cifar10Rows_TrainAClassifierInAnMLNetPipeline()
    {
        WriteCifar10(imagesPerBatch: 4, withMeta: false);
        // Test classes that the training batches have (they hold labels 1–8).
        WriteCifar("test_batch.bin", new[] { new byte[] { 1 }, new byte[] { 8 } }, 0);
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadCifar10(Root, DatasetSplit.Train);

        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = 32, ImageHeight = 32, Epochs = 1, BatchSize = 8, Seed = 1,
            }));
        ITransformer model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadCifar10(Root, DatasetSplit.Test)));

        Assert.IsTrue(double.IsFinite(metrics.LogLoss));
    }
}
