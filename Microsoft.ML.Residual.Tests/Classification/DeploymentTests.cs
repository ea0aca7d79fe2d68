using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Tests.Segmentation;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>
/// A saved classifier scored by tools/Deploy: a separate process that references ML.NET and ONNX Runtime only
/// (the test project builds it first, through a ProjectReference that references and copies nothing).
/// </summary>
[TestClass]
public sealed class DeploymentTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void SavedModel_ScoresIdenticallyInAFreshProcessWithoutLibTorch()
    {
        string deploy = DeployAssembly();
        string[] binaries = Directory.EnumerateFiles(Path.GetDirectoryName(deploy)!, "*", SearchOption.AllDirectories)
            .Select(Path.GetFileName).OfType<string>()
            .Where(f => f.Contains("torch", StringComparison.OrdinalIgnoreCase) || f.StartsWith("Microsoft.ML.Residual", StringComparison.OrdinalIgnoreCase)
                || f.StartsWith("libc10", StringComparison.OrdinalIgnoreCase))
            .ToArray();
        Assert.IsEmpty(binaries, $"Deploy's output holds libtorch/TorchSharp/library files: {string.Join(", ", binaries)}");

        string folder = DataTestSupport.NewFolder(TestContext);
        try
        {
            // Four texture classes as 16×16 PNG files: some to train on, eight (and two of other sizes) to score in both processes.
            Directory.CreateDirectory(Path.Combine(folder, "train"));
            Directory.CreateDirectory(Path.Combine(folder, "score"));
            List<PathRow> Write(int count, int seed, string subfolder) => ImageClassifierEstimatorTests.Textures(count, seed).Select((row, i) =>
            {
                string file = Path.Combine(subfolder, $"image{i}.png");
                DataTestSupport.WriteRgbPng(Path.Combine(folder, file), row.Image, Size, Size);
                return new PathRow { Path = file, Label = row.Label };
            }).ToList();
            List<PathRow> trainRows = Write(64, seed: 1, "train");
            List<PathRow> scoreRows = Write(8, seed: 2, "score");
            // Two files of other sizes, so that the model's ResizeImages (IsoCrop, ML.NET's default; a Mitchell filter since
            // ImageAnalytics 6) really resamples in both processes: 40×30 shrinks, 12×20 grows. Tiled textures; the names sort last.
            var resized = new[] { (Width: 40, Height: 30), (Width: 12, Height: 20) };
            List<ImageClassifierEstimatorTests.Row> tiles = ImageClassifierEstimatorTests.Textures(resized.Length, seed: 3);
            for (int i = 0; i < resized.Length; i++)
            {
                var (width, height) = resized[i];
                float[] texture = tiles[i].Image;
                string file = Path.Combine("score", $"image{scoreRows.Count}-{width}x{height}.png");
                DataTestSupport.WriteRgbPng(Path.Combine(folder, file), DataTestSupport.Chw(0, 3, height, width, (c, y, x, _) => texture[(c * Size + y % Size) * Size + x % Size]), height, width);
                scoreRows.Add(new PathRow { Path = file, Label = tiles[i].Label });
            }

            string[] scoreFiles = scoreRows.Select(r => Path.Combine(folder, r.Path)).ToArray();

            var ml = new MLContext(seed: 1);
            IDataView train = ml.Data.LoadFromEnumerable(trainRows);
            var pipeline = ml.Transforms.LoadImages("Image", folder, "Path")
                .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
                .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
                {
                    Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 32, Optimizer = OptimizerKind.Sgd, LearningRate = 0.1, Seed = 1,
                }));
            TransformerChain<ITransformer> model = pipeline.Fit(train);

            // Saved two ways: the whole pipeline with the raw rows' schema (path and label text, as in the README), and
            // the classifier alone with the schema of loaded images (an image column).
            string pipelineZip = Path.Combine(folder, "pipeline.zip");
            ml.Model.Save(model, train.Schema, pipelineZip);
            IDataView images = ml.Transforms.LoadImages("Image", folder, "Path").Append(ml.Transforms.Conversion.MapValueToKey("Label")).Fit(train).Transform(train);
            string classifierZip = Path.Combine(folder, "classifier.zip");
            ml.Model.Save(model.LastTransformer, images.Schema, classifierZip);

            // In the training process: the fitted (never saved) model.
            IDataView scored = model.Transform(ml.Data.LoadFromEnumerable(scoreRows));
            scored = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored).Transform(scored);
            float[][] expectedScores = scored.GetColumn<float[]>("Score").ToArray();
            string[] expectedLabels = scored.GetColumn<string>("PredictedLabel").ToArray();
            Assert.HasCount(scoreRows.Count, expectedScores);

            foreach (var (zip, inputs) in new[] { (pipelineZip, scoreFiles), (classifierZip, new[] { Path.Combine(folder, "score") }) })
            {
                string json = Path.Combine(folder, Path.GetFileNameWithoutExtension(zip) + "-scores.json");
                var (exitCode, stdout, stderr) = RunDeploy(deploy, new[] { zip }.Concat(inputs).Concat(new[] { "--json", json }));
                Assert.AreEqual(0, exitCode, $"{Path.GetFileName(zip)}: Deploy failed: {stderr}");
                foreach (string file in scoreFiles) StringAssert.Contains(stdout, file, $"{Path.GetFileName(zip)}: stdout names every image");

                using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
                JsonElement[] results = document.RootElement.GetProperty("images").EnumerateArray().ToArray();
                string[] classes = document.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!).ToArray();
                Assert.HasCount(scoreFiles.Length, results, Path.GetFileName(zip));
                for (int i = 0; i < results.Length; i++)
                {
                    Assert.AreEqual(scoreFiles[i], results[i].GetProperty("file").GetString());
                    Assert.AreEqual(expectedLabels[i], results[i].GetProperty("predictedLabel").GetString(), $"{Path.GetFileName(zip)}, image {i}");
                    float[] actual = results[i].GetProperty("score").EnumerateArray().Select(v => v.GetSingle()).ToArray();
                    // Score has no slot names; Deploy names its slots by PredictedLabel's key values (slot k = key k+1).
                    Assert.AreEqual(expectedLabels[i], classes[Array.IndexOf(actual, actual.Max())], $"{Path.GetFileName(zip)}, image {i}: class of the top score");
                    // Bit for bit: the same ONNX graph, the same ONNX Runtime and the same image decoder on the same machine.
                    CollectionAssert.AreEqual(
                        expectedScores[i].Select(BitConverter.SingleToInt32Bits).ToArray(), actual.Select(BitConverter.SingleToInt32Bits).ToArray(),
                        $"{Path.GetFileName(zip)}, image {i}: expected {string.Join(" ", expectedScores[i].Select(v => v.ToString("R")))}, got {string.Join(" ", actual.Select(v => v.ToString("R")))}");
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void SavedSegmenter_GivesIdenticalMasksInAFreshProcessWithoutLibTorch()
    {
        string folder = Path.Combine(Path.GetTempPath(), "residualml-deploy-seg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var ml = new MLContext(seed: 1);
            var files = UNetSegmenterTests.WriteShapeFiles(folder, UNetSegmenterTests.Shapes(20, seed: 7));
            IDataView loaded = ml.Transforms.LoadImages("Image", folder, "ImagePath").Append(ml.Transforms.LoadImages("Mask", folder, "MaskPath"))
                .Fit(ml.Data.LoadFromEnumerable(files)).Transform(ml.Data.LoadFromEnumerable(files));
            ITransformer segmenter = ml.Transforms.UNetSegmenter(new SegmenterOptions
            {
                Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 2, BaseWidth = 8 },
                NumClasses = 3, ImageWidth = 32, ImageHeight = 32, Epochs = 2, BatchSize = 10, Seed = 1,
            }).Fit(loaded);
            string zip = Path.Combine(folder, "segmenter.zip");
            ml.Model.Save(segmenter, loaded.Schema, zip);
            uint[][] expected = segmenter.Transform(loaded).GetColumn<uint[]>("PredictedMask").ToArray();

            string json = Path.Combine(folder, "masks.json");
            string[] images = files.Select(f => Path.Combine(folder, f.ImagePath)).ToArray();
            var (exitCode, stdout, stderr) = RunDeploy(DeployAssembly(), new[] { zip }.Concat(images).Concat(new[] { "--json", json }));
            Assert.AreEqual(0, exitCode, $"Deploy failed: {stderr}");
            StringAssert.Contains(stdout, "1024 pixels");
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement[] results = document.RootElement.GetProperty("images").EnumerateArray().ToArray();
            Assert.HasCount(images.Length, results);
            for (int i = 0; i < results.Length; i++)
                CollectionAssert.AreEqual(expected[i], results[i].GetProperty("mask").EnumerateArray().Select(v => v.GetUInt32()).ToArray(), $"image {i}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void SavedDetector_GivesIdenticalDetectionsInAFreshProcessWithoutLibTorch()
    {
        string folder = Path.Combine(Path.GetTempPath(), "residualml-deploy-det-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            // Generated PNGs of two sizes, so the saved graph scales its boxes by each image's width and height columns.
            var ml = new MLContext(seed: 1);
            var small = Microsoft.ML.Residual.Datasets.ShapeDetection.Generate(Path.Combine(folder, "small"), 6, imageSize: 64, seed: 1);
            var large = Microsoft.ML.Residual.Datasets.ShapeDetection.Generate(Path.Combine(folder, "large"), 6, imageSize: 80, seed: 2);
            var data = new Microsoft.ML.Residual.Datasets.DetectionDataset(small.ClassNames, small.Examples.Concat(large.Examples).ToList());
            IDataView rows = data.ToDataView(ml);
            Microsoft.ML.Residual.Detection.ObjectDetectorOptions options = Detection.ObjectDetectorEstimatorTests.TinyOptions("fcos_resnet18_fpn");
            options.ImageWidthColumnName = "Width";
            options.ImageHeightColumnName = "Height";
            options.ScoreThreshold = 0.05;
            ITransformer detector = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Detection().ObjectDetector(options)).Fit(rows);
            string zip = Path.Combine(folder, "detector.zip");
            ml.Model.Save(detector, rows.Schema, zip);
            IDataView scored = detector.Transform(rows);
            float[][] boxes = scored.GetColumn<float[]>("PredictedBoundingBoxes").ToArray();
            float[][] scores = scored.GetColumn<float[]>("Score").ToArray();
            string[][] names = scored.GetColumn<uint[]>("PredictedLabel").Select(keys => keys.Select(k => data.ClassNames[(int)k - 1]).ToArray()).ToArray();
            Assert.IsTrue(scores.Sum(s => s.Length) > 0, "the low threshold lets detections through");

            string json = Path.Combine(folder, "detections.json");
            string[] images = data.Examples.Select(e => e.ImagePath).ToArray();
            var (exitCode, stdout, stderr) = RunDeploy(DeployAssembly(),
                new[] { zip }.Concat(images).Concat(new[] { "--json", json, "--width-column", "Width", "--height-column", "Height" }));
            Assert.AreEqual(0, exitCode, $"Deploy failed: {stderr}");
            StringAssert.Contains(stdout, "detections");
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement[] results = document.RootElement.GetProperty("images").EnumerateArray().ToArray();
            Assert.HasCount(images.Length, results);
            for (int i = 0; i < results.Length; i++)
            {
                JsonElement[] found = results[i].GetProperty("detections").EnumerateArray().ToArray();
                CollectionAssert.AreEqual(scores[i], found.Select(d => d.GetProperty("score").GetSingle()).ToArray(), $"image {i}: scores");
                CollectionAssert.AreEqual(boxes[i], found.SelectMany(d => d.GetProperty("box").EnumerateArray().Select(v => v.GetSingle())).ToArray(), $"image {i}: boxes");
                CollectionAssert.AreEqual(names[i], found.Select(d => d.GetProperty("label").GetString()).ToArray(), $"image {i}: classes");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void MissingImage_FailsWithOneLineNamingTheFile()
    {
        string folder = DataTestSupport.NewFolder(TestContext);
        try
        {
            string model = Path.Combine(folder, "model.zip");
            File.WriteAllText(model, "not used: images are checked first");
            string missing = Path.Combine(folder, "no-such-image.png");
            var (exitCode, _, stderr) = RunDeploy(DeployAssembly(), new[] { model, missing });
            AssertOneLineError(exitCode, stderr);
            StringAssert.Contains(stderr, missing);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void UnreadableImageOrModel_FailWithOneLineNamingTheFile()
    {
        string folder = DataTestSupport.NewFolder(TestContext);
        try
        {
            string image = Path.Combine(folder, "image.png");
            DataTestSupport.WriteRgbPng(image, new float[3 * Size * Size], Size, Size);
            string broken = Path.Combine(folder, "broken.png");
            File.WriteAllText(broken, "not a PNG");
            string notAModel = Path.Combine(folder, "model.zip");
            File.WriteAllText(notAModel, "not a zip");

            var (exitCode, _, stderr) = RunDeploy(DeployAssembly(), new[] { notAModel, image, broken });
            AssertOneLineError(exitCode, stderr);
            StringAssert.Contains(stderr, broken);

            (exitCode, _, stderr) = RunDeploy(DeployAssembly(), new[] { notAModel, image });
            AssertOneLineError(exitCode, stderr);
            StringAssert.Contains(stderr, notAModel);

            (exitCode, _, stderr) = RunDeploy(DeployAssembly(), new[] { Path.Combine(folder, "missing.zip"), image });
            AssertOneLineError(exitCode, stderr);
            StringAssert.Contains(stderr, "missing.zip");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void PixelVectorModel_IsRejectedWithAnExplanation()
    {
        string folder = DataTestSupport.NewFolder(TestContext);
        try
        {
            var ml = new MLContext(seed: 1);
            IDataView rows = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(8, seed: 1));
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions { Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, Seed = 1 }));
            string model = Path.Combine(folder, "vectors.zip");
            ml.Model.Save(pipeline.Fit(rows), rows.Schema, model);
            string image = Path.Combine(folder, "image.png");
            DataTestSupport.WriteRgbPng(image, new float[3 * Size * Size], Size, Size);

            var (exitCode, _, stderr) = RunDeploy(DeployAssembly(), new[] { model, image });
            AssertOneLineError(exitCode, stderr);
            StringAssert.Contains(stderr, "pixel vectors ('Image'");
            StringAssert.Contains(stderr, "models trained on an image column");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void AssertOneLineError(int exitCode, string stderr)
    {
        Assert.AreNotEqual(0, exitCode, stderr);
        string[] lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.HasCount(1, lines, $"one line expected on stderr, got:\n{stderr}");
        StringAssert.StartsWith(lines[0], "error: ");
    }

    /// <summary>
    /// tools/Deploy/bin/{Configuration}/{TargetFramework}/Deploy.dll, the configuration and framework read from this
    /// test assembly's own folder (…/Microsoft.ML.Residual.Tests/bin/{Configuration}/{TargetFramework}/).
    /// </summary>
    private static string DeployAssembly()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        string framework = output.Name;
        string configuration = output.Parent!.Name;
        string path = Path.Combine(TestRepository.Root(), "tools", "Deploy", "bin", configuration, framework, "Deploy.dll");
        Assert.IsTrue(File.Exists(path), $"{path} is missing; the test project's ProjectReference to tools/Deploy builds it.");
        return path;
    }

    private static (int ExitCode, string Stdout, string Stderr) RunDeploy(string deploy, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(TestRepository.DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // A temporary folder of this run's own: Deploy must leave nothing in it, whether it succeeds or fails.
        string temp = Directory.CreateTempSubdirectory("residualml-deploy-tmp-").FullName;
        start.Environment["TMPDIR"] = temp;
        start.ArgumentList.Add(deploy);
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        using Process process = Process.Start(start)!;
        System.Threading.Tasks.Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        System.Threading.Tasks.Task<string> stderr = process.StandardError.ReadToEndAsync();
        // Only a guard against a hung process (a run takes seconds): nothing is concluded from how long it took, so the limit
        // is far beyond what a slow or loaded machine needs.
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"Deploy did not finish within 10 minutes: {string.Join(" ", start.ArgumentList)}");
        }

        process.WaitForExit();
        // ONNX Runtime keeps one small session-id file, ".ses", in the temporary folder (reused, not one per run).
        string[] left = Directory.GetFileSystemEntries(temp, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != ".ses").ToArray();
        Directory.Delete(temp, recursive: true);
        Assert.IsEmpty(left, $"Deploy left temporary files: {string.Join(", ", left)}");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
