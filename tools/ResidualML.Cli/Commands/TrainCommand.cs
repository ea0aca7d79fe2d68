using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Training;
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
            "residualml train --dataset tags.csv --multi-label --epochs 10",
            "residualml train --dataset images.csv --arch resnet50 --weights resnet50.safetensors --freeze-epochs 2 --output runs/resnet50",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = TrainingImages.Options.Concat(new OptionSpec[]
        {
            new("epochs", "N", "training epochs (default 10)"),
            ClassifierCommandOptions.Arch, ClassifierCommandOptions.ImageSize, ClassifierCommandOptions.BatchSize,
            new("learning-rate", "RATE", "peak learning rate (default: AdamW's 0.002; 'residualml lr-find' suggests one)"),
            ClassifierCommandOptions.Weights,
            new("freeze-epochs", "N", "with --weights: train only the classifier head for the first N epochs"),
            new("checkpoints", "FOLDER", "save a checkpoint after every epoch; run the same command again to resume"),
            new("class-balance", "HOW", "for imbalanced classes: none (default), weights (loss weights from the class counts) or sampling (every class drawn equally often)"),
            new("loss", "NAME", "cross-entropy (default) or focal"),
            new("multi-label", null, "images with several labels: --dataset is a .csv of path,label1;label2 lines; per-label thresholds are tuned on the validation images"),
            CommonOptions.Accumulate, CommonOptions.Ema, CommonOptions.Seed, CommonOptions.Gpu, CommonOptions.Precision, CommonOptions.Output,
        }).ToArray();

        private static readonly IReadOnlyDictionary<string, ClassBalance> ClassBalances = new Dictionary<string, ClassBalance>
        {
            ["none"] = ClassBalance.None, ["weights"] = ClassBalance.Weights, ["sampling"] = ClassBalance.Sampling,
        };

        private static readonly IReadOnlyDictionary<string, ClassificationLoss> Losses = new Dictionary<string, ClassificationLoss>
        {
            ["cross-entropy"] = ClassificationLoss.CrossEntropy, ["focal"] = ClassificationLoss.Focal,
        };

        public int Run(CommandLine line, CliContext context)
        {
            int seed = CommonOptions.SeedOf(line);
            ImageClassifierOptions options = ClassifierCommandOptions.Read(line, seed, context);
            CommonOptions.ReadLoopSettings(line, options);
            options.Epochs = line.Integer("epochs", 10, 1, 100_000);
            options.LearningRate = line.Number("learning-rate", 1e-8, 10);
            options.FreezeBackboneEpochs = line.Integer("freeze-epochs", 0, 0, 100_000);
            options.CheckpointDirectory = line.PathOf("checkpoints");
            if (line.Has("multi-label")) return MultiLabelTraining.Run(line, context, seed, options);
            options.ClassBalance = line.Choice("class-balance", ClassBalance.None, ClassBalances);
            options.Loss = line.Choice("loss", ClassificationLoss.CrossEntropy, Losses);
            if (options.FreezeBackboneEpochs > 0 && options.PretrainedWeightsPath is null)
                throw new UsageException("--freeze-epochs needs --weights: a frozen backbone only makes sense when it is pretrained.");
            TrainingImages data = TrainingImages.Read(line, seed);
            var output = new OutputFiles(line.OutputFolder());
            MLContext ml = CommonOptions.Context(line, seed);

            context.Console.MarkupLine(Markup.Escape(
                $"Training {options.Architecture} at {options.ImageWidth}x{options.ImageHeight} on {data.Train.Count} images of {data.Classes.Length} classes, validating on {data.Validation.Count}"));
            if (options.CheckpointDirectory is string checkpoints && TrainingCheckpoints.LatestEpoch(checkpoints) is int resumed)
                context.Console.MarkupLine(Markup.Escape($"Resuming after epoch {resumed} from the checkpoints in {checkpoints}"));
            var (trainRows, images, train, validation) = data.Views(ml);
            options.ValidationSet = validation;
            var display = new TrainingDisplay(context.Console);
            options.Progress = display.Epochs;
            options.BatchProgress = display.Batches;
            ITransformer classifier = display.Show($"{options.Architecture}, {options.Epochs} epochs", () => ml.Transforms.ResNetClassifier(options).Fit(train));

            // The saved model scores image paths: image loading, then the classifier (which maps its prediction to the class name).
            ITransformer model = images.Append(classifier);
            MulticlassClassificationMetrics metrics = data.SaveTrained(ml, output, model, trainRows.Schema, display.History);
            output.Json("metrics.json", new JsonObject
            {
                ["task"] = "image-classification",
                ["architecture"] = options.Architecture,
                ["imageSize"] = options.ImageWidth,
                ["precision"] = options.Precision.ToString(),
                ["gradientAccumulationSteps"] = options.GradientAccumulationSteps,
                ["modelEmaDecay"] = options.ModelEmaDecay,
                ["classBalance"] = options.ClassBalance.ToString(),
                ["loss"] = options.Loss.ToString(),
                ["dataset"] = data.Dataset,
                ["classes"] = new JsonArray(data.Classes.Select(c => (JsonNode)JsonValue.Create(c)).ToArray()),
                ["trainingImages"] = data.Train.Count,
                ["validationImages"] = data.Validation.Count,
                ["validation"] = OutputFiles.ClassificationJson(metrics, data.Classes),
                ["epochs"] = OutputFiles.EpochsJson(display.History),
            });
            Summaries.Classification(context.Console, metrics, data.Classes, "Validation");
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }
    }
}
