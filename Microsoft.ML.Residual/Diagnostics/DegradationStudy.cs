using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>The kinds of network a <see cref="DegradationStudy"/> compares, all CIFAR-style (6n+2 layers, option A shortcuts).</summary>
    public enum NetworkVariant
    {
        /// <summary>No shortcuts: <c>plainN</c>.</summary>
        Plain,

        /// <summary>Post-activation residual blocks (He et al. 2015): <c>resnetN</c>.</summary>
        Residual,

        /// <summary>Pre-activation residual blocks (He et al. 2016): <c>resnetN</c> with <c>PreActivation</c>.</summary>
        PreActivation,

        /// <summary>Residual blocks whose branch is scaled: y = x + α·F(x), α = <see cref="DegradationStudyOptions.ResidualScale"/>.</summary>
        ScaledResidual,
    }

    /// <summary>What a <see cref="DegradationStudy"/> trains.</summary>
    public sealed class DegradationStudyOptions
    {
        /// <summary>Depths 6n+2 with a CIFAR network of each variant (20, 32, 44, 56 or 110).</summary>
        public IReadOnlyList<int> Depths { get; set; } = new[] { 20, 56 };

        /// <summary>The variants, each trained at every depth.</summary>
        public IReadOnlyList<NetworkVariant> Variants { get; set; } = new[] { NetworkVariant.Plain, NetworkVariant.Residual, NetworkVariant.PreActivation, NetworkVariant.ScaledResidual };

        /// <summary>α of <see cref="NetworkVariant.ScaledResidual"/>.</summary>
        public double ResidualScale { get; set; } = 0.1;

        /// <summary>Training epochs of every network.</summary>
        public int Epochs { get; set; } = 10;

        /// <summary>Images per batch.</summary>
        public int BatchSize { get; set; } = 64;

        /// <summary>Peak learning rate (SGD with momentum, cosine schedule, as the papers' CIFAR runs but shorter).</summary>
        public double LearningRate { get; set; } = 0.1;

        /// <summary>
        /// Epochs of linear learning-rate warm-up before the cosine decay (default 0). Deep post-activation networks can diverge
        /// at a learning rate of 0.1 without it; He et al. (2015) warmed ResNet-110 up at 0.01.
        /// </summary>
        public double WarmupEpochs { get; set; }

        /// <summary>Seed of the weights and the data order; every network sees the same batches.</summary>
        public int Seed { get; set; } = 1;

        /// <summary>Images of the fixed batch on which the gradient flow is measured at initialisation and after each epoch.</summary>
        public int ProbeImages { get; set; } = 32;

        /// <summary>How BatchNorm normalises in those measurements (default: batch statistics, as during training).</summary>
        public BatchNormStatistics Statistics { get; set; } = BatchNormStatistics.Batch;

        /// <summary>Receives each network's result as it finishes.</summary>
        public IProgress<DegradationRun>? Progress { get; set; }
    }

    /// <summary>One network of a study: its training curve and its gradient flow at initialisation and after every epoch.</summary>
    public sealed class DegradationRun
    {
        internal DegradationRun(NetworkVariant variant, int depth, string architecture, IReadOnlyList<EpochReport> history, IReadOnlyList<GradientFlowReport> gradientFlow)
        {
            Variant = variant;
            Depth = depth;
            Architecture = architecture;
            History = history;
            GradientFlow = gradientFlow;
        }

        /// <summary>The kind of network.</summary>
        public NetworkVariant Variant { get; }

        /// <summary>Its depth in layers.</summary>
        public int Depth { get; }

        /// <summary>The model name it was built from.</summary>
        public string Architecture { get; }

        /// <summary>A label such as "plain-56" or "scaled residual-20".</summary>
        public string Label => $"{Variant switch { NetworkVariant.Plain => "plain", NetworkVariant.Residual => "residual", NetworkVariant.PreActivation => "pre-act", _ => "scaled" }}-{Depth}";

        /// <summary>Every epoch's training loss and accuracy.</summary>
        public IReadOnlyList<EpochReport> History { get; }

        /// <summary>The gradient flow on the probe batch: [0] at initialisation, [e] after epoch e.</summary>
        public IReadOnlyList<GradientFlowReport> GradientFlow { get; }
    }

    /// <summary>The outcome of <see cref="DegradationStudy.Run"/>: every network, with its tables (the plots: Microsoft.ML.Residual.Plots).</summary>
    public sealed class DegradationStudyResult
    {
        internal DegradationStudyResult(IReadOnlyList<DegradationRun> runs) => Runs = runs;

        /// <summary>The networks in the order they were trained (depth by depth, variant by variant).</summary>
        public IReadOnlyList<DegradationRun> Runs { get; }

        /// <summary>One line per network and epoch: label, variant, depth, epoch, training loss and accuracy, first and last block's input-gradient norm.</summary>
        public string ToCsv()
        {
            var text = new StringBuilder("network,variant,depth,epoch,training_loss,training_accuracy,first_block_gradient_norm,last_block_gradient_norm\n");
            foreach (DegradationRun run in Runs)
                for (int e = 0; e < run.GradientFlow.Count; e++)
                {
                    EpochReport? epoch = e == 0 ? null : run.History[e - 1];
                    GradientFlowReport flow = run.GradientFlow[e];
                    text.Append(string.Join(',', run.Label, run.Variant, run.Depth.ToString(CultureInfo.InvariantCulture), e.ToString(CultureInfo.InvariantCulture),
                        epoch is null ? string.Empty : Number(epoch.TrainingLoss), epoch is null ? string.Empty : Number(epoch.TrainingAccuracy),
                        Number(flow.BlockInputGradientNorms[0]), Number(flow.BlockInputGradientNorms[^1]))).Append('\n');
                }

            return text.ToString();
        }

        /// <summary>
        /// Everything as JSON: <c>networks</c>, each with <c>label</c>, <c>variant</c>, <c>depth</c>, <c>architecture</c>,
        /// <c>epochs</c> (<c>epoch</c>, <c>trainingLoss</c>, <c>trainingAccuracy</c>) and <c>gradientFlow</c> (per measurement:
        /// <c>epoch</c>, 0 at initialisation, then the properties of <see cref="GradientFlowReport.ToJson"/>, block by block).
        /// </summary>
        public string ToJson()
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartObject();
                json.WriteStartArray("networks");
                foreach (DegradationRun run in Runs)
                {
                    json.WriteStartObject();
                    json.WriteString("label", run.Label);
                    json.WriteString("variant", run.Variant.ToString());
                    json.WriteNumber("depth", run.Depth);
                    json.WriteString("architecture", run.Architecture);
                    json.WriteStartArray("epochs");
                    foreach (EpochReport epoch in run.History)
                    {
                        json.WriteStartObject();
                        json.WriteNumber("epoch", epoch.Epoch);
                        GradientFlowReport.WriteNumber(json, "trainingLoss", epoch.TrainingLoss);
                        GradientFlowReport.WriteNumber(json, "trainingAccuracy", epoch.TrainingAccuracy);
                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                    json.WriteStartArray("gradientFlow");
                    for (int e = 0; e < run.GradientFlow.Count; e++)
                    {
                        json.WriteStartObject();
                        json.WriteNumber("epoch", e);
                        run.GradientFlow[e].WriteJsonProperties(json);
                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            return Encoding.UTF8.GetString(buffer.ToArray());
        }

        /// <summary>
        /// Writes into <paramref name="folder"/> (which must exist): degradation.csv (<see cref="ToCsv"/>) and degradation.json
        /// (<see cref="ToJson"/>), each whole or not at all. Returns the paths. The plots (training-loss.png, gradient-flow-initial.png,
        /// gradient-flow-final.png) are in the separate Microsoft.ML.Residual.Plots package: <c>result.SavePlots(folder)</c>.
        /// </summary>
        public IReadOnlyList<string> Save(string folder)
        {
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"The folder '{folder}' does not exist; create it first.");
            var paths = new List<string>();
            string csv = Path.Combine(folder, "degradation.csv");
            IO.AtomicFile.Write(csv, temporary => File.WriteAllText(temporary, ToCsv()));
            paths.Add(csv);
            string json = Path.Combine(folder, "degradation.json");
            IO.AtomicFile.Write(json, temporary => File.WriteAllText(temporary, ToJson()));
            paths.Add(json);
            return paths;
        }

        private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The degradation experiment of He et al. (2015) in one call: plain, residual, pre-activation and scaled-residual CIFAR
    /// networks at several depths, trained side by side on the same data with the same batches, with each one's training
    /// loss and its gradient flow at initialisation and after every epoch. A deep plain network that ends with a higher
    /// training loss than a shallower one has degraded; the residual ones should not.
    /// </summary>
    public static class DegradationStudy
    {
        /// <summary>Trains every (depth, variant) network of <paramref name="options"/> on <paramref name="images"/>.</summary>
        /// <param name="images">Training images, N×C×H×W floats, normalised as the networks expect (e.g. per-channel mean 0, std 1).</param>
        /// <param name="labels">Their classes, N class indices (int64) from 0.</param>
        /// <param name="options">The networks and the training; null for the defaults.</param>
        /// <param name="cancellationToken">Stops between batches.</param>
        /// <exception cref="ArgumentException">The data are not a batch of images with one label each, or a depth has no CIFAR network.</exception>
        public static DegradationStudyResult Run(Tensor images, Tensor labels, DegradationStudyOptions? options = null, System.Threading.CancellationToken cancellationToken = default)
        {
            options ??= new DegradationStudyOptions();
            if (images is null) throw new ArgumentNullException(nameof(images));
            if (labels is null) throw new ArgumentNullException(nameof(labels));
            if (images.dim() != 4) throw new ArgumentException($"The images must be N×C×H×W; got shape [{string.Join(", ", images.shape)}].", nameof(images));
            if (labels.dim() != 1 || labels.shape[0] != images.shape[0])
                throw new ArgumentException($"Give one class index per image: {images.shape[0]} images, labels of shape [{string.Join(", ", labels.shape)}].", nameof(labels));
            if (options.Epochs < 1 || options.BatchSize < 1 || options.ProbeImages < 1)
                throw new ArgumentOutOfRangeException(nameof(options), "Epochs, BatchSize and ProbeImages must be at least 1.");
            foreach (int depth in options.Depths)
                if (!ResidualModels.Names.Contains($"plain{depth}") || !ResidualModels.Names.Contains($"resnet{depth}"))
                    throw new ArgumentException($"Depth {depth} has no CIFAR plain and residual network; use 20, 32, 44, 56 or 110.", nameof(options));

            Tensor targets = labels.to_type(ScalarType.Int64);
            int classes = (int)targets.max().item<long>() + 1;
            int channels = (int)images.shape[1];
            long count = images.shape[0];
            Tensor probeImages = images[..Math.Min(options.ProbeImages, (int)count)];
            Tensor probeLabels = targets[..Math.Min(options.ProbeImages, (int)count)];
            var runs = new List<DegradationRun>();
            foreach (int depth in options.Depths)
            foreach (NetworkVariant variant in options.Variants)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (name, modelOptions) = variant switch
                {
                    NetworkVariant.Plain => ($"plain{depth}", new ResNetOptions()),
                    NetworkVariant.Residual => ($"resnet{depth}", new ResNetOptions()),
                    NetworkVariant.PreActivation => ($"resnet{depth}", new ResNetOptions { PreActivation = true }),
                    _ => ($"resnet{depth}", new ResNetOptions { ResidualScale = options.ResidualScale }),
                };
                modelOptions.Seed = options.Seed;
                var model = ResidualModels.Create(name, classes, channels, modelOptions);
                var flows = new List<GradientFlowReport>();
                var trainer = new TrainingLoop(model, new TrainingOptions
                {
                    Epochs = options.Epochs, LearningRate = options.LearningRate, WarmupEpochs = options.WarmupEpochs, Seed = options.Seed, RestoreBestWeights = false,
                });
                using var flow = new TrainingGradientFlow(model, probeImages, probeLabels, new CallbackProgress<GradientFlowEpoch>(e => flows.Add(e.Report)), options.Statistics);
                trainer.Hooks.Add(flow);
                long steps = (count + options.BatchSize - 1) / options.BatchSize;
                TrainingResult result = trainer.Train(epoch => Batches(images, targets, options.BatchSize, options.Seed * 7919L + epoch), steps,
                    cancellationToken: cancellationToken);
                var run = new DegradationRun(variant, depth, name, result.History, flows);
                runs.Add(run);
                options.Progress?.Report(run);
                model.Dispose();
            }

            return new DegradationStudyResult(runs);
        }

        // The same shuffled batches for every network: the order depends only on the seed and the epoch.
        private static IEnumerable<(Tensor Images, Tensor Labels)> Batches(Tensor images, Tensor labels, int batchSize, long seed)
        {
            long count = images.shape[0];
            using var generator = new Generator((ulong)seed);
            using Tensor order = torch.randperm(count, generator: generator);
            for (long start = 0; start < count; start += batchSize)
            {
                using Tensor index = order.narrow(0, start, Math.Min(batchSize, count - start));
                yield return (images.index_select(0, index), labels.index_select(0, index));
            }
        }
    }
}
