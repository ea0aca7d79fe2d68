using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
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

    /// <summary>Largest |actual − expected| divided by max(1, largest |expected|).</summary>
    public static double ScaledMaxError(Tensor actual, Tensor expected)
    {
        double scale = Math.Max(1.0, expected.abs().max().to(ScalarType.Float64).item<double>());
        return (actual - expected).abs().max().to(ScalarType.Float64).item<double>() / scale;
    }
}
