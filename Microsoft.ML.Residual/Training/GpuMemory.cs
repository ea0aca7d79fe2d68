using System;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Reads how much memory is in use on an NVIDIA GPU, through the CUDA runtime library that libtorch has loaded
    /// (<c>cudaMemGetInfo</c>; TorchSharp 0.107 exposes none of libtorch's CUDA memory statistics).
    /// </summary>
    /// <remarks>
    /// The figure is the device's: this process's CUDA context and libtorch's caching allocator, plus any other process on
    /// that GPU, as <c>nvidia-smi</c> shows it. The caching allocator keeps the blocks it has reserved for reuse and TorchSharp
    /// never empties its cache, so in a training process the figure is the peak of what training has reserved so far.
    /// </remarks>
    internal static class GpuMemory
    {
        // The sonames of the CUDA runtime of each major version libtorch is built with: once libtorch has loaded its own copy,
        // loading by soname finds that one.
        private static readonly string[] RuntimeNames =
        {
            "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "cudart64_13.dll", "cudart64_12.dll", "cudart64_110.dll",
        };

        private static readonly Lazy<Runtime?> Loaded = new(Load);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int MemGetInfo(out UIntPtr free, out UIntPtr total);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int GetDevice(out int device);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int SetDevice(int device);

        private sealed record Runtime(MemGetInfo MemGetInfo, GetDevice GetDevice, SetDevice SetDevice);

        private static readonly object Gate = new();

        /// <summary>
        /// Megabytes (10^6 bytes) in use on <paramref name="device"/>; null for a device that is not CUDA or when the CUDA
        /// runtime cannot be found or answers with an error.
        /// </summary>
        public static double? InUseMegabytes(Device device)
        {
            if (device.type != DeviceType.CUDA || Loaded.Value is not { } runtime) return null;
            lock (Gate)
            {
                // cudaMemGetInfo answers for the calling thread's current device: switch to the training device and back.
                if (runtime.GetDevice(out int current) != 0) return null;
                int wanted = Math.Max(device.index, 0);
                if (wanted != current && runtime.SetDevice(wanted) != 0) return null;
                try
                {
                    if (runtime.MemGetInfo(out UIntPtr free, out UIntPtr total) != 0) return null;
                    return (total.ToUInt64() - free.ToUInt64()) / 1e6;
                }
                finally
                {
                    if (wanted != current) runtime.SetDevice(current);
                }
            }
        }

        private static Runtime? Load()
        {
            foreach (string name in RuntimeNames)
            {
                if (!NativeLibrary.TryLoad(name, out IntPtr library)) continue;
                if (NativeLibrary.TryGetExport(library, "cudaMemGetInfo", out IntPtr memGetInfo)
                    && NativeLibrary.TryGetExport(library, "cudaGetDevice", out IntPtr getDevice)
                    && NativeLibrary.TryGetExport(library, "cudaSetDevice", out IntPtr setDevice))
                {
                    return new Runtime(
                        Marshal.GetDelegateForFunctionPointer<MemGetInfo>(memGetInfo),
                        Marshal.GetDelegateForFunctionPointer<GetDevice>(getDevice),
                        Marshal.GetDelegateForFunctionPointer<SetDevice>(setDevice));
                }
            }

            return null;
        }
    }
}
