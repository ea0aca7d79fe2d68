// FashionMnist: training recipes on Fashion-MNIST (60,000 training and 10,000 test images of clothes, 28×28 grey), read
// from its IDX files with ml.Data.LoadMnist. On Debian: `apt-get install dataset-fashion-mnist` puts them in
// /usr/share/datasets/fashion-mnist, the default --data.
//
//   dotnet run -c Release --project samples/FashionMnist -- --recipe resnet20
//   dotnet run -c Release --project samples/FashionMnist -- --recipe default --epochs 6 --train-rows 20000
//
// Recipes:
//   default             ResNet-20 with nothing but the architecture, image size and epochs set: what a user gets untuned
//   resnet20, resnet56  CIFAR ResNets of He et al. 2016
//   preact_resnet110    pre-activation CIFAR ResNet of He et al. 2016 ("Identity mappings")
//   densenet_bc_100_12  CIFAR DenseNet-BC of Huang et al. 2017
//   wide_resnet16_4, wide_resnet28_10  Wide ResNets of Zagoruyko and Komodakis 2016 (WRN-28-10 is the dataset README's)
// The named recipes train with SGD (momentum 0.9, weight decay 5e-4 off BatchNorm and biases), learning rate 0.1 (batch
// 128) with a one-epoch warm-up and a cosine decay, and the standard augmentation (4-pixel padding, random crop back to
// 28×28, horizontal flip; --augment none turns it off). benchmarks/peers/fashion_peer.py trains ResNet-20 in PyTorch
// with the same recipe for the side-by-side comparison in docs/training.md. The test images are used once, at the end.
// Writes the learning curves (training loss and accuracy per epoch) to fashion-mnist-RECIPE.png and one JSON line with
// the result to the console. --peer-log FILE adds the PyTorch run's curves to the plot: FILE holds what fashion_peer.py
// printed (one JSON line per epoch with "epoch", "loss" and "trainAccuracy").
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Training;

string data = Argument("--data") ?? "/usr/share/datasets/fashion-mnist";
string recipe = Argument("--recipe") ?? "resnet20";
string[] recipes = { "default", "resnet20", "resnet56", "preact_resnet110", "densenet_bc_100_12", "wide_resnet16_4", "wide_resnet28_10" };
if (!recipes.Contains(recipe))
{
    Console.Error.WriteLine($"Unknown recipe '{recipe}': use {string.Join(", ", recipes)}.");
    return 2;
}

string? trainImages = Find("train-images-idx3-ubyte"), trainLabels = Find("train-labels-idx1-ubyte");
string? testImages = Find("t10k-images-idx3-ubyte"), testLabels = Find("t10k-labels-idx1-ubyte");
if (trainImages is null || trainLabels is null || testImages is null || testLabels is null)
{
    Console.Error.WriteLine($"Fashion-MNIST's four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-…) are not in '{data}'. "
        + "On Debian: apt-get install dataset-fashion-mnist (installs them in /usr/share/datasets/fashion-mnist); "
        + "or download them from https://github.com/zalandoresearch/fashion-mnist and give the folder with --data.");
    return 2;
}

int epochs, trainRows, testRows;
bool augment;
List<(double Epoch, double Loss, double Accuracy)> peerCurves;
try
{
    peerCurves = Argument("--peer-log") is string peerLog ? ReadPeerLog(peerLog) : new();
    epochs = Number("--epochs", 30);
    trainRows = Number("--train-rows", 60_000);
    testRows = Number("--test-rows", 10_000);
    augment = (Argument("--augment") ?? "crop+flip") switch
    {
        "crop+flip" => true,
        "none" => false,
        string other => throw new ArgumentException($"--augment {other}: use crop+flip or none."),
    };
}
catch (Exception e) when (e is ArgumentException or IOException)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

string[] classNames = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

var ml = new MLContext(seed: 1);
IDataView train, test;
try
{
    train = ml.Data.TakeRows(ml.Data.LoadMnist(trainImages, trainLabels, classNames), trainRows);
    test = ml.Data.TakeRows(ml.Data.LoadMnist(testImages, testLabels, classNames), testRows);
}
catch (Exception e) when (e is IOException or InvalidDataException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

var reports = new List<EpochReport>();
var options = new ImageClassifierOptions
{
    Architecture = recipe == "default" ? "resnet20" : recipe, ImageWidth = 28, ImageHeight = 28, Epochs = epochs,
    Progress = new Progress(reports),
};
if (recipe != "default")
{
    options.Optimizer = OptimizerKind.Sgd;
    options.LearningRate = 0.1;
    options.Momentum = 0.9;
    options.WeightDecay = 5e-4;
    options.BatchSize = 128;
    options.Schedule = LearningRateScheduleKind.Cosine;
    options.WarmupEpochs = Math.Min(1, epochs / 5.0);
    options.Augmentation = augment ? ImageAugmentation.Cifar() : new ImageAugmentation();
}

Console.WriteLine(recipe == "default"
    ? $"default: ResNet-20 with the library's defaults, {epochs} epochs, on {trainRows:N0} training images"
    : $"{recipe}: SGD 0.1 (momentum 0.9, weight decay 5e-4), batch 128, cosine with a {options.WarmupEpochs:0.#}-epoch warm-up, {(augment ? "pad-crop and flip" : "no augmentation")}, {epochs} epochs on {trainRows:N0} training images");
IEstimator<ITransformer> classifier = ml.Transforms.ImageClassifier(options);
var clock = System.Diagnostics.Stopwatch.StartNew();
ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(classifier).Fit(train);
double seconds = clock.Elapsed.TotalSeconds;
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"\nTest accuracy {metrics.MicroAccuracy:P2} on {testRows:N0} images after {seconds / 60:F1} min of training");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

