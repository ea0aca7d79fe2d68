using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Build;

[TestClass]
public sealed class NativeLoadTests
{
    [TestMethod]
    public void TorchSharpNativeLibraryLoadsAndRunsATensorOp()
    {
        using var a = ones(2, 3);
        using var b = tensor(new[] { 2f, 2f, 2f, 2f, 2f, 2f }, new long[] { 3, 2 });
        using var product = a.matmul(b);
        CollectionAssert.AreEqual(new[] { 6f, 6f, 6f, 6f }, product.data<float>().ToArray());
    }
}
