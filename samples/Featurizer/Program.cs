// Featurizer: a residual network as an image featurizer for ML.NET's own trainers. ResNetFeaturizer turns each image
// into the pooled activations of the network's last stage; an ordinary ML.NET trainer (here SDCA maximum entropy)
// learns the classes from them, after ML.NET's min-max normalisation. Nothing of the network is trained in the pipeline.
//
//   dotnet run --project samples/Featurizer
//   dotnet run --project samples/Featurizer -- --weights my-resnet20.safetensors
//
// Without --weights, the sample first makes a pretrained state dict on this machine (resnet20 trained on a source
// task of generated textures) and compares its features with those of the same network with random weights.
using System;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;

string architecture = Argument("--architecture", "resnet20")!;
string? weights = Argument("--weights", null);
var ml = new MLContext(seed: 1);

(weights, architecture) = TexturePretraining.UserOrPretrained(ml, weights, architecture);

// The new task: "striped" (horizontal or vertical) against "checked", 60 training images, 300 test images.
IDataView train = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 60, seed: 21).Select(TexturePretraining.StripedOrChecked).ToList());
IDataView test = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 300, seed: 22).Select(TexturePretraining.StripedOrChecked).ToList());

double pretrained = FitAndEvaluate($"{architecture} features from {Path.GetFileName(weights)}", weights);
double random = FitAndEvaluate($"{architecture} features from random weights", null);
Console.WriteLine($"\nTest macro accuracy of SDCA on the features: pretrained {pretrained:P1}, random weights {random:P1}");
return pretrained > 0.5 ? 0 : 1;

double FitAndEvaluate(string title, string? weightsPath)
{
    var pipeline = ml.Transforms.ResNetFeaturizer("Features", "Image", architecture, weightsPath, TextureDataset.Size, TextureDataset.Size)
        .Append(ml.Transforms.NormalizeMinMax("Features"))
        .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
        // The trainer passes over the data several times: features are computed once and cached.
        .AppendCacheCheckpoint(ml)
        .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features"));
    var clock = System.Diagnostics.Stopwatch.StartNew();
    ITransformer model = pipeline.Fit(train);
    IDataView scored = model.Transform(test);
    var metrics = ml.MulticlassClassification.Evaluate(scored);
    int featureCount = ((VectorDataViewType)scored.Schema["Features"].Type).Size;
    Console.WriteLine($"\n{title}: {featureCount} features per image, fitted in {clock.Elapsed.TotalSeconds:F1} s");
    Console.WriteLine($"  test macro accuracy {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
    return metrics.MacroAccuracy;
}

string? Argument(string name, string? fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}
