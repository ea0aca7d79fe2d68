using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;

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
                SegmentationLoss.CrossEntropy => (logits, targets, smoothing) => ClassificationLosses.CrossEntropy(logits, targets, classWeights, smoothing),
                SegmentationLoss.Dice => (logits, targets, _) => Dice(logits, targets),
                SegmentationLoss.CrossEntropyDice => (logits, targets, smoothing) => ClassificationLosses.CrossEntropy(logits, targets, classWeights, smoothing).Plus(Dice(logits, targets)),
                SegmentationLoss.Focal => (logits, targets, _) => ClassificationLosses.Focal(logits, targets, classWeights, focalGamma),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown segmentation loss."),
            };
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
    }
}
