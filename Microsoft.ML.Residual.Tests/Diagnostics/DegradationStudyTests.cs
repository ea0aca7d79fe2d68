using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Plots;
using Microsoft.ML.Residual.Tests.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Diagnostics;

[TestClass]
public sealed class DegradationStudyTests : TempFolderTest
{
    // 64 tiny images whose class is the sign of their mean: learnable in a few steps.
    private static (Tensor Images, Tensor Labels) Data()
    {
        using var generator = new Generator(11UL);
        Tensor images = torch.randn(new long[] { 64, 3, 8, 8 }, generator: generator);
        Tensor labels = images.mean(new long[] { 1, 2, 3 }).gt(torch.tensor(0f)).to_type(ScalarType.Int64);
        return (images, labels);
    }

    private static DegradationStudyOptions Tiny() => new() { Depths = new[] { 20 }, Epochs = 2, BatchSize = 32, ProbeImages = 16, LearningRate = 0.05 };

    [TestMethod]
    public void Run_TrainsEveryVariantWithItsLossCurveAndGradientFlowPerEpoch_AndSavesItsTablesAndPlots()
    {
        var (images, labels) = Data();
        DegradationStudyResult result = DegradationStudy.Run(images, labels, Tiny());

        CollectionAssert.AreEqual(new[] { "plain-20", "residual-20", "pre-act-20", "scaled-20" }, result.Runs.Select(r => r.Label).ToArray());
        foreach (DegradationRun run in result.Runs)
        {
            Assert.AreEqual(2, run.History.Count, run.Label);
            Assert.AreEqual(3, run.GradientFlow.Count, $"{run.Label}: at initialisation and after each epoch");
            Assert.IsTrue(run.History.All(r => double.IsFinite(r.TrainingLoss)), run.Label);
            Assert.AreEqual(9, run.GradientFlow[0].BlockInputGradientNorms.Length, run.Label);
        }

        Assert.IsTrue(result.Runs[0].GradientFlow.All(f => f.IdentityGradientNorms.All(n => n == 0)), "the plain network has no identity path");
        Assert.IsFalse(result.Runs[0].GradientFlow[0].BlockInputGradientNorms.SequenceEqual(result.Runs[0].GradientFlow[2].BlockInputGradientNorms), "training changes the gradient flow");

        var written = result.Save(Root);
        CollectionAssert.AreEqual(new[] { "degradation.csv", "degradation.json" }, written.Select(Path.GetFileName).ToArray(), "the core writes the tables only");
        Assert.AreEqual(1 + 4 * 3, File.ReadAllLines(Path.Combine(Root, "degradation.csv")).Length);
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "degradation.json"))))
        {
            var networks = json.RootElement.GetProperty("networks").EnumerateArray().ToArray();
            CollectionAssert.AreEqual(result.Runs.Select(r => r.Label).ToArray(), networks.Select(n => n.GetProperty("label").GetString()).ToArray());
            var plain = networks[0];
            Assert.AreEqual(result.Runs[0].History[1].TrainingLoss, plain.GetProperty("epochs")[1].GetProperty("trainingLoss").GetDouble());
            var flow = plain.GetProperty("gradientFlow").EnumerateArray().ToArray();
            CollectionAssert.AreEqual(new[] { 0, 1, 2 }, flow.Select(f => f.GetProperty("epoch").GetInt32()).ToArray());
            CollectionAssert.AreEqual(result.Runs[0].GradientFlow[2].BlockInputGradientNorms,
                flow[2].GetProperty("blocks").EnumerateArray().Select(b => b.GetProperty("inputGradientNorm").GetDouble()).ToArray());
        }

        // The plots, from Microsoft.ML.Residual.Plots: one colour per network, the gradient norms on a logarithmic axis.
        var plots = result.SavePlots(Root);
        CollectionAssert.AreEqual(new[] { "training-loss.png", "gradient-flow-initial.png", "gradient-flow-final.png" }, plots.Select(Path.GetFileName).ToArray());
        var charts = DegradationStudyPlots.Charts(result);
        CollectionAssert.AreEqual(new[] { false, true, true }, charts.Select(c => c.LogarithmicY).ToArray());
        for (int i = 0; i < plots.Count; i++)
        {
            var png = Plots.PngImage.Read(plots[i]);
            Assert.AreEqual((800, 500), (png.Width, png.Height), plots[i]);
            CollectionAssert.AreEqual(result.Runs.Select(r => r.Label).ToArray(), charts[i].Series.Select(s => s.Name).ToArray(), plots[i]);
            for (int run = 0; run < result.Runs.Count; run++)
                Assert.IsGreaterThan(50, png.Count(ChartStyle.Palette[run].ToSKColor(), 0, 0, png.Width, png.Height), $"{plots[i]}: {result.Runs[run].Label}");
        }

        CollectionAssert.AreEquivalent(new[] { "degradation.csv", "degradation.json", "training-loss.png", "gradient-flow-initial.png", "gradient-flow-final.png" },
            Directory.GetFiles(Root).Select(Path.GetFileName).ToArray(), "no temporary file is left");
        Assert.ThrowsExactly<DirectoryNotFoundException>(() => result.SavePlots(Path.Combine(Root, "missing")));
        Assert.ThrowsExactly<ArgumentNullException>(() => DegradationStudyPlots.SavePlots(null!, Root));
    }

    [TestMethod]
    public void Run_IsReproducibleOnCpu()
    {
        var (images, labels) = Data();
        var options = Tiny();
        options.Variants = new[] { NetworkVariant.Plain };
        DegradationStudyResult first = DegradationStudy.Run(images, labels, options);
        DegradationStudyResult second = DegradationStudy.Run(images, labels, options);

        CollectionAssert.AreEqual(first.Runs[0].History.Select(r => r.TrainingLoss).ToArray(), second.Runs[0].History.Select(r => r.TrainingLoss).ToArray());
        CollectionAssert.AreEqual(first.Runs[0].GradientFlow[^1].BlockInputGradientNorms, second.Runs[0].GradientFlow[^1].BlockInputGradientNorms);
    }

    [TestMethod]
    public void Run_WithADepthThatHasNoCifarNetwork_SaysWhichDepthsExist()
    {
        var (images, labels) = Data();
        var options = Tiny();
        options.Depths = new[] { 50 };
        var error = Assert.ThrowsExactly<ArgumentException>(() => DegradationStudy.Run(images, labels, options));
        StringAssert.Contains(error.Message, "20, 32, 44, 56 or 110");
    }
}
