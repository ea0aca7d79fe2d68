using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Cli;

/// <summary>
/// residualml detect as a user runs it: a tiny detector is trained once for the class on generated shapes (--shapes), then the
/// written model evaluates new shapes and detects objects in images; each file is checked for what it must hold. The network is
/// made small (resnet18 backbone, 16 pyramid channels, one head convolution, 64-pixel images) so that the class runs in seconds.
/// </summary>
[TestClass]
public sealed class DetectCliTests
{
    private const int Images = 24;
    private static readonly string[] ShapeClasses = { "circle", "square", "triangle" };

    private static string root = string.Empty;
    private static string trained = string.Empty;
    private static CliRun training = null!;

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        root = Directory.CreateTempSubdirectory("residualml-detect-cli-").FullName;
        trained = Path.Combine(root, "run");
        training = CliRun.Of(root, "detect", "--shapes", Images.ToString(System.Globalization.CultureInfo.InvariantCulture), "--image-size", "64", "--epochs", "1",
            "--arch", "retinanet_resnet18_fpn", "--fpn-channels", "16", "--head-convolutions", "1", "--batch-size", "8", "--validation-fraction", "0.25", "--output", "run");
    }

    [ClassCleanup]
    public static void DeleteFiles()
    {
        if (root.Length > 0) Directory.Delete(root, recursive: true);
    }

    [TestMethod]
    public void Train_OnGeneratedShapes_WritesALoadableModelMetricsJsonALossPlotAndOverlays()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        Assert.AreEqual(string.Empty, training.Errors);
        StringAssert.Contains(training.Output, "mAP50");

        Assert.AreEqual(Images, Directory.GetFiles(Path.Combine(trained, "shapes"), "*.png").Length, "--shapes generated its images into the output folder");
        var ml = new MLContext(seed: 1);
        ITransformer model = ml.Model.Load(Path.Combine(trained, "model.zip"), out DataViewSchema input);
        Assert.IsNotNull(input.GetColumnOrNull("ImagePath"));
        Assert.IsNotNull(model.GetOutputSchema(input).GetColumnOrNull("PredictedBoundingBoxes"));

        using JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(trained, "metrics.json")));
        JsonElement json = metrics.RootElement;
        Assert.AreEqual("detection", json.GetProperty("task").GetString());
        Assert.AreEqual("retinanet_resnet18_fpn", json.GetProperty("architecture").GetString());
        Assert.AreEqual(16, json.GetProperty("fpnChannels").GetInt32());
        CollectionAssert.AreEqual(ShapeClasses, json.GetProperty("classes").EnumerateArray().Select(c => c.GetString()).ToArray());
        int validationImages = json.GetProperty("validationImages").GetInt32();
        Assert.AreEqual(Images / 4, validationImages, "--validation-fraction 0.25 of 24 images");
        Assert.AreEqual(Images, json.GetProperty("trainingImages").GetInt32() + validationImages);
        Assert.IsTrue(json.GetProperty("trainingSeconds").GetDouble() > 0);
        Assert.AreEqual(1, json.GetProperty("epochs").GetArrayLength());
        Assert.IsTrue(json.GetProperty("epochs")[0].GetProperty("trainingLoss").GetDouble() > 0);

        JsonElement validation = json.GetProperty("validation");
        Assert.AreEqual(validationImages, validation.GetProperty("images").GetInt32());
        foreach (string metric in new[] { "meanAveragePrecision", "meanAveragePrecision50", "meanAveragePrecision75" })
        {
            double value = validation.GetProperty(metric).GetDouble();
            Assert.IsTrue(value is >= 0 and <= 1, $"{metric} = {value}");
        }

        Assert.IsTrue(validation.GetProperty("meanAveragePrecision50").GetDouble() >= validation.GetProperty("meanAveragePrecision75").GetDouble(),
            "a looser IoU threshold never lowers the precision");
        CollectionAssert.AreEquivalent(ShapeClasses, validation.GetProperty("perClass").EnumerateObject().Select(p => p.Name).ToArray());

        Assert.AreEqual(validationImages, Directory.GetFiles(Path.Combine(trained, "overlays"), "*.png").Length, "an overlay per validation image");
        foreach (string png in Directory.GetFiles(Path.Combine(trained, "overlays")).Append(Path.Combine(trained, "loss.png")))
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(png).Take(4).ToArray(), png);
        Assert.IsFalse(Directory.GetFiles(trained).Any(f => Path.GetFileName(f).StartsWith('.')), "no temporary file is left");
    }

    [TestMethod]
    public void Predict_WithTheModel_WritesEveryImagesDetectionsInItsPixelsAndAnOverlayEach()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string output = Path.Combine(root, "found");
        CliRun run = CliRun.Of(root, "detect", "--model", Path.Combine("run", "model.zip"), "--images", Path.Combine("run", "shapes"), "--min-score", "0", "--output", "found");
        Assert.AreEqual(0, run.ExitCode, run.ToString());

        using JsonDocument detections = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "detections.json")));
        JsonElement[] images = detections.RootElement.EnumerateArray().ToArray();
        Assert.AreEqual(Images, images.Length, "one entry per image");
        foreach (JsonElement image in images)
        {
            Assert.IsTrue(File.Exists(image.GetProperty("image").GetString()));
            Assert.AreEqual(64, image.GetProperty("width").GetInt32());
            Assert.AreEqual(64, image.GetProperty("height").GetInt32());
            double previous = double.PositiveInfinity;
            foreach (JsonElement found in image.GetProperty("detections").EnumerateArray())
            {
                CollectionAssert.Contains(ShapeClasses, found.GetProperty("label").GetString());
                double score = found.GetProperty("score").GetDouble();
                Assert.IsTrue(score is >= 0 and <= 1 && score <= previous, "scores in 0–1, best first");
                previous = score;
                Assert.AreEqual(4, found.GetProperty("box").GetArrayLength(), "x1, y1, x2, y2");
            }
        }

        Assert.AreEqual(Images, Directory.GetFiles(Path.Combine(output, "overlays"), "*.png").Length);
    }

    [TestMethod]
    public void Evaluate_TheModelOnNewShapes_WritesTheirMetrics()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        CliRun run = CliRun.Of(root, "detect", "--model", Path.Combine("run", "model.zip"), "--shapes", "6", "--image-size", "64", "--output", "evaluation");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Output, "mAP50");

        using JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "evaluation", "metrics.json")));
        JsonElement evaluation = metrics.RootElement.GetProperty("evaluation");
        Assert.AreEqual(6, evaluation.GetProperty("images").GetInt32());
        double map = evaluation.GetProperty("meanAveragePrecision").GetDouble();
        Assert.IsTrue(map is >= 0 and <= 1, $"mAP = {map}");
        Assert.AreEqual(6, Directory.GetFiles(Path.Combine(root, "evaluation", "overlays"), "*.png").Length);
    }

    [TestMethod]
    public void Evaluate_OnTheSameImagesAsCocoAndAsYolo_GivesTheSameMetrics()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        // The generated shapes come with their COCO file; the same boxes written as YOLO labels (Ultralytics layout, split "val").
        string shapes = Path.Combine(trained, "shapes"), yolo = Path.Combine(root, "yolo");
        Directory.CreateDirectory(Path.Combine(yolo, "images", "val"));
        Directory.CreateDirectory(Path.Combine(yolo, "labels", "val"));
        File.WriteAllLines(Path.Combine(yolo, "classes.txt"), ShapeClasses);
        using (JsonDocument coco = JsonDocument.Parse(File.ReadAllText(Path.Combine(shapes, "annotations.json"))))
        {
            var files = coco.RootElement.GetProperty("images").EnumerateArray().ToDictionary(i => i.GetProperty("id").GetInt64(), i => i.GetProperty("file_name").GetString()!);
            var categories = coco.RootElement.GetProperty("categories").EnumerateArray().ToDictionary(c => c.GetProperty("id").GetInt64(), c => System.Array.IndexOf(ShapeClasses, c.GetProperty("name").GetString()));
            var lines = files.Values.ToDictionary(f => f, _ => new System.Collections.Generic.List<string>());
            foreach (JsonElement annotation in coco.RootElement.GetProperty("annotations").EnumerateArray())
            {
                double[] box = annotation.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                lines[files[annotation.GetProperty("image_id").GetInt64()]].Add(string.Join(' ', new[]
                {
                    categories[annotation.GetProperty("category_id").GetInt64()], (box[0] + box[2] / 2) / 64, (box[1] + box[3] / 2) / 64, box[2] / 64, box[3] / 64,
                }.Select(v => System.Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture))));
            }

            foreach (var (file, objects) in lines)
            {
                File.Copy(Path.Combine(shapes, file), Path.Combine(yolo, "images", "val", file));
                File.WriteAllLines(Path.Combine(yolo, "labels", "val", Path.ChangeExtension(file, ".txt")), objects);
            }
        }

        CliRun asCoco = CliRun.Of(root, "detect", "--model", Path.Combine("run", "model.zip"), "--coco", Path.Combine(shapes, "annotations.json"), "--images", shapes, "--output", "as-coco");
        Assert.AreEqual(0, asCoco.ExitCode, asCoco.ToString());
        CliRun asYolo = CliRun.Of(root, "detect", "--model", Path.Combine("run", "model.zip"), "--yolo", "yolo", "--split", "val", "--output", "as-yolo");
        Assert.AreEqual(0, asYolo.ExitCode, asYolo.ToString());

        using JsonDocument coco1 = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "as-coco", "metrics.json")));
        using JsonDocument yolo1 = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "as-yolo", "metrics.json")));
        JsonElement a = coco1.RootElement.GetProperty("evaluation"), b = yolo1.RootElement.GetProperty("evaluation");
        Assert.AreEqual(Images, a.GetProperty("images").GetInt32());
        Assert.AreEqual(Images, b.GetProperty("images").GetInt32());
        // The YOLO round trip moves a box by float rounding only (about 1e-5 pixel): far from changing any detection's match.
        foreach (string metric in new[] { "meanAveragePrecision", "meanAveragePrecision50", "averageRecall" })
            Assert.AreEqual(a.GetProperty(metric).GetDouble(), b.GetProperty(metric).GetDouble(), 1e-9, metric);
    }

    [TestMethod]
    [DataRow(new[] { "detect" }, "needs a dataset to train on", DisplayName = "nothing to train on")]
    [DataRow(new[] { "detect", "--coco", "a.json", "--voc", "voc" }, "got --coco and --voc", DisplayName = "two datasets")]
    [DataRow(new[] { "detect", "--coco", "a.json" }, "--coco needs --images", DisplayName = "COCO without its images")]
    [DataRow(new[] { "detect", "--yolo", "data" }, "--yolo needs --classes", DisplayName = "YOLO without class names")]
    [DataRow(new[] { "detect", "--voc", "voc", "--images", "x" }, "--images goes with --coco", DisplayName = "images with VOC")]
    [DataRow(new[] { "detect", "--shapes", "10", "--classes", "c.txt" }, "--classes goes with --yolo", DisplayName = "classes with shapes")]
    [DataRow(new[] { "detect", "--shapes", "10", "--arch", "resnet18" }, "--arch resnet18 is not a detector", DisplayName = "a classifier as the architecture")]
    [DataRow(new[] { "detect", "--model", "m.zip" }, "needs --images", DisplayName = "a model and nothing to apply it to")]
    [DataRow(new[] { "detect", "--model", "m.zip", "--images", "x", "--epochs", "3" }, "--epochs is for training", DisplayName = "a training option with a model")]
    [DataRow(new[] { "detect", "--shapes", "10", "--split", "val" }, "--split goes with --voc", DisplayName = "a split with shapes")]
    [DataRow(new[] { "detect", "--shapes", "10", "--min-score", "2" }, "--min-score must be a number from 0 to 1", DisplayName = "a score above 1")]
    public void Detect_CalledWrongly_ExitsWithCode2AndOneLineNamingTheOption(string[] args, string message)
    {
        string folder = Directory.CreateTempSubdirectory("residualml-detect-usage-").FullName;
        try
        {
            CliRun run = CliRun.Of(folder, args);
            Assert.AreEqual(2, run.ExitCode, run.ToString());
            StringAssert.Contains(run.Errors, message);
            Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line");
            Assert.AreEqual(0, Directory.GetFileSystemEntries(folder).Length, "nothing is written");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void Detect_WithAClassifierAsTheModel_SaysItIsNotAnObjectDetector()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string folder = Directory.CreateTempSubdirectory("residualml-detect-notdetector-").FullName;
        try
        {
            CliImages.WriteClassFolders(Path.Combine(folder, "textures"), perClass: 4, seed: 1);
            CliRun train = CliRun.Of(folder, "train", "--dataset", "textures", "--arch", "resnet20", "--epochs", "1", "--image-size", "16", "--output", "classifier");
            Assert.AreEqual(0, train.ExitCode, train.ToString());
            CliRun run = CliRun.Of(folder, "detect", "--model", Path.Combine("classifier", "model.zip"), "--images", "textures");
            Assert.AreEqual(1, run.ExitCode, run.ToString());
            StringAssert.Contains(run.Errors, "not an object detector");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void Help_ListsDetectAndItsOptions()
    {
        CliRun overview = CliRun.Of(root, "--help");
        StringAssert.Contains(overview.Output, "detect");
        CliRun help = CliRun.Of(root, "detect", "--help");
        Assert.AreEqual(0, help.ExitCode);
        foreach (string option in new[] { "--coco", "--voc", "--yolo", "--shapes", "--model", "--fpn-channels", "--min-score" }) StringAssert.Contains(help.Output, option);
    }
}
