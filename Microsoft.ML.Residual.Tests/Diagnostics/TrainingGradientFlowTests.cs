using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Diagnostics;

[TestClass]
public sealed class TrainingGradientFlowTests
{
    private static ImageClassifierOptions Options() => new()
    {
        Architecture = "resnet20", ImageWidth = 16, ImageHeight = 16, Epochs = 2, BatchSize = 32, Seed = 1, Optimizer = OptimizerKind.Sgd, LearningRate = 0.05,
        Augmentation = new Microsoft.ML.Residual.Data.ImageAugmentation(),
    };

    private static float[] Scores(MLContext ml, ITransformer model, IDataView data) =>
        ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), reuseRowObject: false).SelectMany(r => r.Score).ToArray();

    [TestMethod]
    public void GradientFlowProgress_ReportsAtInitialisationAndAfterEveryEpoch_WithoutChangingTheTraining()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(96, seed: 1));
        var reports = new List<GradientFlowEpoch>();
        var measured = Options();
        measured.GradientFlowProgress = new SynchronousProgress<GradientFlowEpoch>(reports.Add);

        ITransformer withFlow = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(measured)).Fit(train);
        ITransformer without = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.ResNetClassifier(Options())).Fit(train);

        CollectionAssert.AreEqual(new[] { 0, 1, 2 }, reports.Select(r => r.Epoch).ToArray());
        Assert.IsTrue(reports.All(r => r.Report.BlockInputGradientNorms.Length == 9 && r.Report.BlockInputGradientNorms.All(n => n > 0 && double.IsFinite(n))));
        Assert.IsFalse(reports[0].Report.BlockInputGradientNorms.SequenceEqual(reports[2].Report.BlockInputGradientNorms), "training changed the flow");
        CollectionAssert.AreEqual(Scores(ml, without, train), Scores(ml, withFlow, train), "measuring leaves the weights, statistics and data order alone");
    }

    [TestMethod]
    public void SegmenterGradientFlowProgress_MeasuresEveryUNetLevel_WithoutChangingTheTraining()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(Microsoft.ML.Residual.Tests.Segmentation.UNetSegmenterTests.Shapes(32, seed: 1));
        SegmenterOptions Segmenter() => new()
        {
            Architecture = "unet", ModelOptions = new Microsoft.ML.Residual.Models.UNetOptions { Depth = 2, BaseWidth = 4, DecoderResidual = true },
            NumClasses = 3, ImageWidth = 32, ImageHeight = 32, Epochs = 2, BatchSize = 16, Seed = 1,
        };
        var reports = new List<GradientFlowEpoch>();
        var measured = Segmenter();
        measured.GradientFlowProgress = new SynchronousProgress<GradientFlowEpoch>(reports.Add);

        ITransformer withFlow = ml.Transforms.UNetSegmenter(measured).Fit(train);
        ITransformer without = ml.Transforms.UNetSegmenter(Segmenter()).Fit(train);

        CollectionAssert.AreEqual(new[] { 0, 1, 2 }, reports.Select(r => r.Epoch).ToArray());
        CollectionAssert.AreEqual(new[] { "encoder.0", "encoder.1", "encoder.2", "decoder.0", "decoder.1" }, reports[0].Report.BlockNames);
        Assert.IsTrue(reports.All(r => r.Report.BlockInputGradientNorms.All(n => n > 0 && double.IsFinite(n))));
        Assert.IsTrue(reports.All(r => r.Report.IdentityGradientNorms.Skip(3).All(n => n > 0)), "the residual decoder levels report their shortcut");
        Assert.IsFalse(reports[0].Report.BlockInputGradientNorms.SequenceEqual(reports[2].Report.BlockInputGradientNorms), "training changed the flow");
        float[] Masks(ITransformer model) => model.Transform(train).GetColumn<float[]>("MaskScore").SelectMany(v => v).ToArray();
        CollectionAssert.AreEqual(Masks(without), Masks(withFlow), "measuring leaves the weights, statistics and data order alone");
    }

    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = System.Array.Empty<float>();
    }
}
