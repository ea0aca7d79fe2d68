using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The `gpu` mode: issue 22's table in one command, for the GPU machine (docs/performance.md, "On a GPU"). Per network:
    /// a bare TorchSharp loop on one batch already on the device; our training loop (<see cref="TrainingLoop"/>) on
    /// the same batch in each precision; the estimator's <c>Fit</c> over pixel vectors in memory in each precision; and,
    /// for ResNet-50, the estimator over PNG files; the classifiers' <c>Fit</c> with channels-last batches and weights; and
    /// CIFAR ResNet-20 on 28² one-channel images over a whole <c>Fit</c> (issue 22's Fashion-MNIST row). The PyTorch peer (benchmarks/peers/gpu_peer.py) runs the same work when
    /// its interpreter is found. On a machine without CUDA it runs on the CPU at small sizes (a smoke run, --quick).
    /// </summary>
    internal static class GpuMeasurements
    {
        private const int Classes = 10;

        /// <summary>One workload: a network at a size and batch, and how many steps (or batches per epoch) to time.</summary>
        private sealed record Work(string Arch, int Size, int Batch, int Steps);

        public static List<string> Run(bool quick, string python, string peerScript, string filesFolder)
        {
            bool cuda = torch.cuda.is_available();
            Device device = cuda ? torch.CUDA : torch.CPU;
            Console.WriteLine($"device: {(cuda ? $"CUDA, {torch.cuda.device_count()} device(s)" : "CPU (no CUDA: a smoke run at small sizes)")}");
            bool small = quick || !cuda;
            Work[] works = small
                ? new[] { new Work("resnet50", 32, 4, 2), new Work("densenet121", 32, 4, 2), new Work("unet_resnet18", 32, 2, 2) }
                : new[] { new Work("resnet50", 224, 64, 30), new Work("densenet121", 224, 64, 30), new Work("unet_resnet18", 256, 16, 30) };
            TrainingPrecision[] precisions = { TrainingPrecision.Float32, TrainingPrecision.BFloat16, TrainingPrecision.Float16 };
            bool hasPeer = File.Exists(peerScript) && Runs(python, "-c \"import torch, torchvision\"");

            var rows = new List<string>
            {
                $"| {(cuda ? "GPU" : "CPU smoke run")} | precision | bare TorchSharp loop | our loop, batch on the device | estimator Fit, pixels in memory (last epoch) | PyTorch | loop / bare | estimator / bare | estimator / PyTorch |",
                "|---|---|---|---|---|---|---|---|---|",
            };
            foreach (Work work in works)
            {
                double bare = Safe(() => BareLoop(work, device), $"bare {work.Arch}");
                foreach (TrainingPrecision precision in precisions)
                {
                    double loop = Safe(() => OurLoop(work, device, precision), $"loop {work.Arch} {precision}");
                    double estimator = Safe(() => Estimator(work, cuda, precision), $"estimator {work.Arch} {precision}");
                    double peer = hasPeer && precision != TrainingPrecision.Float16 && !IsSegmentation(work.Arch)
                        ? Safe(() => Peer(python, peerScript, $"loop {work.Arch} --size {work.Size} --batch {work.Batch} --steps {work.Steps} --precision {Name(precision)}"), $"peer {work.Arch} {precision}")
                        : double.NaN;
                    rows.Add($"| {work.Arch} {work.Size}², batch {work.Batch} | {Name(precision)} | {Figure(bare)} | {Figure(loop)} | {Figure(estimator)} | {Figure(peer)} | "
                        + $"{Ratio(loop, bare)} | {Ratio(estimator, bare)} | {Ratio(estimator, peer)} |");
                    Console.WriteLine(rows[^1]);
                }
            }

            // Image files: the estimator reads, decodes and resizes on its Workers threads; the peer uses a DataLoader with as many workers.
            Work files = small ? new Work("resnet50", 32, 4, 4) : new Work("resnet50", 224, 64, 24);
            int workers = Math.Clamp(Environment.ProcessorCount / 2, 1, 8);
            string folder = WritePngFolder(filesFolder, files.Batch * files.Steps);
            rows.Add("");
            rows.Add($"| {files.Arch} from {files.Batch * files.Steps} PNG files (256², resized to {files.Size}²), batch {files.Batch}, {workers} workers | precision | estimator Fit (last epoch) | PyTorch DataLoader | ours / PyTorch |");
            rows.Add("|---|---|---|---|---|");
            foreach (TrainingPrecision precision in new[] { TrainingPrecision.Float32, TrainingPrecision.BFloat16 })
            {
                double ours = Safe(() => FromFiles(files, folder, workers, cuda, precision), $"files {precision}");
                double peer = hasPeer
                    ? Safe(() => Peer(python, peerScript, $"files {files.Arch} --folder \"{folder}\" --size {files.Size} --batch {files.Batch} --workers {workers} --precision {Name(precision)}"), $"peer files {precision}")
                    : double.NaN;
                rows.Add($"| | {Name(precision)} | {Figure(ours)} | {Figure(peer)} | {Ratio(ours, peer)} |");
                Console.WriteLine(rows[^1]);
            }

            // Channels-last: our batches and convolution weights (ChannelsLast = true) against PyTorch's
            // model.to(memory_format=torch.channels_last) with channels-last inputs.
            rows.Add("");
            rows.Add("| channels-last | precision | estimator Fit, default layout | estimator Fit, channels-last | PyTorch loop, channels-last | channels-last / default | channels-last / PyTorch |");
            rows.Add("|---|---|---|---|---|---|---|");
            foreach (Work work in works.Where(w => !IsSegmentation(w.Arch)))
            {
                foreach (TrainingPrecision precision in new[] { TrainingPrecision.Float32, TrainingPrecision.BFloat16 })
                {
                    double usual = Safe(() => Estimator(work, cuda, precision, channelsLast: false), $"estimator {work.Arch} {precision} default layout");
                    double channelsLast = Safe(() => Estimator(work, cuda, precision, channelsLast: true), $"estimator {work.Arch} {precision} channels-last");
                    double peer = hasPeer
                        ? Safe(() => Peer(python, peerScript, $"loop {work.Arch} --size {work.Size} --batch {work.Batch} --steps {work.Steps} --precision {Name(precision)} --channels-last"), $"peer {work.Arch} {precision} channels-last")
                        : double.NaN;
                    rows.Add($"| {work.Arch} {work.Size}², batch {work.Batch} | {Name(precision)} | {Figure(usual)} | {Figure(channelsLast)} | {Figure(peer)} | {Ratio(channelsLast, usual)} | {Ratio(channelsLast, peer)} |");
                    Console.WriteLine(rows[^1]);
                }
            }

            // Small images: issue 22's Fashion-MNIST row (CIFAR ResNet-20, 28² grey, batch 128, SGD 0.1 cosine, no augmentation),
            // timed over the whole Fit; random pixels, since the speed does not depend on them. The peer keeps all data on the GPU.
            var small28 = quick || !cuda ? (Rows: 512, Epochs: 2) : (Rows: 30_000, Epochs: 10);
            rows.Add("");
            rows.Add($"| resnet20 28² × 1 channel, batch 128, {small28.Rows:N0} images × {small28.Epochs} epochs | precision | estimator, whole Fit | PyTorch, data on the device | ours / PyTorch |");
            rows.Add("|---|---|---|---|---|");
            foreach (TrainingPrecision precision in new[] { TrainingPrecision.Float32, TrainingPrecision.BFloat16 })
            {
                double ours = Safe(() => SmallImagesFit(small28.Rows, small28.Epochs, cuda, precision), $"resnet20 28² {precision}");
                double peer = hasPeer
                    ? Safe(() => Peer(python, peerScript, $"small resnet20 --size 28 --batch 128 --rows {small28.Rows} --epochs {small28.Epochs} --precision {Name(precision)}"), $"peer resnet20 28² {precision}")
                    : double.NaN;
                rows.Add($"| | {Name(precision)} | {Figure(ours)} | {Figure(peer)} | {Ratio(ours, peer)} |");
                Console.WriteLine(rows[^1]);
            }

            return rows;
        }

        /// <summary>The estimator's whole Fit (from pixel vectors in memory to a trained model) of CIFAR ResNet-20 on 28² one-channel images: images per second over all epochs.</summary>
        private static double SmallImagesFit(int rows, int epochs, bool cuda, TrainingPrecision precision)
        {
            const int side = 28;
            MLContext ml = Context(cuda);

            var random = new Random(1);
            SchemaDefinition schema = SchemaDefinition.Create(typeof(Measurements.ImageRow));
            schema[nameof(Measurements.ImageRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, side, side);
            IDataView data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new Measurements.ImageRow
            {
                Image = Enumerable.Range(0, side * side).Select(_ => (float)random.Next(256)).ToArray(), Label = "c" + (i % Classes),
            }).ToList(), schema);
            data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
            var reports = new List<EpochReport>();
            var options = new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = side, ImageHeight = side, BatchSize = 128, Epochs = epochs, LearningRate = 0.1,
                Schedule = LearningRateScheduleKind.Cosine, Augmentation = new ImageAugmentation(), Precision = precision,
                Progress = new EpochCallback(reports.Add),
            };
            var clock = Stopwatch.StartNew();
            ml.Transforms.ResNetClassifier(options).Fit(data);
            double seconds = clock.Elapsed.TotalSeconds;
            PrintMemory(reports);
            return (double)rows * epochs / seconds;
        }

        private static string Name(TrainingPrecision precision) => precision.ToString().ToLowerInvariant();

        private static string Figure(double imagesPerSecond) => double.IsNaN(imagesPerSecond) ? "—" : $"{imagesPerSecond:F0} img/s";

        private static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? "—" : $"{a / b:F2}×";

        private static bool IsSegmentation(string arch) => ResidualModels.Find(arch)?.Task == ModelTask.Segmenter;

        // One failed measurement (a precision a device lacks, a peer that fails) leaves its cell empty, not the whole table.
        private static double Safe(Func<double> measure, string what)
        {
            try
            {
                double result = measure();
                Console.WriteLine($"  {what}: {result:F1} img/s");
                return result;
            }
            catch (Exception e)
            {
                Console.WriteLine($"  {what} FAILED {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                return double.NaN;
            }
        }

        private static nn.Module<Tensor, Tensor> CreateModel(string arch) => ResidualModels.Create(arch, Classes);

        private static (Tensor Images, Tensor Targets) Batch(Work work, Device device) =>
            (torch.randn(work.Batch, 3, work.Size, work.Size, device: device),
             IsSegmentation(work.Arch)
                ? torch.randint(0, Classes, new long[] { work.Batch, work.Size, work.Size }, device: device)
                : torch.randint(0, Classes, new long[] { work.Batch }, device: device));

        /// <summary>The network alone: SGD (momentum 0.9, weight decay 5e-4) and cross-entropy on one batch, as a user would write it.</summary>
        private static double BareLoop(Work work, Device device)
        {
            torch.manual_seed(1);
            using var model = CreateModel(work.Arch);
            model.to(device).train();
            using var optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
            var (x, y) = Batch(work, device);
            using (x)
            using (y)
            {
                double Steps(int count)
                {
                    var clock = Stopwatch.StartNew();
                    for (int i = 0; i < count; i++)
                    {
                        using var scope = torch.NewDisposeScope();
                        optimizer.zero_grad();
                        nn.functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
                    return work.Batch * count / clock.Elapsed.TotalSeconds;
                }

                Steps(Math.Min(5, work.Steps));
                return Steps(work.Steps);
            }
        }

        /// <summary>Our training loop on a batch already on the device, constant rate, in <paramref name="precision"/>.</summary>
        private static double OurLoop(Work work, Device device, TrainingPrecision precision) =>
            Measurements.TrainLoop(work.Arch, work.Size, work.Batch, work.Steps, precision, device, warmup: Math.Min(5, work.Steps));

        /// <summary>The estimator's Fit of three epochs over pixel vectors in memory; the last epoch's images per second.</summary>
        private static double Estimator(Work work, bool cuda, TrainingPrecision precision, bool? channelsLast = null)
        {
            MLContext ml = Context(cuda);

            int rows = work.Batch * Math.Max(2, work.Steps / 3);
            var reports = new List<EpochReport>();
            var progress = new EpochCallback(reports.Add);
            var random = new Random(1);
            float[] Pixels() => Enumerable.Range(0, 3 * work.Size * work.Size).Select(_ => (float)random.Next(256)).ToArray();
            if (IsSegmentation(work.Arch))
            {
                SchemaDefinition schema = SchemaDefinition.Create(typeof(Measurements.MaskRow));
                schema[nameof(Measurements.MaskRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3, work.Size, work.Size);
                schema[nameof(Measurements.MaskRow.Mask)].ColumnType = new VectorDataViewType(NumberDataViewType.UInt32, work.Size * work.Size);
                var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(_ => new Measurements.MaskRow
                {
                    Image = Pixels(), Mask = Enumerable.Range(0, work.Size * work.Size).Select(_ => (uint)random.Next(2)).ToArray(),
                }).ToList(), schema);
                ml.Transforms.UNetSegmenter(new SegmenterOptions
                {
                    Architecture = work.Arch, NumClasses = 2, ImageWidth = work.Size, ImageHeight = work.Size, BatchSize = work.Batch, Epochs = 3,
                    Precision = precision, ChannelsLast = channelsLast, Progress = progress,
                }).Fit(data);
            }
            else
            {
                SchemaDefinition schema = SchemaDefinition.Create(typeof(Measurements.ImageRow));
                schema[nameof(Measurements.ImageRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3, work.Size, work.Size);
                IDataView data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new Measurements.ImageRow { Image = Pixels(), Label = "c" + (i % Classes) }).ToList(), schema);
                data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
                var options = new ImageClassifierOptions
                {
                    Architecture = work.Arch, ImageWidth = work.Size, ImageHeight = work.Size, BatchSize = work.Batch, Epochs = 3, Precision = precision,
                    ChannelsLast = channelsLast, Progress = progress,
                };
                ml.Transforms.ImageClassifier(options).Fit(data);
            }

            PrintMemory(reports);
            return LastEpoch(reports, rows);
        }

        // The GPU memory of each epoch's report: flat from the first epoch on when training holds no growing state.
        private static void PrintMemory(List<EpochReport> reports) =>
            Console.WriteLine("  GPU memory after each epoch: "
                + string.Join(", ", reports.Select(r => r.GpuMemoryMegabytes is double memory ? $"{memory:F0} MB" : "—")));

        /// <summary>The estimator's Fit of three epochs over PNG files through LoadImages; the last epoch's images per second.</summary>
        private static double FromFiles(Work work, string folder, int workers, bool cuda, TrainingPrecision precision)
        {
            MLContext ml = Context(cuda);

            var reports = new List<EpochReport>();
            IDataView data = ml.Data.LoadImageFolder(folder);
            var options = new ImageClassifierOptions
            {
                Architecture = work.Arch, ImageWidth = work.Size, ImageHeight = work.Size, BatchSize = work.Batch, Epochs = 3, Workers = workers,
                Precision = precision, Progress = new EpochCallback(reports.Add),
            };
            ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.Conversion.MapValueToKey("Label"))
                .Append(ml.Transforms.ResNetClassifier(options)).Fit(data);
            PrintMemory(reports);
            return LastEpoch(reports, work.Batch * work.Steps);
        }

        // Training on GPU 0 when there is CUDA; scoring stays on ONNX Runtime's CPU package (FallbackToCpu).
        private static MLContext Context(bool cuda)
        {
            var ml = new MLContext(seed: 1);
            if (cuda)
            {
                ml.GpuDeviceId = 0;
                ml.FallbackToCpu = true;
            }

            return ml;
        }

        private static double LastEpoch(List<EpochReport> reports, int rows) =>
            rows / (reports[^1].Elapsed - reports[^2].Elapsed).TotalSeconds;

        /// <summary>A folder of <paramref name="count"/> 256² PNG files in 8 class folders (a coloured disc per class), written once.</summary>
        private static string WritePngFolder(string root, int count)
        {
            string folder = Path.Combine(root, $"png-{count}");
            string done = Path.Combine(folder, ".complete");
            if (File.Exists(done)) return folder;
            const int side = 256;
            System.Threading.Tasks.Parallel.For(0, count, i =>
            {
                var random = new Random(i);
                int label = i % 8;
                string directory = Path.Combine(folder, $"class{label}");
                Directory.CreateDirectory(directory);
                using var bitmap = new SKBitmap(side, side);
                using (var canvas = new SKCanvas(bitmap))
                {
                    canvas.Clear(new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
                    using var paint = new SKPaint { Color = new SKColor((byte)(255 * (label & 1)), (byte)(255 * ((label >> 1) & 1)), (byte)(255 * ((label >> 2) & 1))) };
                    canvas.DrawCircle(random.Next(40, 216), random.Next(40, 216), 20 + 5 * label, paint);
                }

                using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(directory, $"{i:D5}.png"), png.ToArray());
            });
            File.WriteAllText(done, "");
            return folder;
        }

        private static double Peer(string python, string script, string arguments)
        {
            var start = new ProcessStartInfo(python, $"\"{script}\" {arguments}") { RedirectStandardOutput = true, RedirectStandardError = true };
            using Process process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            string? line = output.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
            if (process.ExitCode != 0 || line is null) throw new InvalidOperationException($"exit {process.ExitCode}: {errors.Result.Trim().Split('\n').LastOrDefault()}");
            using JsonDocument result = JsonDocument.Parse(line);
            return result.RootElement.GetProperty("images_per_s").GetDouble();
        }

        private static bool Runs(string file, string arguments)
        {
            try
            {
                using Process process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
                process.WaitForExit();
                return process.ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return false;
            }
        }
    }
}
