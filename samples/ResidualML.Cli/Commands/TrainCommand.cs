using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Datasets;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml train: an image classifier from a folder of class sub-folders (or a CSV of path,label), validated on a
    /// held-out part; writes model.zip, metrics.json, loss.png, accuracy.png and confusion-matrix.png.
    /// </summary>
    internal sealed class TrainCommand : ICommand
    {
        public string Name => "train";

        public string Summary => "Train an image classifier on a folder of class sub-folders or a CSV of path,label; writes model.zip, metrics.json and plots.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml train --dataset ./flowers --epochs 10",
            "residualml train --dataset images.csv --arch resnet50 --weights resnet50.safetensors --freeze-epochs 2 --output runs/resnet50",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("dataset", "PATH", "a folder with one sub-folder of images per class, or a .csv file of path,label lines (required)"),
            new("validation-dataset", "PATH", "validate on these images instead of holding out part of --dataset"),
            new("validation-fraction", "F", "share of each class held out for validation (default 0.2)"),
            new("epochs", "N", "training epochs (default 10)"),
            new("arch", "NAME", "architecture: resnet18 (default), resnet34, resnet50, preact_resnet18, resnet20 (CIFAR), densenet121, ..."),
            new("image-size", "PIXELS", "images are resized to this square size (default 224)"),
            new("batch-size", "N", "images per batch (default 32)"),
            new("learning-rate", "RATE", "peak learning rate (default: the architecture's, e.g. 0.1 for SGD)"),
            new("weights", "FILE", "start from pretrained weights: .safetensors or a PyTorch .pth state dict with torchvision key names"),
            new("freeze-epochs", "N", "with --weights: train only the classifier head for the first N epochs"),
            new("checkpoints", "FOLDER", "save a checkpoint after every epoch; run the same command again to resume"),
            new("seed", "N", "random seed (default 1)"),
            new("gpu", null, "train on GPU 0 when TorchSharp's CUDA backend is installed (falls back to the CPU)"),
            new("output", "FOLDER", "where to write the files (default: the current directory)"),
        };

        public int Run(CommandLine line, CliContext context)
        {
            string dataset = line.RequiredPath("dataset", "a folder with one sub-folder of images per class, or a CSV of path,label");
            double fraction = line.Number("validation-fraction", 0.01, 0.9) ?? 0.2;
            int seed = line.Integer("seed", 1, 0, int.MaxValue);
            var options = new ImageClassifierOptions
            {
                Architecture = line.Text("arch") ?? "resnet18",
                Epochs = line.Integer("epochs", 10, 1, 100_000),
                ImageWidth = line.Integer("image-size", 224, 8, 4096),
                BatchSize = line.Integer("batch-size", 32, 1, 65_536),
                LearningRate = line.Number("learning-rate", 1e-8, 10),
                PretrainedWeightsPath = line.PathOf("weights"),
                FreezeBackboneEpochs = line.Integer("freeze-epochs", 0, 0, 100_000),
                CheckpointDirectory = line.PathOf("checkpoints"),
                Seed = seed,
                CancellationToken = context.Cancellation,
            };
            options.ImageHeight = options.ImageWidth;
            if (options.FreezeBackboneEpochs > 0 && options.PretrainedWeightsPath is null)
                throw new UsageException("--freeze-epochs needs --weights: a frozen backbone only makes sense when it is pretrained.");
            if (options.PretrainedWeightsPath is string weights && !File.Exists(weights))
                throw new FileNotFoundException($"--weights {weights}: no such file.");
            var output = new OutputFiles(line.OutputFolder());

            IReadOnlyList<LabeledImage> all = ImageSources.Labeled(dataset, "dataset");
            IReadOnlyList<LabeledImage> train, validation;
            string? validationPath = line.PathOf("validation-dataset");
            if (validationPath != null) (train, validation) = (all, ImageSources.Labeled(validationPath, "validation-dataset"));
            else (train, validation) = ImageFolder.StratifiedSplit(all, fraction, seed);
            string[] classes = train.Select(i => i.Label).Distinct(StringComparer.Ordinal).OrderBy(c => c, StringComparer.Ordinal).ToArray();
            if (classes.Length < 2)
                throw new InvalidDataException($"--dataset {dataset}: found only the class '{classes.FirstOrDefault()}'; a classifier needs images of at least two classes.");
            if (validation.Count == 0)
                throw new InvalidDataException($"--dataset {dataset}: too few images to hold any out for validation; add images, or give --validation-dataset.");

            ClassificationModel.CheckKnownClasses(validation, classes, $"--validation-dataset {validationPath}");
            var ml = new MLContext(seed);
            if (line.Has("gpu"))
            {
                ml.GpuDeviceId = 0;
                ml.FallbackToCpu = true;
            }

            context.Console.MarkupLine(Markup.Escape(
                $"Training {options.Architecture} at {options.ImageWidth}x{options.ImageHeight} on {train.Count} images of {classes.Length} classes, validating on {validation.Count}"));
            IDataView trainRows = ClassificationModel.Rows(ml, train.OrderBy(i => i.Label, StringComparer.Ordinal));
            ITransformer images = ClassificationModel.LoadImages(ml).Fit(trainRows);
            ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey(ClassificationModel.LabelColumn).Fit(trainRows);
            options.ValidationSet = labelKeys.Transform(images.Transform(ClassificationModel.Rows(ml, validation)));
            var display = new TrainingDisplay(context.Console);
            options.Progress = display.Epochs;
            options.BatchProgress = display.Batches;
            ITransformer classifier = display.Show($"{options.Architecture}, {options.Epochs} epochs",
                () => ml.Transforms.ResNetClassifier(options).Fit(labelKeys.Transform(images.Transform(trainRows))));

            // The saved model scores image paths: image loading, then the classifier (which maps its prediction to the class name).
            ITransformer model = images.Append(classifier);
            MulticlassClassificationMetrics metrics = ClassificationModel.Evaluate(ml, model, validation, classes, "validation images");
            output.Model("model.zip", ml, model, trainRows.Schema);
            output.Json("metrics.json", new JsonObject
            {
                ["task"] = "image-classification",
                ["architecture"] = options.Architecture,
                ["imageSize"] = options.ImageWidth,
                ["dataset"] = dataset,
                ["classes"] = new JsonArray(classes.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["trainingImages"] = train.Count,
                ["validationImages"] = validation.Count,
                ["validation"] = OutputFiles.ClassificationJson(metrics, classes),
                ["epochs"] = OutputFiles.EpochsJson(display.History),
            });
            output.TrainingCurves(display.History);
            output.ConfusionMatrix("confusion-matrix.png", metrics, classes);
            Summaries.Classification(context.Console, metrics, classes, "Validation");
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }
    }
}
