using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Classification;

[TestClass]
public sealed class ImageClassifierEstimatorTests
{
    private const int Size = 16;
    private static readonly string[] Classes = { "horizontal", "vertical", "checker", "diagonal" };

    public TestContext TestContext { get; set; } = null!;

    public sealed class Row
    {
        [VectorType(3 * Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = string.Empty;
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = string.Empty;

        public float[] Score { get; set; } = Array.Empty<float>();
    }

    /// <summary>Four noisy, randomly coloured textures, as ExtractPixels gives pixels (CHW, 0–255).</summary>
    internal static List<Row> Textures(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new List<Row>();
        for (int n = 0; n < count; n++)
        {
            int label = n % Classes.Length;
            int period = random.Next(2, 4);
            int phase = random.Next(period);
            float[] on = { random.Next(256), random.Next(256), random.Next(256) };
            float[] off = { random.Next(256), random.Next(256), random.Next(256) };
            var pixels = new float[3 * Size * Size];
            for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                bool lit = label switch
                {
                    0 => (y + phase) / period % 2 == 0,
                    1 => (x + phase) / period % 2 == 0,
                    2 => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                    _ => (x + y + phase) / period % 2 == 0,
                };
                for (int c = 0; c < 3; c++)
                    pixels[(c * Size + y) * Size + x] = Math.Clamp((lit ? on[c] : off[c]) + random.Next(-12, 13), 0, 255);
            }

            rows.Add(new Row { Image = pixels, Label = Classes[label] });
        }

        return rows;
    }

    [TestMethod]
    [DataRow("mobilenet_v3_small", Size)]
    [DataRow("efficientnet_b0", Size)]
    [DataRow("efficientnet_v2_s", Size)]
    [DataRow("convnext_tiny", 32)] // at least 32²: its 2×2 stride-2 convolutions need a pixel left at 1/32
    [DataRow("regnet_y_400mf", Size)]
    [DataRow("regnet_x_400mf", Size)]
    public void EveryFamily_FitsFromImageFiles_AndScoresThroughOnnxRuntime(string architecture, int imageSize)
    {
        // One epoch on 32 PNG files shows that each network trains and exports; learning is tested on resnet20 and
        // mobilenet_v2 (MobileNetTests).
        var ml = new MLContext(seed: 1);
        string folder = DataTestSupport.NewFolder(TestContext);
        IDataView data = ModelTestSupport.WriteTextures(ml, folder, 32, seed: 4, "image");
        ITransformer model = ml.Transforms.LoadImages("Image", folder, "Path")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.Transforms.ImageClassifier(new ImageClassifierOptions
            {
                Architecture = architecture, ImageWidth = imageSize, ImageHeight = imageSize, Epochs = 1, BatchSize = 16, Seed = 1,
            }))
            .Fit(data);
        float[][] scores = model.Transform(data).GetColumn<float[]>("Score").ToArray();
        Assert.IsTrue(scores.Length == 32 && scores.All(s => s.Length == 4 && s.All(float.IsFinite) && Math.Abs(s.Sum() - 1) <= Numerics.SoftmaxSumError(4)),
            $"{architecture}: four class probabilities per image");
    }

