// Segmentation: a U-Net in an ML.NET pipeline on built-in generated images of shapes. It trains on images and
// per-pixel class masks, reports mean IoU with ML.NET-style metrics, saves model.zip, and writes the predicted masks
// of a few test images as colour overlays (PNG).
//
//   dotnet run --project samples/Segmentation [-- --epochs 20 --out segmentation-output]
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;

int epochs = int.Parse(Argument("--epochs", "20"));
string output = Path.GetFullPath(Argument("--out", "segmentation-output"));
Directory.CreateDirectory(output);
var ml = new MLContext(seed: 1);

IDataView train = ml.Data.LoadFromEnumerable(Shapes.Generate(count: 256, seed: 1));
IDataView test = ml.Data.LoadFromEnumerable(Shapes.Generate(count: 64, seed: 2));
Console.WriteLine($"A classic U-Net on {Shapes.Size}x{Shapes.Size} images: background, squares and discs; 256 training and 64 test images");

var segmenter = ml.Transforms.UNetSegmenter(new SegmenterOptions
{
    Architecture = "unet", ImageColumnName = "Image", MaskColumnName = "Mask", NumClasses = Shapes.ClassNames.Length,
    ImageWidth = Shapes.Size, ImageHeight = Shapes.Size, Epochs = epochs, BatchSize = 16, Seed = 1, LearningRate = 1e-2,
    Loss = SegmentationLoss.CrossEntropyDice,
    ModelOptions = new UNetOptions { Depth = 3, BaseWidth = 16 },
    ValidationSet = test, Progress = new ConsoleProgress(),
});
ITransformer model = segmenter.Fit(train);

IDataView scored = model.Transform(test);
SegmentationMetrics metrics = ml.Segmentation().Evaluate(scored, labelColumnName: "Mask", predictedColumnName: "PredictedMask");
Console.WriteLine($"\nTest set: mean IoU {metrics.MeanIoU:F3}, pixel accuracy {metrics.PixelAccuracy:P1}");
Console.WriteLine(metrics);

string modelPath = Path.Combine(output, "model.zip");
ml.Model.Save(model, train.Schema, modelPath);
Console.WriteLine($"Model saved to {modelPath}");

// Overlays of the first test images: the image, its true mask and the predicted mask, coloured by class.
var predictions = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).Take(4).ToList();
List<Shapes.Row> images = Shapes.Generate(count: 4, seed: 2);
for (int i = 0; i < predictions.Count; i++)
{
    MaskRenderer.SaveOverlay(Path.Combine(output, $"test{i}-predicted.png"), images[i].Image, predictions[i].PredictedMask, Shapes.Size, Shapes.Size);
    MaskRenderer.SaveOverlay(Path.Combine(output, $"test{i}-truth.png"), images[i].Image, images[i].Mask, Shapes.Size, Shapes.Size);
}

Console.WriteLine($"Overlays of {predictions.Count} test images (truth and prediction) written to {output}");
return metrics.MeanIoU > 0.5 ? 0 : 1;

string Argument(string name, string fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

/// <summary>The predicted mask of one image: a class index per pixel, row by row.</summary>
internal sealed class Prediction
{
    public uint[] PredictedMask { get; set; } = Array.Empty<uint>();
}

/// <summary>Prints each epoch as it ends.</summary>
internal sealed class ConsoleProgress : IProgress<EpochReport>
{
    public void Report(EpochReport r) => Console.WriteLine(
        $"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  validation mean IoU {r.ValidationMeanIoU:F3}  {r.ImagesPerSecond:F0} images/s");
}

/// <summary>Generated images: a noisy background with a square and a disc of random colours, and their masks.</summary>
internal static class Shapes
{
    public const int Size = 32;

    public static readonly string[] ClassNames = { "background", "square", "disc" };

    public sealed class Row
    {
        [VectorType(3, Size, Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        [VectorType(Size, Size)]
        public uint[] Mask { get; set; } = Array.Empty<uint>();
    }

    public static List<Row> Generate(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>(count);
        for (int n = 0; n < count; n++)
        {
            var mask = new uint[Size * Size];
            int side = random.Next(6, 12), sx = random.Next(0, Size - side), sy = random.Next(0, Size - side);
            int radius = random.Next(4, 8), cx = random.Next(radius, Size - radius), cy = random.Next(radius, Size - radius);
            for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                if (x >= sx && x < sx + side && y >= sy && y < sy + side) mask[y * Size + x] = 1;
                if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= radius * radius) mask[y * Size + x] = 2;
            }

            var colours = Enumerable.Range(0, 3).Select(_ => new[] { random.Next(256), random.Next(256), random.Next(256) }).ToArray();
            var image = new float[3 * Size * Size];
            for (int c = 0; c < 3; c++)
            for (int p = 0; p < Size * Size; p++)
                image[c * Size * Size + p] = Math.Clamp(colours[mask[p]][c] + random.Next(-25, 26), 0, 255);
            rows.Add(new Row { Image = image, Mask = mask });
        }

        return rows;
    }
}
