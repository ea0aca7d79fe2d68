// Quickstart: an ML.NET pipeline that trains a residual network on built-in generated images (three
// texture classes), evaluates it with ML.NET's evaluator, saves model.zip and scores one image with a
// PredictionEngine from the reloaded file.
//
//   dotnet run --project samples/Quickstart [-- --model resnet20 --epochs 5 --out model.zip]
using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Training;

string architecture = Argument("--model", "resnet20");
int epochs = int.Parse(Argument("--epochs", "5"));
string outputPath = Argument("--out", "model.zip");

var ml = new MLContext(seed: 1);
IDataView train = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 900, seed: 1));
IDataView test = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 300, seed: 2));
Console.WriteLine($"{architecture}: training on 900 and testing on 300 generated {TextureDataset.Size}x{TextureDataset.Size} images of {TextureDataset.Classes.Length} classes");

// The label becomes a key; the validation data goes through the same mapping, as for ML.NET's own trainers.
ITransformer labelKeys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
var classifier = ml.Transforms.ResNetClassifier(new ImageClassifierOptions
{
    Architecture = architecture, ImageWidth = TextureDataset.Size, ImageHeight = TextureDataset.Size,
    Epochs = epochs, BatchSize = 32, LearningRate = 0.1, Seed = 1, ValidationSet = labelKeys.Transform(test),
    Progress = new ConsoleProgress(),
});
ITransformer model = labelKeys.Append(classifier.Fit(labelKeys.Transform(train)));

MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"\nTest set: macro accuracy {metrics.MacroAccuracy:P1}, micro accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

ml.Model.Save(model, train.Schema, outputPath);
Console.WriteLine($"Model saved to {System.IO.Path.GetFullPath(outputPath)} (ML.NET transformers around an ONNX graph).");

ITransformer loaded = ml.Model.Load(outputPath, out _);
// Six new images, scored one at a time as an application would; like the test set, an image now and then is missed.
var samples = TextureDataset.Generate(count: 6, seed: 3);
IDataView sampleView = ml.Data.LoadFromEnumerable(samples);
ITransformer withNames = loaded.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(loaded.Transform(sampleView)));
var engine = ml.Model.CreatePredictionEngine<TextureDataset.Row, Prediction>(withNames);
int right = 0;
foreach (TextureDataset.Row row in samples)
{
    Prediction prediction = engine.Predict(row);
    bool correct = prediction.PredictedLabel == row.Label;
    right += correct ? 1 : 0;
    Console.WriteLine($"Reloaded model: a '{row.Label}' image is predicted '{prediction.PredictedLabel}' (p = {prediction.Score.Max():F3}){(correct ? string.Empty : "  <- missed")}");
}

Console.WriteLine($"Reloaded model: {right} of {samples.Count} new images classified correctly.");

return metrics.MacroAccuracy > 0.5 ? 0 : 1;

string Argument(string name, string fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

/// <summary>What the PredictionEngine returns.</summary>
internal sealed class Prediction
{
    public string PredictedLabel { get; set; } = string.Empty;

    public float[] Score { get; set; } = Array.Empty<float>();
}

/// <summary>Prints each epoch as it ends.</summary>
internal sealed class ConsoleProgress : IProgress<EpochReport>
{
    public void Report(EpochReport r) => Console.WriteLine(
        $"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  validation accuracy {r.ValidationAccuracy:P1}  {r.ImagesPerSecond:F0} images/s  ({r.Elapsed.TotalSeconds:F0} s)");
}
