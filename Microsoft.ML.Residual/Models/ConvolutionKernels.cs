using System;
using System.Runtime.InteropServices;
using System.Threading;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Makes sure libtorch's CPU convolutions compute the right thing on this machine. On an AMD EPYC (Zen 5, AVX-512) virtual
    /// machine, libtorch 2.10's oneDNN convolutions come out wrong (errors as large as the values, sometimes NaN) whenever a
    /// float32 convolution's channels fill only part of oneDNN's blocks of 8 or 16 channels: the output when the input
    /// channels do (e.g. 24 or 12), the input gradient when the output channels do (e.g. 5 or 17). With
    /// <c>DNNL_MAX_CPU_ISA</c> set to AVX2 or AVX it is the same with blocks of 8. The weight gradient is right, and so is
    /// libtorch's own convolution (im2col and a matrix product), used when oneDNN is switched off. The first call measures
    /// the fault on two tiny convolutions; where it shows, oneDNN is switched off for the whole process (libtorch's
    /// <c>torch.backends.mkldnn.enabled = False</c>) and the measurement repeated.
    /// </summary>
    internal static class ConvolutionKernels
    {
        private static readonly Lazy<ConvolutionKernelChoice> choice = new(Choose, LazyThreadSafetyMode.ExecutionAndPublication);

        /// <summary>
        /// Measures libtorch's convolutions once per process and switches oneDNN off if they are wrong. Returns what was
        /// chosen. Throws <see cref="NotSupportedException"/> where no choice gives right convolutions.
        /// </summary>
        public static ConvolutionKernelChoice EnsureCorrect() => choice.Value;

        private static ConvolutionKernelChoice Choose()
        {
            if (AreCorrect()) return ConvolutionKernelChoice.OneDnn;
            if (!OneDnnSwitch.TryTurnOff())
            {
                throw new NotSupportedException(
                    "libtorch computes wrong convolutions on this CPU (its oneDNN kernels; see docs/reliability.md, \"CPUs whose "
                    + "convolutions come out wrong\"), and oneDNN could not be switched off in this libtorch build. Training here "
                    + "would silently go wrong: train on another machine, and report the CPU model to the ResidualML project.");
            }

            if (!AreCorrect())
            {
                throw new NotSupportedException(
                    "libtorch computes wrong convolutions on this CPU, with and without its oneDNN kernels (see docs/reliability.md, "
                    + "\"CPUs whose convolutions come out wrong\"). Training here would silently go wrong: train on another machine, "
                    + "and report the CPU model to the ResidualML project.");
            }

            return ConvolutionKernelChoice.LibTorchWithoutOneDnn;
        }

        /// <summary>
        /// Whether libtorch's float32 convolutions, forward and input gradient, are within float32 rounding of float64 on
        /// four small 3×3 convolutions whose channels fill partial blocks (24→16 and 12→8 for the output, 6→5 and 32→17 for the
        /// input gradient). Runs on one thread (the fault shows on every call there), draws its inputs from its own generator
        /// (the global random state, and with it any training, is untouched) and restores the thread count.
        /// </summary>
        internal static bool AreCorrect()
        {
            int threads = torch.get_num_threads();
            torch.set_num_threads(1);
            try
            {
                using var scope = torch.NewDisposeScope();
                using var gradients = torch.enable_grad();
                using var generator = new Generator(20_261_204UL);
                foreach ((long inChannels, long outChannels, long size) in new[] { (24L, 16L, 6L), (12L, 8L, 6L), (6L, 5L, 5L), (32L, 17L, 8L) })
                {
                    Tensor input = torch.randn(new[] { 2, inChannels, size, size }, generator: generator);
                    Tensor weight = torch.randn(new[] { outChannels, inChannels, 3, 3 }, generator: generator);
                    Tensor upstream = torch.randn(new[] { 2, outChannels, size, size }, generator: generator);
                    if (!IsWithinRounding(input, weight, upstream)) return false;
                }

                return true;
            }
            finally
            {
                torch.set_num_threads(threads);
            }
        }

        // Each output element is a sum of K = in × 3 × 3 products x·w, each input-gradient element one of K = out × 3 × 3
        // products w·g. Summed in float32 in any order (with or without fused multiply-adds) such a sum is off by at most
        // γ_K · Σ|terms|, γ_K = K·u / (1 − K·u), u = 2⁻²⁴ (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1);
        // Σ|terms| is the float64 computation on |x|, |w|, |g|. A correct kernel never exceeds the bound; the fault does by
        // orders of magnitude.
        private static bool IsWithinRounding(Tensor input, Tensor weight, Tensor upstream)
        {
            long[] ones = { 1, 1 }; // stride 1, padding 1, dilation 1
            Tensor leaf = input.detach().requires_grad_(true);
            Tensor output = nn.functional.conv2d(leaf, weight, null, ones, ones, ones);
            Tensor inputGradient = torch.autograd.grad(new[] { output }, new[] { leaf }, new[] { upstream })[0];

            var exact = Float64(input, weight, upstream);
            var magnitude = Float64(input.abs(), weight.abs(), upstream.abs());
            return IsWithin(output, exact.Output, magnitude.Output, weight.shape[1] * 9)
                && IsWithin(inputGradient, exact.InputGradient, magnitude.InputGradient, weight.shape[0] * 9);
        }

        private static bool IsWithin(Tensor actual, Tensor exact, Tensor magnitude, long terms)
        {
            double unitRoundoff = Math.Pow(2, -24);
            double gamma = terms * unitRoundoff / (1 - terms * unitRoundoff);
            Tensor excess = (actual.detach().to(ScalarType.Float64) - exact).abs() - magnitude.Times(gamma);
            double worst = excess.max().item<double>();
            return double.IsFinite(worst) && worst <= 0;
        }

        private static (Tensor Output, Tensor InputGradient) Float64(Tensor input, Tensor weight, Tensor upstream)
        {
            long[] ones = { 1, 1 };
            Tensor leaf = input.detach().to(ScalarType.Float64).requires_grad_(true);
            Tensor output = nn.functional.conv2d(leaf, weight.to(ScalarType.Float64), null, ones, ones, ones);
            Tensor inputGradient = torch.autograd.grad(new[] { output }, new[] { leaf }, new[] { upstream.to(ScalarType.Float64) })[0];
            return (output.detach(), inputGradient);
        }

        // libtorch's global switch for oneDNN (at::Context::setUserEnabledMkldnn), which TorchSharp does not expose. The
        // library is already loaded by TorchSharp; its exported C++ names differ between the Itanium (Linux, macOS) and MSVC
        // (Windows) manglings.
        private static class OneDnnSwitch
        {
            private static readonly string[] Libraries = { "libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll" };

            public static unsafe bool TryTurnOff()
            {
                foreach (string library in Libraries)
                {
                    if (!NativeLibrary.TryLoad(library, typeof(ConvolutionKernels).Assembly, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out IntPtr handle)
                        && !NativeLibrary.TryLoad(library, out handle))
                    {
                        continue;
                    }

                    if (TryExport(handle, "_ZN2at13globalContextEv", "?globalContext@at@@YAAEAVContext@1@XZ", out IntPtr globalContext)
                        && TryExport(handle, "_ZN2at7Context20setUserEnabledMkldnnEb", "?setUserEnabledMkldnn@Context@at@@QEAAX_N@Z", out IntPtr setEnabled)
                        && TryExport(handle, "_ZNK2at7Context17userEnabledMkldnnEv", "?userEnabledMkldnn@Context@at@@QEBA_NXZ", out IntPtr isEnabled))
                    {
                        IntPtr context = ((delegate* unmanaged<IntPtr>)globalContext)();
                        ((delegate* unmanaged<IntPtr, byte, void>)setEnabled)(context, 0);
                        return ((delegate* unmanaged<IntPtr, byte>)isEnabled)(context) == 0;
                    }
                }

                return false;
            }

            private static bool TryExport(IntPtr library, string itaniumName, string msvcName, out IntPtr address)
                => NativeLibrary.TryGetExport(library, itaniumName, out address) || NativeLibrary.TryGetExport(library, msvcName, out address);
        }
    }

    /// <summary>Which convolution kernels <see cref="ConvolutionKernels.EnsureCorrect"/> left libtorch using.</summary>
    internal enum ConvolutionKernelChoice
    {
        /// <summary>oneDNN's (libtorch's default): they are right on this machine.</summary>
        OneDnn,

        /// <summary>libtorch's own, with oneDNN switched off: oneDNN's are wrong on this machine.</summary>
        LibTorchWithoutOneDnn,
    }
}
