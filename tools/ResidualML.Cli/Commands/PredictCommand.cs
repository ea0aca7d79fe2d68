using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>residualml predict: classifies images with a trained model; writes predictions.csv (class and probabilities per image).</summary>
    internal sealed class PredictCommand : ICommand
    {
        private const int Shown = 20;

        public string Name => "predict";

        public string Summary => "Classify images (one file, a folder, or a CSV of paths) with a model.zip; writes predictions.csv.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml predict --model model.zip --images photo.jpg",
            "residualml predict --model model.zip --images ./incoming --output scored",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("model", "FILE", "the model.zip that 'train' or 'sweep' wrote (required)"),
            new("images", "PATH", "an image, a folder of images (searched recursively), or a .csv whose first column is image paths (required)"),
            new("output", "FOLDER", "where to write predictions.csv (default: the current directory)"),
        };

        public int Run(CommandLine line, CliContext context)
        {
            string modelPath = line.RequiredPath("model", "the model.zip to score with");
            string source = line.RequiredPath("images", "the images to classify");
            IReadOnlyList<string> paths = ImageSources.Unlabeled(source, "images");
            var ml = new MLContext(seed: 1);
            ITransformer model = ClassificationModel.Load(ml, modelPath);
            IDataView rows = ClassificationModel.Rows(ml, paths);
            string[] classes = ClassificationModel.Classes(model, rows.Schema, modelPath);
            var output = new OutputFiles(line.OutputFolder());

            var predictions = new List<(string Path, string Class, float[] Scores)>(paths.Count);
            context.Console.Status().Start($"Classifying {paths.Count} images", _ =>
            {
                IDataView scored = model.Transform(rows);
                using DataViewRowCursor cursor = scored.GetRowCursor(scored.Schema.Where(c => c.Name is "ImagePath" or "PredictedLabel" or "Score"));
                var pathGetter = cursor.GetGetter<ReadOnlyMemory<char>>(scored.Schema["ImagePath"]);
                var labelGetter = cursor.GetGetter<uint>(scored.Schema["PredictedLabel"]);
                var scoreGetter = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
                ReadOnlyMemory<char> path = default;
                uint key = 0;
                VBuffer<float> score = default;
                while (cursor.MoveNext())
                {
                    context.Cancellation.ThrowIfCancellationRequested();
                    pathGetter(ref path);
                    labelGetter(ref key);
                    scoreGetter(ref score);
                    predictions.Add((path.ToString(), key == 0 ? string.Empty : classes[key - 1], score.DenseValues().ToArray()));
                }
            });

            var csv = new StringBuilder();
            csv.AppendLine(string.Join(',', new[] { "image", "predicted", "probability" }.Concat(classes).Select(Quote)));
            foreach (var p in predictions)
                csv.AppendLine(string.Join(',', new[] { Quote(p.Path), Quote(p.Class), Number(p.Scores.Max()) }.Concat(p.Scores.Select(Number))));
            output.Text("predictions.csv", csv.ToString());

            var table = new Table().AddColumn("image").AddColumn("predicted").AddColumn(new TableColumn("probability").RightAligned());
            foreach (var p in predictions.Take(Shown))
                table.AddRow(new Text(Path.GetRelativePath(Directory.Exists(source) ? source : Path.GetDirectoryName(source)!, p.Path)), new Text(p.Class),
                    new Text(p.Scores.Max().ToString("P1", CultureInfo.InvariantCulture)));
            context.Console.Write(table);
            if (predictions.Count > Shown) context.Console.MarkupLine(Markup.Escape($"... and {predictions.Count - Shown} more in predictions.csv"));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static string Number(float value) => value.ToString("G6", CultureInfo.InvariantCulture);

        // RFC 4180: quote a field that holds a comma, a quote or a line break, doubling its quotes.
        internal static string Quote(string field) =>
            field.IndexOfAny(new[] { ',', '"', '\n', '\r' }) < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }
}
