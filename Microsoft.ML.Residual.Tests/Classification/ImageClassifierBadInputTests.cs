using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Classification;

/// <summary>Bad input to the classifier estimator: a clear exception naming the column, row or file; never a crash.</summary>
[TestClass]
public sealed class ImageClassifierBadInputTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    private static ImageClassifierOptions Options() => new()
    {
        Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = 1, BatchSize = 16, Seed = 1,
    };

    private static ITransformer Fit(MLContext ml, IEnumerable<ImageClassifierEstimatorTests.Row> rows, ImageClassifierOptions? options = null)
    {
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        return ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(options ?? Options())).Fit(data);
    }

    [TestMethod]
    public void OneClassOnly_IsRejectedNamingTheLabelColumn()
    {
        var ml = new MLContext(seed: 1);
        var rows = ImageClassifierEstimatorTests.Textures(16, seed: 1).Select(r => new ImageClassifierEstimatorTests.Row { Image = r.Image, Label = "only" });
        var error = Assert.ThrowsExactly<ArgumentException>(() => Fit(ml, rows));
        StringAssert.Contains(error.Message, "'Label' has 1 class");
        StringAssert.Contains(error.Message, "at least two");
    }

    [TestMethod]
    public void EmptyData_IsRejectedAsEmpty()
    {
        var ml = new MLContext(seed: 1);
        var error = Assert.ThrowsExactly<ArgumentException>(() => Fit(ml, new List<ImageClassifierEstimatorTests.Row>()));
        StringAssert.Contains(error.Message, "empty");
    }

    [TestMethod]
    public void NaNPixel_StopsTrainingNamingTheColumnRowAndPixel()
    {
        var ml = new MLContext(seed: 1);
        var rows = ImageClassifierEstimatorTests.Textures(24, seed: 1);
        rows[7].Image[3 * Size + 5] = float.NaN; // channel 0, y 3, x 5
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Fit(ml, rows));
        StringAssert.Contains(error.Message, "Image column 'Image', row 7");
        StringAssert.Contains(error.Message, "channel 0, y 3, x 5");
        StringAssert.Contains(error.Message, "NaN");
    }

    [TestMethod]
    public void PixelVectorOfAnotherSize_IsRejectedSayingWhichSizeWasExpected()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        options.ImageWidth = options.ImageHeight = 20;
        var error = Assert.ThrowsExactly<ArgumentException>(() => Fit(ml, ImageClassifierEstimatorTests.Textures(8, seed: 1), options));
        StringAssert.Contains(error.Message, "'Image'");
        StringAssert.Contains(error.Message, "768");
        StringAssert.Contains(error.Message, "20×20");
    }

    [TestMethod]
    public void DivergingLearningRate_StopsWithTheEpochAndALowerRateToTry()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        // SGD at 1e30: weights of that size overflow BatchNorm's variance (float32), so the loss is not finite. (AdamW's steps are
        // bounded by the rate, and 1e12 gives finite, useless weights: the loss stays finite and nothing is detected.)
        options.Optimizer = Microsoft.ML.Residual.Training.OptimizerKind.Sgd;
        options.LearningRate = 1e30;
        options.WarmupEpochs = 0;
        var error = Assert.ThrowsExactly<Microsoft.ML.Residual.Training.TrainingDivergedException>(() => Fit(ml, ImageClassifierEstimatorTests.Textures(48, seed: 1), options));
        StringAssert.Contains(error.Message, "epoch 1");
        StringAssert.Contains(error.Message, "lower LearningRate, e.g. 1E+29");
    }

    [TestMethod]
    public void UnreadableImageFile_StopsTrainingNamingTheRow()
    {
        var error = FitImageFilesWithOneBroken(brokenRow: 5, breakRow: (folder, file) =>
        {
            File.WriteAllText(Path.Combine(folder, file), "this is not an image");
            return file;
        });
        StringAssert.Contains(error.Message, "row 5");
        StringAssert.Contains(error.Message, "readable image");
    }

    [TestMethod]
    public void EmptyImagePath_StopsTrainingNamingTheImageColumnAndRow()
    {
        var error = FitImageFilesWithOneBroken(brokenRow: 7, breakRow: (_, _) => "");
        StringAssert.Contains(error.Message, "Image column 'Image'");
        StringAssert.Contains(error.Message, "row 7");
        StringAssert.Contains(error.Message, "no image");
    }

    /// <summary>
    /// Fits the classifier on 12 PNG files loaded with <c>LoadImages</c>, one row of which <paramref name="breakRow"/> spoils
    /// (given the folder and the row's file name, it returns the path that row gets); returns the error that stops training.
    /// </summary>
    private InvalidOperationException FitImageFilesWithOneBroken(int brokenRow, Func<string, string, string> breakRow)
    {
        var ml = new MLContext(seed: 1);
        string folder = Data.DataTestSupport.NewFolder(TestContext);
        var rows = ImageClassifierEstimatorTests.Textures(12, seed: 1).Select((row, i) =>
        {
            string file = $"image{i}.png";
            if (i == brokenRow) return new Data.PathRow { Path = breakRow(folder, file), Label = row.Label };
            Data.DataTestSupport.WriteRgbPng(Path.Combine(folder, file), row.Image, Size, Size);
            return new Data.PathRow { Path = file, Label = row.Label };
        }).ToList();
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.LoadImages("Image", folder, "Path")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.Transforms.ResNetClassifier(Options()));
        return Assert.ThrowsExactly<InvalidOperationException>(() => pipeline.Fit(data));
    }
}
