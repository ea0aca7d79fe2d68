using System;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// libtorch's process-wide TF32 switches for cuDNN convolutions and cuBLAS matrix products, set while training runs
    /// (<see cref="TrainingOptions.AllowTf32"/>). The settings found when the first of any overlapping runs began come back
    /// when the last one ends; while runs overlap, the last to start sets the switches.
    /// </summary>
    internal static class Tf32Settings
    {
        private static readonly object Gate = new();
        private static int activeRuns;
        private static (bool Convolutions, bool MatrixProducts) original;

        /// <summary>The switches as they are now: (convolutions, matrix products).</summary>
        public static (bool Convolutions, bool MatrixProducts) Current
        {
            get
            {
                lock (Gate) return (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32);
            }
        }

        /// <summary>Sets both switches to <paramref name="allow"/> until the result is disposed; null changes nothing.</summary>
        public static IDisposable Enter(bool? allow)
        {
            if (allow is not bool value) return new Run(active: false);
            lock (Gate)
            {
                if (activeRuns++ == 0) original = Current;
                Set(value, value);
                return new Run(active: true);
            }
        }

        private static void Set(bool convolutions, bool matrixProducts)
        {
            backends.cudnn.allow_tf32 = convolutions;
            backends.cuda.matmul.allow_tf32 = matrixProducts;
        }

        private sealed class Run : IDisposable
        {
            private bool active;

            public Run(bool active) => this.active = active;

            public void Dispose()
            {
                if (!active) return;
                active = false;
                lock (Gate)
                {
                    if (--activeRuns == 0) Set(original.Convolutions, original.MatrixProducts);
                }
            }
        }
    }
}
