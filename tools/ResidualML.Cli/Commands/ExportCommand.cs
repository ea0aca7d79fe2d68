using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Microsoft.ML;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Onnx;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>residualml export: writes a copy of a model.zip whose network computes in float16 or INT8 (BatchNorm folded).</summary>
    internal sealed class ExportCommand : ICommand
    {
        private static readonly IReadOnlyDictionary<string, OnnxPrecision> Precisions = new Dictionary<string, OnnxPrecision>
        {
            ["float32"] = OnnxPrecision.Float32,
            ["float16"] = OnnxPrecision.Float16,
            ["int8"] = OnnxPrecision.Int8,
        };

        private static readonly IReadOnlyDictionary<string, TestTimeAugmentation> Augmentations = new Dictionary<string, TestTimeAugmentation>
        {
            ["none"] = TestTimeAugmentation.None,
            ["flip"] = TestTimeAugmentation.Flip,
            ["flip-crops"] = TestTimeAugmentation.FlipAndCrops,
        };

        private static readonly IReadOnlyDictionary<string, CalibrationMethod> Methods = new Dictionary<string, CalibrationMethod>
        {
            ["percentile"] = CalibrationMethod.Percentile,
            ["minmax"] = CalibrationMethod.MinMax,
        };

        public string Name => "export";

        public string Summary => "Write a copy of a model.zip for scoring: BatchNorm folded, float16 or INT8 (calibrated on your images), test-time augmentation.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml export --model model.zip --precision int8 --calibration ./photos",
            "residualml export --model model.zip --precision float16 --tta flip --output deploy",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("model", "FILE", "the model.zip that 'train', 'segment' or 'sweep' wrote (required)"),
            new("precision", "TYPE", "float32 (BatchNorm folded only), float16 or int8 (required)"),
            new("calibration", "PATH", "int8: images like those the model will score — a folder (searched recursively), a .csv of paths, or one image (required for int8)"),
            new("calibration-images", "N", "int8: how many of those images calibrate, spread evenly (default 256)"),
            new("calibration-method", "NAME", "int8: percentile (default; clips the rarest 0.001 % of activations) or minmax"),
            new("tta", "VIEWS", "average the logits over views of each image inside the graph: none (default), flip (the mirror image too) or flip-crops (and four corner crops; classifiers)"),
            CommonOptions.Output,
        };

        public int Run(CommandLine line, CliContext context)
        {
            string modelPath = line.RequiredPath("model", "the model.zip to convert");
            OnnxPrecision precision = line.Has("precision")
                ? line.Choice("precision", OnnxPrecision.Float32, Precisions)
                : throw new UsageException("--precision is required: float32, float16 or int8.");
            var options = new ScoringOptions
            {
                Precision = precision, TestTimeAugmentation = line.Choice("tta", TestTimeAugmentation.None, Augmentations),
                CalibrationRows = line.Integer("calibration-images", 256, 1, 100_000),
                Calibration = new OnnxCalibration { Method = line.Choice("calibration-method", CalibrationMethod.Percentile, Methods) },
            };
            var ml = new MLContext(seed: 1);
            if (precision == OnnxPrecision.Int8)
            {
                string images = line.PathOf("calibration") ?? throw new UsageException("--precision int8 needs --calibration: a folder or .csv of images like those the model will score.");
                options.CalibrationSet = ClassificationModel.Rows(ml, ImageSources.Unlabeled(images, "calibration"));
            }
            else if (line.Has("calibration"))
            {
                throw new UsageException("--calibration applies to --precision int8 only.");
            }

            if (!File.Exists(modelPath)) throw new FileNotFoundException($"--model {modelPath}: no such file. Give the model.zip that 'residualml train' or 'segment' wrote.");
            var output = new OutputFiles(line.OutputFolder());
            string views = options.TestTimeAugmentation == TestTimeAugmentation.None ? string.Empty : "-" + line.Text("tta");
            string name = $"{Path.GetFileNameWithoutExtension(modelPath)}-{line.Text("precision")}{views}.zip";
            context.Console.Status().Start($"Converting {Path.GetFileName(modelPath)} to {line.Text("precision")}{views}", _ =>
                output.Save(name, temporary => ml.Model.SaveForScoring(modelPath, temporary, options)));
            long before = new FileInfo(modelPath).Length, after = new FileInfo(output.PathOf(name)).Length;
            context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"{name}: {after / 1048576.0:F1} MB ({(double)after / before:P0} of {before / 1048576.0:F1} MB); it scores like the original with 'predict', 'evaluate' or ml.Model.Load.")));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }
    }
}
