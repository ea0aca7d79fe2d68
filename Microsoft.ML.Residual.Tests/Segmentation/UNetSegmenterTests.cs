using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Tests.Models;
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

    private static double MeanIoU(IReadOnlyList<uint[]> truth, IReadOnlyList<uint[]> predicted, int classes)
    {
        var confusion = new long[classes * classes];
        for (int i = 0; i < truth.Count; i++)
        for (int p = 0; p < truth[i].Length; p++) confusion[truth[i][p] * classes + predicted[i][p]]++;
        return ClassifierTrainer.MeanIoU(confusion);
    }

    [TestMethod]
    public void UNetSegmenter_LearnsShapesToHighMeanIoUOnHeldOutImages_AndSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Shapes(192, seed: 1));
        List<ShapeRow> testRows = Shapes(60, seed: 2);
        IDataView test = ml.Data.LoadFromEnumerable(testRows);
        var reports = new List<EpochReport>();
        var estimator = ml.Transforms.UNetSegmenter(new SegmenterOptions
        {
            Architecture = "unet_resnet18", NumClasses = 3, ImageWidth = Size, ImageHeight = Size, Epochs = 6, BatchSize = 16, Seed = 1,
            LearningRate = 3e-3, Loss = SegmentationLoss.CrossEntropyDice, ValidationSet = test, Progress = new Progress(reports.Add),
        });
        // ML.NET builds SchemaShapes internally (pipelines call GetOutputSchema before Fit); the test does the same by reflection.
        var create = typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })!;
        SchemaShape declared = estimator.GetOutputSchema((SchemaShape)create.Invoke(null, new object[] { train.Schema })!);
        ITransformer model = estimator.Fit(train);
        IDataView scored = model.Transform(test);
        Assert.AreEqual(NumberDataViewType.UInt32, ((VectorDataViewType)scored.Schema["PredictedMask"].Type).ItemType);
        Assert.AreEqual(3 * Size * Size, ((VectorDataViewType)scored.Schema["MaskScore"].Type).Size);
        foreach (string column in new[] { "PredictedMask", "MaskScore" })
        {
            SchemaShape.Column shape = declared.Single(c => c.Name == column);
            Assert.AreEqual(((VectorDataViewType)scored.Schema[column].Type).ItemType, shape.ItemType, column);
            Assert.IsFalse(shape.IsKey, column);
        }

        uint[][] predicted = scored.GetColumn<uint[]>("PredictedMask").ToArray();
        double meanIoU = MeanIoU(testRows.Select(r => r.Mask).ToList(), predicted, 3);
        TestContext.WriteLine($"mean IoU {meanIoU:F3}; epochs: {string.Join(", ", reports.Select(r => $"{r.ValidationMeanIoU:F3}"))}");
        Assert.IsTrue(meanIoU >= 0.85, $"mean IoU {meanIoU:F3}");
        Assert.AreEqual(reports.Max(r => r.ValidationMeanIoU!.Value), meanIoU, 1e-3, "the best epoch's weights are kept, and the trainer's IoU equals the scored one");

        string path = ModelTestSupport.TempFile(TestContext, "-segmenter.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 3);
        ITransformer loaded = fresh.Model.Load(path, out _);
        uint[][] again = loaded.Transform(fresh.Data.LoadFromEnumerable(testRows)).GetColumn<uint[]>("PredictedMask").ToArray();
        for (int i = 0; i < predicted.Length; i++) CollectionAssert.AreEqual(predicted[i], again[i], $"row {i}");
    }

    private sealed class Progress : IProgress<EpochReport>
    {
        private readonly Action<EpochReport> report;

        public Progress(Action<EpochReport> report) => this.report = report;

        public void Report(EpochReport value) => report(value);
    }
}
