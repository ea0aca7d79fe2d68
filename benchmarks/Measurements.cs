using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Residual.Classification;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>One measurement: throughput and the process's peak memory.</summary>
    /// <param name="LoopImagesPerSecond">For our estimator: the training loop's own figure (its epoch report), without the Fit's fixed costs.</param>
    /// <param name="Memory">For the memory measurements: the process's state at points along the run.</param>
    /// <param name="Operations">For the per-operation comparison: milliseconds of forward + backward per operation.</param>
    /// <param name="Mismatches">For the soak: predictions that differed from the single-threaded ones.</param>
    public sealed record Measurement(string Kind, string Arch, double ImagesPerSecond, double PeakMemoryMB, double? LoopImagesPerSecond = null,
        IReadOnlyList<MemorySample>? Memory = null, IReadOnlyDictionary<string, double>? Operations = null, long? Mismatches = null);

    /// <summary>The process's state at one point of a long run.</summary>
    /// <param name="At">Epochs trained, or rows scored.</param>
    /// <param name="ResidentMB">Resident memory after a full garbage collection.</param>
    /// <param name="ManagedMB">The managed heap after that collection.</param>
    /// <param name="LiveTensors">TorchSharp tensors not yet disposed.</param>
    public sealed record MemorySample(long At, double ResidentMB, double ManagedMB, long LiveTensors);

    /// <summary>The measurements a child process runs.</summary>
    internal static class Measurements
    {
        private const int Classes = 10;
        private const int WarmupSteps = 3;

        // Our estimator's timed Fit trains this many epochs: the last one gives the loop's steady-state figure.
        private const int TimedEpochs = 2;

        public static Measurement Run(string kind, string arch, int size, int batch, int steps)
        {
            if (kind == "train-estimator")
            {
                var (whole, loop) = TrainEstimator(arch, size, batch, steps);
                return new(kind, arch, whole, 0, loop);
            }

            if (kind.StartsWith("train-loop-", StringComparison.Ordinal))
                return new(kind, arch, TrainLoop(arch, size, batch, steps, Enum.Parse<TrainingPrecision>(kind["train-loop-".Length..], ignoreCase: true)), 0);

            if (kind.StartsWith("input-", StringComparison.Ordinal))
            {
                // Here the architecture argument is the worker count and the last one the number of rows.
                return new(kind, arch, InputMeasurements.Measure(kind["input-".Length..], int.Parse(arch, CultureInfo.InvariantCulture), size, batch, rows: steps), 0);
            }

            if (kind == "ops")
            {
                // Here the last argument is the thread count.
                return new(kind, "resnet18", 0, 0, Operations: Operations(threads: steps));
            }

            if (kind == "memory-train")
            {
                var (rate, samples) = TrainingMemory(arch, size, batch, epochs: steps);
                return new(kind, arch, rate, 0, Memory: samples);
            }

            if (kind == "memory-score")
            {
                var (rate, samples) = ScoringMemory(arch, size, rows: steps);
                return new(kind, arch, rate, 0, Memory: samples);
            }

            if (kind == "soak")
            {
                // Here the batch argument is the thread count and the last one the number of predictions.
                var (rate, samples, mismatches) = ConcurrentSoak(arch, size, threads: batch, predictions: steps);
                return new(kind, arch, rate, 0, Memory: samples, Mismatches: mismatches);
            }

            return new(kind, arch, Measure(kind, arch, size, batch, steps), 0);
        }

        /// <summary>
        /// One PredictionEngine per thread (none owning the shared model) makes <paramref name="predictions"/> predictions in
        /// all, cycling over 64 images whose single-threaded scores are known; every prediction is compared with those bit for
        /// bit, and the process's memory is taken every tenth of the way.
        /// </summary>
        private static (double ImagesPerSecond, List<MemorySample> Samples, long Mismatches) ConcurrentSoak(string arch, int size, int threads, int predictions)
        {
            var ml = new MLContext(seed: 1);
            ITransformer model = ml.Transforms.ResNetClassifier(ClassifierOptions(arch, size, 8)).Fit(Classification(ml, 8, size));
            List<ImageRow> images = Rows(64, size);
            var options = new PredictionEngineOptions { OwnsTransformer = false, InputSchemaDefinition = ImageSchema(size) };
            float[][] expected;
            using (var single = ml.Model.CreatePredictionEngine<ImageRow, ScoreRow>(model, options))
                expected = images.Select(i => single.Predict(i).Score.ToArray()).ToArray();

            var engines = Enumerable.Range(0, threads).Select(_ => ml.Model.CreatePredictionEngine<ImageRow, ScoreRow>(model, options)).ToArray();
            var samples = new List<MemorySample> { Sample(0) };
            long mismatches = 0, done = 0;
            int perChunk = Math.Max(threads, predictions / 10);
            var clock = Stopwatch.StartNew();
            while (done < predictions)
            {
                int chunk = (int)Math.Min(perChunk, predictions - done);
                long start = done;
                System.Threading.Tasks.Parallel.For(0, threads, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long wrong = 0;
                    for (long k = t; k < chunk; k += threads)
                    {
                        int image = (int)((start + k) % images.Count);
                        if (!engines[t].Predict(images[image]).Score.AsSpan().SequenceEqual(expected[image])) wrong++;
                    }

                    System.Threading.Interlocked.Add(ref mismatches, wrong);
                });
                done += chunk;
                samples.Add(Sample(done));
            }

            double rate = predictions / clock.Elapsed.TotalSeconds;
            foreach (var engine in engines) engine.Dispose();
            return (rate, samples, mismatches);
        }

        private static double Measure(string kind, string arch, int size, int batch, int steps) => kind switch
        {
            "train-bare" => TrainBare(arch, size, batch, steps, asOurLoop: false),
            "train-bare-tuned" => TrainBare(arch, size, batch, steps, asOurLoop: true),
            "score-transform" => ScoreTransform(arch, size, batch, steps),
            "score-ort" => ScoreOrt(arch, size, batch, steps),
            "score-engine" => ScoreEngine(arch, size, steps),
            "score-applyonnx" => ScoreApplyOnnxModel(arch, size, steps),
            "featurize-transform" => Featurize(arch, size, steps),
            "featurize-ort" => FeaturizeOrt(arch, size, steps),
            "featurize-engine" => FeaturizeEngine(arch, size, steps),
            _ => throw new ArgumentException($"Unknown measurement '{kind}'."),
        };

        private static bool IsSegmentation(string arch) => ResidualModels.Find(arch)?.Task == ModelTask.Segmenter;

        // Every network with its registered stem at every size: torchvision's for its networks (PyTorch's peer has no CIFAR
        // stem), the 3×3 one for the CIFAR ResNets (resnet20, ...). The DenseNets measured here are torchvision's.
        private static StemKind RegisteredStem(string arch) => ResidualModels.GetResNetDefinition(arch)?.Stem ?? StemKind.ImageNet;

        private static nn.Module<Tensor, Tensor> CreateModel(string arch) => ResidualModels.Create(arch, Classes, 3);

        /// <summary>
        /// A bare TorchSharp loop: the same model, SGD (momentum 0.9, weight decay 5e-4), one fixed batch, as the peer script
        /// does. Either as a user would write it, or with the two settings our training loop uses: freed native memory kept
        /// in the process (<see cref="NativeAllocator"/>), and the batch and the convolution weights in channels-last layout.
        /// </summary>
        private static double TrainBare(string arch, int size, int batch, int steps, bool asOurLoop)
        {
            using IDisposable? allocator = asOurLoop ? NativeAllocator.EnterTraining() : null;
            torch.manual_seed(0);
            using var model = CreateModel(arch);
            model.train();
            using IDisposable? weightLayout = asOurLoop ? ChannelsLastLayout.EnterForWeights(model) : null;
            using var optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
            using Tensor x = asOurLoop ? torch.randn(batch, size, size, 3).permute(0, 3, 1, 2) : torch.randn(batch, 3, size, size);
            using Tensor y = IsSegmentation(arch) ? torch.randint(0, Classes, new long[] { batch, size, size }) : torch.randint(0, Classes, new long[] { batch });
            void Step()
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                Tensor loss = nn.functional.cross_entropy(model.call(x), y);
                loss.backward();
                optimizer.step();
            }

            for (int i = 0; i < WarmupSteps; i++) Step();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) Step();
            return batch * steps / clock.Elapsed.TotalSeconds;
        }

        /// <summary>
        /// Our training loop (<see cref="TrainingLoop"/>) in <paramref name="precision"/> on one fixed random batch, with
        /// the bare loop's optimiser settings and a constant rate: images per second over <paramref name="steps"/> steps after
        /// a warm-up run of <paramref name="warmup"/> steps (default <see cref="WarmupSteps"/>). The batch is made on
        /// <paramref name="device"/> (default the CPU), where the model trains.
        /// </summary>
        internal static double TrainLoop(string arch, int size, int batch, int steps, TrainingPrecision precision, Device? device = null, int warmup = WarmupSteps)
        {
            device ??= torch.CPU;
            torch.manual_seed(0);
            using var model = CreateModel(arch);
            model.to(device);
            using Tensor x = torch.randn(batch, 3, size, size, device: device);
            using Tensor y = IsSegmentation(arch)
                ? torch.randint(0, Classes, new long[] { batch, size, size }, device: device)
                : torch.randint(0, Classes, new long[] { batch }, device: device);
            IEnumerable<(Tensor, Tensor)> Batches(int count)
            {
                for (int i = 0; i < count; i++) yield return (x.clone(), y.clone());
            }

            double Run(int count)
            {
                var trainer = new TrainingLoop(model, new TrainingOptions
                {
                    Epochs = 1, LearningRate = 0.01, Momentum = 0.9, WeightDecay = 5e-4, Schedule = LearningRateScheduleKind.Constant,
                    Precision = precision, RestoreBestWeights = false,
                });
                var clock = Stopwatch.StartNew();
                trainer.Train(_ => Batches(count), count);
                return batch * count / clock.Elapsed.TotalSeconds;
            }

            Run(warmup);
            return Run(steps);
        }

        /// <summary>
        /// Our estimator's whole Fit of two epochs over an IDataView of batch × steps random images (after a warm-up Fit of
        /// two batches), and its training loop's own throughput in the second epoch (the steady state: a fresh network's first
        /// steps also create libtorch's kernels and buffers, which the bare loop's warm-up steps leave out).
        /// </summary>
        private static (double Whole, double Loop) TrainEstimator(string arch, int size, int batch, int steps)
        {
            var ml = new MLContext(seed: 1);
            var reports = new List<EpochReport>();
            var progress = new EpochCallback(reports.Add);
            IDataView Data(int rows) => IsSegmentation(arch) ? Segmentation(ml, rows, size) : Classification(ml, rows, size);
            IEstimator<ITransformer> Estimator()
            {
                if (IsSegmentation(arch))
                {
                    return ml.Transforms.UNetSegmenter(new SegmenterOptions
                    {
                        Architecture = arch, NumClasses = Classes, ImageWidth = size, ImageHeight = size, BatchSize = batch, Epochs = TimedEpochs, Optimizer = OptimizerKind.Sgd,
                        LearningRate = 0.01, WeightDecay = 5e-4, Schedule = LearningRateScheduleKind.Constant, WarmupEpochs = 0,
                        Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0 }, Progress = progress,
                    });
                }

                ImageClassifierOptions options = ClassifierOptions(arch, size, batch);
                options.Epochs = TimedEpochs;
                options.Progress = progress;
                return ml.Transforms.ImageClassifier(options);
            }

            Estimator().Fit(Data(batch * 2));
            reports.Clear();
            IDataView data = Data(batch * steps);
            var clock = Stopwatch.StartNew();
            Estimator().Fit(data);
            double whole = TimedEpochs * batch * steps / clock.Elapsed.TotalSeconds;
            TimeSpan lastEpoch = reports[^1].Elapsed - reports[^2].Elapsed;
            return (whole, batch * steps / lastEpoch.TotalSeconds);
        }

        private static ImageClassifierOptions ClassifierOptions(string arch, int size, int batch) => new()
        {
            Architecture = arch, ImageWidth = size, ImageHeight = size, BatchSize = batch, Epochs = 1,
            Stem = RegisteredStem(arch),
            LearningRate = 0.01, Momentum = 0.9, WeightDecay = 5e-4, Schedule = LearningRateScheduleKind.Constant, WarmupEpochs = 0,
            Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0 },
        };

        /// <summary>
        /// ResNet-18's operations at 32² (ImageNet stem), batch 64, forward and backward, in milliseconds: the same list as
        /// benchmarks/peers/ops_peer.py, to see where libtorch 2.10 and PyTorch 1.13 differ.
        /// </summary>
        private static Dictionary<string, double> Operations(int threads)
        {
            torch.set_num_threads(threads);
            torch.manual_seed(0);
            const int Batch = 64, Repeats = 20;
            double Timed(Func<Tensor> step)
            {
                void Once()
                {
                    using var scope = torch.NewDisposeScope();
                    step().sum().backward();
                }

                for (int i = 0; i < 3; i++) Once();
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < Repeats; i++) Once();
                return clock.Elapsed.TotalMilliseconds / Repeats;
            }

            double Conv(int cin, int cout, int k, int stride, int hw)
            {
                using Tensor x = torch.randn(Batch, cin, hw, hw).requires_grad_(), w = torch.randn(cout, cin, k, k).requires_grad_();
                return Timed(() => nn.functional.conv2d(x, w, null, new long[] { stride, stride }, new long[] { k / 2, k / 2 }));
            }

            double Norm(int c, int hw)
            {
                using Tensor x = torch.randn(Batch, c, hw, hw).requires_grad_(), w = torch.ones(c).requires_grad_(), b = torch.zeros(c).requires_grad_();
                using Tensor mean = torch.zeros(c), variance = torch.ones(c);
                return Timed(() => nn.functional.batch_norm(x, mean, variance, w, b, true, 0.1, 1e-5));
            }

            using Tensor relu = torch.randn(Batch, 64, 16, 16).requires_grad_(), pool = torch.randn(Batch, 64, 16, 16).requires_grad_();
            return new Dictionary<string, double>
            {
                ["conv 3→64 7×7/2 @32²"] = Conv(3, 64, 7, 2, 32),
                ["conv 64→64 3×3 @8²"] = Conv(64, 64, 3, 1, 8),
                ["conv 64→128 3×3/2 @8²"] = Conv(64, 128, 3, 2, 8),
                ["conv 64→128 1×1/2 @8²"] = Conv(64, 128, 1, 2, 8),
                ["conv 128→128 3×3 @4²"] = Conv(128, 128, 3, 1, 4),
                ["conv 256→256 3×3 @2²"] = Conv(256, 256, 3, 1, 2),
                ["conv 512→512 3×3 @1²"] = Conv(512, 512, 3, 1, 1),
                ["batchnorm 64 @16²"] = Norm(64, 16),
                ["batchnorm 128 @4²"] = Norm(128, 4),
                ["relu 64 @16²"] = Timed(() => nn.functional.relu(relu)),
                ["maxpool 3×3/2 64 @16²"] = Timed(() => nn.functional.max_pool2d(pool, 3, 2, 1)),
            };
        }

        /// <summary>
        /// A Fit of <paramref name="epochs"/> epochs over 10 batches, with the process's memory after every epoch: resident
        /// memory and the managed heap after a full collection, and TorchSharp's live tensors.
        /// </summary>
        private static (double ImagesPerSecond, List<MemorySample> Samples) TrainingMemory(string arch, int size, int batch, int epochs)
        {
            var ml = new MLContext(seed: 1);
            var samples = new List<MemorySample> { Sample(0) };
            ImageClassifierOptions options = ClassifierOptions(arch, size, batch);
            options.Epochs = epochs;
            options.Progress = new EpochCallback(report => samples.Add(Sample(report.Epoch)));
            var clock = Stopwatch.StartNew();
            ml.Transforms.ResNetClassifier(options).Fit(Classification(ml, batch * 10, size));
            return (epochs * batch * 10 / clock.Elapsed.TotalSeconds, samples);
        }

        /// <summary>
        /// model.Transform over <paramref name="rows"/> rows made as the cursor asks for them (so the input holds no memory),
        /// with the process's memory every tenth of the way.
        /// </summary>
        private static (double ImagesPerSecond, List<MemorySample> Samples) ScoringMemory(string arch, int size, int rows)
        {
            var ml = new MLContext(seed: 1);
            ITransformer model = ml.Transforms.ResNetClassifier(ClassifierOptions(arch, size, 8)).Fit(Classification(ml, 8, size));
            SchemaDefinition schema = ImageSchema(size);
            IEnumerable<ImageRow> Generated()
            {
                var random = new Random(3);
                for (int i = 0; i < rows; i++)
                    yield return new ImageRow { Image = Enumerable.Range(0, 3 * size * size).Select(_ => (float)random.Next(256)).ToArray(), Label = "c" + (i % Classes) };
            }

            IDataView scored = model.Transform(ml.Data.LoadFromEnumerable(Generated(), schema));
            var samples = new List<MemorySample> { Sample(0) };
            DataViewSchema.Column score = scored.Schema["Score"];
            var clock = Stopwatch.StartNew();
            using (DataViewRowCursor cursor = scored.GetRowCursor(new[] { score }))
            {
                ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(score);
                VBuffer<float> value = default;
                long seen = 0;
                while (cursor.MoveNext())
                {
                    getter(ref value);
                    if (++seen % (rows / 10) == 0) samples.Add(Sample(seen));
                }
            }

            return (rows / clock.Elapsed.TotalSeconds, samples);
        }

        private static MemorySample Sample(long at)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            using Process self = Process.GetCurrentProcess();
            return new MemorySample(at, self.WorkingSet64 / 1048576.0, GC.GetTotalMemory(false) / 1048576.0, Tensor.TotalCount);
        }

        /// <summary>The featurizer's Transform (random weights) over random images, reading every feature vector.</summary>
        private static double Featurize(string arch, int size, int count)
        {
            var ml = new MLContext(seed: 1);
            ITransformer featurizer = ml.Transforms.ResNetFeaturizer("Features", "Image", arch, imageWidth: size, imageHeight: size).Fit(Classification(ml, 4, size));
            Consume(featurizer.Transform(Classification(ml, 4, size)), "Features");
            IDataView data = Classification(ml, count, size);
            var clock = Stopwatch.StartNew();
            Consume(featurizer.Transform(data), "Features");
            return count / clock.Elapsed.TotalSeconds;
        }

        /// <summary>A bare ONNX Runtime session on the featurizer's graph (the network without its head), one image per run.</summary>
        private static double FeaturizeOrt(string arch, int size, int count)
        {
            using var model = ResidualModels.Create(arch, numClasses: 0, inChannels: 3);
            return OrtThroughput(model, size, 1, count);
        }

        /// <summary>The featurizer through PredictionEngine, one image at a time.</summary>
        private static double FeaturizeEngine(string arch, int size, int count)
        {
            var ml = new MLContext(seed: 1);
            ITransformer featurizer = ml.Transforms.ResNetFeaturizer("Features", "Image", arch, imageWidth: size, imageHeight: size).Fit(Classification(ml, 4, size));
            return EngineThroughput<FeatureRow>(ml, featurizer, size, count);
        }

        /// <summary>model.Transform over random images, reading every Score through a cursor.</summary>
        private static double ScoreTransform(string arch, int size, int batch, int count)
        {
            var ml = new MLContext(seed: 1);
            ITransformer model = ml.Transforms.ResNetClassifier(ClassifierOptions(arch, size, 8)).Fit(Classification(ml, 8, size));
            Consume(model.Transform(Classification(ml, 8, size)));
            IDataView data = Classification(ml, count, size);
            var clock = Stopwatch.StartNew();
            Consume(model.Transform(data));
            return count / clock.Elapsed.TotalSeconds;
        }

        private static void Consume(IDataView scored, string column = "Score")
        {
            DataViewSchema.Column score = scored.Schema[column];
            using DataViewRowCursor cursor = scored.GetRowCursor(new[] { score });
            ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(score);
            VBuffer<float> value = default;
            while (cursor.MoveNext()) getter(ref value);
        }

        /// <summary>A bare ONNX Runtime session on the graph our exporter writes for the same model, in batches.</summary>
        private static double ScoreOrt(string arch, int size, int batch, int count)
        {
            using var model = CreateModel(arch);
            return OrtThroughput(model, size, batch, count);
        }

        private static double OrtThroughput(nn.Module<Tensor, Tensor> model, int size, int batch, int count)
        {
            model.eval();
            byte[] onnx = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, size, size }, new OnnxExportOptions { Normalization = PixelNormalization.ImageNet(3) });
            using var session = new InferenceSession(onnx);
            string input = session.InputMetadata.Keys.First();
            var random = new Random(1);
            var pixels = new DenseTensor(Enumerable.Range(0, batch * 3 * size * size).Select(_ => (float)random.Next(256)).ToArray(), new[] { batch, 3, size, size });
            void Score()
            {
                using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(input, pixels) });
            }

            Score();
            int runs = Math.Max(1, count / batch);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < runs; i++) Score();
            return runs * batch / clock.Elapsed.TotalSeconds;
        }

        /// <summary>ML.NET's ApplyOnnxModel alone on the exported graph (no prediction step): ML.NET's own per-row cost.</summary>
        private static double ScoreApplyOnnxModel(string arch, int size, int count)
        {
            var ml = new MLContext(seed: 1);
            using var model = CreateModel(arch);
            model.eval();
            byte[] onnx = OnnxExporter.ExportToBytes(model, new long[] { 1, 3, size, size }, new OnnxExportOptions
            {
                Normalization = PixelNormalization.ImageNet(3), InputName = "Image", OutputName = "Score",
            });
            IDataView warm = Classification(ml, 4, size), data = Classification(ml, count, size);
            ITransformer onnxModel = ml.Transforms.ApplyOnnxModel(new[] { "Score" }, new[] { "Image" }, new System.IO.MemoryStream(onnx)).Fit(warm);
            Consume(onnxModel.Transform(warm));
            var clock = Stopwatch.StartNew();
            Consume(onnxModel.Transform(data));
            return count / clock.Elapsed.TotalSeconds;
        }

        /// <summary>PredictionEngine, one image at a time.</summary>
        private static double ScoreEngine(string arch, int size, int count)
        {
            var ml = new MLContext(seed: 1);
            ITransformer model = ml.Transforms.ResNetClassifier(ClassifierOptions(arch, size, 8)).Fit(Classification(ml, 8, size));
            return EngineThroughput<ScoreRow>(ml, model, size, count);
        }

        // Predictions per second of one PredictionEngine on one random image, after a warm-up.
        private static double EngineThroughput<TOutput>(MLContext ml, ITransformer model, int size, int count)
            where TOutput : class, new()
        {
            var engine = ml.Model.CreatePredictionEngine<ImageRow, TOutput>(model, inputSchemaDefinition: ImageSchema(size));
            ImageRow row = Rows(1, size).Single();
            for (int i = 0; i < WarmupSteps; i++) engine.Predict(row);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < count; i++) engine.Predict(row);
            return count / clock.Elapsed.TotalSeconds;
        }

        // ImageRow with its pixel vector typed as 3 × size × size.
        private static SchemaDefinition ImageSchema(int size)
        {
            SchemaDefinition schema = SchemaDefinition.Create(typeof(ImageRow));
            schema[nameof(ImageRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3, size, size);
            return schema;
        }

        private static IDataView Classification(MLContext ml, int rows, int size)
        {
            IDataView data = ml.Data.LoadFromEnumerable(Rows(rows, size), ImageSchema(size));
            return ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        }

        private static IDataView Segmentation(MLContext ml, int rows, int size)
        {
            SchemaDefinition schema = SchemaDefinition.Create(typeof(MaskRow));
            schema[nameof(MaskRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3, size, size);
            schema[nameof(MaskRow.Mask)].ColumnType = new VectorDataViewType(NumberDataViewType.UInt32, size * size);
            var random = new Random(2);
            return ml.Data.LoadFromEnumerable(Rows(rows, size).Select(r => new MaskRow
            {
                Image = r.Image, Mask = Enumerable.Range(0, size * size).Select(_ => (uint)random.Next(Classes)).ToArray(),
            }).ToList(), schema);
        }

        private static List<ImageRow> Rows(int rows, int size)
        {
            var random = new Random(1);
            return Enumerable.Range(0, rows).Select(i => new ImageRow
            {
                Image = Enumerable.Range(0, 3 * size * size).Select(_ => (float)random.Next(256)).ToArray(), Label = "c" + (i % Classes),
            }).ToList();
        }

        public sealed class ImageRow
        {
            public float[] Image { get; set; } = Array.Empty<float>();

            public string Label { get; set; } = string.Empty;
        }

        public sealed class MaskRow
        {
            public float[] Image { get; set; } = Array.Empty<float>();

            public uint[] Mask { get; set; } = Array.Empty<uint>();
        }

        public sealed class ScoreRow
        {
            public float[] Score { get; set; } = Array.Empty<float>();
        }

        public sealed class FeatureRow
        {
            public float[] Features { get; set; } = Array.Empty<float>();
        }
    }
}
