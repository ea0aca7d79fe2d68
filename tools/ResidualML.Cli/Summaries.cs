using System.Collections.Generic;
using System.Globalization;
using Microsoft.ML.Data;
using Spectre.Console;

namespace ResidualML.Cli
{
    /// <summary>The tables a command prints at the end.</summary>
    internal static class Summaries
    {
        public static void Classification(IAnsiConsole console, MulticlassClassificationMetrics metrics, IReadOnlyList<string> classes, string set)
        {
            console.WriteLine();
            console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"{set}: macro accuracy {metrics.MacroAccuracy:P1}, micro accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F4}")));
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("images").RightAligned())
                .AddColumn(new TableColumn("recall").RightAligned()).AddColumn(new TableColumn("precision").RightAligned());
            var counts = metrics.ConfusionMatrix.Counts;
            for (int c = 0; c < classes.Count; c++)
            {
                double truth = 0, predicted = 0;
                for (int k = 0; k < classes.Count; k++)
                {
                    truth += counts[c][k];
                    predicted += counts[k][c];
                }

                table.AddRow(new Text(classes[c]), new Text(truth.ToString("F0", CultureInfo.InvariantCulture)),
                    new Text(truth == 0 ? "-" : (counts[c][c] / truth).ToString("P1", CultureInfo.InvariantCulture)),
                    new Text(predicted == 0 ? "-" : (counts[c][c] / predicted).ToString("P1", CultureInfo.InvariantCulture)));
            }

            console.Write(table);
        }

        public static void Files(IAnsiConsole console, OutputFiles output)
        {
            console.WriteLine();
            console.MarkupLine(Markup.Escape($"Written to {output.Folder}:"));
            foreach (string file in output.Written) console.MarkupLine("  " + Markup.Escape(System.IO.Path.GetRelativePath(output.Folder, file)));
        }
    }
}
