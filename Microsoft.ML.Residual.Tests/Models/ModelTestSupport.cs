using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>Helpers the model tests share.</summary>
internal static class ModelTestSupport
{
    /// <summary>Copies every parameter and buffer of <paramref name="from"/> into the same key of <paramref name="to"/>.</summary>
    public static void CopyWeights(nn.Module from, nn.Module to)
    {
        using var noGrad = no_grad();
        var target = to.state_dict();
        foreach (var (key, value) in from.state_dict()) target[key].copy_(value);
    }

    /// <summary>
    /// A fresh path ending in <paramref name="suffix"/> in this test run's scratch folder, which is deleted when the run
    /// ends (<see cref="TestRunFiles"/>). The test context is kept in the signature for the callers; the files no longer go
    /// to its run directory, which was the build output folder and kept every model of every run.
    /// </summary>
    public static string TempFile(TestContext context, string suffix) => Path.Combine(TestRunFiles.Folder, Guid.NewGuid().ToString("N") + suffix);

    /// <summary>
    /// Runs SGD training steps of <paramref name="model"/> on one batch (the library's optimiser, as training uses it),
    /// each in its own dispose scope, and asserts that the number of live tensors on this thread does not grow after a
    /// short warm-up.
    /// </summary>
    public static void AssertTrainingStepsDoNotLeak(nn.Module<Tensor, Tensor> model, Tensor input, Tensor target, int steps = 30)
    {
        using var optimizer = TrainingOptimizer.Create(model, new TrainingOptions { Optimizer = OptimizerKind.Sgd, LearningRate = 0.01, Momentum = 0.9, WeightDecay = 0 });
        model.train();
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            nn.functional.cross_entropy(model.call(input), target).backward();
            optimizer.Step();
        }

        for (int i = 0; i < 3; i++) Step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < steps; i++) Step();
        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount,
            $"live tensors grew over {steps} training steps of {model.GetType().Name}");
    }

    /// <summary>
    /// Asserts that every learned tensor of <paramref name="expected"/> (not under <paramref name="skipPrefix"/>, not a
    /// BatchNorm running statistic, which training updates) is in <paramref name="actual"/> under
    /// <paramref name="actualPrefix"/> + its key, with the same values.
    /// </summary>
    public static void AssertLearnedWeightsKept(
        IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual, string because, string skipPrefix = "fc.", string actualPrefix = "")
    {
        foreach (var (key, value) in expected)
        {
            if (key.StartsWith(skipPrefix, StringComparison.Ordinal) || IsRunningStatistic(key)) continue;
            Assert.IsTrue(actual[actualPrefix + key].allclose(value, rtol: 1e-5, atol: 1e-6), $"{actualPrefix}{key}: {because}");
        }
    }

    /// <summary>BatchNorm's running mean, variance and batch counter.</summary>
    public static bool IsRunningStatistic(string key) =>
        key.EndsWith("running_mean", StringComparison.Ordinal) || key.EndsWith("running_var", StringComparison.Ordinal) || key.EndsWith("num_batches_tracked", StringComparison.Ordinal);
}
