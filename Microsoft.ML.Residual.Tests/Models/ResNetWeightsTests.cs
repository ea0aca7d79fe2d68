using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class ResNetWeightsTests
{
    public TestContext TestContext { get; set; } = null!;

    private string TempFile(string name) => ModelTestSupport.TempFile(TestContext, name);

    [TestMethod]
    public void SaveThenStrictLoad_IntoAFreshNetwork_ReproducesItsOutputs()
    {
        using var scope = NewDisposeScope();
        string path = TempFile("resnet20.safetensors");
        var trained = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 11 });
        trained.train();
        using (no_grad()) trained.call(randn(8, 3, 16, 16)); // move the BatchNorm statistics away from their defaults
        trained.eval();
        StateDict.Save(trained, path);

        var fresh = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 12 });
        var report = StateDict.Load(fresh, path, strict: true);
        fresh.eval();
        Tensor x = randn(2, 3, 16, 16);
        Assert.IsTrue(report.IsExactMatch);
        Assert.IsTrue(fresh.call(x).IsEqualTo(trained.call(x)));
    }

    [TestMethod]
    public void FineTuningLoad_SkippingTheClassifierHead_LoadsTheWholeBackbone()
    {
        using var scope = NewDisposeScope();
        string path = TempFile("resnet18-10.safetensors");
        var pretrained = ResidualModels.Create("resnet18", 10, options: new ResNetOptions { Seed = 1 });
        StateDict.Save(pretrained, path);

        var target = ResidualModels.Create("resnet18", 3, options: new ResNetOptions { Seed = 2 });
        var error = Assert.ThrowsExactly<StateDictMismatchException>(() => StateDict.Load(target, path, strict: true));
        CollectionAssert.AreEquivalent(new[] { "fc.weight", "fc.bias" }, error.Report.ShapeMismatches.Select(m => m.Key).ToArray());

        string head = ((IClassifierModel)target).ClassifierPrefix;
        var report = StateDict.Load(target, path, strict: true, new StateDictLoadOptions { SkipPrefixes = { head } });
        CollectionAssert.AreEquivalent(new[] { "fc.weight", "fc.bias" }, report.SkippedKeys.ToArray());
        pretrained.eval();
        target.eval();
        Tensor x = randn(2, 3, 32, 32);
        Tensor pretrainedFeatures = ((IClassifierModel)pretrained).ForwardFeatures(x);
        Assert.IsTrue(((IClassifierModel)target).ForwardFeatures(x).IsEqualTo(pretrainedFeatures));
        CollectionAssert.AreEqual(new long[] { 2, 3 }, target.call(x).shape);
    }
}
