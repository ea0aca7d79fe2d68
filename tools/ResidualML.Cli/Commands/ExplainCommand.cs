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
        private const int GridImages = 32;

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

            IReadOnlyList<ClassActivationMap> maps = null!;
            context.Console.Status().Start($"Explaining {paths.Count} images", _ => maps = gradCam.ExplainFiles(paths, className));
            context.Cancellation.ThrowIfCancellationRequested();

            WriteOverlays(output, maps, Directory.Exists(source) ? source : Path.GetDirectoryName(source)!);
            output.Text("explanations.csv", Csv(maps));
            output.Save("explanations.png", t => ExplanationPages.SaveGrid(t, $"Grad-CAM{(method == GradCamMethod.GradCamPlusPlus ? "++" : string.Empty)}"
                + (maps.Count > GridImages ? $": the first {GridImages} of {maps.Count} images" : string.Empty), maps.Take(GridImages).ToList()), ".png");
            if (labelled != null)
            {
                var names = gradCam.ClassNames;
                int[] actual = labelled.Select(i => gradCam.ClassIndex(i.Label)).ToArray();
                output.Save("top-losses.png", t => ExplanationPages.SaveTopLosses(t, ClassificationInterpretation.TopLosses(maps, actual, topLosses), names), ".png");
                IReadOnlyList<ConfusedPair> confused = ClassificationInterpretation.MostConfused(maps, actual);
                if (confused.Count > 0)
                    output.Save("most-confused.png", t => ExplanationPages.SaveMostConfused(t, confused.Take(10).ToList(), maps, actual, names), ".png");
                else
                    context.Console.MarkupLine("Every image was classified correctly: no most-confused page.");
                int correct = actual.Where((a, i) => maps[i].PredictedIndex == a).Count();
                context.Console.MarkupLine(Markup.Escape($"{correct} of {maps.Count} images classified correctly."));
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

        // overlays/NAME.png for each image, NAME its path below the source folder with the separators as '-'.
        private static void WriteOverlays(OutputFiles output, IReadOnlyList<ClassActivationMap> maps, string root)
        {
            string folder = output.PathOf("overlays");
            Directory.CreateDirectory(folder);
            var taken = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (ClassActivationMap map in maps)
            {
                string relative = Path.GetRelativePath(root, map.Source!);
                string stem = Path.ChangeExtension(relative, null).Replace(Path.DirectorySeparatorChar, '-').Replace(Path.AltDirectorySeparatorChar, '-');
                string name = stem;
                for (int n = 2; !taken.Add(name); n++) name = $"{stem}-{n}";
                ExplanationPages.SaveOverlay(Path.Combine(folder, name + ".png"), map);
            }

            output.Written.Add(folder);
        }

        private static string Csv(IReadOnlyList<ClassActivationMap> maps)
        {
            var csv = new StringBuilder();
            csv.AppendLine("image,explained,predicted,probability,peak_x,peak_y");
            foreach (ClassActivationMap map in maps)
            {
                var (x, y) = map.Peak;
                csv.AppendLine(string.Join(',', PredictCommand.Quote(map.Source!), PredictCommand.Quote(map.ClassName), PredictCommand.Quote(map.PredictedClassName),
                    map.Scores[map.PredictedIndex].ToString("G6", CultureInfo.InvariantCulture), x.ToString(CultureInfo.InvariantCulture), y.ToString(CultureInfo.InvariantCulture)));
            }

            return csv.ToString();
        }
    }
}
