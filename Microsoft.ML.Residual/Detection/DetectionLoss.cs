using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>A detector's training loss and its terms (scalar tensors; <see cref="Total"/> is their sum).</summary>
    /// <param name="Total">What training minimises: the sum of the terms.</param>
    /// <param name="Classification">The sigmoid focal loss over the class logits, per foreground anchor.</param>
    /// <param name="BoxRegression">RetinaNet: L1 on the box deltas; FCOS: generalised-IoU loss on the decoded boxes; per foreground anchor.</param>
    /// <param name="Centerness">FCOS: the binary cross-entropy of the centerness logits over the foreground; null for RetinaNet.</param>
    public sealed record DetectionLossTerms(Tensor Total, Tensor Classification, Tensor BoxRegression, Tensor? Centerness);

    /// <summary>
    /// The training losses of torchvision 0.14's RetinaNet and FCOS, computed on the training device without reading values
    /// back, vectorised over a batch of padded targets.
    /// </summary>
    public static class DetectionLoss
    {
        /// <summary>Focal loss α (the weight of positive targets).</summary>
        public const double FocalAlpha = 0.25;

        /// <summary>RetinaNet's matcher: IoU at least this is foreground.</summary>
        public const double ForegroundIou = 0.5;

        /// <summary>RetinaNet's matcher: IoU below this is background; between the two the anchor is ignored.</summary>
        public const double BackgroundIou = 0.4;

        /// <summary>FCOS's centre sampling radius, in anchor sizes (strides).</summary>
        public const double CenterSamplingRadius = 1.5;

        /// <summary>
        /// The loss of <paramref name="kind"/> for head outputs <paramref name="outputs"/> (N × A × (K + 4) for RetinaNet, N × A ×
        /// (K + 5) for FCOS, see <see cref="IDetectionModel"/>), <paramref name="anchors"/> (A × 4, <see cref="DetectionAnchors.Create"/>),
        /// the anchor counts per level (finest first) and <paramref name="targets"/> (N × M × 5: label (0-based; −1 marks a
        /// padding row), x1, y1, x2, y2 in input pixels). RetinaNet: torchvision's Matcher(0.5, 0.4, low-quality matches
        /// allowed), focal loss over the anchors not ignored and L1 on the deltas of the foreground, each per image over
        /// max(1, its foreground count), then averaged over the images. FCOS: torchvision's centre sampling (radius 1.5), scale
        /// ranges per level and smallest-area assignment, focal loss, GIoU loss and centerness BCE, each over max(1, the
        /// batch's foreground count). Differentiable with respect to <paramref name="outputs"/>; the terms are new tensors, float32 for float16 or bfloat16 outputs.
        /// </summary>
        public static DetectionLossTerms Compute(DetectorKind kind, Tensor outputs, Tensor anchors, IReadOnlyList<int> anchorsPerLevel, Tensor targets)
        {
            if (outputs is null) throw new ArgumentNullException(nameof(outputs));
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            if (anchorsPerLevel is null) throw new ArgumentNullException(nameof(anchorsPerLevel));
            if (targets is null) throw new ArgumentNullException(nameof(targets));
            int extra = kind == DetectorKind.RetinaNet ? 4 : 5;
            if (outputs.dim() != 3 || outputs.shape[2] <= extra) throw new ArgumentException($"{kind} outputs are N × A × (K + {extra}); got [{string.Join(", ", outputs.shape)}].", nameof(outputs));
            long count = outputs.shape[1];
            if (anchors.dim() != 2 || anchors.shape[0] != count || anchors.shape[1] != 4) throw new ArgumentException($"The anchors are A × 4 with A = {count}; got [{string.Join(", ", anchors.shape)}].", nameof(anchors));
            if (anchorsPerLevel.Count == 0 || anchorsPerLevel.Sum(c => (long)c) != count) throw new ArgumentException($"The anchor counts per level add up to {anchorsPerLevel.Sum(c => (long)c)}, not A = {count}.", nameof(anchorsPerLevel));
            if (targets.dim() != 3 || targets.shape[0] != outputs.shape[0] || targets.shape[2] != 5) throw new ArgumentException($"The targets are N × M × 5 with N = {outputs.shape[0]}; got [{string.Join(", ", targets.shape)}].", nameof(targets));

            using var scope = NewDisposeScope();
            Tensor work = IsHalf(outputs.dtype) ? outputs.to_type(ScalarType.Float32) : outputs; // autocast outputs: the loss in float32
            Tensor typedAnchors = anchors.to(work.device).to_type(work.dtype);
            Tensor typedTargets = targets.to(work.device).to_type(work.dtype);
            DetectionLossTerms terms = kind switch
            {
                DetectorKind.RetinaNet => RetinaNet(work, typedAnchors, typedTargets),
                DetectorKind.Fcos => Fcos(work, typedAnchors, anchorsPerLevel, typedTargets),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown detector kind."),
            };
            return new DetectionLossTerms(terms.Total.MoveToOuterDisposeScope(), terms.Classification.MoveToOuterDisposeScope(),
                terms.BoxRegression.MoveToOuterDisposeScope(), terms.Centerness?.MoveToOuterDisposeScope());
        }

        /// <summary>
        /// torchvision's RetinaNet matching for every anchor of every image (N × A, int64): the index of the matched target
        /// row, −1 for background, −2 for ignored (IoU between the thresholds); with low-quality matches (each target's
        /// best anchors, ties included, take their best target). Padding rows never match.
        /// </summary>
        public static Tensor MatchRetinaNet(Tensor anchors, Tensor targets)
        {
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            if (targets is null) throw new ArgumentNullException(nameof(targets));
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            long images = targets.shape[0], rows = targets.shape[1], count = anchors.shape[0];
            if (rows == 0) return Constant(-1L, targets.device).expand(images, count).contiguous().MoveToOuterDisposeScope();
            if (images > 1) return OneImageAtATime(targets, image => MatchRetinaNet(anchors, image)).MoveToOuterDisposeScope(); // M × A per image at a time
            Tensor valid = Valid(targets);                                   // N × M
            Tensor iou = BoxOperations.PairwiseIou(Boxes(targets), anchors);  // N × M × A
            Tensor quality = where(valid.unsqueeze(-1), iou, Constant(-1.0, iou));
            var (best, bestRow) = quality.max(1);                            // N × A
            Tensor below = best.lt(Constant(BackgroundIou, best));
            Tensor between = best.ge(Constant(BackgroundIou, best)).logical_and(best.lt(Constant(ForegroundIou, best)));
            Tensor matches = where(below, Constant(-1L, best.device), where(between, Constant(-2L, best.device), bestRow));
            var (highest, _) = quality.max(2);                               // N × M: each target's best IoU
            Tensor isBest = quality.eq(highest.unsqueeze(-1)).logical_and(valid.unsqueeze(-1)).any(1); // N × A
            return where(isBest, bestRow, matches).MoveToOuterDisposeScope();
        }

        /// <summary>
        /// torchvision's FCOS assignment for every anchor of every image (N × A, int64): the matched target row or −1. An anchor
        /// matches a target whose centre lies within 1.5 anchor sizes of its centre (Chebyshev distance), that contains its
        /// centre, and whose largest centre-to-side distance lies in the level's range (4·size, 8·size), open below for the
        /// first level and above for the last; among several, the smallest area (as torchvision: 1e8 − area in float32).
        /// </summary>
        public static Tensor MatchFcos(Tensor anchors, IReadOnlyList<int> anchorsPerLevel, Tensor targets)
        {
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            if (anchorsPerLevel is null) throw new ArgumentNullException(nameof(anchorsPerLevel));
            if (targets is null) throw new ArgumentNullException(nameof(targets));
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            long images = targets.shape[0], rows = targets.shape[1], count = anchors.shape[0];
            if (rows == 0) return Constant(-1L, targets.device).expand(images, count).contiguous().MoveToOuterDisposeScope();
            if (images > 1) return OneImageAtATime(targets, image => MatchFcos(anchors, anchorsPerLevel, image)).MoveToOuterDisposeScope(); // A × M × 4 per image at a time
            Tensor boxes = Boxes(targets);                                            // N × M × 4
            Tensor anchorCentres = anchors.narrow(1, 0, 2).Plus(anchors.narrow(1, 2, 2)).DividedBy(2.0); // A × 2
            Tensor anchorSizes = anchors.select(1, 2).Minus(anchors.select(1, 0));   // A
            Tensor boxCentres = boxes.narrow(2, 0, 2).Plus(boxes.narrow(2, 2, 2)).DividedBy(2.0); // N × M × 2
            Tensor offset = anchorCentres.unsqueeze(1).unsqueeze(0).Minus(boxCentres.unsqueeze(1)).abs(); // N × A × M × 2
            var (chebyshev, _) = offset.max(3);
            Tensor match = chebyshev.lt(anchorSizes.Times(CenterSamplingRadius).unsqueeze(-1)); // N × A × M

            Tensor x = anchorCentres.select(1, 0).view(1, -1, 1), y = anchorCentres.select(1, 1).view(1, -1, 1);
            Tensor x0 = boxes.select(2, 0).unsqueeze(1), y0 = boxes.select(2, 1).unsqueeze(1);
            Tensor x1 = boxes.select(2, 2).unsqueeze(1), y1 = boxes.select(2, 3).unsqueeze(1);
            Tensor distances = stack(new[] { x.Minus(x0), y.Minus(y0), x1.Minus(x), y1.Minus(y) }, 3); // N × A × M × 4
            var (nearest, _) = distances.min(3);
            match = match.logical_and(nearest.gt(Constant(0.0, nearest)));

            int first = anchorsPerLevel[0], last = anchorsPerLevel[anchorsPerLevel.Count - 1];
            Tensor isFirst = LevelMask(anchorsPerLevel, 0, anchors.device), isLast = LevelMask(anchorsPerLevel, anchorsPerLevel.Count - 1, anchors.device);
            Tensor lower = where(isFirst, Constant(0.0, anchorSizes), anchorSizes.Times(4.0));
            Tensor upper = where(isLast, Constant(double.PositiveInfinity, anchorSizes), anchorSizes.Times(8.0));
            var (farthest, _) = distances.max(3);
            match = match.logical_and(farthest.gt(lower.view(1, -1, 1))).logical_and(farthest.lt(upper.view(1, -1, 1)));
            match = match.logical_and(Valid(targets).unsqueeze(1));

            Tensor areas = BoxOperations.Area(boxes.to_type(ScalarType.Float32));   // N × M, float32 as torchvision
            Tensor preference = match.to_type(ScalarType.Float32).mul(areas.SubtractedFrom(1e8).unsqueeze(1));
            var (value, row) = preference.max(2);                                     // N × A
            Tensor unmatched = value.lt(Constant(1e-5, value));
            return where(unmatched, Constant(-1L, row.device), row).MoveToOuterDisposeScope();
        }

        /// <summary>torchvision's sigmoid_focal_loss (α = 0.25, γ = 2) element-wise, reduction "none".</summary>
        public static Tensor SigmoidFocalLoss(Tensor logits, Tensor targets)
        {
            if (logits is null) throw new ArgumentNullException(nameof(logits));
            if (targets is null) throw new ArgumentNullException(nameof(targets));
            using var scope = NewDisposeScope();
            Tensor p = logits.sigmoid();
            Tensor crossEntropy = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction: nn.Reduction.None);
            Tensor notTargets = targets.SubtractedFrom(1.0);
            Tensor pTrue = p.mul(targets).Plus(p.SubtractedFrom(1.0).mul(notTargets));
            Tensor loss = crossEntropy.mul(pTrue.SubtractedFrom(1.0).Power(2.0));
            Tensor alpha = targets.Times(FocalAlpha).Plus(notTargets.Times(1 - FocalAlpha));
            return alpha.mul(loss).MoveToOuterDisposeScope();
        }

        private static DetectionLossTerms RetinaNet(Tensor outputs, Tensor anchors, Tensor targets)
        {
            long images = outputs.shape[0], classes = outputs.shape[2] - 4;
            Tensor logits = outputs.narrow(2, 0, classes), deltas = outputs.narrow(2, classes, 4);
            Tensor matches = MatchRetinaNet(anchors, targets);                  // N × A
            Tensor foreground = matches.NotBelow(0);
            Tensor notIgnored = matches.ne(Constant(-2L, matches.device));
            Tensor perImageForeground = foreground.sum(new long[] { 1 }).to_type(outputs.dtype).AtLeast(1.0); // N
            var (classTargets, matchedBoxes) = Gather(targets, matches, foreground, classes, outputs.dtype);

            Tensor focal = SigmoidFocalLoss(logits, classTargets).sum(new long[] { 2 });   // N × A
            Tensor classification = where(notIgnored, focal, zeros_like(focal)).sum(new long[] { 1 }).div(perImageForeground).sum().DividedBy(images);

            Tensor foreground4 = foreground.unsqueeze(-1);
            Tensor goal = BoxCoding.EncodeDeltas(matchedBoxes, anchors);
            goal = where(foreground4, goal, zeros_like(goal)).detach();           // background's goal is undefined (a padding box)
            Tensor absolute = deltas.Minus(goal).abs();
            Tensor box = where(foreground4, absolute, zeros_like(absolute)).sum(new long[] { 1, 2 }).div(perImageForeground).sum().DividedBy(Math.Max(1, images));
            return new DetectionLossTerms(classification.Plus(box), classification, box, null);
        }

        private static DetectionLossTerms Fcos(Tensor outputs, Tensor anchors, IReadOnlyList<int> anchorsPerLevel, Tensor targets)
        {
            long classes = outputs.shape[2] - 5;
            Tensor logits = outputs.narrow(2, 0, classes), distances = outputs.narrow(2, classes, 4), centerness = outputs.select(2, classes + 4);
            Tensor matches = MatchFcos(anchors, anchorsPerLevel, targets);      // N × A
            Tensor foreground = matches.NotBelow(0);
            Tensor normaliser = foreground.sum().to_type(outputs.dtype).AtLeast(1.0);
            var (classTargets, matchedBoxes) = Gather(targets, matches, foreground, classes, outputs.dtype);
            Tensor foreground4 = foreground.unsqueeze(-1);
            Tensor expandedAnchors = anchors.unsqueeze(0).expand_as(matchedBoxes);
            Tensor goalBoxes = where(foreground4, matchedBoxes, expandedAnchors).detach(); // background: the anchor itself, so that every value is finite

            Tensor classification = SigmoidFocalLoss(logits, classTargets).sum().div(normaliser);

            Tensor predicted = BoxCoding.DecodeDistances(distances, anchors);
            Tensor giou = BoxOperations.GeneralizedIouLoss(predicted, goalBoxes);
            Tensor box = where(foreground, giou, zeros_like(giou)).sum().div(normaliser);

            Tensor goal = BoxCoding.EncodeDistances(goalBoxes, anchors);        // l, t, r, b over the anchor size
            Tensor leftRight = goal.index_select(2, LongIndices(new long[] { 0, 2 }, goal.device));
            Tensor topBottom = goal.index_select(2, LongIndices(new long[] { 1, 3 }, goal.device));
            Tensor centernessGoal = Ratio(leftRight).mul(Ratio(topBottom)).sqrt();
            Tensor bce = nn.functional.binary_cross_entropy_with_logits(centerness, centernessGoal, reduction: nn.Reduction.None);
            Tensor centernessLoss = where(foreground, bce, zeros_like(bce)).sum().div(normaliser);
            return new DetectionLossTerms(classification.Plus(box).Plus(centernessLoss), classification, box, centernessLoss);
        }

        // min/max over the last dimension of pairs.
        private static Tensor Ratio(Tensor pairs)
        {
            var (low, _) = pairs.min(-1);
            var (high, _) = pairs.max(-1);
            return low.div(high);
        }

        // The one-hot class targets (N × A × K, zero for anchors not in the foreground) and the matched boxes (N × A × 4; for
        // anchors not in the foreground, the first row's box) of each anchor.
        private static (Tensor ClassTargets, Tensor MatchedBoxes) Gather(Tensor targets, Tensor matches, Tensor foreground, long classes, ScalarType type)
        {
            long images = matches.shape[0], count = matches.shape[1];
            if (targets.shape[1] == 0)
                return (zeros(new[] { images, count, classes }, type, matches.device), zeros(new[] { images, count, 4L }, type, matches.device));
            Tensor rows = matches.AtLeast(0L);                                       // N × A
            Tensor matched = targets.gather(1, rows.unsqueeze(-1).expand(images, count, 5)); // N × A × 5
            Tensor labels = matched.select(2, 0).to_type(ScalarType.Int64).AtLeast(0L);
            Tensor oneHot = nn.functional.one_hot(labels, classes).to_type(type).mul(foreground.unsqueeze(-1).to_type(type));
            return (oneHot, matched.narrow(2, 1, 4));
        }

        // The matches of each image (a 1 × M × 5 slice) stacked: the pairwise tensors of one image at a time, not of the batch.
        private static Tensor OneImageAtATime(Tensor targets, Func<Tensor, Tensor> match)
        {
            var parts = new Tensor[targets.shape[0]];
            for (long i = 0; i < parts.Length; i++) parts[i] = match(targets.narrow(0, i, 1));
            return cat(parts, 0);
        }

        internal static bool IsHalf(ScalarType type) => type == ScalarType.Float16 || type == ScalarType.BFloat16;

        private static Tensor Valid(Tensor targets) => targets.select(2, 0).NotBelow(0L);

        private static Tensor Boxes(Tensor targets) => targets.narrow(2, 1, 4);

        // A bool mask over the anchors: true for those of level `level`.
        private static Tensor LevelMask(IReadOnlyList<int> anchorsPerLevel, int level, Device device)
        {
            var mask = new bool[anchorsPerLevel.Sum()];
            int start = anchorsPerLevel.Take(level).Sum();
            for (int i = 0; i < anchorsPerLevel[level]; i++) mask[start + i] = true;
            return torch.tensor(mask, device: device);
        }

        private static Tensor LongIndices(long[] values, Device device) => torch.tensor(values, device: device);

        // A 0-d tensor of like's type and device.
        private static Tensor Constant(double value, Tensor like) => torch.tensor(value, like.dtype, like.device);

        private static Tensor Constant(long value, Device device) => torch.tensor(value, ScalarType.Int64, device);
    }
}
