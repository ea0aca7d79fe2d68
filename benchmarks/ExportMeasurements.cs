using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Segmentation;
using TorchSharp;
using static TorchSharp.torch;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The `export` mode (issue 27): each scoring precision of the exported graph against the float32 graph. Speed and size: ResNet-18,
    /// ResNet-50 and a U-Net over ResNet-18 at --size (default 224; the U-Net at half of it), ONNX Runtime sessions with the default
    /// settings, the precisions alternating, the median of the runs at batch 1 and batch 64. Accuracy: a classifier trained with the
    /// defaults on generated datasets of the recipes benchmark and a U-Net on generated shapes, saved, converted with
    /// ml.Model.SaveForScoring (INT8 calibrated on 256 training images; test-time augmentation) and evaluated on the held-out images.
    /// </summary>
    internal static class ExportMeasurements
    {
        private static readonly (string Name, Func<byte[], byte[]?, byte[]> Convert)[] Variants =
        {
            ("float32", (graph, _) => graph),
            ("float32, BatchNorm folded", (graph, _) => OnnxModelConverter.FoldBatchNorm(graph)),
            ("float16", (graph, _) => OnnxModelConverter.Convert(graph, OnnxPrecision.Float16)),
            ("INT8", (graph, calibration) => OnnxModelConverter.Convert(graph, OnnxPrecision.Int8, Rows(calibration!))),
        };

        public static List<string> Speed(int size, int runs, IEnumerable<string> architectures)
        {
            var rows = new List<string>
            {
                "| network, input | precision | file MB | × float32 size | batch 1 ms | × float32 speed | batch 64 ms | × float32 speed |",
                "|---|---|---|---|---|---|---|---|",
            };
            foreach (string arch in architectures)
            {
                int side = arch.StartsWith("unet", StringComparison.Ordinal) ? size / 2 : size;
                using var scope = NewDisposeScope();
                nn.Module<Tensor, Tensor> model = arch.StartsWith("unet", StringComparison.Ordinal) ? ResidualModels.Create(arch, 3) : ResidualModels.Create(arch, numClasses: 1000);
                // BatchNorm statistics of real activations (one training-mode pass), as in a trained network.
                model.train();
                using (no_grad()) model.call(torch.randn(new long[] { 8, 3, side, side }, generator: new Generator(1)));
                model.eval();
                byte[] graph = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, side, side }, new OnnxExportOptions { Normalization = PixelNormalization.ImageNet(3) });
                byte[] calibration = Pixels(64, side, 2);
                var graphs = Variants.Select(v => (v.Name, Bytes: v.Convert(graph, calibration))).ToList();
                byte[] one = Pixels(1, side, 3), many = Pixels(64, side, 4);
                var sessions = graphs.Select(g => new InferenceSession(g.Bytes)).ToList();
                try
                {
                    var single = graphs.Select(_ => new List<double>()).ToList();
                    var batch = graphs.Select(_ => new List<double>()).ToList();
                    foreach (var session in sessions) Time(session, one, side, 1);
                    for (int r = 0; r < runs; r++)
                    {
                        for (int v = 0; v < sessions.Count; v++) single[v].Add(Enumerable.Range(0, 10).Select(_ => Time(sessions[v], one, side, 1)).Average());
                        for (int v = 0; v < sessions.Count; v++) batch[v].Add(Time(sessions[v], many, side, 64));
                    }

                    double baseSize = graphs[0].Bytes.Length, baseOne = Median(single[0]), baseMany = Median(batch[0]);
                    for (int v = 0; v < graphs.Count; v++)
                    {
                        double ms1 = Median(single[v]), ms64 = Median(batch[v]);
                        rows.Add(string.Create(CultureInfo.InvariantCulture,
                            $"| {arch}, {side}² | {graphs[v].Name} | {graphs[v].Bytes.Length / 1048576.0:F1} | {graphs[v].Bytes.Length / baseSize:F2} | {ms1:F1} | {baseOne / ms1:F2} | {ms64:F0} | {baseMany / ms64:F2} |"));
                        Console.WriteLine(rows[^1]);
                    }
                }
                finally
                {
                    foreach (var session in sessions) session.Dispose();
                }
            }

            return rows;
        }

        public static List<string> Accuracy(bool quick, IEnumerable<string> datasetNames, string classifierOverride)
        {
            var rows = new List<string>
            {
                "| model, dataset (held-out images) | metric | float32 | float16 | INT8 min-max | INT8 percentile | float32, flip TTA | float32, flip and crops TTA | INT8 percentile, flip TTA |",
                "|---|---|---|---|---|---|---|---|---|",
            };
            string folder = Directory.CreateTempSubdirectory("residualml-export-").FullName;
            try
            {
                foreach (string name in datasetNames)
                {
                    var ml = new MLContext(seed: 1);
                    var clock = Stopwatch.StartNew();
                    if (name == "shapes-segmentation")
                    {
                        IDataView train = ml.Data.LoadFromEnumerable(SegmentationShapes(256, 1)), test = ml.Data.LoadFromEnumerable(SegmentationShapes(64, 2));
                        ITransformer model = ml.Transforms.UNetSegmenter(new SegmenterOptions
                        {
                            Architecture = "unet_resnet18", ImageColumnName = "Image", MaskColumnName = "Mask", NumClasses = 3, ImageWidth = SegmentationSize,
                            ImageHeight = SegmentationSize, Epochs = quick ? 3 : 12, BatchSize = 16, Seed = 1,
                        }).Fit(train);
                        double Measure(ITransformer scorer) => ml.Segmentation().Evaluate(scorer.Transform(test), labelColumnName: "Mask", predictedColumnName: "PredictedMask").MeanIoU;
                        rows.Add(Row($"unet_resnet18, shapes {SegmentationSize}² ({64})", "mean IoU", ml, model, train, folder, Measure, clock, classifier: false));
                        continue;
                    }

                    RecipeDatasets.Dataset dataset = RecipeDatasets.All(quick, Array.Empty<string>()).First(d => d.Name == name);
                    var (trainRows, testRows) = dataset.Load(ml);
                    ITransformer keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(trainRows);
                    IDataView trainData = keys.Transform(trainRows), testData = keys.Transform(testRows);
                    string architecture = classifierOverride.Length > 0 ? classifierOverride : dataset.Architecture;
                    ITransformer classifier = ml.Transforms.ResNetClassifier(new ImageClassifierOptions
                    {
                        ImageColumnName = nameof(RecipeDatasets.Row.Image), ImageWidth = dataset.Size, ImageHeight = dataset.Size,
                        Architecture = architecture, Epochs = dataset.Epochs, Seed = 1,
                    }).Fit(trainData);
                    double Top1(ITransformer scorer) => ml.MulticlassClassification.Evaluate(scorer.Transform(testData)).MicroAccuracy;
                    rows.Add(Row($"{architecture}, {dataset.Name} ({testRows.GetRowCount()})", "top-1", ml, classifier, trainData, folder, Top1, clock, classifier: true));
                }
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }

            return rows;
        }

        private static string Row(string what, string metric, MLContext ml, ITransformer model, IDataView train, string folder, Func<ITransformer, double> measure, Stopwatch clock,
            bool classifier)
        {
            double trained = clock.Elapsed.TotalSeconds;
            string single = Path.Combine(folder, "model.zip");
            ml.Model.Save(model, train.Schema, single);
            double Score(ScoringOptions? options)
            {
                if (options is null) return measure(ml.Model.Load(single, out _));
                string path = Path.Combine(folder, "converted.zip");
                options.CalibrationSet = train;
                ml.Model.SaveForScoring(single, path, options);
                return measure(ml.Model.Load(path, out _));
            }

            double f32 = Score(null);
            double f16 = Score(new ScoringOptions { Precision = OnnxPrecision.Float16 });
            double minMax = Score(new ScoringOptions { Precision = OnnxPrecision.Int8, Calibration = new OnnxCalibration { Method = CalibrationMethod.MinMax } });
            double percentile = Score(new ScoringOptions { Precision = OnnxPrecision.Int8 });
            double flip = Score(new ScoringOptions { TestTimeAugmentation = TestTimeAugmentation.Flip });
            double crops = classifier ? Score(new ScoringOptions { TestTimeAugmentation = TestTimeAugmentation.FlipAndCrops }) : double.NaN;
            double int8Flip = Score(new ScoringOptions { Precision = OnnxPrecision.Int8, TestTimeAugmentation = TestTimeAugmentation.Flip });
            string Points(double value) => string.Create(CultureInfo.InvariantCulture, $"{(value - f32) * 100:+0.0;-0.0;0.0}");
            string row = string.Create(CultureInfo.InvariantCulture,
                $"| {what} | {metric} | {f32:P1} | {f16:P1} ({Points(f16)}) | {minMax:P1} ({Points(minMax)}) | {percentile:P1} ({Points(percentile)}) | {flip:P1} ({Points(flip)}) | "
                + $"{(classifier ? $"{crops:P1} ({Points(crops)})" : "—")} | {int8Flip:P1} ({Points(int8Flip)}) |");
            Console.WriteLine($"{row} (trained in {trained:F0} s)");
            return row;
        }

        private const int SegmentationSize = 64;

        /// <summary>A row of the generated segmentation set: pixels CHW 0–255 and a class per pixel (0 background, 1 square, 2 disc).</summary>
        private sealed class SegmentationRow
        {
            [VectorType(3, SegmentationSize, SegmentationSize)]
            public float[] Image { get; set; } = Array.Empty<float>();

            [VectorType(SegmentationSize, SegmentationSize)]
            public uint[] Mask { get; set; } = Array.Empty<uint>();
        }

        // One to three squares and discs of random size, place and colour on a noisy background.
        private static List<SegmentationRow> SegmentationShapes(int count, int seed)
        {
            var random = new Random(seed);
            var rows = new List<SegmentationRow>();
            const int n = SegmentationSize;
            for (int i = 0; i < count; i++)
            {
                var image = new float[3 * n * n];
                var mask = new uint[n * n];
                float[] background = { random.Next(256), random.Next(256), random.Next(256) };
                for (int p = 0; p < n * n; p++)
                    for (int c = 0; c < 3; c++) image[c * n * n + p] = background[c];
                for (int shape = random.Next(1, 4); shape > 0; shape--)
                {
                    uint kind = (uint)random.Next(1, 3);
                    double radius = n * (0.08 + 0.12 * random.NextDouble()), cx = random.NextDouble() * n, cy = random.NextDouble() * n;
                    float[] colour = { random.Next(256), random.Next(256), random.Next(256) };
                    for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++)
                    {
                        bool inside = kind == 1 ? Math.Abs(x - cx) <= radius && Math.Abs(y - cy) <= radius : (x - cx) * (x - cx) + (y - cy) * (y - cy) <= radius * radius;
                        if (!inside) continue;
                        mask[y * n + x] = kind;
                        for (int c = 0; c < 3; c++) image[(c * n + y) * n + x] = colour[c];
                    }
                }

                for (int p = 0; p < image.Length; p++) image[p] = Math.Clamp(image[p] + random.Next(-20, 21), 0, 255);
                rows.Add(new SegmentationRow { Image = image, Mask = mask });
            }

            return rows;
        }

        private static double Time(InferenceSession session, byte[] pixels, int side, int batch)
        {
            float[] data = new float[batch * 3 * side * side];
            for (int i = 0; i < data.Length; i++) data[i] = pixels[i % pixels.Length];
            var input = NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), new DenseTensor(data, new[] { batch, 3, side, side }));
            var clock = Stopwatch.StartNew();
            using var results = session.Run(new[] { input });
            return clock.Elapsed.TotalMilliseconds;
        }

        private static byte[] Pixels(int count, int side, int seed)
        {
            var random = new Random(seed);
            var bytes = new byte[count * 3 * side * side];
            random.NextBytes(bytes);
            return bytes;
        }

        private static IEnumerable<float[]> Rows(byte[] pixels)
        {
            int length = pixels.Length / 64;
            for (int r = 0; r < 64; r++) yield return pixels.Skip(r * length).Take(length).Select(b => (float)b).ToArray();
        }

        private static double Median(List<double> values)
        {
            var sorted = values.OrderBy(v => v).ToList();
            return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
        }
    }
}
