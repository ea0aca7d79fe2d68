// Shared by the FineTune and Featurizer samples (compiled into each): a pretrained state dict made on this machine,
// standing in for downloaded weights such as torchvision's.
using System;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using static TorchSharp.torch;

internal static class TexturePretraining
{
    /// <summary>The new task of the fine-tuning samples: "striped" (horizontal or vertical) against "checked".</summary>
    public static TextureDataset.Row StripedOrChecked(TextureDataset.Row row) =>
        new() { Image = row.Image, Label = row.Label == "checkerboard" ? "checked" : "striped" };

    /// <summary>
    /// The user's state dict and architecture when <paramref name="weights"/> is given; otherwise a resnet20 state dict
    /// pretrained here (<see cref="Pretrain"/>) in pretrained-resnet20.safetensors.
    /// </summary>
    public static (string Weights, string Architecture) UserOrPretrained(MLContext ml, string? weights, string architecture)
    {
        if (weights is not null) return (weights, architecture);
        string path = System.IO.Path.GetFullPath("pretrained-resnet20.safetensors");
        Pretrain(ml, path);
        return (path, "resnet20");
    }

    /// <summary>
    /// Trains resnet20 on 900 generated texture images of three classes (the source task) with the library's
    /// TorchSharp-level API, and saves its weights with <c>StateDict.Save</c> (torchvision-style names).
    /// </summary>
    public static void Pretrain(MLContext ml, string path, int epochs = 4)
    {
        Console.WriteLine($"Pretraining resnet20 on 900 generated images of {TextureDataset.Classes.Length} texture classes (the source task)");
        IDataView rows = ml.Data.LoadFromEnumerable(TextureDataset.Generate(count: 900, seed: 1));
        IDataView source = ml.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var reader = new ImageBatchReader(source, new ImageBatchOptions
        {
            ImageColumnName = "Image", Width = TextureDataset.Size, Height = TextureDataset.Size, BatchSize = 32, Seed = 1, CacheInMemory = true,
        });
        using var model = ResidualModels.Create("resnet20", numClasses: TextureDataset.Classes.Length, options: new ResNetOptions { Seed = 1 });
        // ImageNet's normalisation: the estimators apply it to pretrained weights, as torchvision's weights expect.
        using Tensor mean = tensor(new[] { 0.485f, 0.456f, 0.406f }).reshape(1, 3, 1, 1) * 255;
        using Tensor std = tensor(new[] { 0.229f, 0.224f, 0.225f }).reshape(1, 3, 1, 1) * 255;
        var trainer = new TrainingLoop(model, new TrainingOptions { Epochs = epochs, LearningRate = 0.1, Seed = 1 })
        {
            Preprocess = images => (images - mean) / std,
        };
        TrainingResult result = trainer.Train(
            epoch => reader.ReadEpoch(epoch).Select(b => (b.Images, b.Labels!)),
            stepsPerEpoch: (900 + 31) / 32,
            progress: new Progress());
        StateDict.Save(model, path);
        Console.WriteLine($"Saved {path} (training loss {result.History[^1].TrainingLoss:F3})");
    }

    private sealed class Progress : IProgress<EpochReport>
    {
        public void Report(EpochReport r) => Console.WriteLine($"  epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  {r.ImagesPerSecond:F0} images/s");
    }
}
