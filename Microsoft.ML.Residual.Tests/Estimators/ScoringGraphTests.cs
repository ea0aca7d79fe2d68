using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Onnx;
using Microsoft.ML.Residual.Weights;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Estimators;

/// <summary>The saved model's scoring graph: BatchNorm folded by default, float16 or INT8 from the options or from a saved model.</summary>
[TestClass]
public sealed class ScoringGraphTests
{
    private const int Size = 16;

    public TestContext TestContext { get; set; } = null!;

    private static ImageClassifierOptions Options(int epochs) => new()
    {
        Architecture = "resnet20", ImageWidth = Size, ImageHeight = Size, Epochs = epochs, BatchSize = 32, Optimizer = OptimizerKind.Sgd, LearningRate = 0.1, Seed = 1,
    };

    private static ModelProto SavedGraph(string modelPath)
    {
        using ZipArchive zip = ZipFile.OpenRead(modelPath);
        return MlNetInternals.OnnxModelEntries(zip).Select(e => ModelProto.Parser.ParseFrom(MlNetInternals.ReadOnnxModel(e, new FileInfo(modelPath).Length)))
            .Single(g => g.MetadataProps.Any(p => p.Key == "architecture"));
    }

    private string Save(MLContext ml, ITransformer model, IDataView data, string name)
    {
        string path = Path.Combine(TestContext.TestRunResultsDirectory ?? Path.GetTempPath(), $"{nameof(ScoringGraphTests)}-{name}-{Guid.NewGuid():N}.zip");
        ml.Model.Save(model, data.Schema, path);
        return path;
    }

    private static string[] Predictions(MLContext ml, ITransformer model, IDataView data)
    {
        IDataView scored = model.Transform(data);
        return scored.GetColumn<uint>("PredictedLabel").Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    [TestMethod]
    public void SavedModel_FoldsBatchNormByDefault_AndKeepsItWhenAsked()
    {
        // Two fits of one seeded recipe on the CPU train the same network; only the saved graph differs.
        (MLContext Ml, IDataView Data, string Path) Fitted(bool fold, string name)
        {
            var context = new MLContext(seed: 1);
            IDataView rows = context.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(32, seed: 1));
            IDataView keyed = context.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
            ImageClassifierOptions options = Options(1);
            options.Scoring.FoldBatchNorm = fold;
            return (context, keyed, Save(context, context.Transforms.ResNetClassifier(options).Fit(keyed), keyed, name));
        }

        var (ml, data, folded) = Fitted(fold: true, "folded");
        string unfolded = Fitted(fold: false, "unfolded").Path;
        try
        {
            Assert.AreEqual(0, SavedGraph(folded).Graph.Node.Count(n => n.OpType == "BatchNormalization"));
            Assert.AreEqual(19, SavedGraph(unfolded).Graph.Node.Count(n => n.OpType == "BatchNormalization"), "resnet20: the stem's and two per block");

            // Both train the same network (seeded, on the CPU); read back, the folded model gives its weights: BatchNorm exactly,
            // the convolutions within two roundings. So ResumeFromModelPath continues from the trained network either way.
            using (TensorDictionary plain = SavedModelWeights.Read(unfolded, "test"))
            using (TensorDictionary unfoldedAgain = SavedModelWeights.Read(folded, "test"))
                OnnxPrecisionTests.AssertUnfolded(plain, unfoldedAgain, float16: false, "the folded model.zip read back");
            CollectionAssert.AreEqual(Predictions(ml, ml.Model.Load(unfolded, out _), data), Predictions(ml, ml.Model.Load(folded, out _), data));
            ImageClassifierOptions resume = Options(1);
            resume.ResumeFromModelPath = folded;
            ml.Transforms.ResNetClassifier(resume).Fit(data);
        }
        finally
        {
            File.Delete(folded);
            File.Delete(unfolded);
        }
    }

