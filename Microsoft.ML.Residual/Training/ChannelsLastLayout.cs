using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Channels-last (NHWC-strided) tensors of unchanged N×C×H×W shape. TorchSharp has no memory-format argument, so the layout
    /// is made as PyTorch's <c>contiguous(memory_format=torch.channels_last)</c> lays it out: a contiguous copy of the NHWC
    /// permutation, permuted back.
    /// </summary>
    internal static class ChannelsLastLayout
    {
        /// <summary>Nothing to undo.</summary>
        public static readonly IDisposable None = new Undo(null);

        /// <summary>A channels-last tensor with the values of a 4-d tensor (a copy, or a view when it already is channels-last).</summary>
        public static Tensor Of(Tensor tensor) => tensor.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

        /// <summary>Whether a 4-d tensor is laid out channels-last (strides of the NHWC order).</summary>
        public static bool IsChannelsLast(Tensor tensor)
        {
            if (tensor.dim() != 4) return false;
            long[] shape = tensor.shape, stride = tensor.stride();
            long expected = 1;
            foreach (int dimension in new[] { 1, 3, 2, 0 })
            {
                if (shape[dimension] != 1 && stride[dimension] != expected) return false;
                expected *= shape[dimension];
            }

            return true;
        }

        /// <summary>
        /// Lays the module's 4-d parameters (convolution weights) out channels-last in place, as
        /// <c>module.to(memory_format=torch.channels_last)</c> does; disposing the result makes them contiguous again. The
        /// parameters stay the same objects (an optimiser's references hold), and their values do not change.
        /// </summary>
        public static IDisposable EnterForWeights(nn.Module module)
        {
            var moved = new List<Tensor>();
            using (no_grad())
            {
                foreach (var parameter in module.parameters())
                {
                    if (parameter.dim() != 4 || IsChannelsLast(parameter)) continue;
                    Relayout(parameter, Of);
                    moved.Add(parameter);
                }
            }

            return new Undo(moved);
        }

        private static void Relayout(Tensor parameter, Func<Tensor, Tensor> layout)
        {
            using var scope = NewDisposeScope();
            parameter.set_(layout(parameter.detach()));
        }

        private sealed class Undo : IDisposable
        {
            private List<Tensor>? parameters;

            public Undo(List<Tensor>? parameters) => this.parameters = parameters;

            public void Dispose()
            {
                if (parameters is null) return;
                using (no_grad())
                {
                    foreach (Tensor parameter in parameters)
                    {
                        if (!parameter.IsInvalid) Relayout(parameter, p => p.contiguous());
                    }
                }

                parameters = null;
            }
        }
    }
}
