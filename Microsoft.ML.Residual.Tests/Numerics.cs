using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests;

/// <summary>
/// The rounding bounds of the suite's numeric comparisons, in one place: each is float32's unit roundoff times a magnitude
/// the test measures (an output's largest value, a sum's Σ|terms|) times a factor for the size of the computation, so
/// that it holds whichever kernels libtorch picks on whichever CPU (N. J. Higham, Accuracy and Stability of Numerical
/// Algorithms, 2nd ed., ch. 3). Never a number chosen because it passes.
/// </summary>
internal static class Numerics
{
    /// <summary>u = 2⁻²⁴ ≈ 6e-8: float32's unit roundoff, the largest relative error of one rounding.</summary>
    public const double Float32Roundoff = 1.0 / (1 << 24);

    /// <summary>u = 2⁻⁵³ ≈ 1.1e-16: float64's unit roundoff.</summary>
    public const double Float64Roundoff = 1.0 / (1L << 53);

    /// <summary>
    /// γₙ = n·u / (1 − n·u): the worst-case relative error of n roundings in sequence (Higham, lemma 3.1). A float32 sum of
    /// n products, in any order, is within γₙ·Σ|terms| of the exact sum (Higham, eq. 3.5).
    /// </summary>
    public static double Gamma(long n, double u = Float32Roundoff) => n * u / (1 - n * u);

    /// <summary>
    /// The bound of a value computed in float64 by <paramref name="operations"/> roundings (each operation, cos and exp
    /// included, within one ulp) of numbers no larger than <paramref name="magnitude"/>: γₙ·magnitude.
    /// </summary>
    public static double Float64Error(int operations, double magnitude) => Gamma(operations, Float64Roundoff) * Math.Abs(magnitude);

    /// <summary>
    /// The realistic error of a float32 sum of <paramref name="terms"/> products, relative to Σ|terms|: √K·u, Higham's rule
    /// of thumb (section 2.8) for roundings that do not all go the same way; <see cref="Gamma"/> is the worst case.
    /// </summary>
    public static double SumError(long terms) => Math.Sqrt(terms) * Float32Roundoff;

    /// <summary>
    /// The error of a float32 forward pass, relative to its output's largest magnitude: each of the L weighted layers adds
    /// ≲ √K·u of the activations' scale (K: the largest sum of products of any layer), and the elementwise work up to the
    /// next layer (BatchNorm's subtract, multiply and shift, a shortcut's addition, a pooling average) at most
    /// <see cref="ElementwiseRoundings"/> more roundings of u; BatchNorm and shortcuts keep the scale from layer to layer, so
    /// the errors add up to L·(√K + 5)·u. L counts every weighted layer, at least the longest path. Holds for networks with
    /// shortcuts or dense connections; deep plain networks amplify it (see <see cref="SimulatedRoundingError"/>).
    /// </summary>
    public static double ForwardError(nn.Module module)
    {
        var (depth, largestSum) = WeightedLayers(module);
        return depth * (SumError(largestSum) + ElementwiseRoundings * Float32Roundoff);
    }

    /// <summary>
    /// The error of a float32 gradient with respect to <paramref name="module"/>'s input (or of a Jacobian–vector product),
    /// relative to its largest magnitude: the forward pass and the backward pass each go through the L weighted layers, each
    /// adding ≲ (√K + 5)·u of the scale as in <see cref="ForwardError"/>, where K now also counts the sums the backward pass
    /// makes (a convolution's input gradient sums out/groups·kh·kw products, a linear layer's out); in all 2·L·(√K + 5)·u.
    /// </summary>
    public static double GradientError(nn.Module module)
    {
        int depth = 0;
        long largest = 0;
        foreach (var (_, layer) in module.named_modules())
        {
            long terms = Math.Max(Terms(layer), BackwardTerms(layer));
            if (terms == 0) continue;
            depth++;
            largest = Math.Max(largest, terms);
        }

        return 2 * depth * (SumError(largest) + ElementwiseRoundings * Float32Roundoff);
    }