    [TestMethod]
    public void ExportPrecisionInt8_CalibratesOnTheTrainingImages_AndTheModelScoresAfterLoading()
    {
        var ml = new MLContext(seed: 1);
        IDataView raw = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(48, seed: 2));
        IDataView data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        ImageClassifierOptions options = Options(1);
        options.Scoring.Precision = OnnxPrecision.Int8;
        options.Scoring.CalibrationRows = 12;
        string path = Save(ml, ml.Transforms.ResNetClassifier(options).Fit(data), data, "int8");
        try
        {
            ModelProto graph = SavedGraph(path);
            Assert.AreEqual(OnnxPrecision.Int8, OnnxModelConverter.PrecisionOf(graph));
            Assert.IsTrue(graph.Graph.Node.Count(n => n.OpType == "QuantizeLinear") >= 19);
            IDataView scored = ml.Model.Load(path, out _).Transform(data);
            float[][] scores = scored.GetColumn<float[]>("Score").ToArray();
            Assert.AreEqual(48, scores.Length);
            foreach (float[] score in scores) Assert.AreEqual(1.0, score.Sum(), Numerics.SoftmaxSumError(score.Length), "softmax in float32 after the INT8 network");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ExportPrecisionAndCalibration_AreCheckedWhenTheEstimatorIsMade()
    {
        var ml = new MLContext(seed: 1);
        ImageClassifierOptions rows = Options(1);
        rows.Scoring.CalibrationRows = 0;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ResNetClassifier(rows)).Message, "ImageClassifierOptions.Scoring.CalibrationRows = 0");
        ImageClassifierOptions percentile = Options(1);
        percentile.Scoring.Calibration = new OnnxCalibration { Percentile = 101 };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ResNetClassifier(percentile)).Message, "ImageClassifierOptions.Scoring.Calibration");
        ImageClassifierOptions precision = Options(1);
        precision.Scoring.Precision = (OnnxPrecision)7;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.ResNetClassifier(precision)).Message, "ImageClassifierOptions.Scoring.Precision = 7");
        var crops = new SegmenterOptions { Architecture = "unet", NumClasses = 2, ImageWidth = Size, ImageHeight = Size, Scoring = { TestTimeAugmentation = TestTimeAugmentation.FlipAndCrops } };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.UNetSegmenter(crops)).Message, "use Flip");
    }

    [TestMethod]
    public void SaveForScoring_WritesSmallerModelsThatPredictLikeTheFloatModel()
    {
        var ml = new MLContext(seed: 1);
        IDataView trainRaw = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(320, seed: 1));
        ITransformer keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(trainRaw);
        IDataView train = keys.Transform(trainRaw), test = keys.Transform(ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(80, seed: 2)));
        string single = Save(ml, ml.Transforms.ResNetClassifier(Options(6)).Fit(train), train, "float32");
        string quantized = single.Replace(".zip", "-int8.zip", StringComparison.Ordinal), half = single.Replace(".zip", "-float16.zip", StringComparison.Ordinal);
        try
        {
            ml.Model.SaveForScoring(single, quantized, new ScoringOptions { Precision = OnnxPrecision.Int8, CalibrationSet = train, CalibrationRows = 64 });
            ml.Model.SaveForScoring(single, half, new ScoringOptions { Precision = OnnxPrecision.Float16 });
            long size = new FileInfo(single).Length;
            Assert.IsTrue(new FileInfo(quantized).Length < size * 0.35, $"INT8 {new FileInfo(quantized).Length} of {size} bytes");
            Assert.IsTrue(new FileInfo(half).Length < size * 0.55, $"float16 {new FileInfo(half).Length} of {size} bytes");

            string[] expected = Predictions(ml, ml.Model.Load(single, out _), test);
            double Agreement(string path) => Predictions(ml, ml.Model.Load(path, out _), test).Zip(expected, (a, b) => a == b ? 1.0 : 0.0).Average();
            double int8 = Agreement(quantized), float16 = Agreement(half);
            TestContext.WriteLine($"predictions as float32's: INT8 {int8:P1}, float16 {float16:P1}");
            // The target: INT8 within 1 point of float32's accuracy on benchmarks; on 80 images, 90 % of the predictions.
            Assert.IsTrue(int8 >= 0.9, $"INT8 agrees on {int8:P1}");
            Assert.IsTrue(float16 >= 0.95, $"float16 agrees on {float16:P1}");

            var again = Assert.ThrowsExactly<ArgumentException>(() => ml.Model.SaveForScoring(half, single + "-twice.zip", new ScoringOptions { Precision = OnnxPrecision.Int8, CalibrationSet = train }));
            StringAssert.Contains(again.Message, "already computes in Float16");
            var same = Assert.ThrowsExactly<ArgumentException>(() => ml.Model.SaveForScoring(single, single, new ScoringOptions { Precision = OnnxPrecision.Float16 }));
            StringAssert.Contains(same.Message, "another file");
            var calibration = Assert.ThrowsExactly<ArgumentException>(() => ml.Model.SaveForScoring(single, quantized, new ScoringOptions { Precision = OnnxPrecision.Int8 }));
            StringAssert.Contains(calibration.Message, "CalibrationSet");

            // Test-time augmentation on a saved model: the mirror image's logits averaged in.
            string mirrored = single.Replace(".zip", "-flip.zip", StringComparison.Ordinal);
            ml.Model.SaveForScoring(single, mirrored, new ScoringOptions { TestTimeAugmentation = TestTimeAugmentation.Flip });
            try
            {
                Assert.AreEqual("Flip", SavedGraph(mirrored).MetadataProps.Single(p => p.Key == "test-time-augmentation").Value);
                Assert.AreEqual(80, Predictions(ml, ml.Model.Load(mirrored, out _), test).Length);
            }
            finally
            {
                File.Delete(mirrored);
            }
        }
        finally
        {
            foreach (string path in new[] { single, quantized, half }) File.Delete(path);
        }
    }
}
