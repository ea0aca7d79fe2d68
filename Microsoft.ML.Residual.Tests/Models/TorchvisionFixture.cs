using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>
/// The C# side of Fixtures/make_torchvision_fixtures.py: the same deterministic weights, and the
/// torchvision key lists and logits that script recorded.
/// </summary>
internal static class TorchvisionFixture
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision");

    public static (long Params10, long Params1000, List<(string Key, long[] Shape)> Keys) ReadKeys(string arch)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, arch + ".keys.json")));
        JsonElement root = document.RootElement;
        var keys = root.GetProperty("keys").EnumerateArray()
            .Select(e => (e[0].GetString()!, e[1].EnumerateArray().Select(d => d.GetInt64()).ToArray()))
            .ToList();
        return (root.GetProperty("params").GetInt64(), root.GetProperty("params_1000").GetInt64(), keys);
    }

    /// <summary>Fills every parameter and BatchNorm statistic of <paramref name="module"/> with the fixture formula.</summary>
    public static void Fill(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, tensor) in module.state_dict())
        {
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
            using Tensor values = torch.tensor(Values(name, tensor.shape), tensor.shape, ScalarType.Float32);
            tensor.copy_(values);
        }
    }

    internal static float[] Values(string name, long[] shape)
    {
        const ulong mask = 0xFFFFFFFF;
        ulong h = 0;
        for (int k = 0; k < name.Length; k++) h += (ulong)(k + 1) * name[k];
        h = h * 1000003 & mask;
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var result = new float[count];
        double bound = shape.Length > 1 ? Math.Sqrt(6.0 / (count / shape[0])) : 0;
        for (long i = 0; i < count; i++)
        {
            ulong x = ((ulong)i + h) & mask;
            for (int round = 0; round < 2; round++) x = ((x ^ (x >> 16)) * 0x45d9f3b) & mask;
            x ^= x >> 16;
            double u = x / 4294967296.0;
            double v;
            if (name.EndsWith("running_var", StringComparison.Ordinal)) v = 0.5 + u;
            else if (name.EndsWith("running_mean", StringComparison.Ordinal) || (shape.Length == 1 && name.EndsWith("bias", StringComparison.Ordinal))) v = 0.2 * u - 0.1;
            else if (shape.Length == 1 && name.EndsWith("weight", StringComparison.Ordinal)) v = 0.5 + u;
            else v = bound * (2 * u - 1);
            result[i] = (float)v;
        }

        return result;
    }
}
