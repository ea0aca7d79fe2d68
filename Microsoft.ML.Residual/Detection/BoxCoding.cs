using System;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// The box regressions of the detectors, with torchvision's formulas: RetinaNet's deltas (its <c>BoxCoder</c> with weights
    /// 1, 1, 1, 1) and FCOS's distances (<c>BoxLinearCoder(normalize_by_size=True)</c>). Boxes and anchors are x1, y1, x2, y2 in
    /// the last dimension; leading dimensions broadcast (N × A × 4 regressions against A × 4 anchors, say).
    /// </summary>
    public static class BoxCoding
    {
        /// <summary>The largest dw, dh a decoded delta uses: log(1000/16), torchvision's <c>bbox_xform_clip</c>.</summary>
        public static readonly double DeltaClip = Math.Log(1000.0 / 16);

        /// <summary>RetinaNet's regression targets dx, dy, dw, dh of <paramref name="boxes"/> relative to <paramref name="anchors"/>: centre offsets over the anchor's size, log size ratios.</summary>
        public static Tensor EncodeDeltas(Tensor boxes, Tensor anchors)
        {
            if (boxes is null) throw new ArgumentNullException(nameof(boxes));
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            using var scope = NewDisposeScope();
            var (anchorWidth, anchorHeight, anchorX, anchorY) = CentreForm(anchors);
            var (width, height, x, y) = CentreForm(boxes);
            Tensor dx = x.Minus(anchorX).div(anchorWidth);
            Tensor dy = y.Minus(anchorY).div(anchorHeight);
            Tensor dw = width.div(anchorWidth).log();
            Tensor dh = height.div(anchorHeight).log();
            return stack(new[] { dx, dy, dw, dh }, -1).MoveToOuterDisposeScope();
        }

        /// <summary>The boxes that RetinaNet's <paramref name="deltas"/> (dx, dy, dw, dh) give for <paramref name="anchors"/>; dw and dh are clamped at <see cref="DeltaClip"/> first.</summary>
        public static Tensor DecodeDeltas(Tensor deltas, Tensor anchors)
        {
            if (deltas is null) throw new ArgumentNullException(nameof(deltas));
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            using var scope = NewDisposeScope();
            var (width, height, x, y) = CentreForm(anchors.to_type(deltas.dtype));
            Tensor dw = deltas.select(-1, 2).AtMost(DeltaClip), dh = deltas.select(-1, 3).AtMost(DeltaClip);
            Tensor centreX = deltas.select(-1, 0).mul(width).Plus(x);
            Tensor centreY = deltas.select(-1, 1).mul(height).Plus(y);
            Tensor halfWidth = dw.exp().mul(width).Times(0.5);
            Tensor halfHeight = dh.exp().mul(height).Times(0.5);
            return stack(new[] { centreX.Minus(halfWidth), centreY.Minus(halfHeight), centreX.Plus(halfWidth), centreY.Plus(halfHeight) }, -1)
                .MoveToOuterDisposeScope();
        }

        /// <summary>FCOS's regression targets of <paramref name="boxes"/> for <paramref name="anchors"/>: the distances from the anchor's centre to the box's left, top, right and bottom sides, over the anchor's width or height.</summary>
        public static Tensor EncodeDistances(Tensor boxes, Tensor anchors)
        {
            if (boxes is null) throw new ArgumentNullException(nameof(boxes));
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            using var scope = NewDisposeScope();
            Tensor x = Centre(anchors, 0), y = Centre(anchors, 1);
            Tensor distances = stack(new[]
            {
                x.Minus(boxes.select(-1, 0)), y.Minus(boxes.select(-1, 1)), boxes.select(-1, 2).Minus(x), boxes.select(-1, 3).Minus(y),
            }, -1);
            return distances.div(AnchorSizes(anchors)).MoveToOuterDisposeScope();
        }

        /// <summary>The boxes that FCOS's <paramref name="distances"/> (left, top, right, bottom over the anchor's size) give for <paramref name="anchors"/>.</summary>
        public static Tensor DecodeDistances(Tensor distances, Tensor anchors)
        {
            if (distances is null) throw new ArgumentNullException(nameof(distances));
            if (anchors is null) throw new ArgumentNullException(nameof(anchors));
            using var scope = NewDisposeScope();
            Tensor typed = anchors.to_type(distances.dtype);
            Tensor x = Centre(typed, 0), y = Centre(typed, 1);
            Tensor scaled = distances.mul(AnchorSizes(typed));
            return stack(new[]
            {
                x.Minus(scaled.select(-1, 0)), y.Minus(scaled.select(-1, 1)), x.Plus(scaled.select(-1, 2)), y.Plus(scaled.select(-1, 3)),
            }, -1).MoveToOuterDisposeScope();
        }

        // Width, height and centre x1 + ½·width, y1 + ½·height (BoxCoder's formulas).
        private static (Tensor Width, Tensor Height, Tensor X, Tensor Y) CentreForm(Tensor boxes)
        {
            Tensor width = boxes.select(-1, 2).Minus(boxes.select(-1, 0));
            Tensor height = boxes.select(-1, 3).Minus(boxes.select(-1, 1));
            return (width, height, boxes.select(-1, 0).PlusScaled(width, 0.5), boxes.select(-1, 1).PlusScaled(height, 0.5));
        }

        // ½·(x1 + x2) or ½·(y1 + y2) (BoxLinearCoder's formula).
        private static Tensor Centre(Tensor boxes, int axis) => boxes.select(-1, axis).Plus(boxes.select(-1, axis + 2)).Times(0.5);

        // Width, height, width, height.
        private static Tensor AnchorSizes(Tensor anchors)
        {
            Tensor width = anchors.select(-1, 2).Minus(anchors.select(-1, 0));
            Tensor height = anchors.select(-1, 3).Minus(anchors.select(-1, 1));
            return stack(new[] { width, height, width, height }, -1);
        }
    }
}
