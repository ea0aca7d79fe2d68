using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using SkiaSharp;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The input pipeline alone, as training uses it: image files through LoadImages and ResizeImages (what the estimators
    /// build) or pixel vectors in memory, read by <see cref="ImageBatchReader"/> with a flip augmentation
    /// into float batches, one epoch, the batches only disposed. The peer is benchmarks/peers/input_peer.py.
    /// </summary>
    internal static class InputMeasurements
    {
        /// <summary>Source images are this many pixels a side; the pipeline resizes them to the measured size.</summary>
        public const int SourceSize = 256;

        /// <summary>
        /// A folder of <paramref name="count"/> RGB images (<paramref name="format"/> "png" or "jpeg") with smooth shapes and
        /// some noise, written once and reused; listed in files.txt.
        /// </summary>
        public static string Files(string format, int count)
        {
            string folder = Path.Combine(Path.GetTempPath(), "residualml-bench-input", $"{format}-{count}x{SourceSize}");
            string list = Path.Combine(folder, "files.txt");
            if (File.Exists(list)) return folder;
            Directory.CreateDirectory(folder);
            var names = new List<string>();
            var random = new Random(11);
            using var bitmap = new SKBitmap(new SKImageInfo(SourceSize, SourceSize, SKColorType.Rgba8888, SKAlphaType.Opaque));
            for (int i = 0; i < count; i++)
            {
                double fx = random.NextDouble() * 0.1, fy = random.NextDouble() * 0.1, phase = random.NextDouble() * 6;
                for (int y = 0; y < SourceSize; y++)
                for (int x = 0; x < SourceSize; x++)
                {
                    byte Channel(int c) => (byte)Math.Clamp(128 + 90 * Math.Sin(fx * x * (c + 1) + fy * y + phase + c) + random.Next(-12, 13), 0, 255);
                    bitmap.SetPixel(x, y, new SKColor(Channel(0), Channel(1), Channel(2)));
                }

                string name = $"image{i:D4}.{(format == "png" ? "png" : "jpg")}";
                using var encoded = bitmap.Encode(format == "png" ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 90);
                File.WriteAllBytes(Path.Combine(folder, name), encoded.ToArray());
                names.Add(name);
            }

            File.WriteAllLines(list + ".tmp", names);
            File.Move(list + ".tmp", list, overwrite: true);
            return folder;
        }

        private sealed class FileRow
        {
            public string Path { get; set; } = "";

            public string Label { get; set; } = "";
        }

        private sealed class PixelRow
        {
            public float[] Pixels { get; set; } = Array.Empty<float>();

            public string Label { get; set; } = "";
        }

        /// <summary>
        /// Epochs timed after the first (which warms up the code and fills the cache): in-memory epochs take a fraction of a
        /// second, too short to time alone on a machine whose speed drifts.
        /// </summary>
        public static int TimedEpochs(string source) => source == "memory" ? 10 : 1;

        /// <summary>
        /// Images/s of the epochs after the first (<see cref="TimedEpochs"/>) from <paramref name="source"/>: "png"/"jpeg"
        /// files decoded every epoch, or "memory": <paramref name="rows"/> pixel vectors held in memory.
        /// </summary>
        public static double Measure(string source, int workers, int size, int batch, int rows)
        {
            var ml = new MLContext(1);
            IDataView data;
            string column;
            if (source == "memory")
            {
                var random = new Random(5);
                var schema = SchemaDefinition.Create(typeof(PixelRow));
                schema[nameof(PixelRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3 * size * size);
                var pixels = Enumerable.Range(0, rows).Select(i => new PixelRow
                {
                    Pixels = Enumerable.Range(0, 3 * size * size).Select(_ => (float)random.Next(256)).ToArray(), Label = $"c{i % 10}",
                }).ToList();
                data = ml.Data.LoadFromEnumerable(pixels, schema);
                column = nameof(PixelRow.Pixels);
            }
            else
            {
                string folder = Files(source, rows);
                var files = File.ReadAllLines(Path.Combine(folder, "files.txt")).Select((p, i) => new FileRow { Path = p, Label = $"c{i % 10}" });
                // What the estimators read for an image column (ImageInput.TrainingImages): resized images, which the reader
                // turns into pixels itself.
                var pipeline = ml.Transforms.LoadImages("Image", folder, nameof(FileRow.Path))
                    .Append(ml.Transforms.ResizeImages("Resized", size, size, "Image"));
                IDataView listed = ml.Data.LoadFromEnumerable(files);
                data = pipeline.Fit(listed).Transform(listed);
                column = "Resized";
            }

            data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
            var reader = new ImageBatchReader(data, new ImageBatchOptions
            {
                ImageColumnName = column, Width = size, Height = size, BatchSize = batch, Workers = workers, Seed = 1,
                CacheInMemory = source == "memory", Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0.5 },
            });

            long Epoch(int epoch)
            {
                long images = 0;
                foreach (ImageBatch b in reader.ReadEpoch(epoch))
                {
                    images += b.Images.shape[0];
                    b.Dispose();
                }

                return images;
            }

            // As during training: freed native memory stays in the process, so batch tensors reuse pages (TrainingLoop).
            using IDisposable allocator = Microsoft.ML.Residual.Training.NativeAllocator.EnterTraining();
            Epoch(0);
            var clock = Stopwatch.StartNew();
            long count = 0;
            for (int epoch = 1; epoch <= TimedEpochs(source); epoch++) count += Epoch(epoch);
            return count / clock.Elapsed.TotalSeconds;
        }
    }
}
