using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests;

internal static class TensorTestExtensions
{
    /// <summary>Same shape and bit-identical values.</summary>
    public static bool IsEqualTo(this Tensor actual, Tensor expected)
    {
        if (!System.Linq.Enumerable.SequenceEqual(actual.shape, expected.shape)) return false;
        using Tensor same = actual.eq(expected);
        using Tensor all = same.all();
        return all.item<bool>();
    }
}