string curves = $"fashion-mnist-{recipe}.png";
double[] epochNumbers = reports.Select(r => (double)r.Epoch).ToArray();
var chart = new LineChart
{
    Title = string.Create(CultureInfo.InvariantCulture, $"Fashion-MNIST, {recipe}: test accuracy {metrics.MicroAccuracy:F4}"), XLabel = "epoch", YLabel = "training loss / accuracy",
};
string ours = peerCurves.Count > 0 ? "ResidualML: " : "training ";
chart.Add(ours + "loss", epochNumbers, reports.Select(r => r.TrainingLoss).ToArray())
    .Add(ours + "accuracy", epochNumbers, reports.Select(r => r.TrainingAccuracy).ToArray());
if (peerCurves.Count > 0)
{
    double[] peerEpochs = peerCurves.Select(c => c.Epoch).ToArray();
    chart.Add("PyTorch: loss", peerEpochs, peerCurves.Select(c => c.Loss).ToArray())
        .Add("PyTorch: accuracy", peerEpochs, peerCurves.Select(c => c.Accuracy).ToArray());
}

chart.Save(curves);
Console.WriteLine($"Learning curves: {Path.GetFullPath(curves)}");
Console.WriteLine(JsonSerializer.Serialize(new
{
    recipe, epochs, trainRows, testRows, augment, testAccuracy = metrics.MicroAccuracy, trainSeconds = Math.Round(seconds, 1),
    imagesPerSecond = (double)trainRows * reports.Count / seconds,
    epochLosses = reports.Select(r => r.TrainingLoss).ToArray(),
}));
return 0;

string? Argument(string name)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}

int Number(string name, int fallback) =>
    Argument(name) is string text ? int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
        ? value : throw new ArgumentException($"{name} {text}: give a positive whole number.") : fallback;

// The epoch lines of fashion_peer.py's output; other lines (its final result) are skipped.
List<(double Epoch, double Loss, double Accuracy)> ReadPeerLog(string path)
{
    if (!File.Exists(path)) throw new ArgumentException($"--peer-log {path}: no such file. Give the file fashion_peer.py's output was written to.");
    var curves = new List<(double, double, double)>();
    foreach (var (line, number) in File.ReadLines(path).Select((l, i) => (l.Trim(), i + 1)))
    {
        if (!line.StartsWith('{')) continue;
        using JsonDocument json = ParseLine(line, number);
        JsonElement root = json.RootElement;
        if (!root.TryGetProperty("epoch", out JsonElement epoch)) continue;
        if (!root.TryGetProperty("loss", out JsonElement loss) || !root.TryGetProperty("trainAccuracy", out JsonElement accuracy))
            throw new ArgumentException($"--peer-log {path}, line {number}: an epoch line without \"loss\" and \"trainAccuracy\".");
        curves.Add((epoch.GetDouble(), loss.GetDouble(), accuracy.GetDouble()));
    }

    JsonDocument ParseLine(string line, int number)
    {
        try
        {
            return JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"--peer-log {path}, line {number}: not a JSON line ({e.Message}).");
        }
    }

    if (curves.Count == 0) throw new ArgumentException($"--peer-log {path}: no epoch lines ({{\"epoch\": …, \"loss\": …}}); give fashion_peer.py's output.");
    return curves;
}

string? Find(string stem) => new[] { stem, stem + ".gz" }.Select(n => Path.Combine(data, n)).FirstOrDefault(File.Exists);

/// <summary>Prints each epoch as it ends and keeps its report for the curves.</summary>
internal sealed class Progress : IProgress<EpochReport>
{
    private readonly List<EpochReport> reports;

    public Progress(List<EpochReport> reports) => this.reports = reports;

    public void Report(EpochReport r)
    {
        reports.Add(r);
        Console.WriteLine($"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  training accuracy {r.TrainingAccuracy:P2}  {r.ImagesPerSecond:F0} images/s  ({r.Elapsed.TotalMinutes:F1} min)");
    }
}
