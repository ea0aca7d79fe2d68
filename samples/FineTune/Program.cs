// FineTune: start a classifier from a pretrained state dict, train its new head with the backbone frozen, then train
// everything with a lower learning rate for the backbone (fastai's fine_tune), and compare with training from scratch.
//
//   dotnet run --project samples/FineTune
//   dotnet run --project samples/FineTune -- --weights resnet18.safetensors --architecture resnet18
//
// With --weights, the state dict is yours (e.g. torchvision's ImageNet weights saved as .safetensors or .pth; the
// names must be torchvision's). Without it, step 1 makes one: it trains resnet20 on 900 generated texture images
// of three classes with the library's TorchSharp-level API and saves the weights with StateDict.Save, as if they
// had been downloaded. Step 2 fine-tunes on a new task with few images: "striped" (horizontal or vertical) against
// "checked", 10 images of each, so the head is new (2 classes instead of 3).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Training;

string architecture = Argument("--architecture", "resnet20")!;
string? weights = Argument("--weights", null);
int epochs = int.Parse(Argument("--epochs", "6")!);
var ml = new MLContext(seed: 1);

(weights, architecture) = TexturePretraining.UserOrPretrained(ml, weights, architecture);

// The new task: few training images, new classes.
List<TextureDataset.Row> targetRows = TextureDataset.Generate(count: 30, seed: 11).Select(TexturePretraining.StripedOrChecked).ToList();
targetRows = targetRows.Where(r => r.Label == "checked").Concat(targetRows.Where(r => r.Label == "striped").Take(10)).ToList();
IDataView train = ml.Data.LoadFromEnumerable(targetRows);
IDataView test = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 300, seed: 12).Select(TexturePretraining.StripedOrChecked));
ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
Console.WriteLine($"\nStep 2: {architecture} on a new task, {targetRows.Count} training images (10 'checked', 10 'striped'), 300 test images");

double fineTuned = TrainAndTest("fine-tuned from the state dict: head only for 2 epochs, then everything", new ImageClassifierOptions
{
    Architecture = architecture, ImageWidth = TextureDataset.Size, ImageHeight = TextureDataset.Size, Epochs = epochs, BatchSize = 10,
    LearningRate = 0.01, Seed = 1, PretrainedWeightsPath = weights, FreezeBackboneEpochs = 2,
});
double scratch = TrainAndTest("from scratch (random initialisation), same epochs", new ImageClassifierOptions
{
    Architecture = architecture, ImageWidth = TextureDataset.Size, ImageHeight = TextureDataset.Size, Epochs = epochs, BatchSize = 10,
    LearningRate = 0.01, Seed = 1,
});
Console.WriteLine($"\nTest macro accuracy: fine-tuned {fineTuned:P1}, from scratch {scratch:P1}");
return fineTuned > 0.5 ? 0 : 1;

double TrainAndTest(string title, ImageClassifierOptions options)
{
    Console.WriteLine($"\n{title}");
    options.Progress = new ConsoleProgress();
    ITransformer model = labelKeys.Append(ml.Transforms.ResNetClassifier(options).Fit(labelKeys.Transform(train)));
    return ml.MulticlassClassification.Evaluate(model.Transform(test)).MacroAccuracy;
}

string? Argument(string name, string? fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

/// <summary>Prints each epoch as it ends.</summary>
internal sealed class ConsoleProgress : IProgress<EpochReport>
{
    public void Report(EpochReport r) => Console.WriteLine(
        $"  epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  {r.ImagesPerSecond:F0} images/s");
}
