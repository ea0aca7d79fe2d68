using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Losses over class logits in dimension 1 — N×K for images, N×K×H×W for pixels — against int64 targets N (or N×H×W),
    /// −1 for ignored rows or pixels: class-weighted cross-entropy and focal loss, for classifiers and segmenters alike.
    /// </summary>
    internal static class ClassificationLosses
    {
        /// <summary>
        /// The loss from logits, targets and label smoothing (the smoothing applies to the cross-entropy; the estimators refuse it
        /// with the focal loss): cross-entropy, or focal loss with <paramref name="focalGamma"/>, each weighted by <paramref name="classWeights"/> (length K) if given.
        /// </summary>
        public static Func<Tensor, Tensor, double, Tensor> Create(bool focal, IReadOnlyList<float>? classWeights, double focalGamma) =>
            focal ? (logits, targets, _) => Focal(logits, targets, classWeights, focalGamma)
                : (logits, targets, smoothing) => CrossEntropy(logits, targets, classWeights, smoothing);

        /// <summary>Cross-entropy over labelled rows or pixels, optionally class-weighted (the weighted mean, as PyTorch takes it) and label-smoothed.</summary>
        public static Tensor CrossEntropy(Tensor logits, Tensor targets, IReadOnlyList<float>? classWeights, double labelSmoothing = 0)
        {
            using Tensor? weight = classWeights is null ? null : tensor(classWeights.ToArray(), device: logits.device);
            return nn.functional.cross_entropy(logits, targets, weight, ignore_index: -1, label_smoothing: labelSmoothing);
        }

        /// <summary>Mean over labelled rows or pixels of −w_y·(1 − p_y)^γ·log p_y (Lin et al.'s focal loss over a softmax).</summary>
        public static Tensor Focal(Tensor logits, Tensor targets, IReadOnlyList<float>? classWeights, double gamma)
        {
            Tensor valid = targets.NotBelow(0);
            Tensor safeTargets = targets.AtLeast(0L);
            Tensor logProbability = nn.functional.log_softmax(logits, 1).gather(1, safeTargets.unsqueeze(1)).squeeze(1);
            Tensor probability = logProbability.exp();
            Tensor perTarget = probability.SubtractedFrom(1.0).Power(gamma).neg().mul(logProbability);
            if (classWeights is not null)
            {
                using Tensor weights = tensor(classWeights.ToArray(), device: logits.device);
                perTarget = perTarget * weights.index_select(0, safeTargets.flatten()).reshape(safeTargets.shape);
            }

            Tensor mask = valid.to_type(logits.dtype);
            return perTarget.mul(mask).sum().div(mask.sum().AtLeast(1.0));
        }
    }
}
