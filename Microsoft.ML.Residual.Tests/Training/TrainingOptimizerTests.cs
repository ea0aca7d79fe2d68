using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class TrainingOptimizerTests
{
    [TestMethod]
    [DataRow(OptimizerKind.Sgd)]
    [DataRow(OptimizerKind.AdamW)]
    public void Groups_DecayOnlyMultiDimensionalWeightsAndGiveTheBackboneItsFactor(OptimizerKind kind)
    {
        var model = ResidualModels.Create("resnet20", 10);
        using var optimizer = TrainingOptimizer.Create(model, new TrainingOptions { Optimizer = kind, LearningRate = 0.1 }, headPrefix: "fc.", backboneLearningRateFactor: 0.1);
        var all = model.named_parameters().Select(p => p.name).ToHashSet();
        CollectionAssert.AreEquivalent(all.ToList(), optimizer.Groups.SelectMany(g => g.Parameters.Select(p => p.Name)).ToList(), "every parameter in exactly one group");
        foreach (ParameterGroup group in optimizer.Groups)
        {
            Assert.IsTrue(group.Parameters.All(p => (p.Parameter.dim() > 1) == group.Decay), group.Name);
            Assert.IsTrue(group.Parameters.All(p => p.Name.StartsWith("fc.") == (group.LearningRateFactor == 1.0)), group.Name);
        }

        optimizer.SetLearningRate(0.5);
        CollectionAssert.AreEqual(optimizer.Groups.Select(g => 0.5 * g.LearningRateFactor).ToArray(), optimizer.LearningRates.ToArray());
    }

    [TestMethod]
    public void DecayNormsAndBiases_PutsEveryParameterInADecayGroup()
    {
        var model = ResidualModels.Create("resnet20", 10);
        using var optimizer = TrainingOptimizer.Create(model, new TrainingOptions { DecayNormsAndBiases = true });
        Assert.AreEqual(1, optimizer.Groups.Count);
        Assert.IsTrue(optimizer.Groups[0].Decay);
    }
}
