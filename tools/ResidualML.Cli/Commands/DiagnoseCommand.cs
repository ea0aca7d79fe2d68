using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Weights;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml diagnose: the gradient highway of one or more architectures on a batch of the user's images, at initialisation
    /// or with given weights: per-block gradient norms (with their branch and identity parts) and block Jacobian norms, as
    /// gradient-flow.csv, diagnostics.json, gradient-flow.png and jacobian.png.
    /// </summary>
    internal sealed class DiagnoseCommand : ICommand
    {
        private static readonly IReadOnlyDictionary<string, BatchNormStatistics> Statistics = new Dictionary<string, BatchNormStatistics>
        {
            ["running"] = BatchNormStatistics.Running,
            ["batch"] = BatchNormStatistics.Batch,
        };

        public string Name => "diagnose";

        public string Summary => "Measure the gradient flow and block Jacobians of architectures on your images; writes gradient-flow.csv/.png, jacobian.png and diagnostics.json.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml diagnose --dataset ./flowers --arch plain56,resnet56,preact_resnet110 --image-size 32",
            "residualml diagnose --dataset ./flowers --arch resnet18 --weights resnet18.safetensors",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("dataset", "PATH", "a folder with one sub-folder of images per class, or a .csv file of path,label lines (required)"),
            new("arch", "A,B,...", "architectures to compare (default plain56,resnet56)"),
            new("weights", "FILE", "with one --arch: measure these weights (.safetensors or .pth) instead of a fresh initialisation"),
            new("images", "N", "images in the measured batch (default 32; with --study, every image of the dataset trains and this many are measured)"),
            new("jacobian-images", "N", "images for the Jacobian estimates (default 4; the cost grows with it)"),
            new("image-size", "PIXELS", "images are resized to this square size (default 32)"),
            new("statistics", "MODE", "BatchNorm with its running statistics (running, default: as the network scores) or each batch's (batch: as in training)"),
            new("study", null, "the degradation study instead: train plain, residual, pre-activation and scaled-residual CIFAR networks at --depths side by side"),
            new("depths", "D,D,...", "with --study: depths of 6n+2 layers (default 20,56)"),
            new("epochs", "N", "with --study: training epochs of each network (default 10)"),
            new("learning-rate", "RATE", "with --study: peak learning rate (default 0.1)"),
            new("warmup", "EPOCHS", "with --study: epochs of learning-rate warm-up (default 0)"),
            CommonOptions.Seed, CommonOptions.Output,
        };

        public int Run(CommandLine line, CliContext context)
        {
            string dataset = line.RequiredPath("dataset", "the images to measure on");
            string[] architectures = line.List("arch", new[] { "plain56", "resnet56" });
            string? weights = line.PathOf("weights");
            if (weights != null && architectures.Length != 1) throw new UsageException("--weights belongs to one architecture: give exactly one --arch with it.");
            if (weights != null && !File.Exists(weights)) throw new FileNotFoundException($"--weights {weights}: no such file.");
            int count = line.Integer("images", 32, 1, 4096);
            int jacobianCount = line.Integer("jacobian-images", 4, 1, 256);
            int size = line.Integer("image-size", 32, 8, 1024);
            BatchNormStatistics statistics = line.Choice("statistics", BatchNormStatistics.Running, Statistics);
            int seed = CommonOptions.SeedOf(line);
            foreach (string architecture in architectures)
                if (!ResidualModels.Names.Contains(architecture))
                    throw new UsageException($"--arch {architecture}: not a model name; 'residualml train --help' and docs/models.md list them.");
                else if (ResidualModels.Find(architecture)?.Task == ModelTask.Segmenter)
                    throw new UsageException($"--arch {architecture}: diagnose measures classifiers on labelled images. For a U-Net, use SegmenterOptions.GradientFlowProgress or GradientFlow.Measure with masks (docs/diagnostics.md).");

            bool study = line.Has("study");
            foreach (string studyOnly in new[] { "depths", "epochs", "learning-rate", "warmup" })
                if (!study && line.Has(studyOnly)) throw new UsageException($"--{studyOnly} belongs to --study.");
            if (study && (line.Has("arch") || weights != null)) throw new UsageException("--study trains its own CIFAR networks; leave out --arch and --weights.");
            IReadOnlyList<LabeledImage> images = ImageSources.Labeled(dataset, "dataset");
            if (study) return Study(line, context, images, count, size, statistics, seed, line.OutputFolder());
            string[] classes = images.Select(i => i.Label).Distinct(StringComparer.Ordinal).OrderBy(c => c, StringComparer.Ordinal).ToArray();
            var chosen = images.ToArray();
            new Random(seed).Shuffle(chosen);
            chosen = chosen.Take(count).ToArray();
            var output = new OutputFiles(line.OutputFolder());
            using var scope = NewDisposeScope();
            var (pixels, targets) = Batch(chosen, classes, size);

            var csv = new StringBuilder("architecture,block,name,input_gradient_norm,branch_gradient_norm,identity_gradient_norm,branch_share,jacobian_norm\n");
            var results = new JsonArray();
            var flowChart = new LineChart { Title = "Gradient norm at each block's input", XLabel = "block (input to output)", YLabel = "gradient norm", LogarithmicY = true };
            var jacobianChart = new LineChart { Title = "Largest singular value of each block's Jacobian", XLabel = "block (input to output)", YLabel = "sigma max", LogarithmicY = true };
            foreach (string architecture in architectures)
            {
                context.Cancellation.ThrowIfCancellationRequested();
                torch.manual_seed(seed);
                var model = ResidualModels.Create(architecture, classes.Length, 3);
                if (weights != null) StateDict.Load(model, weights, strict: false);
                GradientFlowReport flow = null!;
                JacobianReport jacobian = null!;
                context.Console.Status().Start($"Measuring {architecture}", _ =>
                {
                    flow = GradientFlow.Measure(model, pixels, targets, statistics);
                    jacobian = BlockJacobian.Measure(model, pixels[..Math.Min(jacobianCount, (int)pixels.shape[0])], seed: seed, statistics: statistics);
                });
                // The Lipschitz bounds exist for the ResNet family (not DenseNet, not Highway blocks).
                LipschitzReport? lipschitz = model is ResNet resnet && resnet.Definition.Skip != SkipConnection.Highway
                    ? LipschitzBound.Measure(model, size, size) : null;
                double[] blocks = Enumerable.Range(1, flow.BlockNames.Length).Select(b => (double)b).ToArray();
                flowChart.Add(architecture, blocks, flow.BlockInputGradientNorms);
                jacobianChart.Add(architecture, blocks, jacobian.SpectralNorms);
                double[] shares = flow.BranchShares;
                for (int b = 0; b < blocks.Length; b++)
                    csv.Append(string.Join(',', architecture, (b + 1).ToString(CultureInfo.InvariantCulture), flow.BlockNames[b], Number(flow.BlockInputGradientNorms[b]),
                        Number(flow.BranchGradientNorms[b]), Number(flow.IdentityGradientNorms[b]), Number(shares[b]), Number(jacobian.SpectralNorms[b]))).Append('\n');
                results.Add(new JsonObject
                {
                    ["architecture"] = architecture,
                    ["loss"] = flow.Loss,
                    ["firstToLastGradientRatio"] = OutputFiles.Finite(flow.FirstToLastRatio),
                    ["lipschitzUpperBound"] = lipschitz is null ? null : OutputFiles.Finite(lipschitz.UpperBound),
                    ["lipschitzLayerProduct"] = lipschitz is null ? null : OutputFiles.Finite(lipschitz.LayerProduct),
                    ["blocks"] = new JsonArray(flow.BlockNames.Select((name, b) => (JsonNode)new JsonObject
                    {
                        ["name"] = name,
                        ["inputGradientNorm"] = OutputFiles.Finite(flow.BlockInputGradientNorms[b]),
                        ["branchGradientNorm"] = OutputFiles.Finite(flow.BranchGradientNorms[b]),
                        ["identityGradientNorm"] = OutputFiles.Finite(flow.IdentityGradientNorms[b]),
                        ["jacobianNorm"] = OutputFiles.Finite(jacobian.SpectralNorms[b]),
                    }).ToArray()),
                    ["parameterGroupGradientNorms"] = new JsonObject(flow.ParameterGroupGradientNorms.Select(g => KeyValuePair.Create(g.Key, (JsonNode?)OutputFiles.Finite(g.Value)))),
                });
                string bound = lipschitz is null ? string.Empty
                    : string.Create(CultureInfo.InvariantCulture, $", Lipschitz bound {lipschitz.UpperBound:E2} (naive layer product {lipschitz.LayerProduct:E2})");
                context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                    $"{architecture}: {flow.BlockNames.Length} blocks, loss {flow.Loss:F3}, gradient norm first block {flow.BlockInputGradientNorms[0]:E2}, last {flow.BlockInputGradientNorms[^1]:E2} "
                    + $"(ratio {flow.FirstToLastRatio:E2}), block Jacobian norms {jacobian.SpectralNorms.Min():F2}-{jacobian.SpectralNorms.Max():F2}{bound}")));
            }

            output.Text("gradient-flow.csv", csv.ToString());
            output.Json("diagnostics.json", new JsonObject
            {
                ["dataset"] = dataset,
                ["images"] = chosen.Length,
                ["imageSize"] = size,
                ["batchNormStatistics"] = statistics.ToString(),
                ["weights"] = weights,
                ["architectures"] = results,
            });
            output.Chart("gradient-flow.png", flowChart);
            output.Chart("jacobian.png", jacobianChart);
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static int Study(CommandLine line, CliContext context, IReadOnlyList<LabeledImage> images, int probe, int size,
            BatchNormStatistics statistics, int seed, string folder)
        {
            int[] depths = line.List("depths", new[] { "20", "56" }).Select(d => int.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
                : throw new UsageException($"--depths: '{d}' is not a whole number.")).ToArray();
            var options = new DegradationStudyOptions
            {
                Depths = depths, Epochs = line.Integer("epochs", 10, 1, 100_000), LearningRate = line.Number("learning-rate", 1e-8, 10) ?? 0.1,
                WarmupEpochs = line.Number("warmup", 0, 1000) ?? 0,
                Seed = seed, ProbeImages = probe, Statistics = line.Has("statistics") ? statistics : BatchNormStatistics.Batch,
            };
            string[] classes = images.Select(i => i.Label).Distinct(StringComparer.Ordinal).OrderBy(c => c, StringComparer.Ordinal).ToArray();
            var output = new OutputFiles(folder);
            using var scope = NewDisposeScope();
            var (pixels, targets) = Batch(images, classes, size);
            context.Console.MarkupLine(Markup.Escape($"Degradation study: {string.Join(", ", options.Variants)} at depths {string.Join(", ", depths)}, {options.Epochs} epochs each, on {images.Count} images of {classes.Length} classes at {size}x{size}"));
            options.Progress = new RunPrinter(context.Console);
            DegradationStudyResult result = null!;
            context.Console.Status().Start("Training", _ => result = DegradationStudy.Run(pixels, targets, options, context.Cancellation));
            foreach (string path in result.SavePlots(output.Folder).Concat(result.Save(output.Folder))) output.Written.Add(path);
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        /// <summary>A line per trained network.</summary>
        private sealed class RunPrinter : IProgress<DegradationRun>
        {
            private readonly IAnsiConsole console;

            public RunPrinter(IAnsiConsole console) => this.console = console;

            public void Report(DegradationRun run) => console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"{run.Label,-18} training loss {run.History[0].TrainingLoss:F3} -> {run.History[^1].TrainingLoss:F3}, accuracy {run.History[^1].TrainingAccuracy:P1}; "
                + $"gradient first/last block {run.GradientFlow[0].FirstToLastRatio:E2} at initialisation, {run.GradientFlow[^1].FirstToLastRatio:E2} at the end")));
        }

        // The images resized to size×size, as CHW floats normalised with ImageNet statistics (as the classifiers train), and their class indices.
        private static (Tensor Pixels, Tensor Targets) Batch(IReadOnlyList<LabeledImage> images, string[] classes, int size)
        {
            var ml = new MLContext(seed: 1);
            IDataView rows = ClassificationModel.Rows(ml, images);
            IDataView loaded = ml.Transforms.LoadImages("Image", null, "ImagePath")
                .Append(ml.Transforms.ResizeImages("Image", size, size))
                .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
                .Fit(rows).Transform(rows);
            var values = new float[images.Count * 3 * size * size];
            int row = 0;
            using (DataViewRowCursor cursor = loaded.GetRowCursor(new[] { loaded.Schema["Pixels"], loaded.Schema["ImagePath"] }))
            {
                var getter = cursor.GetGetter<VBuffer<float>>(loaded.Schema["Pixels"]);
                VBuffer<float> pixels = default;
                while (cursor.MoveNext())
                {
                    try
                    {
                        getter(ref pixels);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        throw new InvalidDataException($"The image '{images[row].ImagePath}' cannot be read ({e.Message}).", e);
                    }

                    pixels.DenseValues().ToArray().CopyTo(values, row * 3 * size * size);
                    row++;
                }
            }

            PixelNormalization imageNet = PixelNormalization.ImageNet();
            Tensor batch = torch.tensor(values, new long[] { images.Count, 3, size, size });
            Tensor mean = torch.tensor(imageNet.Mean.Select(m => (float)m).ToArray()).view(1, 3, 1, 1);
            Tensor std = torch.tensor(imageNet.Std.Select(s => (float)s).ToArray()).view(1, 3, 1, 1);
            // A tensor factor, not a number: a number becomes a temporary Scalar the GC may free while libtorch reads it.
            Tensor scale = torch.tensor((float)imageNet.InputScale);
            Tensor normalised = batch.mul(scale).sub(mean).div(std);
            long[] labels = images.Select(i => (long)Array.IndexOf(classes, i.Label)).ToArray();
            return (normalised, torch.tensor(labels));
        }

        private static string Number(double value) => double.IsNaN(value) ? string.Empty : value.ToString("R", CultureInfo.InvariantCulture);
    }
}
