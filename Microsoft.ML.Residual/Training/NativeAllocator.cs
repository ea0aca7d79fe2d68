using System;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// How training uses the C library's memory allocator (Linux with glibc only; elsewhere nothing changes).
    /// </summary>
    /// <remarks>
    /// libtorch allocates every activation and gradient of a training step with <c>malloc</c> and frees it within the
    /// step. With glibc's default settings, large blocks are mapped from the operating system and unmapped again on every
    /// step, and the top of the heap is handed back whenever enough of it is free, so each step pays page faults to zero
    /// fresh pages. While training runs, this library therefore asks glibc (<c>mallopt</c>) to keep freed memory inside the
    /// process for reuse; when the last concurrent training run ends, it returns the free memory to the operating system
    /// (<c>malloc_trim</c>) and sets glibc's thresholds back to the values its own dynamic adjustment settles on. On a
    /// 2-core machine this made a ResNet-18 training step about 13 % faster (docs/performance.md). The settings are
    /// process-wide, so they also apply to other native allocations made while training runs.
    /// </remarks>
    public static class NativeAllocator
    {
        // glibc's soname: on another C library loading fails, and nothing is changed.
        private const string CLibrary = "libc.so.6";
        private const int TrimThreshold = -1;   // M_TRIM_THRESHOLD
        private const int MmapThreshold = -3;   // M_MMAP_THRESHOLD

        // While training: blocks up to 1 GiB come from the heap and freed memory stays in the process.
        private const int TrainingMmapThreshold = 1 << 30;
        private const int TrainingTrimThreshold = int.MaxValue;

        // Afterwards: what glibc's dynamic thresholds reach on a 64-bit system once large blocks have been freed.
        private const int SettledMmapThreshold = 32 << 20;
        private const int SettledTrimThreshold = 64 << 20;

        private static readonly object Gate = new();
        private static readonly bool IsGlibc = DetectGlibc();
        private static int activeRuns;

        /// <summary>
        /// Keep freed native memory in the process while training runs (default true). Set it to false before training
        /// when other code in the process tunes the allocator itself or must see memory returned to the operating system
        /// immediately. Only Linux with glibc is affected.
        /// </summary>
        public static bool RetainFreedMemoryWhileTraining { get; set; } = true;

        /// <summary>Training runs in progress that hold the training settings (0 when the settings are off or not glibc).</summary>
        internal static int ActiveRuns
        {
            get
            {
                lock (Gate) return activeRuns;
            }
        }

        /// <summary>Whether this process's C library is glibc, whose allocator the settings apply to.</summary>
        internal static bool Applies => IsGlibc;

        /// <summary>Starts a training run: applies the training settings if they are on; disposing the result ends the run.</summary>
        internal static IDisposable EnterTraining()
        {
            lock (Gate)
            {
                if (!RetainFreedMemoryWhileTraining || !IsGlibc) return NoChange.Instance;
                if (activeRuns++ == 0) Configure(TrainingMmapThreshold, TrainingTrimThreshold);
                return new TrainingRun();
            }
        }

        private static void LeaveTraining()
        {
            lock (Gate)
            {
                if (--activeRuns > 0) return;
                Configure(SettledMmapThreshold, SettledTrimThreshold);
                malloc_trim(UIntPtr.Zero);
            }
        }

        private static void Configure(int mmapThreshold, int trimThreshold)
        {
            // Older glibc versions refuse an mmap threshold above 32 MiB; that value still keeps most blocks on the heap.
            if (mallopt(MmapThreshold, mmapThreshold) == 0) mallopt(MmapThreshold, SettledMmapThreshold);
            mallopt(TrimThreshold, trimThreshold);
        }

        private static bool DetectGlibc()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return false;
            try
            {
                return gnu_get_libc_version() != IntPtr.Zero;
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                return false; // musl or another C library: leave its allocator alone.
            }
        }

        [DllImport(CLibrary, ExactSpelling = true)]
        private static extern int mallopt(int parameter, int value);

        [DllImport(CLibrary, ExactSpelling = true)]
        private static extern int malloc_trim(UIntPtr pad);

        [DllImport(CLibrary, ExactSpelling = true)]
        private static extern IntPtr gnu_get_libc_version();

        private sealed class TrainingRun : IDisposable
        {
            private bool disposed;

            public void Dispose()
            {
                if (disposed) return;
                disposed = true;
                LeaveTraining();
            }
        }

        private sealed class NoChange : IDisposable
        {
            public static readonly NoChange Instance = new();

            public void Dispose()
            {
            }
        }
    }
}
