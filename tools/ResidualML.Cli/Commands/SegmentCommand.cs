using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Segmentation;
using Spectre.Console;

namespace ResidualML.Cli.Commands
{
    /// <summary>
    /// residualml segment: with --masks, trains a U-Net on images and their class-index masks (model.zip, metrics.json, loss.png,
    /// iou.png, overlays of the validation images); with --model, segments images and writes their masks and overlays.
    /// </summary>
    internal sealed class SegmentCommand : ICommand
    {
        private const int MaxOverlays = 32;

        public string Name => "segment";

        public string Summary => "Train a U-Net on images and masks (--masks), or segment images with a model.zip (--model); writes overlays as PNG.";

        public IReadOnlyList<string> Examples { get; } = new[]
        {
            "residualml segment --images ./scans --masks ./scans-masks --epochs 20",
            "residualml segment --model model.zip --images ./new-scans --output segmented",
        };

        public IReadOnlyList<OptionSpec> Options { get; } = new OptionSpec[]
        {
            new("images", "FOLDER", "the images (searched recursively; with --model also one image or a CSV of paths) (required)"),
            new("masks", "FOLDER", "train: a mask per image at the same relative path and name, a PNG whose pixel value is the class index"),
            new("model", "FILE", "segment with this model.zip instead of training"),
            new("classes", "N", "number of classes (default: 1 + the largest class index in the masks)"),
            new("arch", "NAME", "unet (default), unet_resnet18, unet_resnet34, unet_resnet50, unet_densenet121"),
            new("encoder", "NAME", "with --arch unet: a U-Net decoder over this registered backbone (e.g. resnet34, resnet50d)"),
            new("width", "N", "with --arch unet: channels of the first level (default 64)"),
            new("depth", "N", "with --arch unet: down-sampling steps (default 4)"),
            new("epochs", "N", "training epochs (default 20)"),
            new("image-size", "PIXELS", "images and masks are resized to this square size (default 128; a multiple of 2^depth)"),
            new("batch-size", "N", "images per batch (default 8)"),
            new("learning-rate", "RATE", "peak learning rate (default: AdamW's 1e-3)"),
            new("validation-fraction", "F", "share of the images held out for validation (default 0.2)"),
            CommonOptions.Accumulate, CommonOptions.Ema, CommonOptions.Seed, CommonOptions.Gpu, CommonOptions.Precision, CommonOptions.Output,
        };

        public int Run(CommandLine line, CliContext context)
        {
            string images = line.RequiredPath("images", "the images to train on or to segment");
            string? masks = line.PathOf("masks"), modelPath = line.PathOf("model");
            if ((masks is null) == (modelPath is null))
                throw new UsageException("'segment' needs either --masks (to train on images and their masks) or --model (to segment images with a trained model).");
            return masks != null ? Train(line, context, images, masks) : Apply(line, context, images, modelPath!);
        }

