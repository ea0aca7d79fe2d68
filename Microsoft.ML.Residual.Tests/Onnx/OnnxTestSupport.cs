using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Microsoft.ML.Residual.Tests.Onnx;

internal static class OnnxTestSupport
{
    /// <summary>Gives every BatchNorm random statistics and affine parameters, so eval-mode mistakes show.</summary>
    public static void RandomizeBatchNorm(nn.Module module, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (_, child) in module.named_modules())
        {
            if (child is not BatchNorm norm) continue;
            norm.running_mean!.uniform_(-0.1, 0.1, generator);
            norm.running_var!.uniform_(0.5, 1.5, generator);
            norm.weight!.uniform_(0.5, 1.5, generator);
            norm.bias!.uniform_(-0.1, 0.1, generator);
        }
    }

    /// <summary>
    /// Sets every BatchNorm's running statistics to those of one training-mode pass over <paramref name="batch"/>,
    /// as training would: eval mode then normalises properly even in a 600-block network.
    /// </summary>
    public static void CalibrateBatchNorm(nn.Module<Tensor, Tensor> module, Tensor batch)
    {
        var norms = module.modules().OfType<BatchNorm>().ToList();
        foreach (BatchNorm norm in norms)
        {
            norm.reset_running_stats();
            norm.momentum = null; // cumulative average: after one batch, exactly that batch's statistics
        }

        module.train();
        using (no_grad()) module.call(batch);
        foreach (BatchNorm norm in norms) norm.momentum = 0.1;
        module.eval();
    }

    /// <summary>Runs an ONNX model on float input and returns every output by name.</summary>
    public static Dictionary<string, object> Run(byte[] model, string inputName, Tensor input)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(model, options);
        float[] data = input.contiguous().data<float>().ToArray();
        var feed = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(inputName, new DenseTensor<float>(data, input.shape.Select(d => (int)d).ToArray())) };
        using var results = session.Run(feed);
        var outputs = new Dictionary<string, object>();
        foreach (var result in results)
        {
            outputs[result.Name] = result.ElementType switch
            {
                TensorElementType.Float => ToTorch(result.AsTensor<float>()),
                TensorElementType.Int64 => ToTorch(result.AsTensor<long>()),
                TensorElementType.String => result.AsTensor<string>().ToArray(),
                _ => throw new NotSupportedException(result.ElementType.ToString()),
            };
        }

        return outputs;
    }

    private static Tensor ToTorch(Microsoft.ML.OnnxRuntime.Tensors.Tensor<float> value) => tensor(value.ToArray(), value.Dimensions.ToArray().Select(d => (long)d).ToArray());

    private static Tensor ToTorch(Microsoft.ML.OnnxRuntime.Tensors.Tensor<long> value) => tensor(value.ToArray(), value.Dimensions.ToArray().Select(d => (long)d).ToArray());

    /// <summary>
    /// The exact network input for <paramref name="pixels"/> under <paramref name="normalization"/> ((x·s − m)/σ in float64),
    /// and how far the exported graph's float32 version can be from it, as a share of the inputs' largest magnitude: the
    /// graph computes x·(s/σ) + (−m/σ), so two constants, a product and a sum round, ≤ 4u of |x·s/σ| + |m/σ| per value. A
    /// network that keeps the scale carries that share to its output, so it adds to <see cref="Numerics.ForwardError"/>.
    /// </summary>
    public static (Tensor Exact, double RelativeError) Normalized(Tensor pixels, PixelNormalization normalization)
    {
        long channels = pixels.shape[1];
        Tensor mean = tensor(normalization.Mean.ToArray(), ScalarType.Float64).reshape(1, channels, 1, 1);
        Tensor std = tensor(normalization.Std.ToArray(), ScalarType.Float64).reshape(1, channels, 1, 1);
        Tensor scaled = pixels.to_type(ScalarType.Float64).Times(normalization.InputScale);
        Tensor exact = (scaled - mean) / std;
        double error = 4 * Numerics.Float32Roundoff * Numerics.LargestMagnitude(scaled.div(std).abs().Plus(mean.div(std).abs())) / Numerics.LargestMagnitude(exact);
        return (exact, error);
    }

    /// <summary>
    /// How far a float32 evaluation of <paramref name="model"/> can be from its exact output <paramref name="exact"/> (the model
    /// in float64): <see cref="Numerics.ForwardError"/> of the largest |output| where shortcuts or BatchNorm keep the scale
    /// from layer to layer; a network <paramref name="withoutShortcuts"/> (plain, classic U-Net) can stretch its early layers'
    /// rounding, so there the largest of that and <see cref="Numerics.SimulatedRoundingError"/> at this input.
    /// </summary>
    public static double RoundingBound(nn.Module<Tensor, Tensor> model, Tensor input, Tensor exact, bool withoutShortcuts = false)
    {
        double bound = Numerics.ForwardError(model) * Numerics.LargestMagnitude(exact);
        return withoutShortcuts ? Math.Max(bound, Numerics.SimulatedRoundingError(model, input)) : bound;
    }

    /// <summary>
    /// Asserts that ONNX Runtime's float32 <paramref name="onnxOutput"/> is <paramref name="model"/>'s output for
    /// <paramref name="input"/> within rounding: it is a float32 evaluation of the same function, so it lies within
    /// <see cref="RoundingBound"/> of the model run in float64, whichever kernels ONNX Runtime picked (its fusions
    /// included: BatchNorm folded into a convolution rounds each weight once more, one of a layer's elementwise roundings).
    /// A wrong graph (a missing layer, a wrong pad or statistic) is off by a fraction of the output, orders of magnitude more.
    /// Returns the difference as a share of the bound.
    /// </summary>
    public static double AssertMatchesFloat64(nn.Module<Tensor, Tensor> model, Tensor input, Tensor onnxOutput, string what, bool withoutShortcuts = false)
    {
        using var scope = NewDisposeScope();
        Tensor exact = Numerics.InFloat64(model, input);
        double bound = RoundingBound(model, input, exact, withoutShortcuts);
        Numerics.AssertWithin(onnxOutput, exact, bound, $"{what}: ONNX Runtime against our model in float64");
        return Numerics.LargestDifference(onnxOutput, exact) / bound;
    }

    /// <summary>
    /// Exports with batch 1 and runs ONNX Runtime on <paramref name="inputShape"/> (dynamic batch), on a fixed random input;
    /// returns ONNX Runtime's largest difference from our model in float64 and its rounding bound
    /// (<see cref="RoundingBound"/>). With <paramref name="calibrate"/>, BatchNorm's statistics are those of another random
    /// batch of <paramref name="calibrationImages"/> images (default: as many as compared).
    /// </summary>
    public static (double Difference, double Bound) Compare(nn.Module<Tensor, Tensor> model, long[] inputShape, long seed = 1,
        bool calibrate = false, bool withoutShortcuts = false, int? calibrationImages = null)
    {
        using var scope = NewDisposeScope();
        if (calibrate)
        {
            long[] shape = new long[] { calibrationImages ?? inputShape[0] }.Concat(inputShape.Skip(1)).ToArray();
            CalibrateBatchNorm(model, randn(shape, generator: new Generator((ulong)seed + 1)));
        }
        else RandomizeBatchNorm(model, seed);
        model.eval();
        byte[] bytes = OnnxExporter.ExportToBytes(model, new[] { 1L }.Concat(inputShape.Skip(1)).ToArray());
        Tensor input = randn(inputShape, generator: new Generator((ulong)seed));
        var outputs = Run(bytes, "input", input);
        Assert.AreEqual(1, outputs.Count, "by default the graph has one output");
        var actual = (Tensor)outputs["output"];
        Tensor exact = Numerics.InFloat64(model, input);
        CollectionAssert.AreEqual(exact.shape, actual.shape);
        return (Numerics.LargestDifference(actual, exact), RoundingBound(model, input, exact, withoutShortcuts));
    }
}