    // The products one value of a weighted layer's input gradient sums; 0 for other modules.
    private static long BackwardTerms(nn.Module layer) => layer switch
    {
        Conv2d conv => conv.weight!.shape[0] / conv.groups * conv.weight!.shape[2] * conv.weight!.shape[3],
        ConvTranspose2d transposed => transposed.weight!.shape[1] * transposed.weight!.shape[2] * transposed.weight!.shape[3],
        Linear linear => linear.weight!.shape[0],
        _ => 0,
    };

    /// <summary>Roundings of the elementwise operations between two weighted layers (see <see cref="ForwardError"/>).</summary>
    public const int ElementwiseRoundings = 5;

    /// <summary>
    /// How many weighted layers (convolutions, transposed convolutions, linear layers) <paramref name="module"/> has, and
    /// the most products any of them sums for one output value.
    /// </summary>
    public static (int Depth, long LargestSum) WeightedLayers(nn.Module module)
    {
        int depth = 0;
        long largest = 0;
        foreach (var (_, layer) in module.named_modules())
        {
            long terms = Terms(layer);
            if (terms == 0) continue;
            depth++;
            largest = Math.Max(largest, terms);
        }

        return (depth, largest);
    }

    /// <summary>
    /// What a network makes of its layers' rounding, amplification included: in float64, every value a weighted layer
    /// outputs is moved by (√K + 5)·u of the layer's scale (its outputs' root mean square), up or down at random, the
    /// rounding <see cref="ForwardError"/> allows each layer; the largest change of the network's output, over
    /// <paramref name="draws"/> such draws (fixed seeds), is returned. Where errors add up along the depth this is about
    /// ForwardError × the output's magnitude; a deep plain network (the degradation problem) stretches early
    /// perturbations, and this measures by how much. One draw can land on directions the network stretches less (for plain110
    /// at 32², eight draws gave 0.30 to 0.55 of the output's magnitude); the largest of several does not.
    /// </summary>
    public static double SimulatedRoundingError(nn.Module<Tensor, Tensor> module, Tensor input, int draws = 8)
    {
        module.to(ScalarType.Float64);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Tensor x = input.detach().to_type(ScalarType.Float64);
            Tensor exact = module.call(x);
            double largest = 0;
            for (int draw = 1; draw <= draws; draw++)
            {
                using var drawScope = NewDisposeScope();
                using var generator = new Generator((ulong)draw);
                var removers = new List<Action>();
                try
                {
                    foreach (var (_, layer) in module.named_modules())
                    {
                        long terms = Terms(layer);
                        if (terms == 0) continue;
                        double size = SumError(terms) + ElementwiseRoundings * Float32Roundoff;
                        removers.Add(((nn.Module<Tensor, Tensor>)layer).register_forward_hook((_, _, output) =>
                        {
                            Tensor direction = rand(output.shape, dtype: output.dtype, generator: generator).Plus(-0.5).sign(); // ±1
                            double scale = output.mul(output).mean().sqrt().item<double>();
                            return output.PlusScaled(direction, size * scale);
                        }).remove);
                    }

                    largest = Math.Max(largest, LargestDifference(module.call(x), exact));
                }
                finally
                {
                    foreach (Action remove in removers) remove();
                }
            }

            return largest;
        }
        finally
        {
            module.to(ScalarType.Float32);
        }
    }

    // The products one output value of a weighted layer sums; 0 for other modules.
    private static long Terms(nn.Module layer) => layer switch
    {
        Conv2d conv => conv.weight!.shape.Skip(1).Aggregate(1L, (a, b) => a * b), // in/groups × kh × kw
        ConvTranspose2d transposed => transposed.weight!.shape[0] * transposed.weight!.shape[2] * transposed.weight!.shape[3],
        Linear linear => linear.weight!.shape[1],
        _ => 0,
    };

    /// <summary>
    /// How far from 1 the float32 probabilities of a <paramref name="classes"/>-way softmax can sum: each pᵢ = exp(zᵢ − m)/S
    /// rounds by (C + 3)·u of itself (the subtraction, exp, the C-term sum S, the division), the rounding of zᵢ − m adds
    /// u·|zᵢ − m|·pᵢ ≤ u/e, and summing C of them adds C·u: in all ≤ γ_{3C+3}.
    /// </summary>
    public static double SoftmaxSumError(int classes) => Gamma(3 * classes + 3);

    /// <summary>
    /// The error of a float32 norm of n values, relative to the norm: the sum of their n squares is a sum of non-negative
    /// terms, off by ≲ √n·u of itself (<see cref="SumError"/>), and the square root halves that.
    /// </summary>
    public static double NormError(long values) => SumError(values) / 2 + Float32Roundoff;

    /// <summary>
    /// Power iteration on JᵀJ is short of σ₁ after k steps by at most ½·tan²θ₀·(σ₂/σ₁)^{4(k−1)} of σ₁ (θ₀: the start's angle to
    /// the top right singular vector; the last estimate reads the vector after k − 1 steps). Asserts that this is below
    /// <paramref name="relativeBound"/> even for a start 10⁻⁵ from orthogonal (tan²θ₀ = 10¹⁰), so that only rounding
    /// separates the estimate from σ₁ of <paramref name="singularValues"/> (descending).
    /// </summary>
    public static void AssertPowerIterationConverges(double[] singularValues, int iterations, double relativeBound)
    {
        double ratio = singularValues[1] / singularValues[0];
        double shortfall = 0.5 * 1e10 * Math.Pow(ratio, 4.0 * (iterations - 1));
        Assert.IsTrue(shortfall < relativeBound, $"σ₂/σ₁ = {ratio:G6}: {iterations} steps leave up to {shortfall:E2} of σ₁, more than the rounding bound {relativeBound:E2}");
    }

    /// <summary>
    /// <paramref name="module"/>'s output for <paramref name="input"/> computed in float64 (the float32 weights and input
    /// convert exactly); the module is float32 again afterwards, bit for bit as before.
    /// </summary>
    public static Tensor InFloat64(nn.Module<Tensor, Tensor> module, Tensor input)
    {
        module.to(ScalarType.Float64);
        try
        {
            using var noGrad = no_grad();
            using Tensor wide = input.to_type(ScalarType.Float64);
            return module.call(wide);
        }
        finally
        {
            module.to(ScalarType.Float32);
        }
    }

    /// <summary>The largest |value|, in float64.</summary>
    public static double LargestMagnitude(Tensor values)
    {
        using var scope = NewDisposeScope();
        return values.detach().to_type(ScalarType.Float64).abs().max().item<double>();
    }

    /// <summary>The largest |actual − expected|, in float64.</summary>
    public static double LargestDifference(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        Tensor a = actual.detach().to_type(ScalarType.Float64), e = expected.detach().to_type(ScalarType.Float64);
        return a.sub(e).abs().max().item<double>();
    }

    /// <summary>
    /// Asserts |actual − expected| ≤ bound element by element, where <paramref name="bound"/> is one number or a tensor
    /// of per-element bounds; the message gives the worst element's share of its bound.
    /// </summary>
    public static void AssertWithin(Tensor actual, Tensor expected, Tensor bound, string what)
    {
        using var scope = NewDisposeScope();
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape");
        Tensor a = actual.detach().to_type(ScalarType.Float64), e = expected.detach().to_type(ScalarType.Float64);
        Tensor b = bound.detach().to_type(ScalarType.Float64);
        Tensor share = a.sub(e).abs().div(b);
        double worst = share.max().item<double>();
        Assert.IsTrue(worst <= 1.0, $"{what}: largest |difference| is {worst:G3} × its rounding bound (largest |difference| {LargestDifference(actual, expected):E2}, bound {b.min().item<double>():E2} to {b.max().item<double>():E2})");
    }

    /// <inheritdoc cref="AssertWithin(Tensor, Tensor, Tensor, string)"/>
    public static void AssertWithin(Tensor actual, Tensor expected, double bound, string what)
    {
        double difference = LargestDifference(actual, expected);
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape");
        Assert.IsTrue(difference <= bound, $"{what}: largest |difference| {difference:E2} is {difference / bound:G3} × its rounding bound {bound:E2}");
    }
}
