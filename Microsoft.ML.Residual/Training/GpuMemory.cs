using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Reads how much memory is in use on an NVIDIA GPU, through the CUDA runtime library that libtorch has loaded
    /// (<c>cudaMemGetInfo</c>; TorchSharp 0.107 exposes none of libtorch's CUDA memory statistics). Not yet run on a GPU.
    /// </summary>
    /// <remarks>
    /// The figure is the device's: this process's CUDA context and libtorch's caching allocator, plus any other process on
    /// that GPU, as <c>nvidia-smi</c> shows it. The caching allocator keeps the blocks it has reserved for reuse and TorchSharp
    /// never empties its cache, so in a training process the figure is the peak of what training has reserved so far.
    /// </remarks>
    internal static class GpuMemory
    {
        private static readonly object Gate = new();
        private static Runtime? loaded;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int MemGetInfo(out UIntPtr free, out UIntPtr total);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int GetDevice(out int device);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int SetDevice(int device);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int GetLastError();

        private sealed record Runtime(MemGetInfo MemGetInfo, GetDevice GetDevice, SetDevice SetDevice, GetLastError GetLastError);

        /// <summary>
        /// Megabytes (10^6 bytes) in use on <paramref name="device"/>; null for a device that is not CUDA, when no CUDA runtime
        /// is loaded in the process, or when it answers with an error.
        /// </summary>
        public static double? InUseMegabytes(Device device)
        {
            if (device.type != DeviceType.CUDA) return null;
            lock (Gate)
            {
                if ((loaded ??= Find()) is not { } runtime) return null;
                // cudaMemGetInfo answers for the calling thread's current device: switch to the training device and back.
                if (runtime.GetDevice(out int current) != 0) return Failed(runtime);
                int wanted = device.index >= 0 ? device.index : current;
                if (wanted != current && runtime.SetDevice(wanted) != 0) return Failed(runtime);
                try
                {
                    if (runtime.MemGetInfo(out UIntPtr free, out UIntPtr total) != 0) return Failed(runtime);
                    return (total.ToUInt64() - free.ToUInt64()) / 1e6;
                }
                finally
                {
                    if (wanted != current) runtime.SetDevice(current);
                }
            }
        }

        // A failed call leaves its error in the runtime, where libtorch's next check of its own work would find it: clear it.
        private static double? Failed(Runtime runtime)
        {
            runtime.GetLastError();
            return null;
        }

        // The CUDA runtime libtorch loaded, found among the process's modules by its file name (libcudart.so.12, a wheel's or
        // libtorch's hashed libcudart-1a2b3c4d.so.12, cudart64_12.dll): loading that same file only takes another reference, so
        // this never brings a second runtime into the process. Null until libtorch has loaded one.
        private static Runtime? Find()
        {
            string? path = LoadedModulePath(name =>
                name.StartsWith("libcudart", StringComparison.Ordinal) || name.StartsWith("cudart64", StringComparison.OrdinalIgnoreCase));
            if (path is null || !NativeLibrary.TryLoad(path, out IntPtr library)) return null;
            if (NativeLibrary.TryGetExport(library, "cudaMemGetInfo", out IntPtr memGetInfo)
                && NativeLibrary.TryGetExport(library, "cudaGetDevice", out IntPtr getDevice)
                && NativeLibrary.TryGetExport(library, "cudaSetDevice", out IntPtr setDevice)
                && NativeLibrary.TryGetExport(library, "cudaGetLastError", out IntPtr getLastError))
            {
                return new Runtime(
                    Marshal.GetDelegateForFunctionPointer<MemGetInfo>(memGetInfo),
                    Marshal.GetDelegateForFunctionPointer<GetDevice>(getDevice),
                    Marshal.GetDelegateForFunctionPointer<SetDevice>(setDevice),
                    Marshal.GetDelegateForFunctionPointer<GetLastError>(getLastError));
            }

            NativeLibrary.Free(library);
            return null;
        }

        /// <summary>The full path of the first native module loaded in this process whose file name <paramref name="isWanted"/> accepts, or null.</summary>
        internal static string? LoadedModulePath(Func<string, bool> isWanted)
        {
            try
            {
                using Process process = Process.GetCurrentProcess();
                return process.Modules.Cast<ProcessModule>().Select(m => m.FileName).FirstOrDefault(file => isWanted(Path.GetFileName(file ?? string.Empty)));
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException or System.ComponentModel.Win32Exception)
            {
                return null;
            }
        }
    }
}
