using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.Residual.Models;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>
    /// Per-pixel losses over logits N×K×H×W and targets N×H×W (int64 class indices, −1 for ignored pixels).
    /// </summary>
    internal static class SegmentationLosses
    {
        private const double DiceSmoothing = 1.0;

        /// <summary>
        /// The loss of <paramref name="kind"/> from logits, targets and label smoothing (applied to the cross-entropy; the estimator
        /// refuses it for Dice and focal); <paramref name="classWeights"/> (length K) weigh cross-entropy and focal terms.
        /// </summary>
        public static Func<Tensor, Tensor, double, Tensor> Create(SegmentationLoss kind, IReadOnlyList<float>? classWeights, double focalGamma)
        {
            return kind switch
            {
                SegmentationLoss.CrossEntropy => (logits, targets, smoothing) => CrossEntropy(logits, targets, classWeights, smoothing),
                SegmentationLoss.Dice => (logits, targets, _) => Dice(logits, targets),
                SegmentationLoss.CrossEntropyDice => (logits, targets, smoothing) => CrossEntropy(logits, targets, classWeights, smoothing).Plus(Dice(logits, targets)),
                SegmentationLoss.Focal => (logits, targets, _) => Focal(logits, targets, classWeights, focalGamma),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown segmentation loss."),
            };
        }

        /// <summary>Per-pixel cross-entropy over labelled pixels, optionally class-weighted and label-smoothed.</summary>
        public static Tensor CrossEntropy(Tensor logits, Tensor targets, IReadOnlyList<float>? classWeights, double labelSmoothing = 0)
        {
            using Tensor? weight = classWeights is null ? null : tensor(classWeights.ToArray(), device: logits.device);
            return nn.functional.cross_entropy(logits, targets, weight, ignore_index: -1, label_smoothing: labelSmoothing);
        }

        /// <summary>1 − soft Dice; the mean over classes, or the foreground's alone for two classes. Ignored pixels count for nothing.</summary>
        public static Tensor Dice(Tensor logits, Tensor targets)
        {
            long classes = logits.shape[1];
            Tensor valid = targets.NotBelow(0).unsqueeze(1).to_type(logits.dtype);
            Tensor probabilities = nn.functional.softmax(logits, 1) * valid;
            Tensor oneHot = nn.functional.one_hot(targets.AtLeast(0L), classes).permute(0, 3, 1, 2).to_type(logits.dtype) * valid;
            long[] dims = { 0, 2, 3 };
            Tensor intersection = (probabilities * oneHot).sum(dims);
            Tensor total = probabilities.sum(dims).Plus(oneHot.sum(dims));
            Tensor dice = intersection.Times(2.0).Plus(DiceSmoothing).div(total.Plus(DiceSmoothing));
            Tensor score = classes == 2 ? dice[1] : dice.mean();
            return score.SubtractedFrom(1.0);
        }

        /// <summary>Mean over labelled pixels of −w_y·(1 − p_y)^γ·log p_y.</summary>
        public static Tensor Focal(Tensor logits, Tensor targets, IReadOnlyList<float>? classWeights, double gamma)
        {
            Tensor valid = targets.NotBelow(0);
            Tensor safeTargets = targets.AtLeast(0L);
            Tensor logProbability = nn.functional.log_softmax(logits, 1).gather(1, safeTargets.unsqueeze(1)).squeeze(1);
            Tensor probability = logProbability.exp();
            Tensor perPixel = probability.SubtractedFrom(1.0).Power(gamma).neg().mul(logProbability);
            if (classWeights is not null)
            {
                using Tensor weights = tensor(classWeights.ToArray(), device: logits.device);
                perPixel = perPixel * weights.index_select(0, safeTargets.flatten()).reshape(safeTargets.shape);
            }

            Tensor mask = valid.to_type(logits.dtype);
            return perPixel.mul(mask).sum().div(mask.sum().AtLeast(1.0));
        }
    }
}
