using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Tests.Training;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Segmentation;

[TestClass]
public sealed class UNetSegmenterTests
{
    private const int Size = 32;

    public TestContext TestContext { get; set; } = null!;

    public sealed class ShapeRow
    {
        [VectorType(3, Size, Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        [VectorType(Size * Size)]
        public uint[] Mask { get; set; } = Array.Empty<uint>();
    }

    /// <summary>A square (class 1) and a disc (class 2) of random colours and sizes on a noisy background (class 0).</summary>
    internal static List<ShapeRow> Shapes(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<ShapeRow>();
        for (int n = 0; n < count; n++)
        {
            var image = new float[3 * Size * Size];
            var mask = new uint[Size * Size];
            float[] background = { random.Next(256), random.Next(256), random.Next(256) };
            for (int c = 0; c < 3; c++)
            for (int i = 0; i < Size * Size; i++) image[c * Size * Size + i] = Math.Clamp(background[c] + random.Next(-20, 21), 0, 255);
            bool squareLeft = random.Next(2) == 0;
            void Paint(uint label, Func<int, int, bool> inside)
            {
                float[] colour = { random.Next(256), random.Next(256), random.Next(256) };
                if (colour.Zip(background, (a, b) => Math.Abs(a - b)).Sum() < 120) colour = colour.Select(v => 255 - v).ToArray();
                for (int y = 0; y < Size; y++)
                for (int x = 0; x < Size; x++)
                {
                    if (!inside(y, x)) continue;
                    mask[y * Size + x] = label;
                    for (int c = 0; c < 3; c++) image[c * Size * Size + y * Size + x] = Math.Clamp(colour[c] + random.Next(-20, 21), 0, 255);
                }
            }

            int side = random.Next(7, 13), sx = (squareLeft ? 1 : 17) + random.Next(0, 15 - side), sy = random.Next(1, Size - side - 1);
            Paint(1, (y, x) => y >= sy && y < sy + side && x >= sx && x < sx + side);
            int radius = random.Next(4, 7), cx = (squareLeft ? 17 : 1) + radius + random.Next(0, 14 - 2 * radius), cy = random.Next(radius + 1, Size - radius - 1);
            Paint(2, (y, x) => (y - cy) * (y - cy) + (x - cx) * (x - cx) <= radius * radius);
            rows.Add(new ShapeRow { Image = image, Mask = mask });
        }

        return rows;
    }

    /// <summary>Each row as image{i}.png (RGB) and mask{i}.png (gray, value = class) in <paramref name="folder"/>.</summary>
    internal static List<FileRow> WriteShapeFiles(string folder, IEnumerable<ShapeRow> rows) => rows.Select((row, i) =>
    {
        Data.DataTestSupport.WriteRgbPng(System.IO.Path.Combine(folder, $"image{i}.png"), row.Image, Size, Size);
        Data.DataTestSupport.WriteGrayPng(System.IO.Path.Combine(folder, $"mask{i}.png"), row.Mask.Select(v => (byte)v).ToArray(), Size, Size);
        return new FileRow { ImagePath = $"image{i}.png", MaskPath = $"mask{i}.png" };
    }).ToList();

    [TestMethod]
    public void UNetSegmenter_FitsScoresEvaluatesSavesAndLoadsInAPipeline()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Shapes(48, seed: 1));
        List<ShapeRow> testRows = Shapes(16, seed: 2);
        IDataView test = ml.Data.LoadFromEnumerable(testRows);
        var reports = new List<EpochReport>();
        var estimator = ml.Transforms.UNetSegmenter(new SegmenterOptions
        {
            Architecture = "unet_resnet18", NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16, Seed = 1,
            Loss = SegmentationLoss.CrossEntropyDice, ValidationSet = test, Progress = new SynchronousProgress<EpochReport>(reports.Add),
        });
        // ML.NET builds SchemaShapes internally (pipelines call GetOutputSchema before Fit); the test does the same by reflection.
        var create = typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })!;
        SchemaShape declared = estimator.GetOutputSchema((SchemaShape)create.Invoke(null, new object[] { train.Schema })!);
        ITransformer model = estimator.Fit(train);
        IDataView scored = model.Transform(test);
        Assert.AreEqual(NumberDataViewType.UInt32, ((VectorDataViewType)scored.Schema["PredictedMask"].Type).ItemType);
        Assert.AreEqual(Size * Size, ((VectorDataViewType)scored.Schema["PredictedMask"].Type).Size);
        Assert.AreEqual(3 * Size * Size, ((VectorDataViewType)scored.Schema["MaskScore"].Type).Size);
        foreach (string column in new[] { "PredictedMask", "MaskScore" })
        {
            SchemaShape.Column shape = declared.Single(c => c.Name == column);
            Assert.AreEqual(((VectorDataViewType)scored.Schema[column].Type).ItemType, shape.ItemType, column);
            Assert.IsFalse(shape.IsKey, column);
        }

        SegmentationMetrics metrics = ml.Segmentation().Evaluate(scored, labelColumnName: "Mask", predictedColumnName: "PredictedMask", numClasses: 3);
        Assert.AreEqual(1, reports.Count);
        Assert.AreEqual(reports[0].ValidationMeanIoU!.Value, metrics.MeanIoU, 0.01, "the trainer's validation IoU is the scored model's");
        Assert.AreEqual(testRows.Count * Size * Size, metrics.ConfusionMatrix.Cast<long>().Sum());

        string path = ModelTestSupport.TempFile(TestContext, "-segmenter.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 3);
        ITransformer loaded = fresh.Model.Load(path, out _);
        uint[][] before = scored.GetColumn<uint[]>("PredictedMask").ToArray();
        uint[][] after = loaded.Transform(fresh.Data.LoadFromEnumerable(testRows)).GetColumn<uint[]>("PredictedMask").ToArray();
        for (int i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }

    [TestMethod]
    public void SegmentationCatalog_TrainsWithItsSimpleArguments_AndEvaluatesTheResult()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Shapes(16, seed: 1));
        UNetSegmenterEstimator estimator = ml.Segmentation().UNet(numClasses: 3, encoder: "resnet18", epochs: 1, imageWidth: Size, imageHeight: Size);
        ITransformer model = estimator.Fit(train);
        IDataView scored = model.Transform(ml.Data.LoadFromEnumerable(Shapes(8, seed: 2)));
        uint[][] masks = scored.GetColumn<uint[]>("PredictedMask").ToArray();
        Assert.AreEqual(8, masks.Length);
        Assert.IsTrue(masks.All(m => m.Length == Size * Size && m.All(c => c < 3)));
        SegmentationMetrics metrics = ml.Segmentation().Evaluate(scored, numClasses: 3);
        Assert.AreEqual(3, metrics.PerClassIoU.Count);
    }

    [TestMethod]
    public void UNetSegmenter_LearnsShapesToHighMeanIoUOnHeldOutImages()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Shapes(256, seed: 1));
        List<ShapeRow> testRows = Shapes(64, seed: 2);
        var reports = new List<EpochReport>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ITransformer model = ml.Transforms.UNetSegmenter(new SegmenterOptions
        {
            Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 3, BaseWidth = 16 },
            NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 12, BatchSize = 16, Seed = 1, LearningRate = 1e-2,
            Loss = SegmentationLoss.CrossEntropyDice, Progress = new SynchronousProgress<EpochReport>(reports.Add),
        }).Fit(train);
        SegmentationMetrics metrics = ml.Segmentation().Evaluate(model.Transform(ml.Data.LoadFromEnumerable(testRows)), numClasses: 3);
        TestContext.WriteLine($"mean IoU {metrics.MeanIoU:F3} after {clock.Elapsed.TotalSeconds:F0} s; losses {string.Join(", ", reports.Select(r => r.TrainingLoss.ToString("F3")))}");
        Assert.IsTrue(metrics.MeanIoU >= 0.85, metrics.ToString());
    }

    public sealed class ImageOnly
    {
        [VectorType(3, Size, Size)]
        public float[] Image { get; set; } = Array.Empty<float>();
    }

    public sealed class Segmented
    {
        public uint[] PredictedMask { get; set; } = Array.Empty<uint>();

        public float[] MaskScore { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void PngImagesAndMasks_TrainWithAFrozenPretrainedEncoder_AndScoreThroughAPredictionEngine()
    {
        var ml = new MLContext(seed: 1);
        string folder = Data.DataTestSupport.NewFolder(TestContext);
        List<FileRow> files = WriteShapeFiles(folder, Shapes(32, seed: 3));
        string encoderWeights = ModelTestSupport.TempFile(TestContext, "-resnet18.safetensors");
        using (var classifier = Microsoft.ML.Residual.Models.ResidualModels.Create("resnet18", 1000, options: new Microsoft.ML.Residual.Models.ResNetOptions { Seed = 5 }))
            Microsoft.ML.Residual.Weights.StateDict.Save(classifier, encoderWeights);

        var pipeline = ml.Transforms.LoadImages("Image", folder, "ImagePath")
            .Append(ml.Transforms.LoadImages("Mask", folder, "MaskPath"))
            .Append(ml.Transforms.UNetSegmenter(new SegmenterOptions
            {
                Architecture = "unet_resnet18", NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 2, BatchSize = 16, Seed = 1,
                PretrainedEncoderWeightsPath = encoderWeights, FreezeBackboneEpochs = 1, BackboneLearningRateFactor = 1e-12,
            }));
        IDataView data = ml.Data.LoadFromEnumerable(files);
        ITransformer model = pipeline.Fit(data);
        string saved = ModelTestSupport.TempFile(TestContext, "-unet.zip");
        ml.Model.Save(model, data.Schema, saved);
        using var trained = SavedModelWeights.Read(saved, "test");
        using var original = Microsoft.ML.Residual.Weights.StateDict.Read(encoderWeights);
        // AdamW at 1e-3 × 1e-12 (weight decay 1e-4): 2 epochs of 32 images in batches of 16, at most 4 steps.
        ModelTestSupport.AssertLearnedWeightsKept(original, trained, "comes from the classifier's weights",
            Microsoft.ML.Residual.Training.OptimizerKind.AdamW, steps: 4, rate: 1e-3 * 1e-12, weightDecay: 1e-4, actualPrefix: "encoder.");

        SegmentationMetrics metrics = ml.Segmentation().Evaluate(model.Transform(data), labelColumnName: "Mask", numClasses: 3);
        Assert.AreEqual(32L * Size * Size, metrics.CountedPixels);

        // A PredictionEngine over the segmenter alone, on pixel vectors of the same images.
        var pixelModel = ml.Transforms.UNetSegmenter(new SegmenterOptions { Architecture = "unet_resnet18", NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16 })
            .Fit(ml.Data.LoadFromEnumerable(Shapes(16, seed: 4)));
        var engine = ml.Model.CreatePredictionEngine<ImageOnly, Segmented>(pixelModel);
        Segmented result = engine.Predict(new ImageOnly { Image = Shapes(1, seed: 9)[0].Image });
        Assert.AreEqual(Size * Size, result.PredictedMask.Length);
        Assert.IsTrue(result.PredictedMask.All(v => v < 3));
        Assert.AreEqual(3 * Size * Size, result.MaskScore.Length);
    }

    [TestMethod]
    public void MaskImageOfAnotherSizeThanItsImage_IsRejectedNamingTheRow()
    {
        var ml = new MLContext(seed: 1);
        string folder = Data.DataTestSupport.NewFolder(TestContext);
        var files = Shapes(6, seed: 3).Select((row, i) =>
        {
            Data.DataTestSupport.WriteRgbPng(System.IO.Path.Combine(folder, $"image{i}.png"), row.Image, Size, Size);
            int maskSize = i == 4 ? Size / 2 : Size;
            Data.DataTestSupport.WriteGrayPng(System.IO.Path.Combine(folder, $"mask{i}.png"), new byte[maskSize * maskSize], maskSize, maskSize);
            return new FileRow { ImagePath = $"image{i}.png", MaskPath = $"mask{i}.png" };
        }).ToList();
        var pipeline = ml.Transforms.LoadImages("Image", folder, "ImagePath")
            .Append(ml.Transforms.LoadImages("Mask", folder, "MaskPath"))
            .Append(ml.Transforms.UNetSegmenter(new SegmenterOptions { NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 4 }));
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => pipeline.Fit(ml.Data.LoadFromEnumerable(files)));
        StringAssert.Contains(error.Message, "Row 4");
        StringAssert.Contains(error.Message, $"is {Size}×{Size} but mask column 'Mask' is {Size / 2}×{Size / 2}");
    }

    public sealed class FileRow
    {
        public string ImagePath { get; set; } = string.Empty;

        public string MaskPath { get; set; } = string.Empty;
    }

    [TestMethod]
    public void Augmentation_MovesImageAndMaskTogether()
    {
        var ml = new MLContext(seed: 1);
        // Channel 0 holds 100 × the class of each pixel, so the augmented mask can be checked against the augmented image.
        var rows = Shapes(24, seed: 5).Select(r => new ShapeRow
        {
            Mask = r.Mask,
            Image = Enumerable.Range(0, 3 * Size * Size).Select(i => i < Size * Size ? 100f * r.Mask[i] : r.Image[i]).ToArray(),
        }).ToList();
        var options = new SegmenterOptions
        {
            NumClasses = 3, ImageWidth = Size, ImageHeight = Size, BatchSize = 8, Seed = 2,
            Augmentation = new Microsoft.ML.Residual.Data.ImageAugmentation { HorizontalFlipProbability = 0.5, CropPadding = 4, RandomResizedCropScale = (0.5, 1.0) },
        };
        var reader = UNetSegmenterEstimator.CreateReader(ml.Data.LoadFromEnumerable(rows), "Image", null, options);
        int checkedPixels = 0, ignored = 0;
        foreach (var batch in reader.ReadEpoch(1))
        {
            using (batch)
            {
                float[] pixels = batch.Images.data<float>().ToArray();
                long[] labels = batch.Labels!.data<long>().ToArray();
                CollectionAssert.AreEqual(new long[] { batch.Count, Size, Size }, batch.Labels.shape);
                for (int n = 0; n < batch.Count; n++)
                for (int p = 0; p < Size * Size; p++)
                {
                    float value = pixels[n * 3 * Size * Size + p];
                    long label = labels[n * Size * Size + p];
                    if (label < 0)
                    {
                        ignored++;
                        Assert.AreEqual(0f, value, "ignored mask pixels are the padding");
                        continue;
                    }

                    if (value is 0f or 100f or 200f)
                    {
                        Assert.AreEqual(value / 100, label, $"image {n}, pixel {p}: the mask moved with the image");
                        checkedPixels++;
                    }
                }
            }
        }

        Assert.IsTrue(checkedPixels > 24 * Size * Size / 2, $"{checkedPixels} pixels checked (the rest lie on blended edges or in the padding)");
        Assert.IsTrue(ignored > 0, "padding produced ignored pixels");
    }

    [TestMethod]
    public void ClassWeights_WeighTheCrossEntropyPerClass()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var targets = TorchSharp.torch.tensor(new long[] { 0, 1, 1, 2 }, new long[] { 1, 2, 2 });
        var logits = TorchSharp.torch.randn(1, 3, 2, 2, generator: new TorchSharp.torch.Generator(seed: 3));
        float[] perPixel = TorchSharp.torch.nn.functional.cross_entropy(logits, targets, reduction: TorchSharp.torch.nn.Reduction.None).flatten().data<float>().ToArray();
        float[] weights = { 1f, 3f, 0.5f };
        double expected = (perPixel[0] * 1 + perPixel[1] * 3 + perPixel[2] * 3 + perPixel[3] * 0.5) / (1 + 3 + 3 + 0.5);
        // Each kernel's per-pixel loss log Σexp(z) − z_y (C = 3) is within γ_{C+4}·(1 + |log Σexp z| + |z_y|) of exact (the
        // sum's relative error becomes an absolute one through the log; the max, the log's result and the difference round
        // with their magnitudes); the library's weighted mean of four adds γ₅ of Σw|ℓ|/Σw.
        double[] pixelScale = logits.to_type(TorchSharp.torch.float64).logsumexp(1).abs().flatten().data<double>().Zip(
            logits.to_type(TorchSharp.torch.float64).gather(1, targets.unsqueeze(1)).abs().flatten().data<double>(), (l, z) => 1 + l + z).ToArray();
        double[] w = { 1, 3, 3, 0.5 };
        double bound = (2 * Numerics.Gamma(3 + 4) * w.Zip(pixelScale, (a, b) => a * b).Sum() + Numerics.Gamma(5) * w.Zip(perPixel, (a, b) => a * Math.Abs(b)).Sum()) / w.Sum();
        Assert.AreEqual(expected, Microsoft.ML.Residual.Training.ClassificationLosses.CrossEntropy(logits, targets, weights).item<float>(), bound);
    }

    [TestMethod]
    public void CancelledSegmenterFit_ResumesFromItsCheckpointDirectory()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Shapes(32, seed: 1));
        string directory = ModelTestSupport.TempFile(TestContext, "-unet-checkpoints");
        using var cancel = new System.Threading.CancellationTokenSource();
        SegmenterOptions Options(IProgress<EpochReport> progress) => new()
        {
            Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 2, BaseWidth = 8 },
            NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 3, BatchSize = 16, CheckpointDirectory = directory, Progress = progress,
        };
        var first = Options(new SynchronousProgress<EpochReport>(r => { if (r.Epoch == 1) cancel.Cancel(); }));
        first.CancellationToken = cancel.Token;
        Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.UNetSegmenter(first).Fit(train));
        var reports = new List<EpochReport>();
        ml.Transforms.UNetSegmenter(Options(new SynchronousProgress<EpochReport>(reports.Add))).Fit(train);
        CollectionAssert.AreEqual(new[] { 2, 3 }, reports.Select(r => r.Epoch).ToArray());
    }

    [TestMethod]
    public void BinaryTaskWithDiceLoss_SeparatesForegroundFromBackground()
    {
        var ml = new MLContext(seed: 1);
        List<ShapeRow> Binary(int count, int seed) => Shapes(count, seed).Select(r => new ShapeRow { Image = r.Image, Mask = r.Mask.Select(v => v == 0 ? 0u : 1u).ToArray() }).ToList();
        var test = Binary(32, seed: 2);
        var reports = new List<EpochReport>();
        ITransformer model = ml.Transforms.UNetSegmenter(new SegmenterOptions
        {
            Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 3, BaseWidth = 16 },
            NumClasses = 2, ImageWidth = Size, ImageHeight = Size, Epochs = 8, BatchSize = 16, Seed = 1, LearningRate = 1e-2,
            Loss = SegmentationLoss.Dice, ValidationSet = ml.Data.LoadFromEnumerable(test), EarlyStoppingPatience = 3, Progress = new SynchronousProgress<EpochReport>(reports.Add),
        }).Fit(ml.Data.LoadFromEnumerable(Binary(128, seed: 1)));
        SegmentationMetrics metrics = ml.Segmentation().Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test)), numClasses: 2);
        TestContext.WriteLine(metrics.ToString());
        Assert.IsTrue(metrics.PerClassIoU[1] >= 0.8, metrics.ToString());
        // The same model on the same images, batched differently: only pixels whose top two logits lie within rounding of
        // each other can be classed differently, a handful of the 32·32² pixels; 0.01 of mean IoU is ≳ 100 pixels here.
        Assert.AreEqual(reports.Max(r => r.ValidationMeanIoU!.Value), metrics.MeanIoU, 0.01, "the best epoch by mean IoU is the model returned");
    }

    [TestMethod]
    public void MaskClassAtOrAboveNumClasses_IsRejectedNamingTheRowAndPixel()
    {
        var ml = new MLContext(seed: 1);
        List<ShapeRow> rows = Shapes(8, seed: 1);
        rows[3].Mask[2 * Size + 5] = 7;
        var estimator = ml.Transforms.UNetSegmenter(new SegmenterOptions { NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 4 });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(error.Message, "Mask column 'Mask', row 3");
        StringAssert.Contains(error.Message, "x 5, y 2");
        StringAssert.Contains(error.Message, "NumClasses is 3");
    }

    [TestMethod]
    public void EmptyDataOrMissingMaskColumn_AreRejectedClearly()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.Transforms.UNetSegmenter(new SegmenterOptions { NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 1 });
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(new List<ShapeRow>()))).Message, "empty");
        var noMask = ml.Transforms.UNetSegmenter(new SegmenterOptions { MaskColumnName = "Labels", NumClasses = 3, ImageWidth = Size, ImageHeight = Size });
        var error = Assert.ThrowsExactly<ArgumentException>(() => noMask.Fit(ml.Data.LoadFromEnumerable(Shapes(2, seed: 1))));
        StringAssert.Contains(error.Message, "'Labels'");
        StringAssert.Contains(error.Message, "Mask");
    }

    [TestMethod]
    public void ValidationSetWithoutTheMaskColumn_IsRejectedNamingTheSetting()
    {
        var ml = new MLContext(seed: 1);
        IDataView shapes = ml.Data.LoadFromEnumerable(Shapes(4, seed: 2));
        IDataView noMasks = ml.Transforms.DropColumns("Mask").Fit(shapes).Transform(shapes);
        var estimator = ml.Transforms.UNetSegmenter(new SegmenterOptions
        {
            Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 2, BaseWidth = 8 }, NumClasses = 3,
            ImageWidth = Size, ImageHeight = Size, Epochs = 1, ValidationSet = noMasks,
        });
        var error = Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(Shapes(4, seed: 1))));
        StringAssert.Contains(error.Message, "SegmenterOptions.ValidationSet");
        StringAssert.Contains(error.Message, "'Mask'");
    }

    [TestMethod]
    public void NonUNetArchitectureOrTooFewClasses_AreRejected()
    {
        var ml = new MLContext(seed: 1);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.UNetSegmenter(new SegmenterOptions { Architecture = "resnet18" })).Message, "unet_resnet18");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.UNetSegmenter(new SegmenterOptions { NumClasses = 1 })).Message, "NumClasses");
    }

    [TestMethod]
    public void LabelSmoothingAndBatchMixing_TrainASegmenter_AndSmoothingIsRefusedForLossesWithoutCrossEntropy()
    {
        var ml = new MLContext(seed: 1);
        var options = new SegmenterOptions
        {
            Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 2, BaseWidth = 8 }, NumClasses = 3,
            ImageWidth = Size, ImageHeight = Size, Epochs = 2, BatchSize = 8, Seed = 1, LabelSmoothing = 0.1, MixupAlpha = 0.4, CutMixAlpha = 1.0,
        };
        var estimator = ml.Transforms.UNetSegmenter(options);
        TrainingOptions loop = estimator.CheckTrainingOptions();
        Assert.AreEqual((0.1, 0.4, 1.0), (loop.LabelSmoothing, loop.MixupAlpha, loop.CutMixAlpha), "the loop gets the segmenter's settings");
        var reports = new List<EpochReport>();
        options.Progress = new SynchronousProgress<EpochReport>(reports.Add);
        ITransformer model = ml.Transforms.UNetSegmenter(options).Fit(ml.Data.LoadFromEnumerable(Shapes(24, seed: 1)));
        Assert.AreEqual(2, reports.Count);
        Assert.IsTrue(reports.All(r => double.IsFinite(r.TrainingLoss)), string.Join(", ", reports.Select(r => r.TrainingLoss)));
        Assert.AreEqual(4, model.Transform(ml.Data.LoadFromEnumerable(Shapes(4, seed: 2))).GetColumn<uint[]>("PredictedMask").Count());

        foreach (SegmentationLoss loss in new[] { SegmentationLoss.Dice, SegmentationLoss.Focal })
        {
            var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.UNetSegmenter(new SegmenterOptions { Loss = loss, LabelSmoothing = 0.1 }));
            StringAssert.Contains(error.Message, "SegmenterOptions.LabelSmoothing");
        }
    }

    [TestMethod]
    public void SmoothedCrossEntropy_MixesTheTargetWithTheUniformDistribution_OverLabelledPixels()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var targets = TorchSharp.torch.tensor(new long[] { 0, 1, 2, -1, 1, 0 }, new long[] { 1, 2, 3 });
        var logits = TorchSharp.torch.randn(1, 3, 2, 3, generator: new TorchSharp.torch.Generator(seed: 2));
        const double smoothing = 0.2;
        float smoothed = Microsoft.ML.Residual.Training.ClassificationLosses.CrossEntropy(logits, targets, null, smoothing).item<float>();
        // By hand: per labelled pixel, (1 − ε)·(−log p_y) + ε·mean_k(−log p_k); the mean over the 5 labelled pixels.
        float[] logProbabilities = TorchSharp.torch.nn.functional.log_softmax(logits, 1).data<float>().ToArray(); // [k, pixel]
        long[] y = targets.data<long>().ToArray();
        double sum = 0, magnitude = 0;
        int labelled = 0;
        for (int p = 0; p < 6; p++)
        {
            if (y[p] < 0) continue;
            double uniform = -Enumerable.Range(0, 3).Average(k => (double)logProbabilities[k * 6 + p]);
            double term = (1 - smoothing) * -logProbabilities[y[p] * 6 + p] + smoothing * uniform;
            sum += term;
            magnitude += Math.Abs(term) + Enumerable.Range(0, 3).Sum(k => Math.Abs(logProbabilities[k * 6 + p]));
            labelled++;
        }

        // float32 work on at most 3 log-probabilities per pixel and a sum of 5 pixels: within γ₁₆ of the magnitudes involved.
        Assert.AreEqual(sum / labelled, smoothed, Numerics.Gamma(16) * magnitude / labelled);
        Assert.AreNotEqual(Microsoft.ML.Residual.Training.ClassificationLosses.CrossEntropy(logits, targets, null).item<float>(), smoothed);
    }

    [TestMethod]
    public void Losses_AreNearZeroForConfidentCorrectLogits_AndFocalWithGammaZeroIsCrossEntropy()
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var targets = TorchSharp.torch.tensor(new long[] { 0, 1, 2, -1, 1, 0 }, new long[] { 1, 2, 3 });
        var logits = TorchSharp.torch.nn.functional.one_hot(targets.AtLeast(0L), 3).permute(0, 3, 1, 2).to_type(TorchSharp.torch.float32).Times(20.0);
        // Exactly, both losses are below N·2ε over the N = 5 valid pixels, ε = 2e⁻²⁰ the wrong classes' probability; float32
        // rounds the work on logits of 20 (softmax, log-sum-exp, sums of at most 6 terms, the Dice ratio) by ≤ γ₁₆ of 41.
        double nearZero = 5 * 2 * 2 * Math.Exp(-20) + Numerics.Gamma(16) * 41;
        Assert.IsTrue(Microsoft.ML.Residual.Segmentation.SegmentationLosses.Dice(logits, targets).item<float>() < nearZero);
        Assert.IsTrue(Microsoft.ML.Residual.Training.ClassificationLosses.CrossEntropy(logits, targets, null).item<float>() < nearZero);
        var random = TorchSharp.torch.randn(1, 3, 2, 3, generator: new TorchSharp.torch.Generator(seed: 1));
        float focal = Microsoft.ML.Residual.Training.ClassificationLosses.Focal(random, targets, null, gamma: 0).item<float>();
        float crossEntropy = Microsoft.ML.Residual.Training.ClassificationLosses.CrossEntropy(random, targets, null).item<float>();
        // γ = 0 makes the factor (1 − p)⁰ exactly 1: both are means of the same −log pᵧ over the 5 valid pixels, summed
        // perhaps in other orders, each within γ₆ of Σ|log pᵧ|/5.
        double terms = -TorchSharp.torch.nn.functional.log_softmax(random, 1).gather(1, targets.AtLeast(0L).unsqueeze(1)).squeeze(1)
            .mul(targets.NotBelow(0).to_type(TorchSharp.torch.float32)).sum().item<float>();
        Assert.AreEqual(crossEntropy, focal, 2 * Numerics.Gamma(6) * terms / 5, "ignored pixels are excluded from both");
        Assert.IsTrue(Microsoft.ML.Residual.Training.ClassificationLosses.Focal(random, targets, null, gamma: 2).item<float>() < focal);
    }
}
