using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// torch.nn.utils.clip_grad_norm_ without waiting for the device: the gradients are scaled by
    /// min(1, maxNorm / (‖g‖ + 10⁻⁶)), ‖g‖ the 2-norm of all of them together, with the factor computed and applied on the
    /// device. (libtorch's C++ version, which TorchSharp calls, returns the norm as a host number and so waits for every
    /// queued kernel on each training step.)
    /// </summary>
    internal static class GradientClipping
    {
        /// <summary>Scales the gradients of <paramref name="parameters"/> in place so that their total 2-norm is at most <paramref name="maxNorm"/>.</summary>
        public static void ClipByTotalNorm(IEnumerable<Tensor> parameters, double maxNorm)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Tensor[] gradients = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToArray();
            if (gradients.Length == 0) return;
            Tensor total = stack(gradients.Select(g => g.norm()).ToArray()).norm();
            Tensor factor = total.Plus(1e-6).reciprocal().Times(maxNorm).AtMost(1.0);
            foreach (Tensor gradient in gradients) gradient.mul_(factor.to_type(gradient.dtype));
        }
    }
}