        private static int Train(CommandLine line, CliContext context, string imageFolder, string maskFolder)
        {
            int seed = CommonOptions.SeedOf(line);
            int size = line.Integer("image-size", 128, 16, 4096);
            string architecture = line.Text("arch") ?? "unet";
            string? encoder = line.Text("encoder");
            bool classic = ResidualModels.Find(architecture) is { Task: ModelTask.Segmenter, Encoder: null };
            if (encoder != null && !classic) throw new UsageException($"--encoder applies to --arch unet; {architecture} has its own encoder.");
            if ((encoder != null || !classic) && (line.Has("depth") || line.Has("width"))) throw new UsageException("--depth and --width shape the classic U-Net (--arch unet without --encoder) only.");
            UNetOptions? unet = encoder != null ? new UNetOptions { Encoder = encoder }
                : classic ? new UNetOptions { Depth = line.Integer("depth", 4, 1, 6), BaseWidth = line.Integer("width", 64, 1, 1024) } : null;
            double fraction = line.Number("validation-fraction", 0.01, 0.9) ?? 0.2;
            var pairs = ImageSources.Pairs(imageFolder, maskFolder);
            if (pairs.Count < 2) throw new InvalidDataException($"--images {imageFolder}: found {pairs.Count} image(s) with masks; training and validation need at least two.");
            int classes = line.Has("classes") ? line.Integer("classes", 2, 2, 1000) : DetectClasses(context, pairs);
            var output = new OutputFiles(line.OutputFolder());
            int[] order = Enumerable.Range(0, pairs.Count).ToArray();
            new Random(seed).Shuffle(order);
            int validationCount = Math.Clamp((int)Math.Round(pairs.Count * fraction), 1, pairs.Count - 1);
            var validation = order.Take(validationCount).OrderBy(i => i).Select(i => pairs[i]).ToList();
            var train = order.Skip(validationCount).OrderBy(i => i).Select(i => pairs[i]).ToList();

            MLContext ml = CommonOptions.Context(line, seed);

            IDataView trainRows = Rows(ml, train), validationRows = Rows(ml, validation);
            ITransformer imageLoader = ml.Transforms.LoadImages("Image", null, "ImagePath").Fit(trainRows);
            ITransformer maskLoader = ml.Transforms.LoadImages("Mask", null, "MaskPath").Fit(trainRows);
            var display = new TrainingDisplay(context.Console);
            var options = new SegmenterOptions
            {
                Architecture = architecture, ModelOptions = unet, NumClasses = classes, ImageWidth = size, ImageHeight = size,
                Epochs = line.Integer("epochs", 20, 1, 100_000), BatchSize = line.Integer("batch-size", 8, 1, 65_536),
                LearningRate = line.Number("learning-rate", 1e-8, 10), Loss = SegmentationLoss.CrossEntropyDice, Seed = seed,
                Precision = CommonOptions.PrecisionOf(line),
                ValidationSet = maskLoader.Transform(imageLoader.Transform(validationRows)),
                Progress = display.Epochs, BatchProgress = display.Batches, CancellationToken = context.Cancellation,
            };
            CommonOptions.ReadLoopSettings(line, options);
            context.Console.MarkupLine(Markup.Escape($"Training {architecture} at {size}x{size} on {train.Count} images with masks of {classes} classes, validating on {validation.Count}"));
            ITransformer segmenter = display.Show($"{architecture}, {options.Epochs} epochs",
                () => ml.Transforms.UNetSegmenter(options).Fit(maskLoader.Transform(imageLoader.Transform(trainRows))));

            // The saved model segments image paths: image loading, then the segmenter.
            ITransformer model = imageLoader.Append(segmenter);
            IDataView scored = model.Transform(maskLoader.Transform(validationRows));
            SegmentationMetrics metrics = ml.Segmentation().Evaluate(scored, labelColumnName: "Mask", predictedColumnName: "PredictedMask", numClasses: classes);
            output.Model("model.zip", ml, model, trainRows.Schema);
            output.Json("metrics.json", new JsonObject
            {
                ["task"] = "segmentation",
                ["architecture"] = architecture,
                ["imageSize"] = size,
                ["precision"] = options.Precision.ToString(),
                ["gradientAccumulationSteps"] = options.GradientAccumulationSteps,
                ["modelEmaDecay"] = options.ModelEmaDecay,
                ["classes"] = classes,
                ["trainingImages"] = train.Count,
                ["validationImages"] = validation.Count,
                ["validation"] = new JsonObject
                {
                    ["meanIoU"] = OutputFiles.Finite(metrics.MeanIoU),
                    ["meanDice"] = OutputFiles.Finite(metrics.MeanDice),
                    ["pixelAccuracy"] = OutputFiles.Finite(metrics.PixelAccuracy),
                    ["perClassIoU"] = new JsonArray(metrics.PerClassIoU.Select(v => (JsonNode?)JsonValue.Create(OutputFiles.Finite(v))).ToArray()),
                },
                ["epochs"] = OutputFiles.EpochsJson(display.History),
            });
            output.TrainingCurves(display.History);
            int written = WriteOverlays(ml, scored, output, validation.Select(p => p.Image).ToList(), imageFolder, context);
            context.Console.WriteLine();
            context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"Validation: mean IoU {metrics.MeanIoU:F3}, pixel accuracy {metrics.PixelAccuracy:P1}; per class IoU {string.Join(", ", metrics.PerClassIoU.Select((v, c) => $"{c}: {v:F3}"))}")));
            context.Console.MarkupLine(Markup.Escape($"Overlays of {written} validation image(s) (prediction over the image) in {output.PathOf("overlays")}"));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        private static int Apply(CommandLine line, CliContext context, string source, string modelPath)
        {
            foreach (string trainingOnly in new[] { "classes", "arch", "encoder", "width", "depth", "epochs", "image-size", "batch-size", "learning-rate", "validation-fraction", "gpu", "precision", "accumulate", "ema" })
                if (line.Has(trainingOnly)) throw new UsageException($"--{trainingOnly} is for training (with --masks); with --model the model's own settings apply.");
            IReadOnlyList<string> paths = ImageSources.Unlabeled(source, "images");
            var ml = new MLContext(seed: 1);
            ITransformer model = ClassificationModel.Load(ml, modelPath, "the model.zip that 'residualml segment --masks' wrote");
            IDataView rows = ml.Data.LoadFromEnumerable(paths.Select(p => new ImageRow { ImagePath = p }).ToList());
            IDataView scored;
            try
            {
                scored = model.Transform(rows);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                throw new InvalidDataException($"--model {modelPath}: the model does not segment image paths ({e.Message}). Give a model.zip that 'residualml segment --masks' wrote.", e);
            }

            if (scored.Schema.GetColumnOrNull("PredictedMask") is null)
                throw new InvalidDataException($"--model {modelPath}: the model has no PredictedMask column; it is not a segmentation model (for classifiers use 'residualml predict').");
            var output = new OutputFiles(line.OutputFolder());
            int written = WriteOverlays(ml, scored, output, paths, Directory.Exists(source) ? source : Path.GetDirectoryName(source)!, context, int.MaxValue, masks: true);
            context.Console.MarkupLine(Markup.Escape($"Segmented {written} image(s): the predicted classes in colour in masks/, blended over each image in overlays/"));
            Summaries.Files(context.Console, output);
            return Cli.Succeeded;
        }

        // Predicted masks blended over their images (overlays/NAME.png) and, when asked, the masks in colour (masks/NAME.png).
        private static int WriteOverlays(MLContext ml, IDataView scored, OutputFiles output, IReadOnlyList<string> paths, string root, CliContext context,
            int limit = MaxOverlays, bool masks = false)
        {
            var shape = (VectorDataViewType)scored.Schema["PredictedMask"].Type;
            int height = shape.Dimensions[^2], width = shape.Dimensions[^1];
            string overlays = output.PathOf("overlays"), maskFolder = output.PathOf("masks");
            Directory.CreateDirectory(overlays);
            if (masks) Directory.CreateDirectory(maskFolder);
            int n = 0;
            using DataViewRowCursor cursor = scored.GetRowCursor(new[] { scored.Schema["Image"], scored.Schema["PredictedMask"] });
            var imageGetter = cursor.GetGetter<MLImage>(scored.Schema["Image"]);
            var maskGetter = cursor.GetGetter<VBuffer<uint>>(scored.Schema["PredictedMask"]);
            MLImage image = null!;
            VBuffer<uint> mask = default;
            while (n < limit && n < paths.Count && cursor.MoveNext())
            {
                context.Cancellation.ThrowIfCancellationRequested();
                imageGetter(ref image);
                maskGetter(ref mask);
                uint[] classes = mask.DenseValues().ToArray();
                string name = Path.ChangeExtension(Path.GetRelativePath(root, paths[n]), ".png").Replace(Path.DirectorySeparatorChar, '_');
                MaskRenderer.SaveOverlay(Path.Combine(overlays, name), image, classes, width, height);
                if (masks) MaskRenderer.SaveMask(Path.Combine(maskFolder, name), classes, width, height);
                n++;
            }

            output.Written.Add(overlays + Path.DirectorySeparatorChar);
            if (masks) output.Written.Add(maskFolder + Path.DirectorySeparatorChar);
            return n;
        }

        // One more than the largest pixel value of the masks (read once here, so a bad mask fails before training, by name).
        private static int DetectClasses(CliContext context, IReadOnlyList<(string Image, string Mask)> pairs)
        {
            int largest = 0;
            foreach (var (_, maskPath) in pairs)
            {
                context.Cancellation.ThrowIfCancellationRequested();
                MLImage mask;
                try
                {
                    mask = MLImage.CreateFromFile(maskPath);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
                {
                    throw new InvalidDataException($"The mask '{maskPath}' cannot be read as an image ({e.Message}); masks are PNGs whose pixel value is the class index.", e);
                }

                using (mask)
                {
                    ReadOnlySpan<byte> pixels = mask.Pixels;
                    int step = mask.BitsPerPixel / 8;
                    for (int i = 0; i < pixels.Length; i += step) largest = Math.Max(largest, pixels[i]);
                }
            }

            if (largest == 0) throw new InvalidDataException("Every mask is all class 0 (background); masks are PNGs whose pixel value is the class index, so objects need values 1, 2, ….");
            return largest + 1;
        }

        private static IDataView Rows(MLContext ml, IEnumerable<(string Image, string Mask)> pairs) =>
            ml.Data.LoadFromEnumerable(pairs.Select(p => new PairRow { ImagePath = p.Image, MaskPath = p.Mask }).ToList());

        private sealed class PairRow
        {
            public string ImagePath { get; set; } = string.Empty;

            public string MaskPath { get; set; } = string.Empty;
        }

        private sealed class ImageRow
        {
            public string ImagePath { get; set; } = string.Empty;
        }
    }
}
