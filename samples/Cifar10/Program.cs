// Cifar10: the papers' CIFAR-10 recipes on your copy of CIFAR-10 (the binary version, 170 MB, from
// https://www.cs.toronto.edu/~kriz/cifar.html). Trains on the 50,000 training images, reports the test error on the
// 10,000 test images, and saves the model.
//
//   dotnet run -c Release --project samples/Cifar10 -- --data ~/data/cifar-10-batches-bin --recipe resnet20
//   dotnet run -c Release --project samples/Cifar10 -- --data ... --recipe densenet_bc_100_12 --epochs 2   (a shorter run)
//
// Recipes (test error in the papers; training time on 2 CPU cores is days for the deeper ones):
//   resnet20, resnet56, resnet110  He et al. 2016, "Deep residual learning": 8.75 %, 6.97 %, 6.43 %
//   preact_resnet164               He et al. 2016, "Identity mappings in deep residual networks": 5.46 %
//   densenet_bc_100_12             Huang et al. 2017, "Densely connected convolutional networks": 4.51 %
// The ResNets train 164 epochs (64k iterations of 128 images) with SGD (momentum 0.9, weight decay 1e-4), learning
// rate 0.1 divided by 10 at epochs 82 and 123, and a one-epoch warm-up for ResNet-110 and ResNet-164 (the papers hold
// 0.01 for about 400 iterations); DenseNet-BC trains 300 epochs with batch 64, Nesterov momentum and the rate divided
// by 10 at epochs 150 and 225. All use 4-pixel padding, random 32×32 crops and horizontal flips; pixels are normalised
// per channel inside the model. The test set is never used during training (the final epoch's weights are kept).
using System;
using System.IO;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.Training;

string? data = Argument("--data");
string recipe = Argument("--recipe") ?? "resnet20";
if (data is null)
{
    Console.Error.WriteLine("Give the CIFAR-10 folder: --data PATH (the extracted cifar-10-batches-bin folder of the binary version from https://www.cs.toronto.edu/~kriz/cifar.html).");
    return 2;
}

(int Epochs, int Batch, int[] Milestones, bool Nesterov, double Warmup, double PaperError) settings = recipe switch
{
    "resnet20" or "resnet32" or "resnet44" or "resnet56" => (164, 128, new[] { 82, 123 }, false, 0, recipe switch { "resnet20" => 8.75, "resnet32" => 7.51, "resnet44" => 7.17, _ => 6.97 }),
    "resnet110" => (164, 128, new[] { 82, 123 }, false, 1, 6.43),
    "preact_resnet164" => (164, 128, new[] { 82, 123 }, false, 1, 5.46),
    "densenet_bc_100_12" => (300, 64, new[] { 150, 225 }, true, 0, 4.51),
    _ => (0, 0, Array.Empty<int>(), false, 0, double.NaN),
};
if (settings.Epochs == 0)
{
    Console.Error.WriteLine($"Unknown recipe '{recipe}': use resnet20, resnet32, resnet44, resnet56, resnet110, preact_resnet164 or densenet_bc_100_12.");
    return 2;
}

int epochs = int.Parse(Argument("--epochs") ?? settings.Epochs.ToString());
// A shortened run keeps the schedule's shape: the milestones scale with the epochs.
int[] milestones = Array.ConvertAll(settings.Milestones, m => Math.Max(1, m * epochs / settings.Epochs));

var ml = new MLContext(seed: 1);
IDataView train, test;
try
{
    train = ml.Data.LoadCifar10(data, DatasetSplit.Train);
    test = ml.Data.LoadCifar10(data, DatasetSplit.Test);
}
catch (Exception e) when (e is IOException or InvalidDataException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
var options = new ImageClassifierOptions
{
    Architecture = recipe, ImageWidth = 32, ImageHeight = 32, Epochs = epochs, BatchSize = settings.Batch, Seed = 1,
    LearningRate = 0.1, Momentum = 0.9, Nesterov = settings.Nesterov, WeightDecay = 1e-4,
    Schedule = LearningRateScheduleKind.Step, StepMilestones = milestones, StepGamma = 0.1, WarmupEpochs = settings.Warmup,
    Augmentation = ImageAugmentation.Cifar(), CheckpointDirectory = $"cifar10-{recipe}-checkpoints",
    Progress = new ConsoleProgress(),
};
Console.WriteLine($"{recipe}: {epochs} epochs of batch {settings.Batch}, learning rate 0.1 divided by 10 at epochs {string.Join(" and ", milestones)}; the paper's test error is {settings.PaperError} %");
Console.WriteLine($"Checkpoints in {Path.GetFullPath(options.CheckpointDirectory)}: run the same command again to resume.");

ITransformer model = labelKeys.Append(ml.Transforms.ImageClassifier(options).Fit(labelKeys.Transform(train)));
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"\nTest error {100 * (1 - metrics.MicroAccuracy):F2} % (paper: {settings.PaperError} %), log-loss {metrics.LogLoss:F3}");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());
string modelPath = $"cifar10-{recipe}.zip";
ml.Model.Save(model, train.Schema, modelPath);
Console.WriteLine($"Model saved to {Path.GetFullPath(modelPath)}");
return 0;

string? Argument(string name)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}

/// <summary>Prints each epoch as it ends.</summary>
internal sealed class ConsoleProgress : IProgress<EpochReport>
{
    public void Report(EpochReport r) => Console.WriteLine(
        $"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  training accuracy {r.TrainingAccuracy:P2}  {r.ImagesPerSecond:F0} images/s  ({r.Elapsed.TotalMinutes:F1} min)");
}
