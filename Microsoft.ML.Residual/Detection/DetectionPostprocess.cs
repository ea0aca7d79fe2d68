using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>How head outputs become detections.</summary>
    /// <param name="ScoreThreshold">Candidates need a score above this.</param>
    /// <param name="NmsThreshold">Within a class, a box whose IoU with a higher-scoring kept box is above this is dropped.</param>
    /// <param name="CandidatesPerLevel">At most this many candidates (the highest scores) per pyramid level before NMS.</param>
    /// <param name="MaxDetections">At most this many detections per image (the highest scores after NMS).</param>
    public sealed record DetectionPostprocessOptions(double ScoreThreshold, double NmsThreshold, int CandidatesPerLevel, int MaxDetections)
    {
        /// <summary>torchvision's defaults: RetinaNet 0.05 / 0.5 / 1000 / 300, FCOS 0.2 / 0.6 / 1000 / 100.</summary>
        public static DetectionPostprocessOptions For(DetectorKind kind) => kind switch
        {
            DetectorKind.RetinaNet => new DetectionPostprocessOptions(0.05, 0.5, 1000, 300),
            DetectorKind.Fcos => new DetectionPostprocessOptions(0.2, 0.6, 1000, 100),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown detector kind."),
        };
    }

    /// <summary>The detections of one image, by decreasing score: boxes D × 4 (x1, y1, x2, y2 in input pixels), scores D, labels D (int64, 0-based).</summary>
    /// <param name="Boxes">D × 4 boxes, clipped to the image.</param>
    /// <param name="Scores">D scores in (0, 1).</param>
    /// <param name="Labels">D class indices (int64).</param>
    public sealed record Detections(Tensor Boxes, Tensor Scores, Tensor Labels);

    /// <summary>torchvision 0.14's <c>postprocess_detections</c> of RetinaNet and FCOS on head outputs in the <see cref="IDetectionModel"/> layout.</summary>
    public static class DetectionPostprocess
    {
        /// <summary>
        /// The detections of each image of <paramref name="outputs"/> (N × A × (K + 4 | 5)): per level, the class scores
        /// (sigmoid; FCOS: √(sigmoid(class) · sigmoid(centerness))) above the threshold, at most
        /// <see cref="DetectionPostprocessOptions.CandidatesPerLevel"/> of them, decoded against <paramref name="anchors"/> and
        /// clipped to the image; then per-class NMS and the <see cref="DetectionPostprocessOptions.MaxDetections"/> best. The
        /// tensors returned are new (on the outputs' device); the caller disposes them. Reads values back (NMS runs on the host).
        /// </summary>
        public static IReadOnlyList<Detections> Detect(DetectorKind kind, Tensor outputs, Tensor anchors, IReadOnlyList<int> anchorsPerLevel,
            int imageHeight, int imageWidth, DetectionPostprocessOptions options)
        {
            if (outputs is null) throw new ArgumentNullException(nameof(outputs));
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            if (anchorsPerLevel is null) throw new ArgumentNullException(nameof(anchorsPerLevel));
            if (options is null) throw new ArgumentNullException(nameof(options));
            int extra = kind == DetectorKind.RetinaNet ? 4 : 5;
            if (outputs.dim() != 3 || outputs.shape[2] <= extra) throw new ArgumentException($"{kind} outputs are N × A × (K + {extra}); got [{string.Join(", ", outputs.shape)}].", nameof(outputs));
            if (anchors.shape[0] != outputs.shape[1] || anchorsPerLevel.Sum(c => (long)c) != outputs.shape[1]) throw new ArgumentException("The anchors and their counts per level must match the outputs' A.", nameof(anchors));
            long classes = outputs.shape[2] - extra;

            var results = new List<Detections>();
            using var noGrad = no_grad();
            for (long image = 0; image < outputs.shape[0]; image++)
            {
                using var scope = NewDisposeScope();
                Tensor perImage = outputs[image].detach();
                if (DetectionLoss.IsHalf(perImage.dtype)) perImage = perImage.to_type(ScalarType.Float32);
                Tensor typedAnchors = anchors.to(outputs.device).to_type(perImage.dtype);
                var boxes = new List<Tensor>();
                var scores = new List<Tensor>();
                var labels = new List<Tensor>();
                long start = 0;
                foreach (int levelCount in anchorsPerLevel)
                {
                    Tensor level = perImage.narrow(0, start, levelCount);
                    Tensor levelAnchors = typedAnchors.narrow(0, start, levelCount);
                    start += levelCount;
                    Tensor probability = level.narrow(1, 0, classes).sigmoid();
                    if (kind == DetectorKind.Fcos) probability = probability.mul(level.narrow(1, classes + 4, 1).sigmoid()).sqrt();
                    Tensor flat = probability.flatten();
                    Tensor candidates = flat.gt(torch.tensor(options.ScoreThreshold, flat.dtype, flat.device)).nonzero().flatten();
                    Tensor candidateScores = flat.index_select(0, candidates);
                    long keep = Math.Min(options.CandidatesPerLevel, candidateScores.shape[0]);
                    var (best, order) = candidateScores.topk(checked((int)keep));
                    Tensor chosen = candidates.index_select(0, order);
                    Tensor classCount = torch.tensor(classes, ScalarType.Int64, chosen.device);
                    Tensor anchorIndex = chosen.div(classCount, RoundingMode.floor);
                    Tensor label = chosen.remainder(classCount);
                    Tensor regression = level.narrow(1, classes, 4).index_select(0, anchorIndex);
                    Tensor chosenAnchors = levelAnchors.index_select(0, anchorIndex);
                    Tensor decoded = kind == DetectorKind.RetinaNet ? BoxCoding.DecodeDeltas(regression, chosenAnchors) : BoxCoding.DecodeDistances(regression, chosenAnchors);
                    boxes.Add(BoxOperations.Clip(decoded, imageHeight, imageWidth));
                    scores.Add(best);
                    labels.Add(label);
                }

                Tensor allBoxes = cat(boxes, 0), allScores = cat(scores, 0), allLabels = cat(labels, 0);
                Tensor kept = BoxOperations.BatchedNms(allBoxes, allScores, allLabels, options.NmsThreshold);
                kept = kept.narrow(0, 0, Math.Min(options.MaxDetections, kept.shape[0]));
                results.Add(new Detections(
                    allBoxes.index_select(0, kept).MoveToOuterDisposeScope(),
                    allScores.index_select(0, kept).MoveToOuterDisposeScope(),
                    allLabels.index_select(0, kept).MoveToOuterDisposeScope()));
            }

            return results;
        }
    }
}
