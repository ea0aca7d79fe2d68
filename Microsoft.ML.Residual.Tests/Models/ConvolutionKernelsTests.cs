using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class ConvolutionKernelsTests
{
    // Channels that fill only part of oneDNN's blocks of 8 or 16, with kernels larger than 1×1: the shapes libtorch 2.10 gets
    // wrong on some CPUs (forward when the input channels do, input gradient when the output channels do). After
    // EnsureCorrect every one of them, run by libtorch directly or through Convolve, is float64's within float32 rounding.
    [TestMethod]
    [DataRow(6, 5, 3, 1, 1, false, 8, DisplayName = "6→5, 3×3, padding 1")]
    [DataRow(32, 17, 3, 2, 1, true, 9, DisplayName = "32→17, 3×3 stride 2, with bias")]
    [DataRow(24, 16, 3, 1, 1, false, 6, DisplayName = "24→16, 3×3 (input channels in a partial block)")]
    [DataRow(3, 8, 5, 1, 2, false, 7, DisplayName = "3→8, 5×5, padding 2")]
    [DataRow(12, 12, 7, 2, 3, true, 16, DisplayName = "12→12, 7×7 stride 2, with bias")]
    [DataRow(40, 2, 3, 1, 1, true, 6, DisplayName = "40→2, 3×3 (a segmentation head)")]
    public void PartialChannelBlocks_ComputeWithinFloat32Rounding(int inChannels, int outChannels, int kernel, int stride,
        int padding, bool bias, int size)
    {
        ConvolutionKernels.EnsureCorrect();
        using var scope = NewDisposeScope();
        manual_seed(13);
        Conv2d convolution = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: padding, bias: bias);
        Tensor input = randn(3, inChannels, size, size);
        ConvolutionReference.AssertMatchesFloat64(convolution, input, "libtorch", run: (c, x) => c.call(x));
        ConvolutionReference.AssertMatchesFloat64(convolution, input, "Convolve");
    }

    [TestMethod]
    public void TheMeasurement_LeavesTheRandomStateAndThreadCountAsTheyWere()
    {
        ConvolutionKernelChoice chosen = ConvolutionKernels.EnsureCorrect();
        int threads = get_num_threads();
        manual_seed(15);
        using Tensor expected = randn(4);
        manual_seed(15);
        bool correct = ConvolutionKernels.AreCorrect();
        using Tensor actual = randn(4);
        Assert.IsTrue(actual.IsEqualTo(expected), "the measurement draws from its own generator");
        Assert.AreEqual(threads, get_num_threads());
        Assert.IsTrue(correct, $"after EnsureCorrect ({chosen}) the measurement finds the convolutions right");
    }
}
