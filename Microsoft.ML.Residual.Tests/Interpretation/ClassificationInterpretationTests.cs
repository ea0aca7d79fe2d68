using System;
using System.Linq;
using Microsoft.ML.Residual.Interpretation;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Interpretation;

/// <summary>Top losses and most confused pairs, counted by hand on a few scored images.</summary>
[TestClass]
public sealed class ClassificationInterpretationTests
{
    /// <summary>A 2×2 map of a gray image with the given scores, explaining the predicted class.</summary>
    internal static ClassActivationMap Map(float[] scores, string? source = null, float[]? heatmap = null, int size = 2, string[]? names = null)
    {
        names ??= new[] { "a", "b", "c" };
        int predicted = Array.IndexOf(scores, scores.Max());
        return new ClassActivationMap(heatmap ?? new float[size * size], size, size, Enumerable.Repeat(128f, 3 * size * size).ToArray(), 3, predicted, names[predicted],
            scores, predicted, names[predicted], source);
    }

    [TestMethod]
    public void TopLosses_AreTheImagesLeastLikelyForTheirTrueClass_LargestFirst()
    {
        var maps = new[] { Map(new[] { 0.7f, 0.2f, 0.1f }), Map(new[] { 0.1f, 0.8f, 0.1f }), Map(new[] { 0.5f, 0.25f, 0.25f }), Map(new[] { 0.2f, 0.2f, 0.6f }) };
        int[] actual = { 0, 0, 1, 2 };
        var losses = ClassificationInterpretation.TopLosses(maps, actual, 3);
        // −ln p(true): 0.357, 2.303, 1.386, 0.511.
        CollectionAssert.AreEqual(new[] { maps[1], maps[2], maps[3] }, losses.Select(l => l.Map).ToArray());
        Assert.AreEqual(-Math.Log(0.1f), losses[0].Loss, 1e-12);
        Assert.AreEqual(0, losses[0].Actual);
        Assert.AreEqual(4, ClassificationInterpretation.TopLosses(maps, actual, 10).Count, "no more than there are");
    }

    [TestMethod]
    public void MostConfused_CountsEachTruePredictedPairOfDifferentClasses_MostFrequentFirst()
    {
        float[] saysA = { 0.8f, 0.1f, 0.1f }, saysB = { 0.1f, 0.8f, 0.1f }, saysC = { 0.1f, 0.1f, 0.8f };
        var maps = new[] { Map(saysB), Map(saysB), Map(saysC), Map(saysA), Map(saysA), Map(saysA), Map(saysC) };
        int[] actual = { 0, 0, 0, 1, 1, 2, 2 };
        var pairs = ClassificationInterpretation.MostConfused(maps, actual);
        // a→b and b→a twice each (a tie, broken by the true class), then a→c and c→a once each; c→c is right.
        CollectionAssert.AreEqual(new[] { new ConfusedPair(0, 1, 2), new ConfusedPair(1, 0, 2), new ConfusedPair(0, 2, 1), new ConfusedPair(2, 0, 1) }, pairs.ToArray());
        CollectionAssert.AreEqual(new[] { new ConfusedPair(0, 1, 2), new ConfusedPair(1, 0, 2) }, ClassificationInterpretation.MostConfused(maps, actual, minimum: 2).ToArray());
    }

    [TestMethod]
    public void MismatchedOrOutOfRangeTrueClasses_AreRefusedNamingActual()
    {
        var maps = new[] { Map(new[] { 0.7f, 0.2f, 0.1f }) };
        Assert.AreEqual("actual", Assert.ThrowsExactly<ArgumentException>(() => ClassificationInterpretation.TopLosses(maps, new[] { 0, 1 }, 1)).ParamName);
        var range = Assert.ThrowsExactly<ArgumentException>(() => ClassificationInterpretation.MostConfused(maps, new[] { 3 }));
        StringAssert.Contains(range.Message, "actual[0] = 3 is not a class of the model (0 to 2)");
    }
}
