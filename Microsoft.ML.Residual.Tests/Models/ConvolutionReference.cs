using System;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>
/// Checks a float32 convolution, its input, weight and bias gradients against the same computation in float64, each element
/// within the rounding error float32 can make: every one of them is a sum of at most K products, and summed in float32 in any
/// order (with or without fused multiply-adds) it is off by at most γ_K · Σ|terms|, γ_K = K·u / (1 − K·u), u = 2⁻²⁴ (Higham,
/// "Accuracy and Stability of Numerical Algorithms", §3.1). Σ|terms| is the same computation in float64 on |x|, |w|, |b|, |g|.
/// A correct implementation cannot fail this on any CPU; a wrong one (a wrong tap, a lost term, a NaN) does.
/// </summary>
internal static class ConvolutionReference
{
    /// <summary>
    /// Runs <paramref name="run"/> (default: <see cref="ConvolutionPaths.Convolve(Conv2d, Tensor)"/>) forwards and backwards
    /// with a fixed non-uniform upstream gradient and asserts its output and gradients are float64's within rounding.
    /// </summary>
    public static void AssertMatchesFloat64(Conv2d convolution, Tensor input, string what,
        Func<Conv2d, Tensor, Tensor>? run = null, long[]? expectedShape = null)
    {
        using var scope = NewDisposeScope();
        run ??= (c, x) => c.Convolve(x);
        convolution.zero_grad();
        Tensor leaf = input.detach().requires_grad_(true);
        Tensor output = run(convolution, leaf);
        if (expectedShape != null) CollectionAssert.AreEqual(expectedShape, output.shape, $"{what}: output shape");
        Tensor upstream = TensorTestExtensions.FloatRange(output.numel()).reshape(output.shape).cos();
        output.backward(new[] { upstream });

        Tensor weight = convolution.weight!.detach();
        Tensor? bias = convolution.bias?.detach();
        var exact = Float64(convolution, input, weight, bias, upstream);
        var magnitude = Float64(convolution, input.abs(), weight.abs(), bias?.abs(), upstream.abs());

        // K: output = in/groups · kh · kw products (+ bias); input gradient ≤ out · kh · kw; weight and bias gradients = N · oh · ow.
        long kernelArea = weight.shape[2] * weight.shape[3];
        long terms = new[] { weight.shape[1] * kernelArea + 1, weight.shape[0] * kernelArea, output.shape[0] * output.shape[2] * output.shape[3] }.Max();
        double unitRoundoff = Math.Pow(2, -24);
        double gamma = terms * unitRoundoff / (1 - terms * unitRoundoff);

        AssertWithin(output.detach(), exact.Output, magnitude.Output, gamma, $"{what}: output");
        AssertWithin(leaf.grad!, exact.InputGrad, magnitude.InputGrad, gamma, $"{what}: input gradient");
        AssertWithin(convolution.weight!.grad!, exact.WeightGrad, magnitude.WeightGrad, gamma, $"{what}: weight gradient");
        if (bias is not null) AssertWithin(convolution.bias!.grad!, exact.BiasGrad!, magnitude.BiasGrad!, gamma, $"{what}: bias gradient");
    }

    private static (Tensor Output, Tensor InputGrad, Tensor WeightGrad, Tensor? BiasGrad) Float64(Conv2d convolution, Tensor input,
        Tensor weight, Tensor? bias, Tensor upstream)
    {
        Tensor x = input.detach().to(ScalarType.Float64).requires_grad_(true);
        Tensor w = weight.to(ScalarType.Float64).requires_grad_(true);
        Tensor? b = bias?.to(ScalarType.Float64).requires_grad_(true);
        Tensor y = nn.functional.conv2d(x, w, b, convolution.stride, convolution.padding, convolution.dilation, convolution.groups);
        y.backward(new[] { upstream.to(ScalarType.Float64) });
        return (y.detach(), x.grad!, w.grad!, b?.grad);
    }

    private static void AssertWithin(Tensor actual, Tensor exact, Tensor magnitude, double gamma, string what)
    {
        CollectionAssert.AreEqual(exact.shape, actual.shape, what);
        Tensor error = (actual.to(ScalarType.Float64) - exact).abs();
        Tensor excess = error - magnitude.Times(gamma);
        double worst = excess.max().item<double>();
        Assert.IsTrue(double.IsFinite(worst) && worst <= 0,
            $"{what}: off by up to {error.max().item<double>():E3}, beyond float32 rounding (γ_K = {gamma:E2} times Σ|terms|) by {worst:E3}");
    }
}
