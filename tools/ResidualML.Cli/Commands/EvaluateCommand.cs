using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Datasets;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>residualml evaluate: a trained classifier's metrics on labelled images; writes evaluation.json and evaluation-confusion-matrix.png.</summary>
    internal sealed class EvaluateCommand : ICommand
    {
        public string Name => "evaluate";

        public string Summary => "Evaluate a model.zip on labelled images (a folder of class sub-folders or a CSV); writes evaluation.json and a confusion matrix.";

        public IReadOnlyList<string> Examples { get; } = new[] { "residualml evaluate --model model.zip --dataset ./flowers-test" };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("model", "FILE", "the model.zip that 'train' or 'sweep' wrote (required)"),
            new("dataset", "PATH", "a folder with one sub-folder of images per class, or a .csv file of path,label lines (required)"),
            new("output", "FOLDER", "where to write the files (default: the current directory)"),
        };

        public int Run(CommandLine line, CliContext context)
        {
            string modelPath = line.RequiredPath("model", "the model.zip to evaluate");
            string dataset = line.RequiredPath("dataset", "the labelled images to evaluate on");
            IReadOnlyList<LabeledImage> images = ImageSources.Labeled(dataset, "dataset");
            var ml = new MLContext(seed: 1);
            ITransformer model = ClassificationModel.Load(ml, modelPath);
            string[] classes = ClassificationModel.Classes(model, ClassificationModel.Rows(ml, Enumerable.Empty<string>()).Schema, modelPath);
            var output = new OutputFiles(line.OutputFolder());
            MulticlassClassificationMetrics metrics = null!;
            context.Console.Status().Start($"Scoring {images.Count} images", _ =>
                metrics = ClassificationModel.Evaluate(ml, model, images, classes, $"--dataset {dataset}"));
            JsonObject json = OutputFiles.ClassificationJson(metrics, classes);
            json["model"] = modelPath;
            json["dataset"] = dataset;
            json["images"] = images.Count;
            output.Json("evaluation.json", json);
            output.ConfusionMatrix("evaluation-confusion-matrix.png", metrics, classes);
            Summaries.Classification(context.Console, metrics, classes, $"{images.Count} images");
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }
    }
}
