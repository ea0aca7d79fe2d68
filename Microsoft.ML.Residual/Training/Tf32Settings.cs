using System;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// libtorch's process-wide TF32 switches for cuDNN convolutions and cuBLAS matrix products, set for the duration of a
    /// training run and restored afterwards (<see cref="TrainingOptions.AllowTf32"/>).
    /// </summary>
    internal static class Tf32Settings
    {
        private static readonly object Gate = new();

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
            if (allow is not bool value) return new Restore(null);
            lock (Gate)
            {
                var previous = Current;
                Set(value, value);
                return new Restore(previous);
            }
        }

        private static void Set(bool convolutions, bool matrixProducts)
        {
            backends.cudnn.allow_tf32 = convolutions;
            backends.cuda.matmul.allow_tf32 = matrixProducts;
        }

        private sealed class Restore : IDisposable
        {
            private (bool Convolutions, bool MatrixProducts)? previous;

            public Restore((bool, bool)? previous) => this.previous = previous;

            public void Dispose()
            {
                if (previous is not var (convolutions, matrixProducts)) return;
                previous = null;
                lock (Gate) Set(convolutions, matrixProducts);
            }
        }
    }
}
