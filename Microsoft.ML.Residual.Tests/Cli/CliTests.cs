using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Cli;

/// <summary>
/// The residualml tool as a user runs it: a tiny class-folder dataset is trained once for the class (train), then the
/// written model is evaluated and used for predictions; each output file is checked for what it must hold.
/// </summary>
[TestClass]
public sealed class CliTests
{
    private static string root = string.Empty;
    private static string dataset = string.Empty;
    private static string trained = string.Empty;
    private static CliRun training = null!;

    private string scratch = string.Empty;

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        root = Directory.CreateTempSubdirectory("residualml-cli-").FullName;
        dataset = Path.Combine(root, "textures");
        CliImages.WriteClassFolders(dataset, perClass: 20, seed: 1);
        trained = Path.Combine(root, "run");
        training = CliRun.Of(root, "train", "--dataset", "textures", "--arch", "resnet20", "--epochs", "3", "--image-size", "16",
            "--batch-size", "12", "--learning-rate", "0.05", "--output", "run");
    }

    [ClassCleanup]
    public static void DeleteFiles()
    {
        if (root.Length > 0) Directory.Delete(root, recursive: true);
    }

    [TestInitialize]
    public void CreateScratch() => scratch = Directory.CreateTempSubdirectory("residualml-cli-test-").FullName;

    [TestCleanup]
    public void DeleteScratch() => Directory.Delete(scratch, recursive: true);

    [TestMethod]
    public void Train_WritesALoadableModelMetricsJsonAndPngPlots()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        Assert.AreEqual(string.Empty, training.Errors);
        StringAssert.Contains(training.Output, "epoch 3/3");

        using (ZipArchive zip = ZipFile.OpenRead(Path.Combine(trained, "model.zip")))
            Assert.IsTrue(zip.Entries.Count > 0);
        var ml = new MLContext(seed: 1);
        ITransformer model = ml.Model.Load(Path.Combine(trained, "model.zip"), out DataViewSchema input);
        Assert.IsNotNull(input.GetColumnOrNull("ImagePath"));

        using JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(trained, "metrics.json")));
        JsonElement json = metrics.RootElement;
        CollectionAssert.AreEqual(CliImages.Classes, json.GetProperty("classes").EnumerateArray().Select(c => c.GetString()).ToArray());
        Assert.AreEqual(60, json.GetProperty("trainingImages").GetInt32() + json.GetProperty("validationImages").GetInt32());
        Assert.AreEqual(3, json.GetProperty("epochs").GetArrayLength());
        Assert.IsTrue(json.GetProperty("epochs").EnumerateArray().All(e => e.GetProperty("trainingLoss").GetDouble() > 0));
        JsonElement validation = json.GetProperty("validation");
        double accuracy = validation.GetProperty("macroAccuracy").GetDouble();
        Assert.IsTrue(accuracy is >= 0 and <= 1);
        double counted = validation.GetProperty("confusionMatrix").GetProperty("counts").EnumerateArray().SelectMany(r => r.EnumerateArray()).Sum(v => v.GetDouble());
        Assert.AreEqual(json.GetProperty("validationImages").GetInt32(), (int)counted, "every validation image is in the confusion matrix");
        Assert.AreEqual("Float32", json.GetProperty("precision").GetString(), "the default precision");

        foreach (string plot in new[] { "loss.png", "accuracy.png", "confusion-matrix.png" })
        {
            string path = Path.Combine(trained, plot);
            Assert.IsTrue(CliImages.IsPng(path), plot);
            var (width, height) = CliImages.PngSize(path);
            Assert.IsTrue(width >= 200 && height >= 150, $"{plot}: {width}x{height}");
            var png = Plots.PngImage.Read(path);
            Assert.IsGreaterThan(30, png.CountDark(0, 0, png.Width, 36), $"{plot}: its title is drawn");
        }

        Assert.IsFalse(Directory.EnumerateFiles(trained).Any(f => Path.GetFileName(f).StartsWith('.')), "no temporary file is left");
    }

    [TestMethod]
    public void Evaluate_OfTheTrainedModel_CountsEveryImageAndAgreesWithPredict()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        CliRun evaluation = CliRun.Of(scratch, "evaluate", "--model", Path.Combine(trained, "model.zip"), "--dataset", dataset);
        Assert.AreEqual(0, evaluation.ExitCode, evaluation.ToString());
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "evaluation.json")));
        Assert.AreEqual(60, document.RootElement.GetProperty("images").GetInt32());
        Assert.IsTrue(CliImages.IsPng(Path.Combine(scratch, "evaluation-confusion-matrix.png")));
        double[][] counts = document.RootElement.GetProperty("confusionMatrix").GetProperty("counts").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();

        CliRun prediction = CliRun.Of(scratch, "predict", "--model", Path.Combine(trained, "model.zip"), "--images", dataset);
        Assert.AreEqual(0, prediction.ExitCode, prediction.ToString());
        string[] lines = File.ReadAllLines(Path.Combine(scratch, "predictions.csv"));
        Assert.AreEqual("image,predicted,probability," + string.Join(',', CliImages.Classes), lines[0]);
        Assert.AreEqual(61, lines.Length);
        var predictedPerClass = new double[CliImages.Classes.Length];
        foreach (string line in lines.Skip(1))
        {
            string[] fields = line.Split(',');
            double[] probabilities = fields.Skip(3).Select(f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            // Written with 6 significant digits (G6): each within 5e-6 of itself, so the sum within 5e-6 of the float32
            // softmax's, which is within SoftmaxSumError of 1.
            double softmax = Numerics.SoftmaxSumError(CliImages.Classes.Length);
            Assert.AreEqual(1.0, probabilities.Sum(), softmax + 5e-6 * (1 + softmax), line);
            Assert.AreEqual(probabilities.Max(), double.Parse(fields[2], CultureInfo.InvariantCulture), line + ": the same float written the same way");
            int predicted = Array.IndexOf(CliImages.Classes, fields[1]);
            Assert.AreEqual(Array.IndexOf(probabilities, probabilities.Max()), predicted, line);
            predictedPerClass[predicted]++;
        }

        for (int c = 0; c < CliImages.Classes.Length; c++)
            Assert.AreEqual(counts.Sum(row => row[c]), predictedPerClass[c], $"images predicted as {CliImages.Classes[c]}");
    }

    [TestMethod]
    public void Export_ToInt8AndFloat16_WritesSmallerModelsThatScoreEveryImage()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string original = Path.Combine(trained, "model.zip");
        CliRun int8 = CliRun.Of(scratch, "export", "--model", original, "--precision", "int8", "--calibration", dataset, "--calibration-images", "40");
        Assert.AreEqual(0, int8.ExitCode, int8.ToString());
        CliRun float16 = CliRun.Of(scratch, "export", "--model", original, "--precision", "float16");
        Assert.AreEqual(0, float16.ExitCode, float16.ToString());
        long size = new FileInfo(original).Length;
        Assert.IsTrue(new FileInfo(Path.Combine(scratch, "model-int8.zip")).Length < size * 0.4, int8.Output);
        Assert.IsTrue(new FileInfo(Path.Combine(scratch, "model-float16.zip")).Length < size * 0.6, float16.Output);

        // Each scores every image through ML.NET (the numbers themselves are OnnxPrecisionTests' and docs/onnx.md's).
        foreach (string precision in new[] { "int8", "float16" })
        {
            CliRun evaluation = CliRun.Of(scratch, "evaluate", "--model", Path.Combine(scratch, $"model-{precision}.zip"), "--dataset", dataset, "--output", precision);
            Assert.AreEqual(0, evaluation.ExitCode, evaluation.ToString());
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, precision, "evaluation.json")));
            Assert.AreEqual(60, document.RootElement.GetProperty("images").GetInt32(), precision);
        }
    }

    [TestMethod]
    public void Predict_OneImage_WritesOneRowIntoTheWorkingDirectory()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string image = Path.Combine(dataset, "vertical", "000.png");
        CliRun run = CliRun.Of(scratch, "predict", "--model", Path.Combine(trained, "model.zip"), "--images", image);
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        string[] lines = File.ReadAllLines(Path.Combine(scratch, "predictions.csv"));
        Assert.AreEqual(2, lines.Length);
        StringAssert.StartsWith(lines[1], image + ",");
    }

    [TestMethod]
    public void Evaluate_WithAClassTheModelNeverSaw_FailsNamingTheClass()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string other = Path.Combine(scratch, "other");
        CliImages.WriteClassFolders(other, perClass: 1, seed: 3);
        Directory.Move(Path.Combine(other, "vertical"), Path.Combine(other, "diagonal"));
        CliRun run = CliRun.Of(scratch, "evaluate", "--model", Path.Combine(trained, "model.zip"), "--dataset", other);
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, "'diagonal'");
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line");
    }

    [TestMethod]
    public void Predict_WithAFileThatIsNotAModel_IsAOneLineError()
    {
        string notModel = Path.Combine(scratch, "model.zip");
        File.WriteAllText(notModel, "not a zip");
        CliImages.WriteClassFolders(Path.Combine(scratch, "images"), perClass: 1, seed: 2);
        CliRun run = CliRun.Of(scratch, "predict", "--model", "model.zip", "--images", "images");
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, notModel);
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line");
    }

    [TestMethod]
    public void Train_InBFloat16_WithAccumulationAnAverageAndImbalanceSettings_SavesAModelThatScores()
    {
        string folder = Path.Combine(scratch, "data");
        CliImages.WriteClassFolders(folder, perClass: 4, seed: 2);
        CliRun run = CliRun.Of(scratch, "train", "--dataset", "data", "--arch", "resnet20", "--epochs", "1", "--image-size", "16", "--precision", "bfloat16",
            "--batch-size", "2", "--accumulate", "2", "--ema", "0.9", "--class-balance", "sampling", "--loss", "focal");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        using (JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "metrics.json"))))
        {
            // The options reached the estimator's options.
            Assert.AreEqual("BFloat16", metrics.RootElement.GetProperty("precision").GetString());
            Assert.AreEqual(2, metrics.RootElement.GetProperty("gradientAccumulationSteps").GetInt32());
            Assert.AreEqual(0.9, metrics.RootElement.GetProperty("modelEmaDecay").GetDouble());
            Assert.AreEqual("Sampling", metrics.RootElement.GetProperty("classBalance").GetString());
            Assert.AreEqual("Focal", metrics.RootElement.GetProperty("loss").GetString());
        }

        CliRun predict = CliRun.Of(scratch, "predict", "--model", "model.zip", "--images", "data");
        Assert.AreEqual(0, predict.ExitCode, predict.ToString());
    }

    [TestMethod]
    public void LrFind_WritesTheLossCurveAsJsonAndAPngPlotWithRatesAcrossTheRange()
    {
        CliRun run = CliRun.Of(root, "lr-find", "--dataset", "textures", "--arch", "resnet20", "--image-size", "16", "--batch-size", "12",
            "--steps", "12", "--start-rate", "1e-5", "--end-rate", "1", "--output", Path.Combine(scratch, "lr"));
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        Assert.AreEqual(string.Empty, run.Errors);
        StringAssert.Contains(run.Output, "learning rate");

        using JsonDocument found = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "lr", "lr-find.json")));
        JsonElement json = found.RootElement;
        double[] rates = json.GetProperty("points").EnumerateArray().Select(p => p.GetProperty("learningRate").GetDouble()).ToArray();
        Assert.IsTrue(rates.Length is > 0 and <= 12, $"{rates.Length} points");
        Assert.AreEqual(1e-5, rates[0], 1e-15);
        Assert.IsTrue(rates.Zip(rates.Skip(1)).All(pair => pair.Second > pair.First), "rates rise");
        Assert.IsTrue(json.GetProperty("points").EnumerateArray().All(p => double.IsFinite(p.GetProperty("loss").GetDouble())));
        if (json.GetProperty("suggested").ValueKind == JsonValueKind.Number)
        {
            double suggested = json.GetProperty("suggested").GetDouble();
            Assert.IsTrue(suggested >= 1e-5 && suggested <= 1, $"suggested {suggested}");
            StringAssert.Contains(run.Output, "--learning-rate");
        }
        else
        {
            StringAssert.Contains(run.Output, "no rate is suggested");
        }

        string plot = Path.Combine(scratch, "lr", "lr-find.png");
        Assert.IsTrue(CliImages.IsPng(plot));
        var png = Plots.PngImage.Read(plot);
        Assert.IsGreaterThan(30, png.CountDark(0, 0, png.Width, 36), "its title is drawn");
    }

    [TestMethod]
    public void Train_WithAnUnknownPrecision_IsAOneLineErrorListingTheChoices()
    {
        CliRun run = CliRun.Of(scratch, "train", "--dataset", "data", "--precision", "float8");
        Assert.AreNotEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, "--precision must be one of float32, bfloat16, float16; got 'float8'");
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
    }

    [TestMethod]
    public void Train_WithAnUnreadableImage_FailsWithOneLineNamingTheFile()
    {
        string folder = Path.Combine(scratch, "data");
        CliImages.WriteClassFolders(folder, perClass: 4, seed: 2);
        string broken = Path.Combine(folder, "vertical", "001.png");
        File.WriteAllBytes(broken, new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3 });
        CliRun run = CliRun.Of(scratch, "train", "--dataset", "data", "--arch", "resnet20", "--epochs", "1", "--image-size", "16");
        Assert.AreNotEqual(0, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, broken);
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
        Assert.IsFalse(File.Exists(Path.Combine(scratch, "model.zip")), "no model from a failed run");
    }

    [TestMethod]
    public void Train_WithATruncatedImage_FailsBeforeTrainingWithOneLineNamingTheFile()
    {
        string folder = Path.Combine(scratch, "data");
        CliImages.WriteClassFolders(folder, perClass: 4, seed: 2);
        string cut = Path.Combine(folder, "horizontal", "002.png");
        byte[] whole = Microsoft.ML.Residual.Tests.Data.TestImageFiles.Noise(64, 64, SkiaSharp.SKEncodedImageFormat.Png);
        File.WriteAllBytes(cut, whole[..(whole.Length / 2)]);
        CliRun run = CliRun.Of(scratch, "train", "--dataset", "data", "--arch", "resnet20", "--epochs", "1", "--image-size", "16");
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, $"residualml: error: Image file '{cut}' is truncated");
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
        Assert.IsFalse(run.Output.Contains("epoch", StringComparison.OrdinalIgnoreCase), "no training started: " + run.Output);
        Assert.IsFalse(File.Exists(Path.Combine(scratch, "model.zip")));
    }

    [TestMethod]
    public void Evaluate_OnAClassTheModelNeverSaw_FailsNamingTheClass()
    {
        string data = Path.Combine(scratch, "with-zebra");
        CliImages.WriteClassFolders(data, perClass: 2, seed: 3);
        Directory.CreateDirectory(Path.Combine(data, "zebra"));
        CliImages.WritePng(Path.Combine(data, "zebra", "z.png"), (x, y) => ((byte)(x * 9), (byte)(y * 9), 0));
        CliRun run = CliRun.Of(scratch, "evaluate", "--model", Path.Combine(trained, "model.zip"), "--dataset", data);
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, "the model was not trained on the class(es) 'zebra' (1 images");
        Assert.IsFalse(File.Exists(Path.Combine(scratch, "evaluation.json")));
    }

    [TestMethod]
    public void Evaluate_WithATruncatedModel_FailsWithOneLineNamingTheFile()
    {
        byte[] model = File.ReadAllBytes(Path.Combine(trained, "model.zip"));
        string truncated = Path.Combine(scratch, "truncated.zip");
        File.WriteAllBytes(truncated, model[..(model.Length / 2)]);
        CliRun run = CliRun.Of(scratch, "evaluate", "--model", "truncated.zip", "--dataset", dataset);
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, $"Model file '{truncated}' cannot be loaded");
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
    }

    [TestMethod]
    public void Predict_WithADecompressionBomb_RefusesItBeforeScoringWithOneLineNamingTheFile()
    {
        string images = Path.Combine(scratch, "incoming");
        Directory.CreateDirectory(images);
        CliImages.WritePng(Path.Combine(images, "fine.png"), (x, y) => ((byte)x, (byte)y, 0));
        string bomb = Path.Combine(images, "bomb.png");
        File.WriteAllBytes(bomb, Microsoft.ML.Residual.Tests.Data.TestImageFiles.PngBomb(100_000, 100_000));
        File.WriteAllText(Path.Combine(scratch, "model.zip"), "not read: the images are checked first");
        CliRun run = CliRun.Of(scratch, "predict", "--model", "model.zip", "--images", "incoming");
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, $"residualml: error: Image file '{bomb}' declares 100,000×100,000");
        StringAssert.Contains(run.Errors, "MaxPixels");
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
        Assert.IsFalse(File.Exists(Path.Combine(scratch, "predictions.csv")));
    }

    [TestMethod]
    public void Train_StoppedWithCtrlC_ExitsWith130AndWritesNoModel()
    {
        using var cancel = new System.Threading.CancellationTokenSource();
        cancel.Cancel();
        CliRun run = CliRun.Of(scratch, cancel.Token, "train", "--dataset", dataset, "--arch", "resnet20", "--epochs", "1", "--image-size", "16");
        Assert.AreEqual(130, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, "cancelled");
        Assert.IsFalse(File.Exists(Path.Combine(scratch, "model.zip")));
    }

    [TestMethod]
    [DataRow(new[] { "train" }, "needs --dataset", DisplayName = "missing required option")]
    [DataRow(new[] { "train", "--dataset", "x", "--epoch", "3" }, "did you mean --epochs?", DisplayName = "misspelt option")]
    [DataRow(new[] { "train", "--dataset", "x", "--epochs", "ten" }, "--epochs must be a whole number", DisplayName = "malformed number")]
    [DataRow(new[] { "train", "--dataset", "x", "--epochs" }, "--epochs needs a value", DisplayName = "missing value")]
    [DataRow(new[] { "train", "--dataset", "x", "--dataset", "y" }, "given twice", DisplayName = "repeated option")]
    [DataRow(new[] { "fit" }, "unknown command 'fit'", DisplayName = "unknown command")]
    [DataRow(new[] { "train", "--dataset", "x.csv", "--multi-label", "--class-balance", "weights" }, "--class-balance applies to single-label training", DisplayName = "class balance with several labels")]
    [DataRow(new[] { "train", "--dataset", "x", "--class-balance", "oversample" }, "--class-balance must be one of none, weights, sampling", DisplayName = "unknown class balance")]
    [DataRow(new[] { "train", "--dataset", "x", "--ema", "1" }, "--ema must be a number from", DisplayName = "average's decay of 1")]
    [DataRow(new[] { "train", "--dataset", "x", "--accumulate", "0" }, "--accumulate must be a whole number from 1", DisplayName = "no batches per step")]
    [DataRow(new[] { "diagnose", "--dataset", "x", "--arch", "resnet57" }, "--arch resnet57: not a model name", DisplayName = "unknown architecture")]
    [DataRow(new[] { "diagnose", "--dataset", "x", "--arch", "resnet20,unet" }, "--arch unet: diagnose measures classifiers", DisplayName = "U-Net architecture")]
    [DataRow(new[] { "diagnose", "--dataset", "x", "--epochs", "3" }, "--epochs belongs to --study", DisplayName = "study option without --study")]
    [DataRow(new[] { "segment", "--images", "x" }, "needs either --masks", DisplayName = "segment without masks or model")]
    [DataRow(new[] { "segment", "--images", "x", "--masks", "y", "--arch", "unet_resnet18", "--encoder", "resnet34" }, "--encoder applies to --arch unet", DisplayName = "encoder on an encoder U-Net")]
    [DataRow(new[] { "segment", "--images", "x", "--masks", "y", "--encoder", "resnet34", "--depth", "3" }, "--depth and --width shape the classic U-Net", DisplayName = "depth with an encoder")]
    [DataRow(new[] { "sweep", "--dataset", "x", "--tuner", "bayes" }, "--tuner must be one of", DisplayName = "unknown tuner")]
    [DataRow(new[] { "sweep", "--dataset", "textures", "--metric", "F1" }, "--metric F1", DisplayName = "unknown sweep metric")]
    [DataRow(new[] { "train", "--dataset", "x", "--freeze-epochs", "2" }, "--freeze-epochs needs --weights", DisplayName = "freeze without weights")]
    [DataRow(new[] { "lr-find", "--dataset", "x", "--start-rate", "0.1", "--end-rate", "0.01" }, "--end-rate 0.01 must be above --start-rate 0.1", DisplayName = "lr-find range upside down")]
    [DataRow(new[] { "export", "--model", "model.zip" }, "--precision is required", DisplayName = "export without a precision")]
    [DataRow(new[] { "export", "--model", "model.zip", "--precision", "int4" }, "--precision must be one of", DisplayName = "unknown export precision")]
    [DataRow(new[] { "export", "--model", "model.zip", "--precision", "int8" }, "needs --calibration", DisplayName = "INT8 without calibration images")]
    [DataRow(new[] { "export", "--model", "model.zip", "--precision", "float16", "--calibration", "x" }, "--calibration applies to --precision int8 only", DisplayName = "calibration for float16")]
    public void WrongCommandLine_IsOneLineAndExitCode2(string[] args, string expected)
    {
        CliRun run = CliRun.Of(scratch, args);
        Assert.AreEqual(2, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, expected);
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
        Assert.AreEqual(0, Directory.EnumerateFileSystemEntries(scratch).Count(), "nothing written");
    }

    [TestMethod]
    [DataRow("train", "--dataset", DisplayName = "train")]
    [DataRow("lr-find", "--dataset", DisplayName = "lr-find")]
    [DataRow("sweep", "--dataset", DisplayName = "sweep")]
    [DataRow("evaluate", "--dataset", DisplayName = "evaluate")]
    public void MissingDataset_IsAOneLineErrorNamingThePath(string command, string option)
    {
        string missing = Path.Combine(scratch, "no-such-folder");
        string[] args = command == "evaluate" ? new[] { command, "--model", "model.zip", option, missing, "--output", "out" } : new[] { command, option, missing, "--output", "out" };
        if (command == "evaluate") File.WriteAllText(Path.Combine(scratch, "model.zip"), string.Empty);
        CliRun run = CliRun.Of(scratch, args);
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, missing);
        Assert.AreEqual(1, run.Errors.TrimEnd().Split('\n').Length, "one line: " + run.Errors);
        Assert.IsFalse(Directory.Exists(Path.Combine(scratch, "out")), "no output folder for a run that cannot start");
    }

    [TestMethod]
    public void Help_ListsEveryCommandAndEachCommandsOptions()
    {
        CliRun overview = CliRun.Of(scratch, "--help");
        Assert.AreEqual(0, overview.ExitCode);
        foreach (string command in new[] { "train", "lr-find", "evaluate", "predict", "explain", "segment", "sweep", "diagnose", "export" }) StringAssert.Contains(overview.Output, command);
        CliRun train = CliRun.Of(scratch, "train", "--help");
        Assert.AreEqual(0, train.ExitCode);
        foreach (string option in new[] { "--dataset", "--epochs", "--arch", "--output", "--weights" }) StringAssert.Contains(train.Output, option);
        Assert.AreEqual(2, CliRun.Of(scratch).ExitCode, "no command at all is a usage error");
    }

    [TestMethod]
    public void Train_MultiLabel_FromACsvOfTags_WritesAModelThatGivesAProbabilityPerLabel_AndPerLabelMetrics()
    {
        CliImages.WriteTaggedImages(Path.Combine(scratch, "tagged"), count: 40);
        CliRun run = CliRun.Of(scratch, "train", "--dataset", Path.Combine("tagged", "tags.csv"), "--multi-label", "--arch", "resnet20", "--epochs", "2",
            "--image-size", "16", "--batch-size", "8", "--output", "tags");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        using (JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "tags", "metrics.json"))))
        {
            JsonElement root = metrics.RootElement;
            Assert.AreEqual("multi-label-image-classification", root.GetProperty("task").GetString());
            CollectionAssert.AreEquivalent(new[] { "top", "bottom" },
                root.GetProperty("validation").GetProperty("labels").EnumerateArray().Select(l => l.GetProperty("label").GetString()).ToArray());
            Assert.AreEqual(8, root.GetProperty("validationImages").GetInt32(), "a fifth of 40 held out");
        }

        var ml = new MLContext(seed: 1);
        ITransformer model = ml.Model.Load(Path.Combine(scratch, "tags", "model.zip"), out _);
        IDataView rows = ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = Path.Combine(scratch, "tagged", "000.png") } });
        float[] score = model.Transform(rows).GetColumn<float[]>("Score").Single();
        Assert.AreEqual(2, score.Length);
        Assert.IsTrue(score.All(p => p >= 0 && p <= 1));
    }

    [TestMethod]
    public void Segment_WithAnEncoderAccumulationAndAnAverage_TrainsAUNetOverThatBackbone()
    {
        CliImages.WriteImagesWithMasks(Path.Combine(scratch, "images"), Path.Combine(scratch, "masks"), count: 6, seed: 2);
        CliRun run = CliRun.Of(scratch, "segment", "--images", "images", "--masks", "masks", "--arch", "unet", "--encoder", "resnet18",
            "--epochs", "1", "--image-size", "32", "--batch-size", "2", "--accumulate", "2", "--ema", "0.99", "--output", "encoded");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        using (JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "encoded", "metrics.json"))))
        {
            Assert.AreEqual(2, metrics.RootElement.GetProperty("gradientAccumulationSteps").GetInt32(), "--accumulate reached the segmenter");
            Assert.AreEqual(0.99, metrics.RootElement.GetProperty("modelEmaDecay").GetDouble(), "--ema reached the segmenter");
        }

        using ZipArchive zip = ZipFile.OpenRead(Path.Combine(scratch, "encoded", "model.zip"));
        var graph = Microsoft.ML.Residual.Interop.MlNetInternals.OnnxModelEntries(zip).Single();
        byte[] onnx = Microsoft.ML.Residual.Interop.MlNetInternals.ReadOnnxModel(graph, new FileInfo(Path.Combine(scratch, "encoded", "model.zip")).Length);
        var names = Microsoft.ML.Residual.Onnx.Proto.ModelProto.Parser.ParseFrom(onnx).Graph.Initializer.Select(i => i.Name).ToList();
        CollectionAssert.Contains(names, "encoder.layer4.1.conv2.weight", "the decoder sits on resnet18's stages");
    }

    [TestMethod]
    public void Segment_TrainsOnImagesAndMasks_ThenSegmentsNewImagesWithTheModel_AlsoExportedToInt8()
    {
        CliImages.WriteImagesWithMasks(Path.Combine(scratch, "images"), Path.Combine(scratch, "masks"), count: 16, seed: 1);
        CliRun run = CliRun.Of(scratch, "segment", "--images", "images", "--masks", "masks", "--arch", "unet", "--depth", "2", "--width", "8",
            "--epochs", "2", "--image-size", "16", "--batch-size", "4", "--output", "seg");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        string output = Path.Combine(scratch, "seg");
        using (JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "metrics.json"))))
        {
            Assert.AreEqual(2, metrics.RootElement.GetProperty("classes").GetInt32(), "detected from the masks: 0 and 1");
            double iou = metrics.RootElement.GetProperty("validation").GetProperty("meanIoU").GetDouble();
            Assert.IsTrue(iou is >= 0 and <= 1);
            Assert.AreEqual(2, metrics.RootElement.GetProperty("epochs").GetArrayLength());
        }

        Assert.IsTrue(CliImages.IsPng(Path.Combine(output, "loss.png")));
        Assert.IsTrue(CliImages.IsPng(Path.Combine(output, "iou.png")));
        string[] overlays = Directory.GetFiles(Path.Combine(output, "overlays"));
        Assert.AreEqual(3, overlays.Length, "one per validation image (20 % of 16)");
        Assert.IsTrue(overlays.All(o => CliImages.IsPng(o) && CliImages.PngSize(o) == (16, 16)));

        CliImages.WriteImagesWithMasks(Path.Combine(scratch, "new"), Path.Combine(scratch, "new-masks"), count: 2, seed: 9);
        CliRun apply = CliRun.Of(scratch, "segment", "--model", Path.Combine(output, "model.zip"), "--images", "new", "--output", "applied");
        Assert.AreEqual(0, apply.ExitCode, apply.ToString());
        CollectionAssert.AreEquivalent(new[] { "000.png", "001.png" }, Directory.GetFiles(Path.Combine(scratch, "applied", "masks")).Select(Path.GetFileName).ToArray());
        CollectionAssert.AreEquivalent(new[] { "000.png", "001.png" }, Directory.GetFiles(Path.Combine(scratch, "applied", "overlays")).Select(Path.GetFileName).ToArray());

        // The U-Net exported to INT8, calibrated on its training images, segments like any model.zip.
        CliRun export = CliRun.Of(scratch, "export", "--model", Path.Combine(output, "model.zip"), "--precision", "int8", "--calibration", "images", "--output", "int8");
        Assert.AreEqual(0, export.ExitCode, export.ToString());
        CliRun quantized = CliRun.Of(scratch, "segment", "--model", Path.Combine(scratch, "int8", "model-int8.zip"), "--images", "new", "--output", "applied-int8");
        Assert.AreEqual(0, quantized.ExitCode, quantized.ToString());
        Assert.AreEqual(2, Directory.GetFiles(Path.Combine(scratch, "applied-int8", "masks")).Length);
    }

    [TestMethod]
    public void Segment_WithAnImageWithoutMask_NamesTheImageAndTheExpectedMask()
    {
        CliImages.WriteImagesWithMasks(Path.Combine(scratch, "images"), Path.Combine(scratch, "masks"), count: 3, seed: 1);
        File.Delete(Path.Combine(scratch, "masks", "001.png"));
        CliRun run = CliRun.Of(scratch, "segment", "--images", "images", "--masks", "masks", "--epochs", "1");
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, Path.Combine(scratch, "images", "001.png"));
        StringAssert.Contains(run.Errors, Path.Combine(scratch, "masks", "001") + ".png");
    }

    [TestMethod]
    public void Sweep_WritesTrialsTheBestModelAndPlots()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        CliRun run = CliRun.Of(scratch, "sweep", "--dataset", dataset, "--architectures", "resnet20,plain20", "--tuner", "random", "--trials", "2",
            "--epochs", "1", "--image-size", "16", "--minutes", "10");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        string[] trials = File.ReadAllLines(Path.Combine(scratch, "trials.csv"));
        Assert.AreEqual(3, trials.Length, "a header and two trials");
        using JsonDocument metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "metrics.json")));
        Assert.AreEqual(2, metrics.RootElement.GetProperty("trials").GetArrayLength());
        int best = metrics.RootElement.GetProperty("bestTrial").GetInt32();
        Assert.IsTrue(best is 1 or 2, best.ToString(CultureInfo.InvariantCulture));
        foreach (string file in new[] { "sweep.png", "loss.png", "accuracy.png", "confusion-matrix.png" })
            Assert.IsTrue(CliImages.IsPng(Path.Combine(scratch, file)), file);
        new MLContext().Model.Load(Path.Combine(scratch, "model.zip"), out _);
    }

    [TestMethod]
    public void Diagnose_WritesPerBlockGradientFlowAndJacobiansForEachArchitecture()
    {
        CliRun run = CliRun.Of(scratch, "diagnose", "--dataset", dataset, "--arch", "plain20,resnet20", "--image-size", "16", "--images", "8", "--jacobian-images", "2");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        string[] lines = File.ReadAllLines(Path.Combine(scratch, "gradient-flow.csv"));
        Assert.AreEqual(1 + 2 * 9, lines.Length, "a header and nine blocks per architecture");
        Assert.IsTrue(lines.Skip(1).Take(9).All(l => l.StartsWith("plain20,", StringComparison.Ordinal) && l.Contains(",0,1,", StringComparison.Ordinal)), "plain blocks: no identity part, branch share 1");
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "diagnostics.json")));
        JsonElement[] architectures = json.RootElement.GetProperty("architectures").EnumerateArray().ToArray();
        CollectionAssert.AreEqual(new[] { "plain20", "resnet20" }, architectures.Select(a => a.GetProperty("architecture").GetString()).ToArray());
        Assert.IsTrue(architectures.All(a => a.GetProperty("blocks").EnumerateArray().All(b => b.GetProperty("jacobianNorm").GetDouble() > 0)));
        Assert.IsTrue(architectures.All(a => a.GetProperty("lipschitzUpperBound").GetDouble() > 0));
        // The same product in the same order (Diagnostics/LipschitzBoundTests), written in JSON's round-trip form: equal.
        Assert.AreEqual(architectures[0].GetProperty("lipschitzUpperBound").GetDouble(), architectures[0].GetProperty("lipschitzLayerProduct").GetDouble(),
            "a plain network's bound is its layer product");
        foreach (string plot in new[] { "gradient-flow.png", "jacobian.png" }) Assert.IsTrue(CliImages.IsPng(Path.Combine(scratch, plot)), plot);
    }

    [TestMethod]
    public void DiagnoseStudy_TrainsTheVariantsAndWritesLossAndGradientFlowPlots()
    {
        CliRun run = CliRun.Of(scratch, "diagnose", "--study", "--dataset", dataset, "--depths", "20", "--epochs", "1", "--image-size", "8", "--images", "8");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        foreach (string label in new[] { "plain-20", "residual-20", "pre-act-20", "scaled-20" }) StringAssert.Contains(run.Output, label);
        Assert.AreEqual(1 + 4 * 2, File.ReadAllLines(Path.Combine(scratch, "degradation.csv")).Length, "each network at initialisation and after its epoch");
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch, "degradation.json"))))
            Assert.AreEqual(4, json.RootElement.GetProperty("networks").GetArrayLength());
        foreach (string plot in new[] { "training-loss.png", "gradient-flow-initial.png", "gradient-flow-final.png" })
            Assert.IsTrue(CliImages.IsPng(Path.Combine(scratch, plot)), plot);
    }

    [TestMethod]
    public void TheInstalledCommand_ExitsNonZeroWithOneLineOnStandardError()
    {
        string tool = Path.Combine(AppContext.BaseDirectory, "residualml.dll");
        Assert.IsTrue(File.Exists(tool), tool);
        var start = new ProcessStartInfo(TestRepository.DotnetHost(), new[] { tool, "train", "--dataset", Path.Combine(scratch, "missing") })
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = scratch,
        };
        using Process process = Process.Start(start)!;
        string errors = process.StandardError.ReadToEnd();
        process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(120_000));
        Assert.AreEqual(1, process.ExitCode, errors);
        Assert.AreEqual(1, errors.TrimEnd().Split('\n').Length, errors);
        StringAssert.Contains(errors, Path.Combine(scratch, "missing"));
    }

    [TestMethod]
    public void ANativeError_IsOneLineWithoutLibtorchsStack_AndTheStackGoesToTheErrorLog()
    {
        Exception native;
        using (var scope = TorchSharp.torch.NewDisposeScope())
            native = Assert.Throws<Exception>(() => TorchSharp.torch.zeros(2, 3).mul(TorchSharp.torch.zeros(4, 5)));
        StringAssert.Contains(native.Message, "Exception raised from", "libtorch's message carries its C++ stack");

        var errors = new StringWriter();
        var context = new ResidualML.Cli.CliContext(Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(new StringWriter()) }),
            errors, scratch, System.Threading.CancellationToken.None);
        Assert.AreEqual(ResidualML.Cli.Cli.Failed, ResidualML.Cli.Cli.ReportUnexpected(context, native));

        string line = errors.ToString().TrimEnd();
        string log = Path.Combine(scratch, ResidualML.Cli.Cli.ErrorLogFile);
        Assert.AreEqual(1, line.Split('\n').Length, line);
        StringAssert.StartsWith(line, $"residualml: error: unexpected {native.GetType().Name}: ");
        StringAssert.Contains(line, "must match the size of tensor b");
        StringAssert.Contains(line, log);
        Assert.IsFalse(line.Contains("Exception raised from", StringComparison.Ordinal) || line.Contains("frame #", StringComparison.Ordinal)
            || line.Contains("Could this error message be improved", StringComparison.Ordinal), line);
        string report = File.ReadAllText(log);
        StringAssert.Contains(report, "Exception raised from");
        StringAssert.Contains(report, nameof(ANativeError_IsOneLineWithoutLibtorchsStack_AndTheStackGoesToTheErrorLog), "the .NET stack too");
    }

    public sealed class PathRow
    {
        public string ImagePath { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }
}
