using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// Operations on boxes given as x1, y1, x2, y2 in the last dimension, as torchvision.ops computes them (same formulas in
    /// the same order, so that float32 results agree to the last bit where the kernels do).
    /// </summary>
    public static class BoxOperations
    {
        /// <summary>The area (x2 − x1)·(y2 − y1) of each box (any leading dimensions).</summary>
        public static Tensor Area(Tensor boxes)
        {
            if (boxes is null) throw new ArgumentNullException(nameof(boxes));
            using var scope = NewDisposeScope();
            return Side(boxes, 0).mul(Side(boxes, 1)).MoveToOuterDisposeScope();
        }

        /// <summary>The intersection over union of every box of <paramref name="a"/> (M × 4) with every box of <paramref name="b"/> (N × 4): M × N, as torchvision.ops.box_iou.</summary>
        public static Tensor Iou(Tensor a, Tensor b)
        {
            if (a is null) throw new ArgumentNullException(nameof(a));
            if (b is null) throw new ArgumentNullException(nameof(b));
            if (a.dim() != 2 || b.dim() != 2) throw new ArgumentException("Iou takes M × 4 and N × 4 boxes.");
            return PairwiseIou(a, b);
        }

        /// <summary>
        /// IoU of every box of <paramref name="a"/> (… × M × 4) with every box of <paramref name="b"/> (… × N × 4, leading
        /// dimensions broadcast): … × M × N, with torchvision's box_iou formulas.
        /// </summary>
        internal static Tensor PairwiseIou(Tensor a, Tensor b)
        {
            using var scope = NewDisposeScope();
            Tensor areaA = Area(a), areaB = Area(b);
            Tensor left = a.unsqueeze(-2), right = b.unsqueeze(-3); // … × M × 1 × 4, … × 1 × N × 4
            Tensor topLeft = maximum(left.narrow(-1, 0, 2), right.narrow(-1, 0, 2));
            Tensor bottomRight = minimum(left.narrow(-1, 2, 2), right.narrow(-1, 2, 2));
            Tensor size = bottomRight.Minus(topLeft).AtLeast(0.0);
            Tensor intersection = size.select(-1, 0).mul(size.select(-1, 1));
            Tensor union = areaA.unsqueeze(-1).Plus(areaB.unsqueeze(-2)).Minus(intersection);
            return intersection.div(union).MoveToOuterDisposeScope();
        }

        /// <summary>
        /// 1 − generalised IoU of the box pairs (<paramref name="a"/>[i], <paramref name="b"/>[i]), element-wise over any leading
        /// dimensions, as torchvision.ops.generalized_box_iou_loss with reduction "none" (eps 1e-7 in both denominators).
        /// </summary>
        public static Tensor GeneralizedIouLoss(Tensor a, Tensor b)
        {
            if (a is null) throw new ArgumentNullException(nameof(a));
            if (b is null) throw new ArgumentNullException(nameof(b));
            using var scope = NewDisposeScope();
            Tensor x1 = a.select(-1, 0), y1 = a.select(-1, 1), x2 = a.select(-1, 2), y2 = a.select(-1, 3);
            Tensor x1g = b.select(-1, 0), y1g = b.select(-1, 1), x2g = b.select(-1, 2), y2g = b.select(-1, 3);
            Tensor ix1 = maximum(x1, x1g), iy1 = maximum(y1, y1g), ix2 = minimum(x2, x2g), iy2 = minimum(y2, y2g);
            Tensor overlaps = iy2.gt(iy1).logical_and(ix2.gt(ix1));
            Tensor product = ix2.Minus(ix1).mul(iy2.Minus(iy1));
            Tensor intersection = where(overlaps, product, zeros_like(product));
            Tensor union = x2.Minus(x1).mul(y2.Minus(y1)).Plus(x2g.Minus(x1g).mul(y2g.Minus(y1g))).Minus(intersection);
            Tensor iou = intersection.div(union.Plus(1e-7));
            Tensor enclosing = maximum(x2, x2g).Minus(minimum(x1, x1g)).mul(maximum(y2, y2g).Minus(minimum(y1, y1g)));
            Tensor giou = iou.Minus(enclosing.Minus(union).div(enclosing.Plus(1e-7)));
            return giou.SubtractedFrom(1.0).MoveToOuterDisposeScope();
        }

        /// <summary>
        /// Non-maximum suppression as torchvision.ops.nms: the indices (int64, on the boxes' device) of the boxes kept, by
        /// decreasing score; a box is dropped when its IoU with a kept, higher-scoring box is above <paramref name="iouThreshold"/>.
        /// Reads the boxes back to the host (for evaluation, not for a training step).
        /// </summary>
        public static Tensor Nms(Tensor boxes, Tensor scores, double iouThreshold)
        {
            if (boxes is null) throw new ArgumentNullException(nameof(boxes));
            if (scores is null) throw new ArgumentNullException(nameof(scores));
            float[] b = HostFloats(boxes);
            float[] s = HostFloats(scores);
            if (b.Length != 4 * s.Length) throw new ArgumentException("Nms takes N × 4 boxes and N scores.");
            int[] all = Enumerable.Range(0, s.Length).ToArray();
            List<long> kept = Suppress(b, s, all, iouThreshold);
            return torch.tensor(kept.ToArray(), dtype: ScalarType.Int64, device: boxes.device);
        }

        /// <summary>
        /// Non-maximum suppression within each label, as torchvision.ops.batched_nms: boxes of different labels never
        /// suppress each other; the indices kept (int64) by decreasing score.
        /// </summary>
        public static Tensor BatchedNms(Tensor boxes, Tensor scores, Tensor labels, double iouThreshold)
        {
            if (boxes is null) throw new ArgumentNullException(nameof(boxes));
            if (scores is null) throw new ArgumentNullException(nameof(scores));
            if (labels is null) throw new ArgumentNullException(nameof(labels));
            float[] b = HostFloats(boxes);
            float[] s = HostFloats(scores);
            long[] l = HostLongs(labels);
            if (b.Length != 4 * s.Length || l.Length != s.Length) throw new ArgumentException("BatchedNms takes N × 4 boxes, N scores and N labels.");
            var kept = new List<long>();
            foreach (var group in Enumerable.Range(0, s.Length).GroupBy(i => l[i]))
                kept.AddRange(Suppress(b, s, group.ToArray(), iouThreshold));
            long[] order = kept.OrderByDescending(i => s[i]).ThenBy(i => i).ToArray();
            return torch.tensor(order, dtype: ScalarType.Int64, device: boxes.device);
        }

        /// <summary>The boxes with x clamped to [0, <paramref name="width"/>] and y to [0, <paramref name="height"/>], as torchvision.ops.clip_boxes_to_image.</summary>
        public static Tensor Clip(Tensor boxes, int height, int width)
        {
            if (boxes is null) throw new ArgumentNullException(nameof(boxes));
            using var scope = NewDisposeScope();
            Tensor x1 = boxes.select(-1, 0).Clamp(0, width), y1 = boxes.select(-1, 1).Clamp(0, height);
            Tensor x2 = boxes.select(-1, 2).Clamp(0, width), y2 = boxes.select(-1, 3).Clamp(0, height);
            return stack(new[] { x1, y1, x2, y2 }, -1).MoveToOuterDisposeScope();
        }

        /// <summary>a − b (ScalarSafe's a + (−1)·b, exact).</summary>
        internal static Tensor Minus(this Tensor a, Tensor b) => a.PlusScaled(b, -1.0);

        // x2 − x1 (coordinate 0) or y2 − y1 (coordinate 1).
        private static Tensor Side(Tensor boxes, int axis) => boxes.select(-1, axis + 2).Minus(boxes.select(-1, axis));

        // Greedy suppression over the boxes `candidates` (indices into b/s), in float32 as torchvision's CPU kernel: candidates by
        // decreasing score (stable), IoU = inter / (area_i + area_j − inter), dropped when IoU > threshold (compared in double).
        private static List<long> Suppress(float[] b, float[] s, int[] candidates, double threshold)
        {
            int[] order = candidates.OrderByDescending(i => s[i]).ThenBy(i => i).ToArray();
            var suppressed = new bool[order.Length];
            var kept = new List<long>();
            for (int p = 0; p < order.Length; p++)
            {
                if (suppressed[p]) continue;
                int i = order[p];
                kept.Add(i);
                float ix1 = b[4 * i], iy1 = b[4 * i + 1], ix2 = b[4 * i + 2], iy2 = b[4 * i + 3];
                float iArea = (ix2 - ix1) * (iy2 - iy1);
                for (int q = p + 1; q < order.Length; q++)
                {
                    if (suppressed[q]) continue;
                    int j = order[q];
                    float jArea = (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]);
                    float w = MathF.Max(0f, MathF.Min(ix2, b[4 * j + 2]) - MathF.Max(ix1, b[4 * j]));
                    float h = MathF.Max(0f, MathF.Min(iy2, b[4 * j + 3]) - MathF.Max(iy1, b[4 * j + 1]));
                    float intersection = w * h;
                    float iou = intersection / (iArea + jArea - intersection);
                    if (iou > threshold) suppressed[q] = true; // float IoU against the double threshold, as the kernel compares
                }
            }

            return kept;
        }

        private static float[] HostFloats(Tensor t)
        {
            if (t.numel() == 0) return Array.Empty<float>();
            using var scope = NewDisposeScope();
            return t.detach().to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        }

        private static long[] HostLongs(Tensor t)
        {
            if (t.numel() == 0) return Array.Empty<long>();
            using var scope = NewDisposeScope();
            return t.detach().to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        }
    }
}
