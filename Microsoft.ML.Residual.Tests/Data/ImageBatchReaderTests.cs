using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static Microsoft.ML.Residual.Tests.Data.DataTestSupport;

namespace Microsoft.ML.Residual.Tests.Data;

[TestClass]
public sealed class ImageBatchReaderTests
{
    public TestContext TestContext { get; set; } = null!;

    private static ImageBatchOptions VectorOptions(int size = 4, int batch = 4) => new()
    {
        ImageColumnName = "Pixels", Width = size, Height = size, BatchSize = batch, Shuffle = false,
    };

    // ---- formats -------------------------------------------------------------------------------------------

    [TestMethod]
    public void PixelVectorBatchHasNchwShapeValuesAndInt64Labels()
    {
        var ml = new MLContext(1);
        var reader = new ImageBatchReader(VectorData(ml, 10, 3, 4, 4), VectorOptions());
        Assert.AreEqual(ImageColumnKind.PixelVector, reader.ImageColumnKind);
        Assert.AreEqual(3, reader.Channels);
        using var batch = reader.ReadAll().First();
        CollectionAssert.AreEqual(new long[] { 4, 3, 4, 4 }, batch.Images.shape);
        Assert.AreEqual(torch.ScalarType.Float32, batch.Images.dtype);
        Assert.AreEqual(torch.ScalarType.Int64, batch.Labels!.dtype);
        CollectionAssert.AreEqual(Chw(2, 3, 4, 4), batch.Images[2].data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 0, 1, 2, 3 }, batch.RowIndices);
    }

    [TestMethod]
    public void KeyOneIsClassIndexZero()
    {
        var ml = new MLContext(1);
        var rows = new[] { "dog", "cat", "dog", "bird" }.Select((l, i) => new PixelRow { Pixels = Chw(i, 1, 2, 2), Label = l }).ToList();
        var reader = new ImageBatchReader(VectorData(ml, rows, 4), new ImageBatchOptions { ImageColumnName = "Pixels", Width = 2, Height = 2, BatchSize = 8, Shuffle = false });
        Assert.AreEqual(1, reader.Channels);
        var batches = Collect(reader.ReadAll());
        CollectionAssert.AreEqual(new long[] { 0, 1, 0, 2 }, batches.Single().Labels);
        Assert.AreEqual(3, reader.Label!.ClassCount);
        CollectionAssert.AreEqual(new[] { "dog", "cat", "bird" }, reader.Label.ClassNames!.ToArray());
    }

    [TestMethod]
    public void LabelKeyInfoReadsCountAndKeyValuesAsStrings()
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 5, 3, 2, 2, classes: 4);
        var info = LabelKeyInfo.FromSchema(data.Schema, "Label");
        Assert.AreEqual(4, info.ClassCount);
        CollectionAssert.AreEqual(new[] { "c0", "c1", "c2", "c3" }, info.ClassNames!.ToArray());
    }

    [TestMethod]
    public void NoLabelColumnGivesNullLabels()
    {
        var ml = new MLContext(1);
        var options = VectorOptions();
        options.LabelColumnName = null;
        var reader = new ImageBatchReader(VectorData(ml, 5, 3, 4, 4), options);
        using var batch = reader.ReadAll().First();
        Assert.IsNull(batch.Labels);
        Assert.IsNull(reader.Label);
    }

    [TestMethod]
    public void ImageColumnAndPixelVectorGiveTheSameBatchForTheSamePixels()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        var pathRows = new List<PathRow>();
        var vectorRows = new List<PixelRow>();
        for (int r = 0; r < 5; r++)
        {
            var chw = Chw(r, 3, 6, 5);
            WriteRgbPng(Path.Combine(folder, $"{r}.png"), chw, 6, 5);
            pathRows.Add(new PathRow { Path = $"{r}.png", Label = $"c{r % 2}" });
            vectorRows.Add(new PixelRow { Pixels = chw, Label = $"c{r % 2}" });
        }

        var imageReader = new ImageBatchReader(ImageData(ml, folder, pathRows), new ImageBatchOptions { Width = 5, Height = 6, BatchSize = 3, Shuffle = false });
        var vectorReader = new ImageBatchReader(VectorData(ml, vectorRows, 90), new ImageBatchOptions { ImageColumnName = "Pixels", Width = 5, Height = 6, BatchSize = 3, Shuffle = false });
        Assert.AreEqual(ImageColumnKind.Image, imageReader.ImageColumnKind);
        var fromImages = Collect(imageReader.ReadAll());
        var fromVectors = Collect(vectorReader.ReadAll());
        Assert.AreEqual(2, fromImages.Count);
        for (int i = 0; i < 2; i++)
        {
            CollectionAssert.AreEqual(fromVectors[i].Pixels, fromImages[i].Pixels);
            CollectionAssert.AreEqual(fromVectors[i].Labels, fromImages[i].Labels);
        }
    }

    [TestMethod]
    public void ImagesAreResizedBilinearlyWithHalfPixelCentres()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        // 4×4 → 2×2: each output pixel samples the centre of a 2×2 block, i.e. its mean.
        var chw = Chw(0, 3, 4, 4, (c, y, x, _) => c * 50 + y * 16 + x * 4);
        WriteRgbPng(Path.Combine(folder, "a.png"), chw, 4, 4);
        var reader = new ImageBatchReader(ImageData(ml, folder, new[] { new PathRow { Path = "a.png", Label = "a" } }),
            new ImageBatchOptions { Width = 2, Height = 2, BatchSize = 1 });
        var pixels = Collect(reader.ReadAll()).Single().Pixels;
        var expected = new float[12];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 2; x++)
                    expected[(c * 2 + y) * 2 + x] = c * 50 + (2 * y + 0.5f) * 16 + (2 * x + 0.5f) * 4;
        CollectionAssert.AreEqual(expected, pixels);

        // Upsampling a constant image keeps it constant; the output has the requested size.
        WriteRgbPng(Path.Combine(folder, "b.png"), Chw(0, 3, 3, 2, (c, _, _, _) => 10 + c), 3, 2);
        var up = new ImageBatchReader(ImageData(ml, folder, new[] { new PathRow { Path = "b.png", Label = "a" } }),
            new ImageBatchOptions { Width = 7, Height = 5, BatchSize = 1 });
        using var batch = up.ReadAll().Single();
        CollectionAssert.AreEqual(new long[] { 1, 3, 5, 7 }, batch.Images.shape);
        CollectionAssert.AreEqual(Chw(0, 3, 5, 7, (c, _, _, _) => 10 + c), batch.Images.data<float>().ToArray());
    }

    [TestMethod]
    public void GrayscaleImageIsRepeatedToThreeChannels()
    {
        var ml = new MLContext(1);
        string folder = NewFolder(TestContext);
        var gray = Enumerable.Range(0, 12).Select(i => (byte)(i * 20)).ToArray();
        WriteGrayPng(Path.Combine(folder, "g.png"), gray, 3, 4);
        var reader = new ImageBatchReader(ImageData(ml, folder, new[] { new PathRow { Path = "g.png", Label = "a" } }),
            new ImageBatchOptions { Width = 4, Height = 3, BatchSize = 1 });
        var pixels = Collect(reader.ReadAll()).Single().Pixels;
        var expected = Enumerable.Repeat(gray.Select(b => (float)b), 3).SelectMany(p => p).ToArray();
        CollectionAssert.AreEqual(expected, pixels);
    }

    // ---- order, batching, cache ----------------------------------------------------------------------------

    private static long[] Order(IEnumerable<ImageBatch> batches) => Collect(batches).SelectMany(b => b.Rows).ToArray();

    [TestMethod]
    [DataRow(false, DisplayName = "streaming")]
    [DataRow(true, DisplayName = "cached")]
    public void ShuffleIsASeededPermutationThatChangesBetweenEpochs(bool cache)
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 40, 1, 2, 2);
        ImageBatchOptions Options(int seed) => new()
        {
            ImageColumnName = "Pixels", Width = 2, Height = 2, BatchSize = 7, Shuffle = true, Seed = seed, CacheInMemory = cache, ShuffleBufferSize = 16,
        };
        var reader = new ImageBatchReader(data, Options(5));
        var epoch0 = Order(reader.ReadEpoch(0));
        var epoch1 = Order(reader.ReadEpoch(1));
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 40).Select(i => (long)i).ToArray(), epoch0);
        CollectionAssert.AreEquivalent(epoch0, epoch1);
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 40).Select(i => (long)i).ToArray(), epoch0);
        CollectionAssert.AreNotEqual(epoch0, epoch1);
        CollectionAssert.AreEqual(epoch0, Order(new ImageBatchReader(data, Options(5)).ReadEpoch(0)));
        CollectionAssert.AreNotEqual(epoch0, Order(new ImageBatchReader(data, Options(6)).ReadEpoch(0)));
    }

    [TestMethod]
    public void ShuffledLabelsStayWithTheirPixels()
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 20).Select(r => new PixelRow { Pixels = Enumerable.Repeat((float)r, 4).ToArray(), Label = $"{r:D2}" }).ToList();
        var reader = new ImageBatchReader(VectorData(ml, rows, 4), new ImageBatchOptions { ImageColumnName = "Pixels", Width = 2, Height = 2, BatchSize = 6, Seed = 3 });
        foreach (var (pixels, labels, indices) in Collect(reader.ReadEpoch(0)))
            for (int i = 0; i < labels.Length; i++)
            {
                Assert.AreEqual(indices[i], labels[i]);
                Assert.AreEqual(indices[i], (long)pixels[4 * i]);
            }
    }

    [TestMethod]
    public void ShuffleBufferEmitsEachItemOnce()
    {
        var items = Enumerable.Range(0, 1000).ToArray();
        var shuffled = ImageBatchReader.ShuffleBuffer(items, 64, new Random(1)).ToArray();
        CollectionAssert.AreEquivalent(items, shuffled);
        CollectionAssert.AreNotEqual(items, shuffled);
        CollectionAssert.AreEqual(new[] { 2, 0, 1 }.OrderBy(i => i).ToArray(), ImageBatchReader.ShuffleBuffer(new[] { 0, 1, 2 }, 64, new Random(1)).OrderBy(i => i).ToArray());
    }

    [TestMethod]
    public void DropLastDropsOnlyTheShortTrainingBatch()
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 10, 3, 4, 4);
        var options = VectorOptions(batch: 4);
        options.DropLast = true;
        var reader = new ImageBatchReader(data, options);
        CollectionAssert.AreEqual(new[] { 4, 4 }, Collect(reader.ReadEpoch(0)).Select(b => b.Rows.Length).ToArray());
        CollectionAssert.AreEqual(new[] { 4, 4, 2 }, Collect(reader.ReadAll()).Select(b => b.Rows.Length).ToArray());
        options.DropLast = false;
        CollectionAssert.AreEqual(new[] { 4, 4, 2 }, Collect(new ImageBatchReader(data, options).ReadEpoch(0)).Select(b => b.Rows.Length).ToArray());
    }

    [TestMethod]
    public void CacheGivesTheSameBatchesAsStreaming()
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 11, 3, 4, 4);
        ImageBatchOptions Options(bool cache) => new()
        {
            ImageColumnName = "Pixels", Width = 4, Height = 4, BatchSize = 4, Shuffle = false, Seed = 9, CacheInMemory = cache,
            Augmentation = ImageAugmentation.Cifar(),
        };
        var streaming = new ImageBatchReader(data, Options(false));
        var cached = new ImageBatchReader(data, Options(true));
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var a = Collect(streaming.ReadEpoch(epoch));
            var b = Collect(cached.ReadEpoch(epoch));
            Assert.AreEqual(a.Count, b.Count);
            for (int i = 0; i < a.Count; i++)
            {
                CollectionAssert.AreEqual(a[i].Pixels, b[i].Pixels);
                CollectionAssert.AreEqual(a[i].Labels, b[i].Labels);
                CollectionAssert.AreEqual(a[i].Rows, b[i].Rows);
            }
        }
    }

    [TestMethod]
    public void CachedEpochsDoNotReadTheDataViewAgain()
    {
        var ml = new MLContext(1);
        var rows = new CountingRows<PixelRow>(Enumerable.Range(0, 9).Select(r => new PixelRow { Pixels = Chw(r, 1, 2, 2), Label = "a" }).ToList());
        var options = new ImageBatchOptions { ImageColumnName = "Pixels", LabelColumnName = null, Width = 2, Height = 2, BatchSize = 4, CacheInMemory = true };
        var reader = new ImageBatchReader(VectorData(ml, rows, 4, keyLabel: false), options);
        Collect(reader.ReadEpoch(0));
        int afterFirst = rows.Taken;
        Assert.AreEqual(9, afterFirst);
        Collect(reader.ReadEpoch(1));
        Collect(reader.ReadAll());
        Assert.AreEqual(afterFirst, rows.Taken);
    }

    [TestMethod]
    public void StreamingReadsAtMostPrefetchBatchesAhead()
    {
        var ml = new MLContext(1);
        var rows = new CountingRows<PixelRow>(Enumerable.Range(0, 400).Select(r => new PixelRow { Pixels = Chw(r, 1, 2, 2), Label = "a" }).ToList());
        var options = new ImageBatchOptions { ImageColumnName = "Pixels", LabelColumnName = null, Width = 2, Height = 2, BatchSize = 10, Shuffle = false, PrefetchBatches = 2 };
        var reader = new ImageBatchReader(VectorData(ml, rows, 4, keyLabel: false), options);
        int consumed = 0;
        foreach (var batch in reader.ReadEpoch(0))
        {
            batch.Dispose();
            Thread.Sleep(150); // let the decoder run as far ahead as it may
            // consumed + this batch + PrefetchBatches queued + one batch being assembled (+ the row it blocks on)
            Assert.IsTrue(rows.Taken <= (consumed + 1 + 2 + 1) * 10 + 1, $"read {rows.Taken} rows after {consumed + 1} batches");
            Assert.IsTrue(rows.Taken >= (consumed + 2) * 10, $"the decoder did not work ahead ({rows.Taken} rows after {consumed + 1} batches)");
            if (++consumed == 3) break;
        }

        Thread.Sleep(100);
        Assert.IsTrue(rows.Taken <= 61, $"the decoder kept reading after the consumer stopped ({rows.Taken} rows)");
    }

    [TestMethod]
    public void ManyBatchesDoNotLeakTensors()
    {
        var ml = new MLContext(1);
        var reader = new ImageBatchReader(VectorData(ml, 64, 3, 8, 8),
            new ImageBatchOptions { ImageColumnName = "Pixels", Width = 8, Height = 8, BatchSize = 4, CacheInMemory = true, Augmentation = ImageAugmentation.Cifar() });
        void Epoch(int epoch)
        {
            foreach (var batch in reader.ReadEpoch(epoch))
            {
                using (batch) { }
            }
        }

        // The counts are per thread: each batch's two tensors are made on the reading thread and released on this one, so
        // the count here falls by exactly two per batch when every tensor this thread sees is released once.
        const int batchesPerEpoch = 64 / 4, tensorsPerBatch = 2;
        Epoch(0);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int e = 1; e <= 5; e++) Epoch(e);
        Assert.AreEqual(before - 5 * batchesPerEpoch * tensorsPerBatch, DisposeScopeManager.Statistics.ThreadTotalLiveCount);

        // Inside a caller's dispose scope the batch tensors belong to that scope.
        before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var scope = torch.NewDisposeScope())
        {
            foreach (var batch in reader.ReadEpoch(6)) _ = batch.Images.sum();
        }

        Assert.AreEqual(before - batchesPerEpoch * tensorsPerBatch, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    // ---- augmentation --------------------------------------------------------------------------------------

    private static float[] Augmented(ImageAugmentation augmentation, float[] chw, int channels, int height, int width, int seed = 0)
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, new[] { new PixelRow { Pixels = chw, Label = "a" } }, chw.Length);
        var reader = new ImageBatchReader(data, new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = width, Height = height, BatchSize = 1, Seed = seed, Augmentation = augmentation,
        });
        return Collect(reader.ReadEpoch(0)).Single().Pixels;
    }

    [TestMethod]
    public void FlipMirrorsEveryRow()
    {
        var chw = Chw(0, 3, 3, 4);
        var flipped = Augmented(new ImageAugmentation { HorizontalFlipProbability = 1 }, chw, 3, 3, 4);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 4; x++)
                    Assert.AreEqual(chw[(c * 3 + y) * 4 + x], flipped[(c * 3 + y) * 4 + 3 - x]);
    }

    [TestMethod]
    public void FlipWithHalfProbabilityFlipsAboutHalfTheImages()
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 200).Select(r => new PixelRow { Pixels = new float[] { 1, 2 }, Label = "a" }).ToList();
        var reader = new ImageBatchReader(VectorData(ml, rows, 2), new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = 2, Height = 1, BatchSize = 50, Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0.5 },
        });
        int flipped = Collect(reader.ReadEpoch(0)).Sum(b => Enumerable.Range(0, b.Rows.Length).Count(i => b.Pixels[2 * i] == 2));
        Assert.IsTrue(flipped is > 70 and < 130, $"{flipped} of 200 flipped");
    }

    [TestMethod]
    [DataRow(PaddingMode.Zero)]
    [DataRow(PaddingMode.Reflect)]
    public void PaddedRandomCropKeepsTheSizeAndShiftsThePixels(PaddingMode mode)
    {
        const int h = 6, w = 7, pad = 2;
        var chw = Chw(0, 2, h, w, (c, y, x, _) => 1 + c * 100 + y * 10 + x);
        var seenShifts = new HashSet<(int, int)>();
        for (int seed = 0; seed < 20; seed++)
        {
            var output = Augmented(new ImageAugmentation { CropPadding = pad, CropPaddingMode = mode }, chw, 2, h, w, seed);
            Assert.AreEqual(chw.Length, output.Length);
            // Find the shift (dy, dx) that explains the output.
            (int, int)? found = null;
            for (int dy = -pad; dy <= pad && found is null; dy++)
                for (int dx = -pad; dx <= pad && found is null; dx++)
                {
                    var expected = new float[chw.Length];
                    for (int c = 0; c < 2; c++)
                        for (int y = 0; y < h; y++)
                            for (int x = 0; x < w; x++)
                            {
                                int sy = y + dy, sx = x + dx;
                                if (mode == PaddingMode.Reflect)
                                {
                                    sy = sy < 0 ? -sy : sy >= h ? 2 * (h - 1) - sy : sy;
                                    sx = sx < 0 ? -sx : sx >= w ? 2 * (w - 1) - sx : sx;
                                }

                                bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
                                expected[(c * h + y) * w + x] = inside ? chw[(c * h + sy) * w + sx] : 0;
                            }

                    if (expected.SequenceEqual(output)) found = (dy, dx);
                }

            Assert.IsNotNull(found, $"seed {seed}: the output is not a shifted crop of the padded image");
            seenShifts.Add(found.Value);
        }

        Assert.IsTrue(seenShifts.Count > 5, "the crop offsets are not random");
    }

    [TestMethod]
    public void RandomResizedCropKeepsTheSizeAndTheValueRange()
    {
        var chw = Chw(0, 3, 16, 12, (c, y, x, _) => 10 + y * 10 + x);
        for (int seed = 0; seed < 5; seed++)
        {
            var output = Augmented(new ImageAugmentation { RandomResizedCropScale = (0.08, 1) }, chw, 3, 16, 12, seed);
            Assert.AreEqual(chw.Length, output.Length);
            Assert.IsTrue(output.All(v => v >= chw.Min() && v <= chw.Max()));
            CollectionAssert.AreNotEqual(chw, output);
        }

        // The whole image at its own ratio: the crop is the identity.
        var whole = Augmented(new ImageAugmentation { RandomResizedCropScale = (1, 1), RandomResizedCropRatio = (0.75, 0.75) }, chw, 3, 16, 12);
        CollectionAssert.AreEqual(chw, whole);
    }

    [TestMethod]
    public void EvaluationReadingIgnoresAugmentationAndShuffle()
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 9, 3, 4, 4);
        var reader = new ImageBatchReader(data, new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = 4, Height = 4, BatchSize = 4, Shuffle = true, DropLast = true,
            Augmentation = new ImageAugmentation { HorizontalFlipProbability = 1, CropPadding = 2, RandomResizedCropScale = (0.1, 0.5) },
        });
        var all = Collect(reader.ReadAll());
        CollectionAssert.AreEqual(Enumerable.Range(0, 9).SelectMany(r => Chw(r, 3, 4, 4)).ToArray(), all.SelectMany(b => b.Pixels).ToArray());
        CollectionAssert.AreEqual(Enumerable.Range(0, 9).Select(i => (long)i).ToArray(), all.SelectMany(b => b.Rows).ToArray());
    }

    [TestMethod]
    public void AugmentationIsReproducibleForASeedAndEpoch()
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 8, 3, 8, 8);
        ImageBatchReader Reader() => new(data, new ImageBatchOptions
        {
            ImageColumnName = "Pixels", Width = 8, Height = 8, BatchSize = 8, Seed = 4, Augmentation = ImageAugmentation.ImageNet(),
        });
        var a = Collect(Reader().ReadEpoch(2)).Single().Pixels;
        var b = Collect(Reader().ReadEpoch(2)).Single().Pixels;
        var c = Collect(Reader().ReadEpoch(3)).Single().Pixels;
        CollectionAssert.AreEqual(a, b);
        CollectionAssert.AreNotEqual(a, c);
    }

    // ---- masks (the segmenter's targets) --------------------------------------------------------------------

    public sealed class MaskRow
    {
        [VectorType(4)]
        public float[] Pixels { get; set; } = Array.Empty<float>();

        [VectorType(4)]
        public uint[] Mask { get; set; } = Array.Empty<uint>();
    }

    // 1×2×2 pixels and 2×2 masks, three classes, 255 ignored.
    private static ImageBatchReader MaskReader(MLContext ml, params uint[][] masks) => new(
        ml.Data.LoadFromEnumerable(masks.Select((m, i) => new MaskRow { Pixels = Chw(i, 1, 2, 2), Mask = m }).ToList()),
        new ImageBatchOptions { ImageColumnName = "Pixels", LabelColumnName = null, Width = 2, Height = 2, BatchSize = 4, Shuffle = false },
        new ImageBatchReader.MaskTarget("Mask", NumClasses: 3, IgnoreIndex: 255));

    [TestMethod]
    public void MaskColumnIsReadAsPerPixelClassesWithTheIgnoreIndexAsMinusOne()
    {
        var reader = MaskReader(new MLContext(1), new uint[] { 0, 1, 2, 255 }, new uint[] { 1, 1, 0, 0 });
        using var batch = reader.ReadAll().Single();
        Assert.IsNull(reader.Label);
        CollectionAssert.AreEqual(new long[] { 2, 2, 2 }, batch.Labels!.shape);
        Assert.AreEqual(torch.ScalarType.Int64, batch.Labels.dtype);
        CollectionAssert.AreEqual(new long[] { 0, 1, 2, -1, 1, 1, 0, 0 }, batch.Labels.data<long>().ToArray());
        CollectionAssert.AreEqual(Chw(0, 1, 2, 2).Concat(Chw(1, 1, 2, 2)).ToArray(), batch.Images.data<float>().ToArray());
    }

    [TestMethod]
    public void MaskClassAtOrAboveNumClassesIsAnErrorNamingTheRowAndPixel()
    {
        var reader = MaskReader(new MLContext(1), new uint[] { 0, 1, 2, 255 }, new uint[4], new uint[] { 0, 3, 0, 0 });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Collect(reader.ReadAll()));
        StringAssert.Contains(error.Message, "Mask column 'Mask', row 2: pixel (x 1, y 0) has class 3, but NumClasses is 3");
    }

    [TestMethod]
    public void AugmentMovesAMaskWithTheImageAndRefusesAPolicy()
    {
        float[] image = { 10, 11, 12, 13 };
        int[] mask = { 0, 1, 2, 3 };
        var output = new float[4];
        int[] flipped = PixelOps.Augment(image, output, 1, 2, 2, new ImageAugmentation { HorizontalFlipProbability = 1 }, new Random(1), mask)!;
        CollectionAssert.AreEqual(new float[] { 11, 10, 13, 12 }, output);
        CollectionAssert.AreEqual(new[] { 1, 0, 3, 2 }, flipped);
        CollectionAssert.AreEqual(new[] { 0, 1, 2, 3 }, mask, "the given mask is left as it was");

        // A padded crop: each pixel keeps its mask value; pixels from the zero padding are ignored (−1).
        int ignored = 0;
        for (int seed = 0; seed < 20; seed++)
        {
            int[] moved = PixelOps.Augment(image, output, 1, 2, 2, new ImageAugmentation { CropPadding = 1 }, new Random(seed), mask)!;
            for (int p = 0; p < 4; p++) Assert.AreEqual(moved[p] < 0 ? 0f : 10 + moved[p], output[p], $"seed {seed}, pixel {p}");
            ignored += moved.Count(v => v < 0);
        }

        Assert.IsTrue(ignored > 0, "some crops reached into the padding");
        Assert.ThrowsExactly<InvalidOperationException>(() => PixelOps.Augment(image, output, 1, 2, 2, ImageAugmentation.TrivialAugment(), new Random(1), mask));
    }

    // ---- split ---------------------------------------------------------------------------------------------

    [TestMethod]
    public void TrainValidationSplitIsDisjointCompleteAndSeeded()
    {
        var ml = new MLContext(1);
        var data = VectorData(ml, 200, 1, 1, 1);
        float[] Values(IDataView view) => view.GetColumn<VBuffer<float>>("Pixels").Select(v => v.GetValues()[0]).ToArray();
        var (train, validation) = DataSplit.TrainValidationSplit(ml, data, 0.25, seed: 7);
        var t = Values(train);
        var v = Values(validation);
        Assert.AreEqual(200, t.Length + v.Length);
        CollectionAssert.AreEquivalent(Values(data), t.Concat(v).ToArray());
        Assert.IsTrue(v.Length is > 25 and < 80, $"{v.Length} validation rows");
        var (_, again) = DataSplit.TrainValidationSplit(ml, data, 0.25, seed: 7);
        CollectionAssert.AreEqual(v, Values(again));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DataSplit.TrainValidationSplit(ml, data, 1.0, 7));
    }
}
