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

        /// <summary>
        /// The multi-label loss (logits and float 0/1 targets N×K): binary cross-entropy of each label, with label smoothing, or
        /// the sigmoid focal loss with <paramref name="focalGamma"/>; each label's terms weighted by <paramref name="labelWeights"/> if given.
        /// </summary>
        public static Func<Tensor, Tensor, double, Tensor> CreateMultiLabel(bool focal, IReadOnlyList<float>? labelWeights, double focalGamma) =>
            focal ? (logits, targets, _) => SigmoidFocal(logits, targets, labelWeights, focalGamma)
                : (logits, targets, smoothing) => BinaryCrossEntropy(logits, targets, labelWeights, smoothing);

        /// <summary>
        /// The mean over rows and labels of each label's binary cross-entropy with logits (N×K against float 0/1 targets), each
        /// label's terms multiplied by its weight if given (PyTorch's <c>binary_cross_entropy_with_logits(weight=…)</c>); smoothing ε
        /// moves every target ε/2 towards ½.
        /// </summary>
        public static Tensor BinaryCrossEntropy(Tensor logits, Tensor targets, IReadOnlyList<float>? labelWeights, double labelSmoothing = 0)
        {
            Tensor goal = labelSmoothing == 0 ? targets : targets.Times(1 - labelSmoothing).Plus(labelSmoothing / 2);
            using Tensor? weight = labelWeights is null ? null : tensor(labelWeights.ToArray(), device: logits.device);
            return nn.functional.binary_cross_entropy_with_logits(logits, goal, weight);
        }

        /// <summary>
        /// The sigmoid focal loss (Lin et al.; torchvision's <c>sigmoid_focal_loss</c> without α), averaged over rows and labels:
        /// each label's binary cross-entropy times (1 − p_t)^γ, p_t the probability given to the right answer; weighted per label if given.
        /// </summary>
        public static Tensor SigmoidFocal(Tensor logits, Tensor targets, IReadOnlyList<float>? labelWeights, double gamma)
        {
            Tensor crossEntropy = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction: nn.Reduction.None);
            Tensor probability = torch.sigmoid(logits);
            // p_t = p·y + (1 − p)(1 − y) = 1 − (p + y − 2·p·y)
            Tensor miss = probability.Plus(targets).Plus(probability.mul(targets).Times(-2.0));
            Tensor terms = crossEntropy.mul(miss.Power(gamma));
            if (labelWeights is not null)
            {
                using Tensor weights = tensor(labelWeights.ToArray(), device: logits.device);
                terms = terms.mul(weights);
            }

            return terms.mean();
        }

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
