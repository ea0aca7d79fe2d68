using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// What a detector's exported graph does after the network: torchvision's post-processing, written as ONNX operators so that a
    /// saved model finds boxes with ONNX Runtime alone.
    /// </summary>
    internal sealed class DetectionPostprocessing
    {
        /// <summary>RetinaNet or FCOS: how scores are made and boxes decoded.</summary>
        public DetectorKind Kind { get; init; }

        /// <summary>The anchors of the network's input size, A×4 (x1, y1, x2, y2), in the network's order.</summary>
        public Tensor Anchors { get; init; } = null!;

        /// <summary>Anchors per pyramid level, finest first.</summary>
        public IReadOnlyList<int> AnchorsPerLevel { get; init; } = Array.Empty<int>();

        /// <summary>The K class names, in class order.</summary>
        public IReadOnlyList<string> ClassNames { get; init; } = Array.Empty<string>();

        /// <summary>Candidates scoring at most this are dropped.</summary>
        public double ScoreThreshold { get; init; }

        /// <summary>A box overlapping a better one of its class by more than this IoU is suppressed.</summary>
        public double NmsThreshold { get; init; }

        /// <summary>The best candidates kept per pyramid level before NMS.</summary>
        public int CandidatesPerLevel { get; init; }

        /// <summary>The most detections per image, after NMS.</summary>
        public int MaxDetections { get; init; }

        /// <summary>
        /// A graph input (float 1×2: the original image's height and width in pixels) the boxes are scaled to; null when the boxes stay in
        /// pixels of the network's input, or are scaled by <see cref="FixedImageSize"/>.
        /// </summary>
        public string? ImageSizeInputName { get; init; }

        /// <summary>The original images' one size (height, width) when every image has it; null otherwise.</summary>
        public (double Height, double Width)? FixedImageSize { get; init; }

        /// <summary>Output: the detections' boxes, 4 floats each (x1, y1, x2, y2 in pixels of the original image).</summary>
        public string BoxesName { get; init; } = "PredictedBoundingBoxes";

        /// <summary>Output: the detections' scores.</summary>
        public string ScoresName { get; init; } = "Score";

        /// <summary>Output: the detections' class names (strings).</summary>
        public string LabelsName { get; init; } = "PredictedLabel";
    }

    /// <summary>Emits <see cref="DetectionPostprocessing"/> after a detector's raw output in an <see cref="OnnxGraphBuilder"/>.</summary>
    internal static class DetectionGraph
    {
        /// <summary>
        /// Appends decoding, score threshold, per-level top-k, per-class NonMaxSuppression and the final top-k to the network's 1×A×(K+4|5)
        /// output <paramref name="raw"/>; returns the three outputs (boxes flattened to 4·D, scores D, class names D).
        /// </summary>
        public static (string Boxes, string Scores, string Labels) Emit(OnnxGraphBuilder b, GraphValue raw, DetectionPostprocessing p, int imageHeight, int imageWidth)
        {
            long anchors = raw.Shape[1], values = raw.Shape[2];
            int classes = p.ClassNames.Count;
            long expected = classes + (p.Kind == DetectorKind.Fcos ? 5 : 4);
            if (raw.Shape[0] != 1 || values != expected || p.Anchors.shape[0] != anchors || p.AnchorsPerLevel.Sum() != anchors)
                throw new InvalidOperationException(
                    $"The detector's output is [{string.Join(", ", raw.Shape)}]; expected 1 × {p.Anchors.shape[0]} anchors × {expected} values for {classes} classes.");

            string I64(params long[] v)
            {
                using Tensor value = torch.tensor(v, ScalarType.Int64);
                return b.ConstantName(value);
            }

            string F32(float[] v, long[] shape)
            {
                using Tensor value = torch.tensor(v, shape);
                return b.ConstantName(value);
            }
            string Slice(string x, long[] starts, long[] ends, long[] axes) => b.Op("Slice", new[] { x, I64(starts), I64(ends), I64(axes) });
            string Column(string x, long column) => Slice(x, new[] { column }, new[] { column + 1 }, new[] { 1L });

            string output = b.Op("Reshape", new[] { raw.Name, I64(anchors, values) });
            var boxes = new List<string>();
            var scores = new List<string>();
            var labels = new List<string>();
            int start = 0;
            for (int level = 0; level < p.AnchorsPerLevel.Count; level++)
            {
                int count = p.AnchorsPerLevel[level], end = start + count;
                string logits = Slice(output, new long[] { start, 0 }, new long[] { end, classes }, new long[] { 0, 1 });
                string codes = Slice(output, new long[] { start, classes }, new long[] { end, classes + 4 }, new long[] { 0, 1 });
                string score = b.Op("Sigmoid", new[] { logits });
                if (p.Kind == DetectorKind.Fcos)
                {
                    // torchvision's FCOS: √(σ(class logit) · σ(centerness)).
                    string centerness = b.Op("Sigmoid", new[] { Slice(output, new long[] { start, classes + 4 }, new long[] { end, classes + 5 }, new long[] { 0, 1 }) });
                    score = b.Op("Sqrt", new[] { b.Op("Mul", new[] { score, centerness }) });
                }

                // The best candidates of the level, then those above the threshold: the same set as torchvision's threshold-then-top-k.
                string flat = b.Op("Reshape", new[] { score, I64(-1) });
                long k = Math.Min(p.CandidatesPerLevel, (long)count * classes);
                string[] top = b.Ops("TopK", new[] { flat, I64(k) }, 2, OnnxGraphBuilder.Int("axis", 0), OnnxGraphBuilder.Int("largest", 1), OnnxGraphBuilder.Int("sorted", 1));
                string keep = b.Op("Greater", new[] { top[0], F32(new[] { (float)p.ScoreThreshold }, Array.Empty<long>()) });
                string kept = b.Op("Compress", new[] { top[0], keep }, OnnxGraphBuilder.Int("axis", 0));
                string index = b.Op("Compress", new[] { top[1], keep }, OnnxGraphBuilder.Int("axis", 0));
                string anchor = b.Op("Div", new[] { index, I64(classes) });
                labels.Add(b.Op("Mod", new[] { index, I64(classes) }));
                scores.Add(kept);

                using Tensor levelAnchors = p.Anchors.narrow(0, start, count).to(ScalarType.Float32).contiguous();
                string reference = b.Op("Gather", new[] { b.ConstantName(levelAnchors), anchor }, OnnxGraphBuilder.Int("axis", 0));
                string code = b.Op("Gather", new[] { codes, anchor }, OnnxGraphBuilder.Int("axis", 0));
                string decoded = p.Kind == DetectorKind.Fcos ? DecodeDistances(b, code, reference, Column, F32) : DecodeDeltas(b, code, reference, Column, F32);
                // Clipped to the network's input, as torchvision's clip_boxes_to_image.
                string clipped = b.Op("Min", new[] { b.Op("Max", new[] { decoded, F32(new float[4], new long[] { 1, 4 }) }),
                    F32(new float[] { imageWidth, imageHeight, imageWidth, imageHeight }, new long[] { 1, 4 }) });
                boxes.Add(clipped);
                start = end;
            }

            string allBoxes = b.Op("Concat", boxes.ToArray(), OnnxGraphBuilder.Int("axis", 0));
            string allScores = b.Op("Concat", scores.ToArray(), OnnxGraphBuilder.Int("axis", 0));
            string allLabels = b.Op("Concat", labels.ToArray(), OnnxGraphBuilder.Int("axis", 0));

            // Per-class NMS as one NMS over boxes moved apart by class (torchvision's batched_nms): the offset exceeds every coordinate.
            float offset = Math.Max(imageWidth, imageHeight) + 1;
            string shift = b.Op("Mul", new[] { b.Op("Cast", new[] { allLabels }, OnnxGraphBuilder.Int("to", (long)Proto.TensorProto.Types.DataType.Float)),
                F32(new[] { offset }, Array.Empty<long>()) });
            string shifted = b.Op("Add", new[] { allBoxes, b.Op("Unsqueeze", new[] { shift, I64(1) }) });
            string selected = b.Op("NonMaxSuppression", new[]
            {
                b.Op("Unsqueeze", new[] { shifted, I64(0) }), b.Op("Reshape", new[] { allScores, I64(1, 1, -1) }),
                I64(p.MaxDetections), F32(new[] { (float)p.NmsThreshold }, new long[] { 1 }),
            });
            string keptIndex = b.Op("Reshape", new[] { Slice(selected, new long[] { 2 }, new long[] { 3 }, new long[] { 1 }), I64(-1) });
            string finalBoxes = b.Op("Gather", new[] { allBoxes, keptIndex }, OnnxGraphBuilder.Int("axis", 0));
            string finalScores = b.Op("Gather", new[] { allScores, keptIndex }, OnnxGraphBuilder.Int("axis", 0));
            string finalLabels = b.Op("Gather", new[] { allLabels, keptIndex }, OnnxGraphBuilder.Int("axis", 0));

            // From the network's pixels to the original image's.
            if (p.ImageSizeInputName is string sizeInput)
            {
                string ratio = b.Op("Div", new[] { sizeInput, F32(new float[] { imageHeight, imageWidth }, new long[] { 1, 2 }) });
                finalBoxes = b.Op("Mul", new[] { finalBoxes, b.Op("Gather", new[] { ratio, I64(1, 0, 1, 0) }, OnnxGraphBuilder.Int("axis", 1)) });
            }
            else if (p.FixedImageSize is var (height, width) && (height != imageHeight || width != imageWidth))
            {
                float sx = (float)(width / imageWidth), sy = (float)(height / imageHeight);
                finalBoxes = b.Op("Mul", new[] { finalBoxes, F32(new[] { sx, sy, sx, sy }, new long[] { 1, 4 }) });
            }

            b.AddRawNode("Reshape", new[] { finalBoxes, I64(-1) }, p.BoxesName);
            b.AddRawNode("Identity", new[] { finalScores }, p.ScoresName);
            using Tensor placeholder = torch.zeros(1, ScalarType.Int64);
            string names = b.GatherStrings(new GraphValue(finalLabels, placeholder), p.ClassNames);
            b.AddRawNode("Identity", new[] { names }, p.LabelsName);
            return (p.BoxesName, p.ScoresName, p.LabelsName);
        }

        // torchvision's BoxCoder (weights 1, 1, 1, 1): centre moved by (dx·w, dy·h), size scaled by exp(dw), exp(dh), clamped at log(1000/16).
        private static string DecodeDeltas(OnnxGraphBuilder b, string codes, string anchors, Func<string, long, string> column, Func<float[], long[], string> f32)
        {
            string x1 = column(anchors, 0), y1 = column(anchors, 1), x2 = column(anchors, 2), y2 = column(anchors, 3);
            string half = f32(new[] { 0.5f }, Array.Empty<long>());
            string width = b.Op("Sub", new[] { x2, x1 }), height = b.Op("Sub", new[] { y2, y1 });
            string centreX = b.Op("Add", new[] { x1, b.Op("Mul", new[] { width, half }) });
            string centreY = b.Op("Add", new[] { y1, b.Op("Mul", new[] { height, half }) });
            string clip = f32(new[] { (float)Detection.BoxCoding.DeltaClip }, Array.Empty<long>());
            string dw = b.Op("Min", new[] { column(codes, 2), clip }), dh = b.Op("Min", new[] { column(codes, 3), clip });
            string predictedX = b.Op("Add", new[] { b.Op("Mul", new[] { column(codes, 0), width }), centreX });
            string predictedY = b.Op("Add", new[] { b.Op("Mul", new[] { column(codes, 1), height }), centreY });
            string halfWidth = b.Op("Mul", new[] { b.Op("Mul", new[] { b.Op("Exp", new[] { dw }), width }), half });
            string halfHeight = b.Op("Mul", new[] { b.Op("Mul", new[] { b.Op("Exp", new[] { dh }), height }), half });
            return b.Op("Concat", new[]
            {
                b.Op("Sub", new[] { predictedX, halfWidth }), b.Op("Sub", new[] { predictedY, halfHeight }),
                b.Op("Add", new[] { predictedX, halfWidth }), b.Op("Add", new[] { predictedY, halfHeight }),
            }, OnnxGraphBuilder.Int("axis", 1));
        }

        // torchvision's BoxLinearCoder (normalised by size): the anchor's centre minus/plus the distances times the anchor's width and height.
        private static string DecodeDistances(OnnxGraphBuilder b, string codes, string anchors, Func<string, long, string> column, Func<float[], long[], string> f32)
        {
            string x1 = column(anchors, 0), y1 = column(anchors, 1), x2 = column(anchors, 2), y2 = column(anchors, 3);
            string half = f32(new[] { 0.5f }, Array.Empty<long>());
            string centreX = b.Op("Mul", new[] { b.Op("Add", new[] { x1, x2 }), half });
            string centreY = b.Op("Mul", new[] { b.Op("Add", new[] { y1, y2 }), half });
            string width = b.Op("Sub", new[] { x2, x1 }), height = b.Op("Sub", new[] { y2, y1 });
            return b.Op("Concat", new[]
            {
                b.Op("Sub", new[] { centreX, b.Op("Mul", new[] { column(codes, 0), width }) }),
                b.Op("Sub", new[] { centreY, b.Op("Mul", new[] { column(codes, 1), height }) }),
                b.Op("Add", new[] { centreX, b.Op("Mul", new[] { column(codes, 2), width }) }),
                b.Op("Add", new[] { centreY, b.Op("Mul", new[] { column(codes, 3), height }) }),
            }, OnnxGraphBuilder.Int("axis", 1));
        }
    }
}
