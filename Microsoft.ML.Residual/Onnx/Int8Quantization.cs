using System;
using System.Collections.Generic;
using System.Linq;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Residual.Onnx.Proto;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// Static INT8 quantisation in QDQ form, as ONNX Runtime fuses it into integer kernels: each convolution's and linear
    /// layer's weight becomes int8 (±63) with one symmetric scale per output channel, its bias int32 at the product of the input's
    /// and the weight's scales, and the activations around the quantisable operators (convolution, linear, residual sum,
    /// ReLU, pooling, concatenation) pass through QuantizeLinear → DequantizeLinear with uint8 ranges calibrated by running
    /// the float graph on example images (BatchNorm folded first, by the caller); the network's output stays float.
    /// </summary>
    internal static class Int8Quantization
    {
        private static readonly HashSet<string> WeightedOps = new(StringComparer.Ordinal) { "Conv", "Gemm", "MatMul" };

        private static readonly HashSet<string> ActivationOps = new(StringComparer.Ordinal)
        {
            "Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat",
        };

        private const int Bins = 2048;

        /// <summary>
        /// Weight levels each side of zero: 63, not 127, so that no CPU's integer kernels saturate — ONNX Runtime's uint8×int8
        /// kernels on x86 without VNNI sum pairs of products in 16 bits, and 2·255·63 fits where 2·255·127 does not.
        /// </summary>
        internal const int WeightLevels = 63;

        /// <summary>Quantises <paramref name="model"/> in place; <paramref name="rows"/> are images as the graph's input reads them (C·H·W floats each).</summary>
        public static void Quantize(ModelProto model, string input, string networkOutput, IReadOnlyList<float[]> rows, OnnxCalibration calibration)
        {
            if (rows.Count == 0) throw new ArgumentException("INT8 quantisation needs at least one calibration image.", nameof(rows));
            var edit = new GraphEditing(model);
            HashSet<NodeProto> network = edit.NodesComputing(networkOutput);
            List<string> activations = ActivationsToQuantize(edit, network, networkOutput);
            Dictionary<string, (float Low, float High)> ranges = Calibrate(model, input, activations, rows, calibration);

            var quantizedWeights = new Dictionary<string, (string Dequantized, float[] Scales, int Axis)>(StringComparer.Ordinal);
            foreach (NodeProto node in edit.Graph.Node.Where(n => network.Contains(n) && WeightedOps.Contains(n.OpType)).ToList())
            {
                if (ranges.TryGetValue(node.Input[0], out var inputRange)) QuantizeWeights(edit, node, Scale(inputRange).Scale, quantizedWeights);
            }

            edit.RemoveUnusedInitializers();

            foreach (string tensor in activations)
            {
                (float scale, byte zeroPoint) = Scale(ranges[tensor]);
                edit.SetInitializer(tensor + "/scale", Array.Empty<long>(), new[] { scale }, TensorProto.Types.DataType.Float);
                edit.SetInitializer(tensor + "/zero_point", Array.Empty<long>(), new[] { zeroPoint }, TensorProto.Types.DataType.Uint8);
                NodeProto quantize = GraphEditing.NewNode("QuantizeLinear", new[] { tensor, tensor + "/scale", tensor + "/zero_point" }, tensor + "/quantized");
                NodeProto dequantize = GraphEditing.NewNode("DequantizeLinear", new[] { tensor + "/quantized", tensor + "/scale", tensor + "/zero_point" }, tensor + "/dequantized");
                edit.Rewire(tensor, tensor + "/dequantized", except: quantize);
                edit.InsertAfterProducer(tensor, quantize, dequantize);
            }

            edit.Graph.ValueInfo.Clear();
        }

        // The float activations read or written by quantisable operators of the network, not the network's output; a convolution's output that only a ReLU or Clip reads is left to that activation's
        // output, so ONNX Runtime can fold the activation into the quantised convolution.
        private static List<string> ActivationsToQuantize(GraphEditing edit, HashSet<NodeProto> network, string networkOutput)
        {
            var readers = edit.Graph.Node.SelectMany(n => n.Input.Select(i => (i, n))).ToLookup(p => p.i, p => p.n, StringComparer.Ordinal);
            var chosen = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            bool IsActivation(string name) => name.Length > 0 && !edit.Initializers.ContainsKey(name);
            void Choose(string name)
            {
                if (IsActivation(name) && name != networkOutput && seen.Add(name)) chosen.Add(name);
            }

            foreach (NodeProto node in edit.Graph.Node.Where(n => network.Contains(n) && ActivationOps.Contains(n.OpType)))
            {
                if (node.OpType == "Add" && !node.Input.All(IsActivation)) continue;
                IEnumerable<string> reads = WeightedOps.Contains(node.OpType) ? node.Input.Take(1) : node.OpType == "Clip" ? node.Input.Take(1) : node.Input;
                foreach (string read in reads) Choose(read);
                string output = node.Output[0];
                bool activationFollows = readers[output].Count() == 1 && readers[output].First().OpType is "Relu" or "Clip";
                if (!activationFollows) Choose(output);
            }

            return chosen;
        }

        private static (float Scale, byte ZeroPoint) Scale((float Low, float High) range)
        {
            double low = Math.Min(range.Low, 0), high = Math.Max(range.High, 0);
            double scale = (high - low) / 255.0;
            if (!(scale > 0) || double.IsInfinity(scale)) return (1f, 0);
            return ((float)scale, (byte)Math.Clamp(Math.Round(-low / scale), 0, 255));
        }

        // Each weight is quantised once (views of test-time augmentation share it); each node's bias on its own, at its input's scale.
        private static void QuantizeWeights(GraphEditing edit, NodeProto node, float inputScale, Dictionary<string, (string Dequantized, float[] Scales, int Axis)> done)
        {
            string weightName = node.Input[1];
            if (!done.TryGetValue(weightName, out var weight))
            {
                if (!edit.IsFloatInitializer(weightName)) return;
                long[] dims = edit.Initializers[weightName].Dims.ToArray();
                int axis = node.OpType switch
                {
                    "Conv" => 0,
                    "Gemm" => GraphEditing.IntAttribute(node, "transB", 0) == 1 ? 0 : 1,
                    _ => 1,
                };
                if (dims.Length < 2 || (node.OpType != "Conv" && dims.Length != 2)) return;
                float[] values = edit.Floats(weightName);
                int channels = checked((int)dims[axis]);
                long inner = dims.Skip(axis + 1).Aggregate(1L, (a, b) => a * b);
                var maxima = new double[channels];
                for (long i = 0; i < values.Length; i++)
                {
                    int c = (int)(i / inner % channels);
                    maxima[c] = Math.Max(maxima[c], Math.Abs(values[i]));
                }

                float[] scales = maxima.Select(m => m > 0 ? (float)(m / WeightLevels) : 1f).ToArray();
                var quantized = new sbyte[values.Length];
                for (long i = 0; i < values.Length; i++)
                {
                    int c = (int)(i / inner % channels);
                    quantized[i] = (sbyte)Math.Clamp(Math.Round(values[i] / (double)scales[c]), -WeightLevels, WeightLevels);
                }

                weight = (Dequantize(edit, weightName, dims, quantized, scales, new sbyte[channels], TensorProto.Types.DataType.Int8, axis, node), scales, axis);
                done[weightName] = weight;
            }

            node.Input[1] = weight.Dequantized;

            // The bias in int32 at the input's scale times each channel's weight scale (what integer kernels accumulate in).
            int outputs = weight.Scales.Length;
            if (node.Input.Count > 2 && edit.IsFloatInitializer(node.Input[2]) && outputs == edit.Initializers[node.Input[2]].Dims.Aggregate(1L, (a, b) => a * b))
            {
                float[] bias = edit.Floats(node.Input[2]);
                float[] biasScales = weight.Scales.Select(s => s * inputScale).ToArray();
                int[] biasQuantized = bias.Select((b, c) => (int)Math.Clamp(Math.Round(b / (double)biasScales[c]), int.MinValue, int.MaxValue)).ToArray();
                node.Input[2] = Dequantize(edit, $"{node.Input[2]}@{node.Output[0]}", new long[] { outputs }, biasQuantized, biasScales, new int[outputs],
                    TensorProto.Types.DataType.Int32, 0, node);
            }
        }

        // A DequantizeLinear of stored integers, placed before the node that reads it; returns its output.
        private static string Dequantize<T>(GraphEditing edit, string stem, long[] dims, T[] values, float[] scales, T[] zeroPoints,
            TensorProto.Types.DataType type, int axis, NodeProto reader)
            where T : struct
        {
            edit.SetInitializer(stem + "/quantized", dims, values, type);
            edit.SetInitializer(stem + "/scale", new long[] { scales.Length }, scales, TensorProto.Types.DataType.Float);
            edit.SetInitializer(stem + "/zero_point", new long[] { zeroPoints.Length }, zeroPoints, type);
            NodeProto dequantize = GraphEditing.NewNode("DequantizeLinear", new[] { stem + "/quantized", stem + "/scale", stem + "/zero_point" }, stem + "/dequantized",
                GraphEditing.IntAttribute("axis", axis));
            edit.Graph.Node.Insert(edit.Graph.Node.IndexOf(reader), dequantize);
            return stem + "/dequantized";
        }

        // Runs the float graph with every chosen activation as an extra output: min/max in one pass; for percentiles, a
        // histogram of each activation over its min/max range in a second pass.
        private static Dictionary<string, (float Low, float High)> Calibrate(
            ModelProto model, string input, List<string> activations, IReadOnlyList<float[]> rows, OnnxCalibration calibration)
        {
            ModelProto probe = model.Clone();
            foreach (string name in activations)
            {
                probe.Graph.Output.Add(new ValueInfoProto
                {
                    Name = name,
                    Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
                });
            }

            long[] inputDims = model.Graph.Input.First(i => i.Name == input).Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue).ToArray();
            long rowLength = inputDims.Aggregate(1L, (a, b) => a * b);
            if (rows.Any(r => r.Length != rowLength))
                throw new ArgumentException($"Every calibration image must hold {rowLength} values ({string.Join("×", inputDims)}), as the graph's input '{input}' reads them.");

            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            using var session = new InferenceSession(probe.ToByteArray(), options);
            var low = activations.ToDictionary(a => a, _ => float.PositiveInfinity, StringComparer.Ordinal);
            var high = activations.ToDictionary(a => a, _ => float.NegativeInfinity, StringComparer.Ordinal);
            void EachBatch(Action<string, ReadOnlyMemory<float>> visit)
            {
                int batch = Math.Max(1, calibration.BatchSize);
                for (int start = 0; start < rows.Count; start += batch)
                {
                    int count = Math.Min(batch, rows.Count - start);
                    var data = new float[count * rowLength];
                    for (int r = 0; r < count; r++) rows[start + r].CopyTo(data, r * rowLength);
                    var tensor = new DenseTensor<float>(data, new[] { count }.Concat(inputDims.Select(d => (int)d)).ToArray());
                    using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(input, tensor) }, activations);
                    foreach (var result in results) visit(result.Name, ((DenseTensor<float>)result.AsTensor<float>()).Buffer);
                }
            }

            EachBatch((name, values) =>
            {
                foreach (float v in values.Span)
                {
                    if (v < low[name]) low[name] = v;
                    if (v > high[name]) high[name] = v;
                }
            });
            if (calibration.Method == CalibrationMethod.MinMax) return activations.ToDictionary(a => a, a => (low[a], high[a]), StringComparer.Ordinal);

            var histograms = activations.ToDictionary(a => a, _ => new long[Bins], StringComparer.Ordinal);
            EachBatch((name, values) =>
            {
                float lo = low[name], width = (high[name] - lo) / Bins;
                long[] counts = histograms[name];
                foreach (float v in values.Span) counts[width > 0 ? Math.Clamp((int)((v - lo) / width), 0, Bins - 1) : 0]++;
            });
            double share = Math.Clamp(calibration.Percentile, 50, 100) / 100.0;
            return activations.ToDictionary(a => a, a =>
            {
                long[] counts = histograms[a];
                long total = counts.Sum();
                float lo = low[a], width = (high[a] - lo) / Bins;
                float Edge(double fraction)
                {
                    long cumulative = 0;
                    for (int b = 0; b < Bins; b++)
                    {
                        cumulative += counts[b];
                        if (cumulative >= fraction * total) return lo + (b + 1) * width;
                    }

                    return high[a];
                }

                float lower = 1 - share > 0 ? Edge(1 - share) - width : lo;
                return (Math.Max(lo, lower), Math.Min(high[a], Edge(share)));
            }, StringComparer.Ordinal);
        }
    }
}
