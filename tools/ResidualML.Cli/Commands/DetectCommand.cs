using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.IO;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Training;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml detect: trains an object detector (RetinaNet or FCOS) on a COCO, Pascal VOC or YOLO dataset or on generated
    /// shapes (model.zip, metrics.json with COCO mAP, loss.png, overlays of the validation images); with --model and a dataset,
    /// evaluates a model; with --model and --images, detects objects in images (detections.json and overlays).
    /// </summary>
    internal sealed class DetectCommand : ICommand
    {
        private const int MaxOverlays = 32;
        private const string PathColumn = "ImagePath", ImageColumn = "Image";
        private static readonly string[] DatasetOptions = { "coco", "voc", "yolo", "shapes" };

        public string Name => "detect";

        public string Summary => "Train an object detector on COCO, VOC or YOLO annotations (or generated shapes), evaluate it (--model and a dataset), or detect objects in images (--model --images).";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml detect --shapes 400 --epochs 20 --output shapes-run          # a demo that needs no data",
            "residualml detect --coco instances.json --images ./photos --arch fcos_resnet50_fpn --epochs 30",
            "residualml detect --voc ./VOC2012 --image-size 384",
            "residualml detect --yolo ./dataset --classes ./dataset/classes.txt",
            "residualml detect --yolo ./coco128 --split train2017 --classes ./coco128.yaml        # the Ultralytics layout",
            "residualml detect --model model.zip --coco test.json --images ./test-photos --output evaluation",
            "residualml detect --model model.zip --images ./new-photos --output found",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("coco", "FILE", "a COCO annotation file (instances JSON); its images are below --images"),
            new("images", "PATH", "with --coco: the folder its file names are relative to; with --model alone: the images to detect objects in (a folder, one image or a CSV of paths)"),
            new("voc", "FOLDER", "a Pascal VOC folder: Annotations/*.xml and JPEGImages/ (difficult objects left out)"),
            new("yolo", "FOLDER", "a YOLO dataset: images in FOLDER/images, a .txt of 'class cx cy w h' lines (normalised) per image of the same name in FOLDER/labels; with --split NAME, FOLDER/images/NAME and FOLDER/labels/NAME (Ultralytics)"),
            new("classes", "FILE", "the class names: one per line in the order of the class numbers, or an Ultralytics data.yaml (--yolo: default FOLDER/classes.txt or FOLDER/data.yaml; --voc: the classes and their order)"),
            new("split", "NAME", "with --voc: the image set ImageSets/Main/NAME.txt (e.g. train, val); with --yolo: the sub-folder NAME of images/ and labels/"),
            new("shapes", "N", "generate N images of circles, squares and triangles (into OUTPUT/shapes; a demo that needs no data)"),
            new("model", "FILE", "a model.zip from 'residualml detect': with a dataset option, evaluate it; with --images alone, detect objects"),
            new("arch", "NAME", "retinanet_resnet50_fpn (default), fcos_resnet50_fpn, or the resnet18/resnet34 variants of either"),
            new("fpn-channels", "N", "channels of the feature pyramid and the heads (default 256; e.g. 32 for a small, fast model)"),
            new("head-convolutions", "N", "3×3 convolutions in each head before its output (default 4)"),
            new("epochs", "N", "training epochs (default 20)"),
            new("image-size", "PIXELS", "images are resized to this square size for the network (default 512; 128 with --shapes, which draws them at that size)"),
            new("batch-size", "N", "images per batch (default 4)"),
            new("learning-rate", "RATE", "peak learning rate (default: AdamW's 1e-3)"),
            new("validation-fraction", "F", "share of the images held out for validation (default 0.2)"),
            new("min-score", "S", "detections scoring below S are left out of overlays and detections.json (default 0.3; the mAP counts every detection)"),
            CommonOptions.Accumulate, CommonOptions.Ema, CommonOptions.Seed, CommonOptions.Gpu, CommonOptions.Precision, CommonOptions.Output,
        };

        public int Run(CommandLine line, CliContext context)
        {
            string[] given = DatasetOptions.Where(line.Has).ToArray();
            if (given.Length > 1)
                throw new UsageException($"give one dataset: --coco, --voc, --yolo or --shapes; got {string.Join(" and ", given.Select(o => "--" + o))}.");
            string? modelPath = line.PathOf("model");
            if (modelPath is null)
            {
                if (given.Length == 0)
                    throw new UsageException("'detect' needs a dataset to train on (--coco FILE --images DIR, --voc DIR, --yolo DIR --classes FILE, or --shapes N), or --model to evaluate or apply a trained model. See 'residualml detect --help'.");
                return Train(line, context);
            }

            foreach (string trainingOnly in new[] { "arch", "fpn-channels", "head-convolutions", "epochs", "batch-size", "learning-rate", "validation-fraction", "gpu", "precision", "accumulate", "ema" })
                if (line.Has(trainingOnly)) throw new UsageException($"--{trainingOnly} is for training (without --model); with --model the model's own settings apply.");
            if (given.Length == 0)
            {
                if (!line.Has("images")) throw new UsageException("'detect --model' needs --images (the images to detect objects in) or a dataset option (--coco, --voc, --yolo, --shapes) to evaluate on.");
                if (line.Has("classes")) throw new UsageException("--classes goes with --yolo or --voc; a model knows its classes.");
                if (line.Has("image-size")) throw new UsageException("--image-size is for training and --shapes; with --model and --images the model's own size applies.");
                return Predict(line, context, modelPath);
            }

            return Evaluate(line, context, modelPath);
        }

        private static int Train(CommandLine line, CliContext context)
        {
            CheckDatasetUsage(line, evaluating: false);
            int seed = CommonOptions.SeedOf(line);
            int size = line.Integer("image-size", line.Has("shapes") ? 128 : 512, 32, 4096);
            double minScore = MinScore(line);
            string architecture = line.Text("arch") ?? "retinanet_resnet50_fpn";
            if (ResidualModels.Find(architecture) is not { Task: ModelTask.Detector })
                throw new UsageException($"--arch {architecture} is not a detector; the detectors are {string.Join(", ", ResidualModels.All.Where(m => m.Task == ModelTask.Detector).Select(m => m.Name))}.");
            double fraction = line.Number("validation-fraction", 0.01, 0.9) ?? 0.2;
            var output = new OutputFiles(line.OutputFolder());
            DetectionDataset dataset = LoadDataset(line, output, size, seed, modelClasses: null);
            if (dataset.Examples.Count < 2)
                throw new InvalidDataException($"The dataset has {dataset.Examples.Count} image(s); training and validation need at least two.");

            int[] order = Enumerable.Range(0, dataset.Examples.Count).ToArray();
            new Random(seed).Shuffle(order);
            int validationCount = Math.Clamp((int)Math.Round(dataset.Examples.Count * fraction), 1, dataset.Examples.Count - 1);
            var validation = new DetectionDataset(dataset.ClassNames, order.Take(validationCount).Order().Select(i => dataset.Examples[i]).ToList());
            var train = new DetectionDataset(dataset.ClassNames, order.Skip(validationCount).Order().Select(i => dataset.Examples[i]).ToList());

            MLContext ml = CommonOptions.Context(line, seed);
            IDataView trainRows = train.ToDataView(ml), validationRows = validation.ToDataView(ml);
            ITransformer imageLoader = ml.Transforms.LoadImages(ImageColumn, null, PathColumn).Fit(trainRows);
            var display = new TrainingDisplay(context.Console, lossOnly: true);
            DetectorOptions? network = line.Has("fpn-channels") || line.Has("head-convolutions")
                ? new DetectorOptions
                {
                    FpnChannels = line.Has("fpn-channels") ? line.Integer("fpn-channels", 256, 1, 4096) : null,
                    HeadConvolutions = line.Has("head-convolutions") ? line.Integer("head-convolutions", 4, 0, 16) : null,
                }
                : null;
            var options = new ObjectDetectorOptions
            {
                Architecture = architecture, ModelOptions = network, ImageColumnName = ImageColumn, LabelColumnName = "Labels", BoxColumnName = "Boxes",
                ImageWidthColumnName = "Width", ImageHeightColumnName = "Height", ImageWidth = size, ImageHeight = size,
                Epochs = line.Integer("epochs", 20, 1, 100_000), BatchSize = line.Integer("batch-size", 4, 1, 65_536),
                LearningRate = line.Number("learning-rate", 1e-8, 10), Seed = seed, Precision = CommonOptions.PrecisionOf(line),
                ValidationSet = imageLoader.Transform(validationRows),
                Progress = display.Epochs, BatchProgress = display.Batches, CancellationToken = context.Cancellation,
            };
            CommonOptions.ReadLoopSettings(line, options);
            context.Console.MarkupLine(Markup.Escape($"Training {architecture} at {size}x{size} on {train}; validating on {validation.Examples.Count} images"));
            var clock = Stopwatch.StartNew();
            ITransformer detector = display.Show($"{architecture}, {options.Epochs} epochs",
                () => ml.Detection().ObjectDetector(options).Fit(imageLoader.Transform(trainRows)));
            double seconds = clock.Elapsed.TotalSeconds;

            // The saved model detects objects from image paths (and the images' sizes): image loading, then the detector.
            ITransformer model = imageLoader.Append(detector);
            IDataView scored = model.Transform(validationRows);
            DetectionMetrics metrics = ml.Detection().Evaluate(scored);
            output.Model("model.zip", ml, model, trainRows.Schema);
            JsonObject json = MetricsJson(metrics, dataset.ClassNames);
            output.Json("metrics.json", new JsonObject
            {
                ["task"] = "detection",
                ["architecture"] = architecture,
                ["fpnChannels"] = network?.FpnChannels,
                ["headConvolutions"] = network?.HeadConvolutions,
                ["imageSize"] = size,
                ["precision"] = options.Precision.ToString(),
                ["gradientAccumulationSteps"] = options.GradientAccumulationSteps,
                ["modelEmaDecay"] = options.ModelEmaDecay,
                ["classes"] = new JsonArray(dataset.ClassNames.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()),
                ["trainingImages"] = train.Examples.Count,
                ["validationImages"] = validation.Examples.Count,
                ["trainingSeconds"] = Math.Round(seconds, 1),
                ["validation"] = json,
                ["epochs"] = EpochsJson(display.History),
            });
            LossChart(output, display.History);
            int written = WriteOverlays(scored, output, validation, dataset.ClassNames, minScore, context, MaxOverlays, detections: null);
            PrintMetrics(context.Console, metrics, dataset.ClassNames, "Validation");
            context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"Trained in {TrainingDisplay.Duration(TimeSpan.FromSeconds(seconds))}.")));
            context.Console.MarkupLine(Markup.Escape($"Overlays of {written} validation image(s) (predicted boxes in orange, true boxes in green) in {output.PathOf("overlays")}"));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static int Evaluate(CommandLine line, CliContext context, string modelPath)
        {
            CheckDatasetUsage(line, evaluating: true);
            var ml = new MLContext(seed: 1);
            (ITransformer model, DataViewSchema input, string[] classes) = LoadModel(ml, modelPath);
            int seed = CommonOptions.SeedOf(line);
            var output = new OutputFiles(line.OutputFolder());
            // Generated shapes for evaluation are drawn with another seed than training's, so that they are new images.
            DetectionDataset dataset = LoadDataset(line, output, line.Integer("image-size", 128, 32, 4096), seed + 1, classes);
            IDataView scored = Score(model, dataset.ToDataView(ml), input, modelPath);
            DetectionMetrics metrics = ml.Detection().Evaluate(scored);
            output.Json("metrics.json", new JsonObject
            {
                ["task"] = "detection",
                ["model"] = modelPath,
                ["classes"] = new JsonArray(classes.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()),
                ["images"] = dataset.Examples.Count,
                ["evaluation"] = MetricsJson(metrics, classes),
            });
            int written = WriteOverlays(scored, output, dataset, classes, MinScore(line), context, MaxOverlays, detections: null);
            PrintMetrics(context.Console, metrics, classes, $"{dataset.Examples.Count} images");
            context.Console.MarkupLine(Markup.Escape($"Overlays of {written} image(s) (predicted boxes in orange, true boxes in green) in {output.PathOf("overlays")}"));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static int Predict(CommandLine line, CliContext context, string modelPath)
        {
            string source = line.RequiredPath("images", "the images to detect objects in");
            IReadOnlyList<string> paths = ImageSources.Unlabeled(source, "images");
            var ml = new MLContext(seed: 1);
            (ITransformer model, DataViewSchema input, string[] classes) = LoadModel(ml, modelPath);
            // Rows in the training layout, without objects: the model reads each image's size to give boxes in its pixels.
            var examples = paths.Select(p =>
            {
                using MLImage image = MLImage.CreateFromFile(p);
                return new DetectionExample(p, image.Width, image.Height, Array.Empty<DetectionBox>());
            }).ToList();
            var dataset = new DetectionDataset(classes, examples);
            IDataView scored = Score(model, dataset.ToDataView(ml), input, modelPath);
            var output = new OutputFiles(line.OutputFolder());
            var detections = new JsonArray();
            int written = WriteOverlays(scored, output, dataset, classes, MinScore(line), context, int.MaxValue, detections, truth: false);
            output.Json("detections.json", detections);
            int found = detections.Sum(d => d!["detections"]!.AsArray().Count);
            context.Console.MarkupLine(Markup.Escape($"Found {found} object(s) in {written} image(s): boxes in detections.json, drawn over each image in overlays/"));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static double MinScore(CommandLine line) => line.Number("min-score", 0, 1) ?? 0.3;

        // The dataset option given: --coco with --images, --voc, --yolo with --classes, or --shapes. With modelClasses (evaluation),
        // the labels are renumbered to the model's classes, and a class the model does not know fails by name.
        private static DetectionDataset LoadDataset(CommandLine line, OutputFiles output, int shapeSize, int seed, IReadOnlyList<string>? modelClasses)
        {
            bool evaluating = modelClasses is not null;
            DetectionDataset dataset;
            if (line.PathOf("coco") is string coco)
            {
                string images = line.RequiredPath("images", "the folder of the COCO file's images");
                if (!File.Exists(coco)) throw new FileNotFoundException($"--coco {coco}: no such file. Give a COCO annotation file (instances JSON).");
                if (!Directory.Exists(images)) throw new DirectoryNotFoundException($"--images {images}: no such folder.");
                dataset = CocoDetection.Load(coco, images);
            }
            else if (line.PathOf("voc") is string voc)
            {
                if (!Directory.Exists(voc)) throw new DirectoryNotFoundException($"--voc {voc}: no such folder. Give a Pascal VOC folder with Annotations/ and JPEGImages/.");
                dataset = VocDetection.Load(voc, line.Has("classes") ? ReadClasses(line) : modelClasses, imageSet: line.Text("split"));
            }
            else if (line.PathOf("yolo") is string yolo)
            {
                string split = line.Text("split") ?? string.Empty;
                string images = Path.Combine(yolo, "images", split), labels = Path.Combine(yolo, "labels", split);
                if (!Directory.Exists(images) || !Directory.Exists(labels))
                    throw new DirectoryNotFoundException($"--yolo {yolo}: expected the folders {images} and {labels} (a .txt of 'class cx cy w h' lines per image, of the same name)"
                        + (line.Has("split") ? "." : "; for the Ultralytics layout (images/train, labels/train) give --split train."));
                dataset = YoloDetection.Load(images, labels, YoloClasses(line, yolo) ?? throw new UsageException(YoloClassesMissing));
            }
            else
            {
                int count = line.Integer("shapes", 100, 2, 1_000_000);
                string folder = output.PathOf(evaluating ? "shapes-evaluation" : "shapes");
                dataset = ShapeDetection.Generate(folder, count, shapeSize, seed);
                output.Written.Add(folder + Path.DirectorySeparatorChar);
            }

            if (dataset.Examples.Count == 0) throw new InvalidDataException("The dataset has no images.");
            return modelClasses is null ? dataset : InModelClasses(dataset, modelClasses);
        }

        // The mistakes in combining the dataset options, found before anything is read or trained.
        private static void CheckDatasetUsage(CommandLine line, bool evaluating)
        {
            if (line.Has("images") && !line.Has("coco"))
                throw new UsageException(evaluating
                    ? "--images goes with --coco (the folder of its images) or alone with --model (images to detect objects in); the other datasets name their images."
                    : "--images goes with --coco (the folder of its images); --voc, --yolo and --shapes name their images. To detect objects in images, give --model too.");
            if (line.Has("classes") && !line.Has("yolo") && !line.Has("voc"))
                throw new UsageException("--classes goes with --yolo (required) or --voc; COCO files and --shapes name their classes.");
            if (line.Has("image-size") && evaluating && !line.Has("shapes"))
                throw new UsageException("--image-size is for training; with --model it only sets the size of --shapes images.");
            if (line.Has("coco") && !line.Has("images"))
                throw new UsageException("--coco needs --images DIR: the folder its images' file names are relative to.");
            if (line.Has("split") && !line.Has("voc") && !line.Has("yolo"))
                throw new UsageException("--split goes with --voc (an image set) or --yolo (a sub-folder of images/ and labels/).");
            if (line.PathOf("yolo") is string yolo && YoloClasses(line, yolo) is null)
                throw new UsageException(YoloClassesMissing);
        }

        private const string YoloClassesMissing =
            "--yolo needs --classes FILE: the class names, one per line in the order of the class numbers (or a data.yaml); FOLDER/classes.txt or FOLDER/data.yaml is read when there is one.";

        // The file of YOLO class names: --classes, else FOLDER/classes.txt or FOLDER/data.yaml; null when there is none.
        private static string? YoloClasses(CommandLine line, string folder) =>
            line.PathOf("classes") ?? new[] { "classes.txt", "data.yaml", "data.yml" }.Select(name => Path.Combine(folder, name)).FirstOrDefault(File.Exists);

        private static string[] ReadClasses(CommandLine line)
        {
            string path = line.RequiredPath("classes", "the class names, one per line");
            if (!File.Exists(path)) throw new FileNotFoundException($"--classes {path}: no such file. Give a text file with one class name per line.");
            string[] names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names.Length == 0) throw new InvalidDataException($"--classes {path}: the file names no class; give one class name per line.");
            return names;
        }

        // The dataset with its labels numbered as the model's classes (the evaluation compares key values by number).
        private static DetectionDataset InModelClasses(DetectionDataset dataset, IReadOnlyList<string> modelClasses)
        {
            if (dataset.ClassNames.SequenceEqual(modelClasses, StringComparer.Ordinal)) return dataset;
            var index = modelClasses.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
            int[] counts = dataset.CountObjects().ToArray();
            var unknown = dataset.ClassNames.Where((name, i) => counts[i] > 0 && !index.ContainsKey(name)).ToList();
            if (unknown.Count > 0)
                throw new InvalidDataException($"The dataset has objects of class(es) the model was not trained on: {string.Join(", ", unknown.Select(n => $"'{n}'"))}; "
                    + $"the model knows {string.Join(", ", modelClasses.Select(c => $"'{c}'"))}.");
            var examples = dataset.Examples.Select(e => e with
            {
                Objects = e.Objects.Select(o => o with { Label = index[dataset.ClassNames[o.Label]] }).ToList(),
            }).ToList();
            return new DetectionDataset(modelClasses, examples);
        }

        private static (ITransformer Model, DataViewSchema Input, string[] Classes) LoadModel(MLContext ml, string path)
        {
            const string expected = "the model.zip that 'residualml detect' wrote";
            if (!File.Exists(path)) throw new FileNotFoundException($"--model {path}: no such file. Give {expected}.");
            ITransformer model;
            DataViewSchema input;
            try
            {
                model = ml.Model.LoadChecked(path, out input);
            }
            catch (InvalidModelException e)
            {
                throw new InvalidDataException($"--model {path}: {e.Message} Give {expected}.", e);
            }

            DataViewSchema output;
            try
            {
                output = model.GetOutputSchema(input);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                throw new InvalidDataException($"--model {path}: the model does not score image paths ({e.Message}). Give {expected}.", e);
            }

            if (output.GetColumnOrNull("PredictedBoundingBoxes") is null || output.GetColumnOrNull("PredictedLabel") is not { } predicted || !predicted.HasKeyValues())
                throw new InvalidDataException($"--model {path}: the model has no PredictedBoundingBoxes and PredictedLabel columns; it is not an object detector "
                    + "(for classifiers use 'residualml predict', for segmentation 'residualml segment').");
            VBuffer<ReadOnlyMemory<char>> names = default;
            predicted.GetKeyValues(ref names);
            return (model, input, names.DenseValues().Select(n => n.ToString()).ToArray());
        }

        private static IDataView Score(ITransformer model, IDataView rows, DataViewSchema input, string modelPath)
        {
            foreach (DataViewSchema.Column column in input)
                if (rows.Schema.GetColumnOrNull(column.Name) is null)
                    throw new InvalidDataException($"--model {modelPath}: the model reads a column '{column.Name}' that detection rows do not have; give {"a model.zip that 'residualml detect' wrote"}.");
            return model.Transform(rows);
        }

        private static JsonObject MetricsJson(DetectionMetrics metrics, IReadOnlyList<string> classes)
        {
            var perClass = new JsonObject();
            for (int c = 0; c < classes.Count; c++)
            {
                perClass[classes[c]] = new JsonObject
                {
                    ["averagePrecision"] = c < metrics.PerClassAveragePrecision.Count ? OutputFiles.Finite(metrics.PerClassAveragePrecision[c]) : null,
                    ["averagePrecision50"] = c < metrics.PerClassAveragePrecision50.Count ? OutputFiles.Finite(metrics.PerClassAveragePrecision50[c]) : null,
                };
            }

            return new JsonObject
            {
                ["images"] = metrics.Images,
                ["meanAveragePrecision"] = OutputFiles.Finite(metrics.MeanAveragePrecision),
                ["meanAveragePrecision50"] = OutputFiles.Finite(metrics.MeanAveragePrecision50),
                ["meanAveragePrecision75"] = OutputFiles.Finite(metrics.MeanAveragePrecision75),
                ["averageRecall"] = OutputFiles.Finite(metrics.AverageRecall),
                ["perClass"] = perClass,
            };
        }

        private static void PrintMetrics(IAnsiConsole console, DetectionMetrics metrics, IReadOnlyList<string> classes, string set)
        {
            static string F(double? v) => v is double d && double.IsFinite(d) ? d.ToString("F3", CultureInfo.InvariantCulture) : "-";
            console.WriteLine();
            console.MarkupLine(Markup.Escape($"{set}: mAP {F(metrics.MeanAveragePrecision)}, mAP50 {F(metrics.MeanAveragePrecision50)}, mAP75 {F(metrics.MeanAveragePrecision75)}, AR {F(metrics.AverageRecall)}"));
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("AP").RightAligned()).AddColumn(new TableColumn("AP50").RightAligned());
            for (int c = 0; c < classes.Count; c++)
                table.AddRow(new Text(classes[c]), new Text(F(c < metrics.PerClassAveragePrecision.Count ? metrics.PerClassAveragePrecision[c] : null)),
                    new Text(F(c < metrics.PerClassAveragePrecision50.Count ? metrics.PerClassAveragePrecision50[c] : null)));
            console.Write(table);
        }

        // The epochs as the other commands write them, less the accuracies and IoU a detector does not measure.
        private static JsonArray EpochsJson(IReadOnlyList<EpochReport> history)
        {
            JsonArray epochs = OutputFiles.EpochsJson(history);
            foreach (JsonNode? epoch in epochs)
            {
                var fields = epoch!.AsObject();
                foreach (string unmeasured in new[] { "trainingAccuracy", "validationAccuracy", "validationMeanIoU" }) fields.Remove(unmeasured);
            }

            return epochs;
        }

        private static void LossChart(OutputFiles output, IReadOnlyList<EpochReport> history)
        {
            if (history.Count == 0) return;
            double[] epochs = history.Select(r => (double)r.Epoch).ToArray();
            var loss = new LineChart { Title = "Loss", XLabel = "epoch", YLabel = "loss" }.Add("training", epochs, history.Select(r => r.TrainingLoss).ToArray());
            if (history.Any(r => r.ValidationLoss is not null))
                loss.Add("validation", epochs, history.Select(r => r.ValidationLoss ?? double.NaN).ToArray());
            output.Chart("loss.png", loss);
        }

        // Overlays (overlays/NAME.png) of the first `limit` scored images: detections scoring at least minScore and, with truth,
        // the true boxes; with `detections`, each image's detections are added to it as JSON too.
        private static int WriteOverlays(IDataView scored, OutputFiles output, DetectionDataset dataset, IReadOnlyList<string> classes, double minScore,
            CliContext context, int limit, JsonArray? detections, bool truth = true)
        {
            string overlays = output.PathOf("overlays");
            Directory.CreateDirectory(overlays);
            string root = CommonFolder(dataset.Examples.Select(e => e.ImagePath));
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            DataViewSchema schema = scored.Schema;
            using DataViewRowCursor cursor = scored.GetRowCursor(new[] { schema["PredictedLabel"], schema["Score"], schema["PredictedBoundingBoxes"] });
            var labelGetter = cursor.GetGetter<VBuffer<uint>>(schema["PredictedLabel"]);
            var scoreGetter = cursor.GetGetter<VBuffer<float>>(schema["Score"]);
            var boxGetter = cursor.GetGetter<VBuffer<float>>(schema["PredictedBoundingBoxes"]);
            VBuffer<uint> labels = default;
            VBuffer<float> scores = default, boxes = default;
            int n = 0;
            while (n < dataset.Examples.Count && cursor.MoveNext())
            {
                context.Cancellation.ThrowIfCancellationRequested();
                DetectionExample example = dataset.Examples[n];
                labelGetter(ref labels);
                scoreGetter(ref scores);
                boxGetter(ref boxes);
                List<ScoredBox> found = Detections(labels.DenseValues().ToArray(), scores.DenseValues().ToArray(), boxes.DenseValues().ToArray(), classes.Count, minScore);
                detections?.Add(new JsonObject
                {
                    ["image"] = example.ImagePath,
                    ["width"] = example.Width,
                    ["height"] = example.Height,
                    ["detections"] = new JsonArray(found.Select(d => (JsonNode)new JsonObject
                    {
                        ["label"] = classes[d.Label],
                        ["score"] = Math.Round(d.Score, 4),
                        ["box"] = new JsonArray(new[] { d.X1, d.Y1, d.X2, d.Y2 }.Select(v => (JsonNode?)JsonValue.Create(Math.Round(v, 2))).ToArray()),
                    }).ToArray()),
                });
                if (n < limit)
                {
                    string name = UniqueName(Path.ChangeExtension(Path.GetRelativePath(root, example.ImagePath), ".png").Replace(Path.DirectorySeparatorChar, '_').Replace(Path.AltDirectorySeparatorChar, '_'), names);
                    using MLImage image = MLImage.CreateFromFile(example.ImagePath);
                    DetectionOverlay.Save(Path.Combine(overlays, name), image, found, classes, truth ? example.Objects : null);
                }

                n++;
            }

            output.Written.Add(overlays + Path.DirectorySeparatorChar);
            return Math.Min(n, limit);
        }

        // One image's detections (keys 1… are classes 0…), best first, scoring at least minScore.
        private static List<ScoredBox> Detections(uint[] labels, float[] scores, float[] boxes, int classes, double minScore)
        {
            var found = new List<ScoredBox>();
            int count = Math.Min(labels.Length, Math.Min(scores.Length, boxes.Length / 4));
            for (int i = 0; i < count; i++)
            {
                if (scores[i] < minScore || labels[i] == 0 || labels[i] > classes) continue;
                found.Add(new ScoredBox((int)labels[i] - 1, scores[i], boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]));
            }

            return found.OrderByDescending(d => d.Score).ToList();
        }

        private static string UniqueName(string name, HashSet<string> taken)
        {
            string candidate = name;
            for (int i = 2; !taken.Add(candidate); i++) candidate = $"{Path.GetFileNameWithoutExtension(name)}-{i}{Path.GetExtension(name)}";
            return candidate;
        }

        // The deepest folder that holds every path (so overlay names keep the parts of the paths that differ).
        private static string CommonFolder(IEnumerable<string> paths)
        {
            string? common = null;
            foreach (string path in paths)
            {
                string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? string.Empty;
                if (common is null)
                {
                    common = folder;
                    continue;
                }

                while (!(folder + Path.DirectorySeparatorChar).StartsWith(common + Path.DirectorySeparatorChar, StringComparison.Ordinal) && Path.GetDirectoryName(common) is string parent)
                    common = parent;
            }

            return common ?? string.Empty;
        }
    }
}
