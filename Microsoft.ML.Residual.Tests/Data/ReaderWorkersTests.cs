using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Tests.Segmentation;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static Microsoft.ML.Residual.Tests.Data.DataTestSupport;

namespace Microsoft.ML.Residual.Tests.Data;

/// <summary>The batch readers give the same batches whatever the number of reading threads and the prefetch depth.</summary>
[TestClass]
public sealed class ReaderWorkersTests
{
    public TestContext TestContext { get; set; } = null!;

    // 600 rows: several of the blocks (64 to 128 rows) that ML.NET's cursor sets deal to their threads.
    private static IDataView Rows(MLContext ml) => VectorData(ml, 600, 3, 8, 8);

    private static ImageBatchOptions Options(int workers, int prefetch, bool cache) => new()
    {
        ImageColumnName = "Pixels", Width = 8, Height = 8, BatchSize = 16, Shuffle = true, Seed = 3, ShuffleBufferSize = 64,
        CacheInMemory = cache, Workers = workers, PrefetchBatches = prefetch, Augmentation = ImageAugmentation.Cifar(),
    };

    [TestMethod]
    public void TheTestDataIsReadByMoreThanOneCursor()
    {
        // Otherwise the tests below would compare one thread with itself.
        var data = Rows(new MLContext(1));
        var cursors = data.GetRowCursorSet(data.Schema, 3);
        foreach (var cursor in cursors) cursor.Dispose();
        TestContext.WriteLine($"{cursors.Length} cursors on {Environment.ProcessorCount} processors");
        Assert.IsTrue(cursors.Length > 1 || Environment.ProcessorCount == 1, $"{cursors.Length} cursor");
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void WorkersAndPrefetchDepthDoNotChangeTheBatches(bool cache)
    {
        var ml = new MLContext(1);
        var data = Rows(ml);
        List<(float[] Pixels, long[] Labels, long[] Rows)> Epochs(int workers, int prefetch)
        {
            var reader = new ImageBatchReader(data, Options(workers, prefetch, cache));
            return Collect(reader.ReadEpoch(0)).Concat(Collect(reader.ReadEpoch(1))).Concat(Collect(reader.ReadAll())).ToList();
        }

        var single = Epochs(workers: 1, prefetch: 1);
        foreach (var (workers, prefetch) in new[] { (3, 1), (3, 4), (2, 2) })
        {
            var parallel = Epochs(workers, prefetch);
            Assert.AreEqual(single.Count, parallel.Count);
            for (int b = 0; b < single.Count; b++)
            {
                string at = $"workers {workers}, prefetch {prefetch}, batch {b}";
                CollectionAssert.AreEqual(single[b].Rows, parallel[b].Rows, at);
                CollectionAssert.AreEqual(single[b].Labels, parallel[b].Labels, at);
                CollectionAssert.AreEqual(single[b].Pixels, parallel[b].Pixels, at);
            }
        }

        // ReadAll gives every row in data-view order.
        int epochBatches = (600 + 15) / 16;
        CollectionAssert.AreEqual(Enumerable.Range(0, 600).Select(i => (long)i).ToArray(), single.Skip(2 * epochBatches).SelectMany(b => b.Rows).ToArray());
    }

    [TestMethod]
    public void ABadRowReadOnAnotherThreadIsNamedByItsPosition()
    {
        var rows = Enumerable.Range(0, 600).Select(r => new PixelRow { Pixels = Chw(r, 1, 2, 2), Label = "a" }).ToList();
        rows[457].Pixels[3] = float.NaN;
        var reader = new ImageBatchReader(VectorData(new MLContext(1), rows, 4),
            new ImageBatchOptions { ImageColumnName = "Pixels", Width = 2, Height = 2, BatchSize = 8, Shuffle = false, Workers = 3 });
        int delivered = 0;
        var error = Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (var batch in reader.ReadAll())
            {
                batch.Dispose();
                delivered++;
            }
        });
        StringAssert.Contains(error.Message, "'Pixels'");
        StringAssert.Contains(error.Message, "row 457");
        StringAssert.Contains(error.Message, "y 1, x 1");
        Assert.AreEqual(457 / 8, delivered, "every batch before the bad row's");
    }

    [TestMethod]
    public void AnUnreadableImageFileReadOnAnotherThreadIsNamedByItsRow()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        WriteRgbPng(Path.Combine(folder, "good.png"), Chw(0, 3, 2, 2), 2, 2);
        File.WriteAllText(Path.Combine(folder, "bad.png"), "not a png");
        var paths = Enumerable.Range(0, 300).Select(i => new PathRow { Path = i == 230 ? "bad.png" : "good.png", Label = "a" }).ToList();
        var reader = new ImageBatchReader(ImageData(ml, folder, paths), new ImageBatchOptions { Width = 2, Height = 2, BatchSize = 4, Workers = 3, Shuffle = false });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadAll()));
        StringAssert.Contains(error.Message, "'Image'");
        StringAssert.Contains(error.Message, "row 230");
    }

    [TestMethod]
    public void StoppingAfterOneBatchReleasesEverythingPrepared()
    {
        var reader = new ImageBatchReader(Rows(new MLContext(1)), Options(workers: 3, prefetch: 4, cache: false));
        for (int attempt = 0; attempt < 3; attempt++)
        {
            using var first = reader.ReadEpoch(attempt).First();
            Assert.AreEqual(16, first.Images.shape[0]);
        }

        // The reader is reusable after abandoned epochs and gives full epochs again.
        Assert.AreEqual(600, Collect(reader.ReadEpoch(5)).Sum(b => b.Rows.Length));
    }

    [TestMethod]
    public void PrefetchDiscardsWhatTheConsumerNeverTook()
    {
        int made = 0, converted = 0, discarded = 0;
        foreach (int item in Prefetch.Run<int, int>((emit, token) =>
                 {
                     for (int i = 0; i < 100; i++)
                     {
                         Interlocked.Increment(ref made);
                         emit(i);
                     }
                 }, capacity: 3, item => { converted++; return item; }, _ => Interlocked.Increment(ref discarded)))
        {
            if (item == 1) break;
        }

        Assert.AreEqual(2, converted);
        Assert.IsTrue(made < 100, $"the producer stopped early ({made} made)");
        Assert.AreEqual(made, converted + discarded, "every item made was taken or released");
    }

    [TestMethod]
    public void SegmentationBatchesDoNotDependOnWorkers()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(UNetSegmenterTests.Shapes(300, seed: 4));
        (float[], long[])[] Epoch(int workers)
        {
            var options = new SegmenterOptions
            {
                NumClasses = 3, ImageWidth = 32, ImageHeight = 32, BatchSize = 8, Seed = 2, CacheInMemory = false, Workers = workers,
                Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0.5, CropPadding = 4, RandomResizedCropScale = (0.5, 1.0) },
            };
            var reader = UNetSegmenterEstimator.CreateReader(data, "Image", null, options);
            return Collect(reader.ReadEpoch(1)).Select(batch => (batch.Pixels, batch.Labels)).ToArray();
        }

        var single = Epoch(1);
        var parallel = Epoch(3);
        Assert.AreEqual(single.Length, parallel.Length);
        for (int b = 0; b < single.Length; b++)
        {
            CollectionAssert.AreEqual(single[b].Item1, parallel[b].Item1, $"images of batch {b}");
            CollectionAssert.AreEqual(single[b].Item2, parallel[b].Item2, $"masks of batch {b}");
        }
    }

    [TestMethod]
    public void WorkersMustBeBetweenOneAndTheMaximum()
    {
        var data = Rows(new MLContext(1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchReader(data, Options(workers: 0, prefetch: 1, cache: false)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ImageBatchReader(data, Options(workers: ImageBatchOptions.MaxWorkers + 1, prefetch: 1, cache: false)));
        Assert.IsTrue(ImageBatchOptions.DefaultWorkers is >= 1 and <= 8);
    }
}
