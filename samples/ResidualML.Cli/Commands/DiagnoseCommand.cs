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
            new("images", "N", "images in the measured batch (default 32)"),
            new("jacobian-images", "N", "images for the Jacobian estimates (default 4; the cost grows with it)"),
            new("image-size", "PIXELS", "images are resized to this square size (default 32)"),
            new("statistics", "MODE", "BatchNorm with its running statistics (running, default: as the network scores) or each batch's (batch: as in training)"),
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

            IReadOnlyList<LabeledImage> images = ImageSources.Labeled(dataset, "dataset");
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
                context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                    $"{architecture}: {flow.BlockNames.Length} blocks, loss {flow.Loss:F3}, gradient norm first block {flow.BlockInputGradientNorms[0]:E2}, last {flow.BlockInputGradientNorms[^1]:E2} "
                    + $"(ratio {flow.FirstToLastRatio:E2}), block Jacobian norms {jacobian.SpectralNorms.Min():F2}-{jacobian.SpectralNorms.Max():F2}")));
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
            Tensor normalised = batch.mul((float)imageNet.InputScale).sub(mean).div(std);
            long[] labels = images.Select(i => (long)Array.IndexOf(classes, i.Label)).ToArray();
            return (normalised, torch.tensor(labels));
        }

        private static string Number(double value) => double.IsNaN(value) ? string.Empty : value.ToString("R", CultureInfo.InvariantCulture);
    }
}