    [TestMethod]
    public void ResNetClassifier_TrainsEvaluatesSavesAndLoadsLikeAnyMlNetTrainer()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Textures(640, seed: 1));
        IDataView test = ml.Data.LoadFromEnumerable(Textures(160, seed: 2));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 10, BatchSize = 32, Seed = 1, Optimizer = OptimizerKind.Sgd, LearningRate = 0.1,
                Augmentation = new Microsoft.ML.Residual.Data.ImageAugmentation { HorizontalFlipProbability = 0 },
            }));
        ITransformer model = pipeline.Fit(train);

        IDataView scored = model.Transform(test);
        Assert.IsInstanceOfType<KeyDataViewType>(scored.Schema["PredictedLabel"].Type);
        Assert.AreEqual(Classes.Length, ((VectorDataViewType)scored.Schema["Score"].Type).Size);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        scored.Schema["Score"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(Classes, slotNames.DenseValues().Select(n => n.ToString()).ToArray(), "Score slot names are the class names in key order");
        MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(scored);
        TestContext.WriteLine($"macro accuracy {metrics.MacroAccuracy:P1}");
        Assert.IsTrue(metrics.MacroAccuracy >= 0.95, $"macro accuracy {metrics.MacroAccuracy:P1}");

        // Save, then load in a fresh MLContext: identical scores.
        string path = ModelTestSupport.TempFile(TestContext, "-model.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 5);
        ITransformer loaded = fresh.Model.Load(path, out DataViewSchema inputSchema);
        Assert.IsNotNull(inputSchema.GetColumnOrNull("Image"));
        float[][] before = scored.GetColumn<float[]>("Score").ToArray();
        float[][] after = loaded.Transform(fresh.Data.LoadFromEnumerable(Textures(160, seed: 2))).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
        uint[] predicted = scored.GetColumn<uint>("PredictedLabel").ToArray();
        for (int i = 0; i < before.Length; i++)
        {
            Assert.AreEqual(1.0, before[i].Sum(), Numerics.SoftmaxSumError(Classes.Length), $"row {i}: probabilities sum to 1");
            Assert.AreEqual(Array.IndexOf(before[i], before[i].Max()) + 1, (int)predicted[i], $"row {i}: PredictedLabel is the arg-max key");
        }

        // PredictionEngine with MapKeyToValue gives the class name.
        var withNames = loaded.Append(fresh.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(loaded.Transform(fresh.Data.LoadFromEnumerable(Textures(4, seed: 9)))));
        var engine = fresh.Model.CreatePredictionEngine<Row, Prediction>(withNames);
        Row sample = Textures(4, seed: 9)[2];
        Prediction prediction = engine.Predict(sample);
        Assert.AreEqual(Classes.Length, prediction.Score.Length);
        Assert.AreEqual(1.0, prediction.Score.Sum(), Numerics.SoftmaxSumError(Classes.Length));
        Assert.AreEqual(sample.Label, prediction.PredictedLabel);
    }

    [TestMethod]
    [DataRow(32, 32, "Cifar")]
    [DataRow(32, 33, "architecture's")]
    [DataRow(48, 48, "architecture's")]
    public void DefaultRecipe_IsAdamWOneCycleWithoutAugmentationAndTheCifarStemOnlyUpTo32Pixels(int width, int height, string stem)
    {
        var ml = new MLContext(seed: 1);
        string recipe = ml.Transforms.ResNetClassifier(new ImageClassifierOptions { Architecture = "resnet18", ImageWidth = width, ImageHeight = height, Epochs = 15 })
            .DescribeRecipe();
        StringAssert.StartsWith(recipe, "AdamW 0.002 OneCycle, warm-up 0, decay 0.05");
        StringAssert.Contains(recipe, "flip 0, crop padding 0, resized crop , policy None");
        StringAssert.EndsWith(recipe, $"{stem} stem");
        // What the user sets wins over every default.
        string chosen = ml.Transforms.ResNetClassifier(new ImageClassifierOptions
        {
            Architecture = "resnet18", ImageWidth = width, ImageHeight = height, Optimizer = OptimizerKind.Sgd, Stem = StemKind.ImageNet,
            Augmentation = ImageAugmentation.Cifar(), Schedule = LearningRateScheduleKind.Cosine,
        }).DescribeRecipe();
        StringAssert.StartsWith(chosen, "Sgd 0.05 Cosine, warm-up 1, decay 0.0005");
        StringAssert.Contains(chosen, "flip 0.5, crop padding 4");
        StringAssert.EndsWith(chosen, "ImageNet stem");
    }

    [TestMethod]
    public void ImageFilesThroughLoadImages_TrainAndScoreAfterSaveAndLoad()
    {
        var ml = new MLContext(seed: 1);
        string folder = Data.DataTestSupport.NewFolder(TestContext);
        List<Data.PathRow> Write(int count, int seed, string prefix) => Textures(count, seed).Select((row, i) =>
        {
            string file = $"{prefix}{i}.png";
            Data.DataTestSupport.WriteRgbPng(Path.Combine(folder, file), row.Image, Size, Size);
            return new Data.PathRow { Path = file, Label = row.Label };
        }).ToList();
        IDataView trainRows = ml.Data.LoadFromEnumerable(Write(240, seed: 1, "train"));
        IDataView testRows = ml.Data.LoadFromEnumerable(Write(80, seed: 2, "test"));
        var pipeline = ml.Transforms.LoadImages("Image", folder, "Path")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 6, BatchSize = 32, Optimizer = OptimizerKind.Sgd, LearningRate = 0.1, Seed = 1,
                Augmentation = new Microsoft.ML.Residual.Data.ImageAugmentation { HorizontalFlipProbability = 0 },
            }));
        ITransformer model = pipeline.Fit(trainRows);
        IDataView scored = model.Transform(testRows);
        double accuracy = ml.MulticlassClassification.Evaluate(scored).MacroAccuracy;
        TestContext.WriteLine($"macro accuracy {accuracy:P1}");
        // A training outcome, not a rounding bound: six epochs leave the network mid-way (63.7 % measured on this machine),
        // where another CPU's rounding can take the training along another path. Guessing gets 20 of the 80 test images
        // right on average (σ ≈ 3.9); 50 % is 40, over five σ above it, so the threshold still shows learning.
        Assert.IsTrue(accuracy > 0.5, $"macro accuracy {accuracy:P1} (chance: 25 %)");

        string path = ModelTestSupport.TempFile(TestContext, "-images.zip");
        ml.Model.Save(model, trainRows.Schema, path);
        var fresh = new MLContext(seed: 3);
        ITransformer loaded = fresh.Model.Load(path, out _);
        float[][] before = scored.GetColumn<float[]>("Score").ToArray();
        float[][] after = loaded.Transform(testRows).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < before.Length; i++) CollectionAssert.AreEqual(before[i], after[i], $"row {i}");
    }

    [TestMethod]
    public void CrossValidate_RunsTheEstimatorOnEveryFold()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Textures(96, seed: 3));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ResNet(new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16, Seed = 1,
            }));
        var folds = ml.MulticlassClassification.CrossValidate(data, pipeline, numberOfFolds: 2);
        Assert.AreEqual(2, folds.Count);
        Assert.IsTrue(folds.All(f => f.Metrics.LogLoss > 0 && double.IsFinite(f.Metrics.LogLoss)));
    }

    [TestMethod]
    public void TrainersCatalog_SimpleOverload_TrainsAnyRegisteredClassifier()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Textures(32, seed: 4));
        var trainer = ml.MulticlassClassification.Trainers.ImageClassifier(architecture: "resnet20", epochs: 1, imageWidth: Size, imageHeight: Size, batchSize: 16);
        IDataView scored = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Fit(data).Transform(data);
        Assert.AreEqual(Classes.Length, ((VectorDataViewType)scored.Schema["Score"].Type).Size);
        Assert.IsTrue(double.IsFinite(ml.MulticlassClassification.Evaluate(scored).LogLoss));
    }

    [TestMethod]
    public void GpuDeviceWithoutCuda_FallsBackToTheCpuOrSaysWhatToDo()
    {
        if (TorchSharp.torch.cuda.is_available()) Assert.Inconclusive("this machine has CUDA; the test covers the fallback");
        IDataView Data(MLContext ml) => ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Textures(32, seed: 1)))
            .Transform(ml.Data.LoadFromEnumerable(Textures(32, seed: 1)));
        var options = new ImageClassifierOptions { Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16 };

        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => strict.Transforms.ResNetClassifier(options).Fit(Data(strict)));
        StringAssert.Contains(error.Message, "GpuDeviceId");
        StringAssert.Contains(error.Message, "FallbackToCpu");

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var messages = new List<string>();
        lenient.Log += (_, e) => messages.Add(e.Message);
        ITransformer model = lenient.Transforms.ResNetClassifier(options).Fit(Data(lenient));
        Assert.IsTrue(messages.Any(m => m.Contains("training on the CPU")), "the fallback is logged");
        Assert.IsTrue(messages.Any(m => m.Contains("epoch 1/1")), "progress goes to MLContext.Log");
        Assert.AreEqual(32, model.Transform(Data(lenient)).GetColumn<float[]>("Score").Count());
    }

    [TestMethod]
    public void DenseNetClassifier_AndTheDenseNetTrainer_FitAndScoreInAPipeline()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Textures(48, seed: 1));
        var options = new ImageClassifierOptions { Architecture = "densenet_bc_100_12", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 24, Seed = 1 };
        foreach (var estimator in new IEstimator<ITransformer>[] { ml.Transforms.DenseNetClassifier(options), ml.MulticlassClassification.Trainers.DenseNet(options) })
        {
            ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(estimator).Fit(data);
            IDataView scored = model.Transform(data);
            VBuffer<ReadOnlyMemory<char>> slotNames = default;
            scored.Schema["Score"].GetSlotNames(ref slotNames);
            CollectionAssert.AreEqual(Classes, slotNames.DenseValues().Select(n => n.ToString()).ToArray());
            MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(scored);
            Assert.IsTrue(metrics.LogLoss > 0 && double.IsFinite(metrics.LogLoss));
        }

        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.DenseNetClassifier(new ImageClassifierOptions { Architecture = "resnet18" }));
    }

    [TestMethod]
    public void SameSeed_GivesIdenticalModelsOnCpu()
    {
        float[][] Scores()
        {
            var ml = new MLContext(seed: 1);
            IDataView data = ml.Data.LoadFromEnumerable(Textures(48, seed: 1));
            var options = new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 2, BatchSize = 16, Seed = 7,
                Augmentation = Microsoft.ML.Residual.Data.ImageAugmentation.TrivialAugment(), MixupAlpha = 0.2,
            };
            ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data);
            return model.Transform(data).GetColumn<float[]>("Score").ToArray();
        }

        float[][] first = Scores(), second = Scores();
        for (int i = 0; i < first.Length; i++) CollectionAssert.AreEqual(first[i], second[i], $"row {i}");
    }

    [TestMethod]
    public void WorkerCount_DoesNotChangeTheTrainedModel()
    {
        // 300 rows: ML.NET deals them to the reading threads in several blocks; augmentation draws per row.
        float[][] Scores(int workers)
        {
            var ml = new MLContext(seed: 1);
            IDataView data = ml.Data.LoadFromEnumerable(Textures(300, seed: 3));
            var options = new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 32, Seed = 7, CacheInMemory = false,
                Workers = workers, Augmentation = Microsoft.ML.Residual.Data.ImageAugmentation.TrivialAugment(),
            };
            ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data);
            return model.Transform(data).GetColumn<float[]>("Score").Take(20).ToArray();
        }

        float[][] single = Scores(1), parallel = Scores(3);
        for (int i = 0; i < single.Length; i++) CollectionAssert.AreEqual(single[i], parallel[i], $"row {i}");
    }

    [TestMethod]
    public void FindLearningRate_FromTheCatalog_SweepsGeometricRatesOverTheDataAndRepeatsForTheSameSeed()
    {
        Microsoft.ML.Residual.Training.LearningRateFinderResult Find()
        {
            var ml = new MLContext(seed: 1);
            IDataView data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Textures(48, seed: 5)))
                .Transform(ml.Data.LoadFromEnumerable(Textures(48, seed: 5)));
            var options = new ImageClassifierOptions { Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, BatchSize = 16, Seed = 7 };
            return ml.Transforms.FindLearningRate(data, options,
                new Microsoft.ML.Residual.Training.LearningRateFinderOptions { StartLearningRate = 1e-4, EndLearningRate = 1, Steps = 8 });
        }

        var first = Find();
        var second = Find();
        // 48 rows make 3 batches of 16 an epoch: the 8 steps read three epochs, at rates from 1e-4 to 1.
        Assert.IsTrue(first.StoppedEarly ? first.Points.Count is > 0 and < 8 : first.Points.Count == 8, $"{first.Points.Count} points");
        Assert.AreEqual(1e-4, first.Points[0].LearningRate, 1e-15);
        Assert.IsTrue(first.Points.All(p => double.IsFinite(p.Loss) && p.Loss > 0));
        // Seeded data order, augmentation and initial weights: the CPU sweep repeats exactly.
        CollectionAssert.AreEqual(first.Points.Select(p => p.Loss).ToArray(), second.Points.Select(p => p.Loss).ToArray());
    }

    [TestMethod]
    public void BFloat16Training_ReachesTheTrainerAndGivesAFloat32ModelThatScores()
    {
        (double[] Losses, float[][] Scores) Fit(Microsoft.ML.Residual.Training.TrainingPrecision precision)
        {
            var ml = new MLContext(seed: 1);
            IDataView data = ml.Data.LoadFromEnumerable(Textures(48, seed: 5));
            var losses = new List<double>();
            var options = new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 2, BatchSize = 16, Seed = 7, Precision = precision,
                Progress = new Microsoft.ML.Residual.Tests.Training.SynchronousProgress<Microsoft.ML.Residual.Training.EpochReport>(r => losses.Add(r.TrainingLoss)),
            };
            ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data);
            return (losses.ToArray(), model.Transform(data).GetColumn<float[]>("Score").ToArray());
        }

        var full = Fit(Microsoft.ML.Residual.Training.TrainingPrecision.Float32);
        var half = Fit(Microsoft.ML.Residual.Training.TrainingPrecision.BFloat16);
        TestContext.WriteLine($"epoch losses: float32 {string.Join(" ", full.Losses.Select(l => l.ToString("F6")))}; bfloat16 {string.Join(" ", half.Losses.Select(l => l.ToString("F6")))}");
        // Float32 training repeats bit for bit (SameSeed_GivesIdenticalModelsOnCpu), so other scores mean bfloat16 was used.
        Assert.IsTrue(Enumerable.Range(0, full.Scores.Length).Any(i => !full.Scores[i].SequenceEqual(half.Scores[i])), "bfloat16 changes the model");
        // The saved model scores through ONNX Runtime in float32: probabilities that sum to one.
        Assert.IsTrue(half.Scores.All(s => Math.Abs(s.Sum() - 1) < 1e-4), "probabilities");
        // Measured: float32 1.399538 1.398628, bfloat16 1.399504 1.398487 (differences near 1e-4); asked: within 5 %.
        for (int epoch = 0; epoch < full.Losses.Length; epoch++)
            Assert.AreEqual(full.Losses[epoch], half.Losses[epoch], 0.05 * full.Losses[epoch], $"epoch {epoch + 1} loss");
    }

    [TestMethod]
    public void GrayscalePixelVectors_TrainAndScoreWithOneInputChannel()
    {
        var ml = new MLContext(seed: 1);
        var rows = Textures(64, seed: 1).Select(r => new GrayRow
        {
            Label = r.Label,
            Image = Enumerable.Range(0, Size * Size).Select(i => (r.Image[i] + r.Image[Size * Size + i] + r.Image[2 * Size * Size + i]) / 3).ToArray(),
        }).ToList();
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        var options = new ImageClassifierOptions { Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16, Seed = 1 };
        ITransformer model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options)).Fit(data);
        float[][] scores = model.Transform(data).GetColumn<float[]>("Score").ToArray();
        Assert.AreEqual(64, scores.Length);
        Assert.IsTrue(scores.All(s => s.Length == Classes.Length && Math.Abs(s.Sum() - 1) <= Numerics.SoftmaxSumError(Classes.Length)));
    }

    public sealed class GrayRow
    {
        [VectorType(Size * Size)]
        public float[] Image { get; set; } = Array.Empty<float>();

        public string Label { get; set; } = string.Empty;
    }

    [TestMethod]
    public void LabelThatIsNotAKey_IsRejectedSayingToUseMapValueToKey()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Textures(8, seed: 1));
        var estimator = ml.Transforms.ResNetClassifier(labelColumnName: "Label", imageColumnName: "Image", architecture: "resnet20", epochs: 1, imageWidth: Size, imageHeight: Size);
        var error = Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(data));
        StringAssert.Contains(error.Message, "MapValueToKey");
        StringAssert.Contains(error.Message, "Label");
    }

    [TestMethod]
    public void ValidationSetWithoutTheKeyMapping_IsRejectedNamingTheValidationSet()
    {
        var ml = new MLContext(seed: 1);
        IDataView raw = ml.Data.LoadFromEnumerable(Textures(8, seed: 1));
        ITransformer keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw);
        var estimator = ml.Transforms.ResNetClassifier(new ImageClassifierOptions
        {
            Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, ValidationSet = raw,
        });
        var error = Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(keys.Transform(raw)));
        StringAssert.Contains(error.Message, "ValidationSet");
        StringAssert.Contains(error.Message, "MapValueToKey");
    }

    [TestMethod]
    public void MissingImageColumn_IsRejectedNamingTheColumns()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Textures(8, seed: 1)))
            .Transform(ml.Data.LoadFromEnumerable(Textures(8, seed: 1)));
        var estimator = ml.Transforms.ResNetClassifier(new ImageClassifierOptions { ImageColumnName = "Pixels", Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size });
        var error = Assert.ThrowsExactly<ArgumentException>(() => estimator.Fit(data));
        StringAssert.Contains(error.Message, "Pixels");
        StringAssert.Contains(error.Message, "Image");
    }

    [TestMethod]
    public void NonClassifierArchitecture_IsRejected()
    {
        var ml = new MLContext(seed: 1);
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ResNetClassifier(new ImageClassifierOptions { Architecture = "unet" }));
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ResNetClassifier(new ImageClassifierOptions { Architecture = "densenet121" }));
    }
}
