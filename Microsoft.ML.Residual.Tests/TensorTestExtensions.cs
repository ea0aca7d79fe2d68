using System.Globalization;
using System.Linq;
using Microsoft.ML.Residual.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests;

internal static class TensorTestExtensions
{
    /// <summary>Same shape and bit-identical values.</summary>
    public static bool IsEqualTo(this Tensor actual, Tensor expected)
    {
        if (!actual.shape.SequenceEqual(expected.shape)) return false;
        using Tensor same = actual.eq(expected);
        using Tensor all = same.all();
        return all.item<bool>();
    }

    /// <summary>
    /// 0, 1, …, n − 1 as float32: what <c>torch.arange(n, dtype: float32)</c> gives, without the temporary Scalars that
    /// arange hands libtorch (docs/reliability.md, "Scalars and the garbage collector").
    /// </summary>
    public static Tensor FloatRange(long n) => ScalarSafe.Range(n, ScalarType.Float32);

    /// <summary>0, 1, …, n − 1 as int64: what <c>torch.arange(n, dtype: int64)</c> gives, without arange's temporary Scalars.</summary>
    public static Tensor LongRange(long n) => ScalarSafe.Range(n);

    /// <summary>A tensor's shape and values, for assertion messages (TorchSharp's <c>str()</c> makes temporary Scalars).</summary>
    public static string Describe(this Tensor values)
    {
        using Tensor flat = values.detach().to_type(ScalarType.Float64).contiguous().reshape(-1);
        string numbers = string.Join(", ", flat.data<double>().ToArray().Select(v => v.ToString("G7", CultureInfo.InvariantCulture)));
        return $"[{string.Join(", ", values.shape)}] {{{numbers}}}";
    }
}
