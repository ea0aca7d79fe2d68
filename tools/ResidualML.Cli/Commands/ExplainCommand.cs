using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.Interpretation;
using Microsoft.ML.Residual.Plots;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml explain: Grad-CAM maps of a trained classifier: one overlay PNG per image, a grid page, explanations.csv and,
    /// for labelled images, the top-losses and most-confused pages.
    /// </summary>
    internal sealed class ExplainCommand : ICommand
    {
        private const int GridImages = 32, Chunk = 64, ConfusedPairs = 10, ExamplesPerPair = 4;

        private static readonly Dictionary<string, GradCamMethod> Methods = new()
        {
            ["gradcam"] = GradCamMethod.GradCam,
            ["gradcam++"] = GradCamMethod.GradCamPlusPlus,
        };

        public string Name => "explain";

        public string Summary => "Show where a model.zip looks (Grad-CAM): an overlay PNG per image and, for labelled images, top-losses and most-confused pages.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml explain --model model.zip --images photo.jpg",
            "residualml explain --model model.zip --dataset ./flowers-test --output why --top-losses 24",
            "residualml explain --model model.zip --images ./incoming --class tulip --method gradcam++",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("model", "FILE", "the model.zip that 'train' or 'sweep' wrote (required)"),
            new("images", "PATH", "an image, a folder of images (searched recursively), or a .csv whose first column is image paths"),
            new("dataset", "PATH", "labelled images instead: a folder of class sub-folders or a .csv of path,label lines; adds the top-losses and most-confused pages"),
            new("class", "NAME", "explain this class in every image (default: each image's predicted class)"),
            new("method", "NAME", "gradcam (default) or gradcam++"),
            new("top-losses", "N", "images on the top-losses page (default 16)"),
            new("output", "FOLDER", "where to write the files (default: the current directory)"),
        };

        public int Run(CommandLine line, CliContext context)
        {
            string modelPath = line.RequiredPath("model", "the model.zip to explain");
            if (line.Has("images") == line.Has("dataset"))
                throw new UsageException("explain needs one of --images (images to explain) or --dataset (labelled images, for the top-losses and most-confused pages).");
            GradCamMethod method = line.Choice("method", GradCamMethod.GradCam, Methods);
            int topLosses = line.Integer("top-losses", 16, 1, 1000);
            string? className = line.Text("class");
            string source = line.PathOf("dataset") ?? line.PathOf("images")!;
            IReadOnlyList<LabeledImage>? labelled = line.Has("dataset") ? ImageSources.Labeled(source, "dataset") : null;
            IReadOnlyList<string> paths = labelled?.Select(i => i.ImagePath).ToList() ?? ImageSources.Unlabeled(source, "images");

            using GradCam gradCam = Load(modelPath);
            gradCam.Method = method;
            if (className != null && !gradCam.ClassNames.Contains(className))
                throw new UsageException($"--class {className}: the model has no such class; its classes are {string.Join(", ", gradCam.ClassNames)}.");
            if (labelled != null) ClassificationModel.CheckKnownClasses(labelled, gradCam.ClassNames.ToArray(), $"--dataset {source}");
            var output = new OutputFiles(line.OutputFolder());

            // Images go through in chunks, so that memory holds only the maps the pages show, whatever the number of images.
            string root = Directory.Exists(source) ? source : Path.GetDirectoryName(source)!;
            var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var csv = new StringBuilder("image,explained,predicted,probability,peak_x,peak_y" + Environment.NewLine);
            var grid = new List<ClassActivationMap>();
            int[] actual = labelled?.Select(i => gradCam.ClassIndex(i.Label)).ToArray() ?? Array.Empty<int>();
            var predicted = new List<int>(paths.Count);
            var kept = new List<(ClassActivationMap Map, int Actual)>();
            context.Console.Status().Start($"Explaining {paths.Count} images", status =>
            {
                for (int start = 0; start < paths.Count; start += Chunk)
                {
                    context.Cancellation.ThrowIfCancellationRequested();
                    status.Status($"Explaining images {start + 1}-{Math.Min(start + Chunk, paths.Count)} of {paths.Count}");
                    IReadOnlyList<ClassActivationMap> maps = gradCam.ExplainFiles(paths.Skip(start).Take(Chunk).ToList(), className);
                    foreach (ClassActivationMap map in maps)
                    {
                        ExplanationPages.SaveOverlay(Path.Combine(OverlayFolder(output), OverlayName(root, map.Source!, taken) + ".png"), map);
                        csv.AppendLine(CsvLine(map));
                    }

                    grid.AddRange(maps.Take(GridImages - grid.Count));
                    predicted.AddRange(maps.Select(m => m.PredictedIndex));
                    if (labelled != null) kept = Kept(kept.Concat(maps.Select((m, i) => (m, actual[start + i]))).ToList(), topLosses);
                }
            });

            output.Written.Add(OverlayFolder(output));
            output.Text("explanations.csv", csv.ToString());
            output.Save("explanations.png", t => ExplanationPages.SaveGrid(t, $"Grad-CAM{(method == GradCamMethod.GradCamPlusPlus ? "++" : string.Empty)}"
                + (paths.Count > GridImages ? $": the first {GridImages} of {paths.Count} images" : string.Empty), grid), ".png");
            if (labelled != null)
            {
                var names = gradCam.ClassNames;
                var keptMaps = kept.Select(k => k.Map).ToList();
                var keptActual = kept.Select(k => k.Actual).ToList();
                output.Save("top-losses.png", t => ExplanationPages.SaveTopLosses(t, ClassificationInterpretation.TopLosses(keptMaps, keptActual, topLosses), names), ".png");
                IReadOnlyList<ConfusedPair> confused = ClassificationInterpretation.MostConfused(actual, predicted);
                if (confused.Count > 0)
                    output.Save("most-confused.png", t => ExplanationPages.SaveMostConfused(t, confused.Take(ConfusedPairs).ToList(), keptMaps, keptActual, names, ExamplesPerPair), ".png");
                else
                    context.Console.MarkupLine("Every image was classified correctly: no most-confused page.");
                int correct = actual.Where((a, i) => predicted[i] == a).Count();
                context.Console.MarkupLine(Markup.Escape($"{correct} of {paths.Count} images classified correctly."));
            }

            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        // GradCam.Load's argument errors as one line about --model.
        private static GradCam Load(string modelPath)
        {
            if (!File.Exists(modelPath)) throw new FileNotFoundException($"--model {modelPath}: no such file. Give the model.zip that 'residualml train' wrote.");
            try
            {
                return GradCam.Load(modelPath);
            }
            catch (ArgumentException e)
            {
                string reason = e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", string.Empty, StringComparison.Ordinal);
                int colon = reason.IndexOf("': ", StringComparison.Ordinal);
                throw new InvalidDataException($"--model {modelPath}: {(colon >= 0 ? reason[(colon + 3)..] : reason)}");
            }
        }

        private static string OverlayFolder(OutputFiles output) => Directory.CreateDirectory(output.PathOf("overlays")).FullName;

        // overlays/NAME.png: NAME is the image's path below the source folder with the separators as '-' (made unique).
        private static string OverlayName(string root, string image, HashSet<string> taken)
        {
            string stem = Path.ChangeExtension(Path.GetRelativePath(root, image), null).Replace(Path.DirectorySeparatorChar, '-').Replace(Path.AltDirectorySeparatorChar, '-');
            string name = stem;
            for (int n = 2; !taken.Add(name); n++) name = $"{stem}-{n}";
            return name;
        }

        private static string CsvLine(ClassActivationMap map)
        {
            var (x, y) = map.Peak;
            return string.Join(',', PredictCommand.Quote(map.Source!), PredictCommand.Quote(map.ClassName), PredictCommand.Quote(map.PredictedClassName),
                map.Scores[map.PredictedIndex].ToString("G6", CultureInfo.InvariantCulture), x.ToString(CultureInfo.InvariantCulture), y.ToString(CultureInfo.InvariantCulture));
        }

        // The maps the labelled pages can show: the images of largest loss, and each confused pair's most confident mistakes.
        internal static List<(ClassActivationMap Map, int Actual)> Kept(List<(ClassActivationMap Map, int Actual)> candidates, int topLosses)
        {
            var maps = candidates.Select(c => c.Map).ToList();
            var actual = candidates.Select(c => c.Actual).ToList();
            var worst = ClassificationInterpretation.TopLosses(maps, actual, topLosses).Select(l => l.Map);
            var confused = candidates.Where(c => c.Map.PredictedIndex != c.Actual)
                .GroupBy(c => (c.Actual, c.Map.PredictedIndex))
                .SelectMany(g => g.OrderByDescending(c => c.Map.Scores[c.Map.PredictedIndex]).Take(ExamplesPerPair).Select(c => c.Map));
            var keep = new HashSet<ClassActivationMap>(worst.Concat(confused));
            return candidates.Where(c => keep.Contains(c.Map)).ToList();
        }
    }
}
