// The package check's consumer: a console app that references only the packed Microsoft.ML.Residual, TorchSharp-cpu
// and Microsoft.ML.OnnxRuntime, trains a tiny classifier on generated pixel vectors, evaluates it, saves model.zip,
// loads it back and predicts. Exits non-zero on any failure. Run by nuget/verify-package.sh in a fresh project.
using System;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;

var ml = new MLContext(seed: 1);
var random = new Random(1);
// Two classes: dark and bright 3×16×16 images, with noise.
Row MakeRow(int i)
{
    bool bright = i % 2 == 0;
    return new Row
    {
        Image = Enumerable.Range(0, 3 * 16 * 16).Select(_ => (float)((bright ? 170 : 40) + random.Next(60))).ToArray(),
        Label = bright ? "bright" : "dark",
    };
}

IDataView train = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 96).Select(MakeRow).ToList());
IDataView test = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 32).Select(MakeRow).ToList());
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
    {
        Architecture = "resnet20", ImageWidth = 16, ImageHeight = 16, Epochs = 3, BatchSize = 16, Seed = 1,
    }))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
ITransformer model = pipeline.Fit(train);
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"macro accuracy {metrics.MacroAccuracy:P1}");

ml.Model.Save(model, train.Schema, "model.zip");
ITransformer loaded = ml.Model.Load("model.zip", out _);
var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(loaded);
Prediction prediction = engine.Predict(MakeRow(0));
Console.WriteLine($"a bright image is predicted '{prediction.PredictedClass}'");
if (metrics.MacroAccuracy < 0.9 || prediction.PredictedClass != "bright")
{
    Console.Error.WriteLine("The consumer project trained, but the model did not learn the two classes.");
    return 1;
}

Console.WriteLine("package check passed");
return 0;

internal sealed class Row
{
    [VectorType(3, 16, 16)]
    public float[] Image { get; set; } = Array.Empty<float>();

    public string Label { get; set; } = string.Empty;
}

internal sealed class Prediction
{
    public string PredictedClass { get; set; } = string.Empty;
}
