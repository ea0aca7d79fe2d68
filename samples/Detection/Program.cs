// Detection: an object detector (FCOS over a ResNet-18 feature pyramid) in an ML.NET pipeline on generated images of
// circles, squares and triangles. It trains from image paths, boxes and labels, reports COCO mAP (mAP, mAP50, mAP75 and AP
// per class) on held-out images, saves model.zip, reloads it, and prints the boxes it finds in one new image (also drawn
// into detection-output/found.png).
//
//   dotnet run -c Release --project samples/Detection [-- --epochs 10 --images 300 --out detection-output]
using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Training;

int epochs = int.Parse(Argument("--epochs", "10"));
int count = int.Parse(Argument("--images", "300"));
const int Size = 96;
string output = Path.GetFullPath(Argument("--out", "detection-output"));
Directory.CreateDirectory(output);
var ml = new MLContext(seed: 1);

// Generated PNGs and their boxes: the training images and, with another seed, the test images.
string data = Path.Combine(Path.GetTempPath(), "residualml-detection-sample");
DetectionDataset train = ShapeDetection.Generate(Path.Combine(data, "train"), count, imageSize: Size, seed: 1);
DetectionDataset test = ShapeDetection.Generate(Path.Combine(data, "test"), 100, imageSize: Size, seed: 2);
Console.WriteLine($"Training images: {train}");
Console.WriteLine($"Test images:     {test}");

// ImagePath → Image, then the detector, which reads Labels (keys) and Boxes (x1, y1, x2, y2 per object) and each image's size.
var pipeline = ml.Transforms.LoadImages("Image", imageFolder: null, "ImagePath")
    .Append(ml.Detection().ObjectDetector(new ObjectDetectorOptions
    {
        Architecture = "fcos_resnet18_fpn", ModelOptions = new DetectorOptions { FpnChannels = 64 },
        LabelColumnName = "Labels", BoxColumnName = "Boxes", ImageWidthColumnName = "Width", ImageHeightColumnName = "Height",
        ImageWidth = Size, ImageHeight = Size, Epochs = epochs, BatchSize = 8, LearningRate = 2e-3, Seed = 1,
        Progress = new ConsoleProgress(),
    }));
IDataView trainRows = train.ToDataView(ml);
var clock = Stopwatch.StartNew();
ITransformer model = pipeline.Fit(trainRows);
clock.Stop();

IDataView scored = model.Transform(test.ToDataView(ml));
DetectionMetrics metrics = ml.Detection().Evaluate(scored, labelColumnName: "Labels", boxColumnName: "Boxes");
Console.WriteLine();
Console.WriteLine(metrics);
Console.WriteLine($"mAP {metrics.MeanAveragePrecision:F3}, mAP50 {metrics.MeanAveragePrecision50:F3}, mAP75 {metrics.MeanAveragePrecision75:F3}; trained in {clock.Elapsed.TotalSeconds:F0} s");

string modelPath = Path.Combine(output, "model.zip");
ml.Model.Save(model, trainRows.Schema, modelPath);
Console.WriteLine($"Model saved to {modelPath}");

// The saved model, reloaded, finds the objects of one new image: its path and size are all it needs.
ITransformer loaded = ml.Model.Load(modelPath, out _);
DetectionExample example = ShapeDetection.Generate(Path.Combine(data, "new"), 1, imageSize: Size, seed: 3).Examples[0];
var single = new DetectionDataset(ShapeDetection.ClassNames, new[] { example with { Objects = Array.Empty<DetectionBox>() } });
IDataView found = loaded.Transform(single.ToDataView(ml));
Detected detected = ml.Data.CreateEnumerable<Detected>(found, reuseRowObject: false).Single();
Console.WriteLine($"\n{Path.GetFileName(example.ImagePath)}: {example.Objects.Count} shape(s); the detections scoring 0.5 or more (at most 10):");
var boxes = Enumerable.Range(0, detected.Score.Length).Where(i => detected.Score[i] >= 0.5f).Take(10)
    .Select(i => new ScoredBox((int)detected.PredictedLabel[i] - 1, detected.Score[i], detected.PredictedBoundingBoxes[4 * i], detected.PredictedBoundingBoxes[4 * i + 1],
        detected.PredictedBoundingBoxes[4 * i + 2], detected.PredictedBoundingBoxes[4 * i + 3])).ToList();
foreach (ScoredBox box in boxes)
    Console.WriteLine($"  {ShapeDetection.ClassNames[box.Label],-8} {box.Score:F2}  x1 {box.X1,5:F1}  y1 {box.Y1,5:F1}  x2 {box.X2,5:F1}  y2 {box.Y2,5:F1}");
foreach (DetectionBox truth in example.Objects)
    Console.WriteLine($"  (true: {ShapeDetection.ClassNames[truth.Label],-8}       x1 {truth.X1,5:F1}  y1 {truth.Y1,5:F1}  x2 {truth.X2,5:F1}  y2 {truth.Y2,5:F1})");
using (MLImage image = MLImage.CreateFromFile(example.ImagePath))
    DetectionOverlay.Save(Path.Combine(output, "found.png"), image, boxes, ShapeDetection.ClassNames, example.Objects);
Console.WriteLine($"Drawn into {Path.Combine(output, "found.png")}");
return metrics.MeanAveragePrecision50 >= 0.5 ? 0 : 1;

string Argument(string name, string fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

/// <summary>One image's detections, best first: class keys (1 = circle, …), scores, and 4 box values per detection.</summary>
internal sealed class Detected
{
    public uint[] PredictedLabel { get; set; } = Array.Empty<uint>();

    public float[] Score { get; set; } = Array.Empty<float>();

    public float[] PredictedBoundingBoxes { get; set; } = Array.Empty<float>();
}

/// <summary>Prints each epoch as it ends.</summary>
internal sealed class ConsoleProgress : IProgress<EpochReport>
{
    public void Report(EpochReport r) => Console.WriteLine($"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  {r.ImagesPerSecond:F0} images/s");
}
