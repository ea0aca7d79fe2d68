using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>Helpers the model tests share.</summary>
internal static class ModelTestSupport
{
    /// <summary>
    /// <see cref="ImageClassifierEstimatorTests.Textures"/> written as PNG files <paramref name="prefix"/>0.png, … into
    /// <paramref name="folder"/>, as rows of file name and label.
    /// </summary>
    public static IDataView WriteTextures(MLContext ml, string folder, int count, int seed, string prefix) =>
        ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(count, seed).Select((row, i) =>
        {
            string file = $"{prefix}{i}.png";
            DataTestSupport.WriteRgbPng(Path.Combine(folder, file), row.Image, TextureSize, TextureSize);
            return new PathRow { Path = file, Label = row.Label };
        }).ToList());

    private const int TextureSize = 16;

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
    /// <paramref name="actualPrefix"/> + its key, moved by no more than <paramref name="steps"/> optimiser steps at
    /// <paramref name="rate"/> can move it (<see cref="UpdateBound"/>).
    /// </summary>
    public static void AssertLearnedWeightsKept(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual,
        string because, OptimizerKind optimizer, int steps, double rate, double weightDecay, string skipPrefix = "fc.", string actualPrefix = "")
    {
        foreach (var (key, value) in expected)
        {
            if (key.StartsWith(skipPrefix, StringComparison.Ordinal) || IsRunningStatistic(key)) continue;
            Numerics.AssertWithin(actual[actualPrefix + key], value, UpdateBound(value, optimizer, steps, rate, weightDecay), $"{actualPrefix}{key}: {because}");
        }
    }

    /// <summary>
    /// How far <paramref name="steps"/> steps of the library's optimiser at rates ≤ <paramref name="rate"/> (schedule and
    /// warm-up only lower it) can move weights θ, element by element. SGD (momentum μ = 0.9, gradients clipped to norm 1, so
    /// every entry ≤ 1): the direction g + λθ is ≤ 1 + λ|θ| and the momentum buffer sums ≤ 1/(1 − μ) of them; each step
    /// also rounds θ (u). AdamW (β₁ = 0.9, β₂ = 0.999), whatever the gradients: the decay moves θ by rate·λ|θ|, and by
    /// Cauchy–Schwarz |m̂ₜ|/√v̂ₜ ≤ (1 − β₁)/(1 − β₁ᵗ)·√((1 − β₂ᵗ)/(1 − β₂)·Σ_{k&lt;t}(β₁²/β₂)ᵏ), the largest over t ≤ steps
    /// (ε only shrinks the step); each step rounds θ twice (2u).
    /// </summary>
    public static Tensor UpdateBound(Tensor theta, OptimizerKind optimizer, int steps, double rate, double weightDecay)
    {
        Tensor magnitude = theta.abs().to_type(ScalarType.Float64);
        if (optimizer == OptimizerKind.Sgd)
            return magnitude.Times(steps * (rate * weightDecay / (1 - 0.9) + Numerics.Float32Roundoff)).Plus(steps * rate / (1 - 0.9));
        const double beta1 = 0.9, beta2 = 0.999;
        double largestStep = 0;
        for (int t = 1; t <= steps; t++)
        {
            double sum = 0;
            for (int k = 0; k < t; k++) sum += Math.Pow(beta1 * beta1 / beta2, k);
            largestStep = Math.Max(largestStep, (1 - beta1) / (1 - Math.Pow(beta1, t)) * Math.Sqrt((1 - Math.Pow(beta2, t)) / (1 - beta2) * sum));
        }

        return magnitude.Times(steps * (rate * weightDecay + 2 * Numerics.Float32Roundoff)).Plus(steps * rate * largestStep);
    }

    /// <summary>BatchNorm's running mean, variance and batch counter.</summary>
    public static bool IsRunningStatistic(string key) =>
        key.EndsWith("running_mean", StringComparison.Ordinal) || key.EndsWith("running_var", StringComparison.Ordinal) || key.EndsWith("num_batches_tracked", StringComparison.Ordinal);

    /// <summary>A module that holds another under <c>inner</c> and runs it: the network wrapped in a user's own module.</summary>
    internal sealed class Wrapper : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> inner;

        public Wrapper(nn.Module<Tensor, Tensor> inner) : base(nameof(Wrapper))
        {
            this.inner = inner;
            register_module("inner", inner);
        }

        public override Tensor forward(Tensor input) => inner.call(input);
    }
}
