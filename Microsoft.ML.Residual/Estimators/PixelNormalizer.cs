using System;
using System.Linq;
using Microsoft.ML.Residual.Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// The training-side twin of the normalisation the exported graph applies: (x·InputScale − mean) / std, computed as
    /// (x − mean/InputScale) / (std/InputScale) on the training device, so both sides normalise alike.
    /// </summary>
    internal sealed class PixelNormalizer : IDisposable
    {
        private readonly Tensor mean;
        private readonly Tensor std;

        public PixelNormalizer(PixelNormalization normalization, int channels, Device device)
        {
            var shape = new long[] { 1, channels, 1, 1 };
            mean = tensor(normalization.Mean.Select(v => (float)(v / normalization.InputScale)).ToArray(), shape, device: device).DetachFromDisposeScope();
            std = tensor(normalization.Std.Select(v => (float)(v / normalization.InputScale)).ToArray(), shape, device: device).DetachFromDisposeScope();
        }

        /// <summary>Normalises a batch N×C×H×W of 0–255 pixels.</summary>
        public Tensor Apply(Tensor pixels) => (pixels - mean) / std;

        public void Dispose()
        {
            mean.Dispose();
            std.Dispose();
        }
    }
}
