using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Training;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml lr-find: the learning-rate finder on the images 'train' would train on, with the same architecture, size and
    /// batch; writes lr-find.png (loss against rate) and lr-find.json, and prints the suggested --learning-rate.
    /// </summary>
    internal sealed class LrFindCommand : ICommand
    {
        public string Name => "lr-find";

        public string Summary => "Find a learning rate: a short sweep of growing rates on the training images; writes lr-find.png and lr-find.json and prints the suggestion.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml lr-find --dataset ./flowers --arch resnet18 --image-size 128",
            "residualml lr-find --dataset images.csv --steps 200 --end-rate 1 --output runs/lr",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = TrainingImages.Options.Concat(new OptionSpec[]
        {
            ClassifierCommandOptions.Arch, ClassifierCommandOptions.ImageSize, ClassifierCommandOptions.BatchSize, ClassifierCommandOptions.Weights,
            new("start-rate", "RATE", "the first learning rate (default 1e-7)"),
            new("end-rate", "RATE", "the last learning rate (default 10)"),
            new("steps", "N", "batches in the sweep (default 100; the images repeat when there are fewer)"),
            CommonOptions.Seed, CommonOptions.Gpu, CommonOptions.Precision, CommonOptions.Output,
        }).ToArray();

        public int Run(CommandLine line, CliContext context)
        {
            int seed = CommonOptions.SeedOf(line);
            ImageClassifierOptions options = ClassifierCommandOptions.Read(line, seed, context);
            var finder = new LearningRateFinderOptions
            {
                StartLearningRate = line.Number("start-rate", 1e-8, 10) ?? 1e-7,
                EndLearningRate = line.Number("end-rate", 1e-8, 1e3) ?? 10,
                Steps = line.Integer("steps", 100, 5, 100_000),
            };
            if (finder.EndLearningRate <= finder.StartLearningRate)
                throw new UsageException($"--end-rate {finder.EndLearningRate.ToString(CultureInfo.InvariantCulture)} must be above --start-rate {finder.StartLearningRate.ToString(CultureInfo.InvariantCulture)}.");
            TrainingImages data = TrainingImages.Read(line, seed);
            var output = new OutputFiles(line.OutputFolder());
            MLContext ml = CommonOptions.Context(line, seed);

            context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"Sweeping {options.Architecture} at {options.ImageWidth}x{options.ImageHeight} over {finder.Steps} batches of {options.BatchSize} from {data.Train.Count} images, learning rate {finder.StartLearningRate:G3} to {finder.EndLearningRate:G3}")));
            var (_, _, train, _) = data.Views(ml);
            LearningRateFinderResult result = ml.Transforms.FindLearningRate(train, options, finder);

            output.Json("lr-find.json", new JsonObject
            {
                ["architecture"] = options.Architecture,
                ["imageSize"] = options.ImageWidth,
                ["batchSize"] = options.BatchSize,
                ["precision"] = options.Precision.ToString(),
                ["dataset"] = data.Dataset,
                ["suggested"] = result.Suggested,
                ["valley"] = result.Valley,
                ["steepest"] = result.Steepest,
                ["minimum"] = result.Minimum,
                ["minimumOverTen"] = result.MinimumOverTen,
                ["stoppedEarly"] = result.StoppedEarly,
                ["points"] = new JsonArray(result.Points.Select(p => (JsonNode)new JsonObject
                {
                    ["learningRate"] = p.LearningRate, ["loss"] = p.Loss, ["smoothedLoss"] = p.SmoothedLoss,
                }).ToArray()),
            });
            if (result.Points.Count > 0) output.Chart("lr-find.png", result.ToChart());
            context.Console.MarkupLine(Markup.Escape(result.Suggested is double rate
                ? string.Create(CultureInfo.InvariantCulture,
                    $"Suggested learning rate: {rate:G2} (steepest descent {result.Steepest:G2}, minimum / 10 {result.MinimumOverTen:G2}). Train with --learning-rate {rate:G2}.")
                : "The loss did not fall during the sweep, so no rate is suggested: raise --end-rate or --steps, or check the images and labels."));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }
    }
}
