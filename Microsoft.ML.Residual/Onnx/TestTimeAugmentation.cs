using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Onnx.Proto;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>Views of each image that the scoring graph runs the network on and averages (the logits, before softmax).</summary>
    public enum TestTimeAugmentation
    {
        /// <summary>The image alone (the default).</summary>
        None,

        /// <summary>The image and its mirror image (left–right); a segmenter's mirrored output is mirrored back before averaging. Twice the work.</summary>
        Flip,

        /// <summary>
        /// Classifiers: the image, its mirror image and its four corner crops of 7/8 of each side (at the same scale, as
        /// torchvision's five-crop evaluation). Six times the work.
        /// </summary>
        FlipAndCrops,
    }

    /// <summary>
    /// Test-time augmentation as a graph edit: the network's nodes (from the input to the network's output) are repeated for
    /// each view of the input, sharing their weights, and the views' outputs averaged with <c>Mean</c> into the network's output,
    /// so post-processing and the graph's inputs and outputs stay as they were.
    /// </summary>
    internal static class TestTimeAugmentationGraph
    {
        /// <summary>Metadata key of the network output's rank (2 for a classifier's logits, 4 for a segmenter's).</summary>
        public const string RankKey = "network-output-rank";

        /// <summary>Metadata key recording the views a graph averages.</summary>
        public const string MetadataKey = "test-time-augmentation";

        public static void Apply(ModelProto model, string input, string networkOutput, TestTimeAugmentation augmentation)
        {
            if (augmentation == TestTimeAugmentation.None) return;
            if (!Enum.IsDefined(augmentation)) throw new ArgumentException($"{augmentation} is not a test-time augmentation; choose None, Flip or FlipAndCrops.");
            var edit = new GraphEditing(model);
            if (edit.Metadata(MetadataKey) is not null) throw new ArgumentException("The graph already averages augmented views.");
            int rank = int.TryParse(edit.Metadata(RankKey), out int r) ? r
                : throw new ArgumentException($"The graph does not record its network output's rank (metadata '{RankKey}'); export it again with this version of ResidualML.");
            if (augmentation == TestTimeAugmentation.FlipAndCrops && rank != 2)
                throw new ArgumentException("FlipAndCrops averages crops of a classifier's logits; a segmenter's output covers the whole image: use Flip.");
            long[] dims = model.Graph.Input.Single(i => i.Name == input).Type.TensorType.Shape.Dim.Select(d => d.DimValue).ToArray();
            if (dims.Length != 4 || dims[2] < 1 || dims[3] < 1) throw new ArgumentException("Test-time augmentation needs an N×C×H×W input of fixed height and width.");
            long height = dims[2], width = dims[3];

            HashSet<NodeProto> network = edit.NodesComputing(networkOutput);
            List<NodeProto> ordered = edit.Graph.Node.Where(network.Contains).ToList();
            NodeProto last = ordered[^1];
            string firstView = networkOutput + "/view0";
            last.Output[last.Output.IndexOf(networkOutput)] = firstView;

            var added = new List<NodeProto>();
            var outputs = new List<string> { firstView };
            string Constant(string name, long[] values)
            {
                edit.SetInitializer($"{OnnxGraphBuilder.ConstantPrefix}tta/{name}", new long[] { values.Length }, values, TensorProto.Types.DataType.Int64);
                return $"{OnnxGraphBuilder.ConstantPrefix}tta/{name}";
            }

            string Slice(string from, string to, string tag, long[] starts, long[] ends, long[] axes, long[] steps)
            {
                added.Add(GraphEditing.NewNode("Slice", new[] { from, Constant(tag + "/starts", starts), Constant(tag + "/ends", ends), Constant(tag + "/axes", axes), Constant(tag + "/steps", steps) }, to));
                return to;
            }

            string Mirror(string from, string to, string tag) => Slice(from, to, tag, new[] { -1L }, new[] { long.MinValue }, new[] { 3L }, new[] { -1L });

            var views = new List<(string Input, bool MirroredOutput)> { (Mirror(input, input + "/mirrored", "mirror"), rank == 4) };
            if (augmentation == TestTimeAugmentation.FlipAndCrops)
            {
                long cropHeight = height * 7 / 8, cropWidth = width * 7 / 8;
                foreach (var (y, x, corner) in new[] { (0L, 0L, "top-left"), (0L, width - cropWidth, "top-right"), (height - cropHeight, 0L, "bottom-left"), (height - cropHeight, width - cropWidth, "bottom-right") })
                {
                    views.Add((Slice(input, $"{input}/crop-{corner}", $"crop-{corner}", new[] { y, x }, new[] { y + cropHeight, x + cropWidth }, new[] { 2L, 3L }, new[] { 1L, 1L }), false));
                }
            }

            for (int v = 0; v < views.Count; v++)
            {
                string suffix = $"/view{v + 1}";
                var renamed = new Dictionary<string, string>(StringComparer.Ordinal) { [input] = views[v].Input };
                foreach (NodeProto node in ordered)
                {
                    NodeProto copy = node.Clone();
                    copy.Name = node.Name + suffix;
                    for (int i = 0; i < copy.Input.Count; i++)
                    {
                        if (renamed.TryGetValue(copy.Input[i], out string? to)) copy.Input[i] = to;
                    }

                    for (int o = 0; o < copy.Output.Count; o++)
                    {
                        if (copy.Output[o].Length == 0) continue;
                        string name = (copy.Output[o] == firstView ? networkOutput : copy.Output[o]) + suffix;
                        renamed[copy.Output[o]] = name;
                        copy.Output[o] = name;
                    }

                    added.Add(copy);
                }

                string output = networkOutput + suffix;
                outputs.Add(views[v].MirroredOutput ? Mirror(output, output + "/mirrored-back", $"mirror-back{v + 1}") : output);
            }

            added.Add(GraphEditing.NewNode("Mean", outputs.ToArray(), networkOutput));
            int at = edit.Graph.Node.IndexOf(last) + 1;
            for (int i = 0; i < added.Count; i++) edit.Graph.Node.Insert(at + i, added[i]);
            edit.SetMetadata(MetadataKey, augmentation.ToString());
        }
    }
}
