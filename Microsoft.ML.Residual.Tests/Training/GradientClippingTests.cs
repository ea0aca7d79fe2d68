using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class GradientClippingTests
{
    // Two parameters with gradients drawn from a fixed generator, scaled so that their total norm is `norm`, and one without.
    private static Parameter[] Parameters(double norm)
    {
        using var generator = new Generator(7);
        var withGradient = new[] { new Parameter(zeros(3, 4)), new Parameter(zeros(5)) };
        Tensor[] gradients = { randn(new long[] { 3, 4 }, generator: generator), randn(new long[] { 5 }, generator: generator) };
        double total = System.Math.Sqrt(gradients.Sum(g => SquaredSum(g)));
        // The gradient of Σ p·g with respect to p is g, exactly.
        Tensor objective = zeros(1);
        for (int i = 0; i < gradients.Length; i++)
            objective = objective.Plus(withGradient[i].mul(gradients[i].to_type(ScalarType.Float64).Times(norm / total).to_type(ScalarType.Float32)).sum());
        objective.backward();

        return withGradient.Append(new Parameter(zeros(2))).ToArray();
    }

    private static double SquaredSum(Tensor values)
    {
        using Tensor wide = values.to_type(ScalarType.Float64);
        using Tensor squares = wide.mul(wide);
        return squares.sum().item<double>();
    }

    private static Tensor[] Gradients(Parameter[] parameters) => parameters.Where(p => p.grad is not null).Select(p => p.grad!.clone()).ToArray();

    [TestMethod]
    public void AboveTheLimit_ScalesLikeTorchsClipGradNorm()
    {
        Parameter[] ours = Parameters(10), torchs = Parameters(10);
        GradientClipping.ClipByTotalNorm(ours, 2.5);
        nn.utils.clip_grad_norm_(torchs, 2.5);
        // Both compute the same float32 norms and factor; libtorch may sum a norm's squares in another order: each norm of
        // n ≤ 17 values is then within NormError(n) of the other, the factor within 2·NormError(17) + 2u, and a product adds u.
        double relative = 2 * Numerics.NormError(17) + 3 * Numerics.Float32Roundoff;
        foreach (var (mine, theirs) in Gradients(ours).Zip(Gradients(torchs)))
            Numerics.AssertWithin(mine, theirs, theirs.abs().Times(relative), "clipped gradient");
        double clippedNorm = System.Math.Sqrt(Gradients(ours).Sum(g => SquaredSum(g)));
        Assert.AreEqual(2.5, clippedNorm, 2.5 * (relative + Numerics.NormError(17)), "the total norm is the limit");
        Assert.IsNull(ours[2].grad, "a parameter without a gradient keeps none");
    }

    [TestMethod]
    public void BelowTheLimit_LeavesTheGradientsBitForBit()
    {
        Parameter[] parameters = Parameters(1.5);
        Tensor[] before = Gradients(parameters);
        GradientClipping.ClipByTotalNorm(parameters, 2.0);
        foreach (var (after, original) in Gradients(parameters).Zip(before))
            Assert.IsTrue(after.IsEqualTo(original), "multiplied by exactly 1");
    }

    [TestMethod]
    public void NoGradients_IsANoOp()
    {
        GradientClipping.ClipByTotalNorm(new[] { new Parameter(zeros(2)) }, 1.0);
    }
}
