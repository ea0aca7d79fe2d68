using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Residual.Onnx.Proto;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// Turns the network part of a graph (every node between the input and the network's output) to half precision: its
    /// float initializers become float16 constants, a Cast follows the input and another precedes the network's output, so inputs
    /// and outputs stay float32 and what follows the network (softmax, thresholds, arg-max) computes in float32.
    /// </summary>
    internal static class Float16Conversion
    {
        // Operator inputs that the ONNX specification types as float32 whatever the data's type.
        private static readonly Dictionary<string, int[]> Float32Inputs = new(StringComparer.Ordinal)
        {
            ["Resize"] = new[] { 1, 2 },
        };

        public static void Convert(ModelProto model, string input, string networkOutput)
        {
            var edit = new GraphEditing(model);
            HashSet<NodeProto> network = edit.NodesComputing(networkOutput);

            var converted = new HashSet<string>(StringComparer.Ordinal);
            foreach (NodeProto node in network)
            {
                int[] keep = Float32Inputs.GetValueOrDefault(node.OpType, Array.Empty<int>());
                for (int i = 0; i < node.Input.Count; i++)
                {
                    if (!keep.Contains(i) && edit.IsFloatInitializer(node.Input[i])) converted.Add(node.Input[i]);
                }
            }

            // The half-precision weights become Constant nodes of the same names: ML.NET reads the type of every initializer and
            // knows no float16 (ONNX Runtime makes constants of them all the same).
            var outside = new HashSet<string>(edit.Graph.Node.Where(n => !network.Contains(n)).SelectMany(n => n.Input), StringComparer.Ordinal);
            int at = 0;
            foreach (string name in converted.OrderBy(n => n, StringComparer.Ordinal))
            {
                if (outside.Contains(name)) throw new InvalidOperationException($"Initializer '{name}' is read inside and outside the network.");
                TensorProto tensor = edit.Initializers[name];
                Half[] half = edit.Floats(name).Select(v => (Half)v).ToArray();
                var value = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float16, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(half.AsSpan())) };
                value.Dims.AddRange(tensor.Dims);
                NodeProto constant = GraphEditing.NewNode("Constant", Array.Empty<string>(), name);
                constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
                edit.Graph.Node.Insert(at++, constant);
                edit.Graph.Initializer.Remove(tensor);
                edit.Initializers.Remove(name);
            }

            string halfInput = input + "/float16";
            edit.Rewire(input, halfInput, only: network);
            edit.Graph.Node.Insert(at, GraphEditing.NewNode("Cast", new[] { input }, halfInput, GraphEditing.IntAttribute("to", (long)TensorProto.Types.DataType.Float16)));

            NodeProto last = edit.Producers()[networkOutput];
            string halfOutput = networkOutput + "/float16";
            last.Output[last.Output.IndexOf(networkOutput)] = halfOutput;
            edit.InsertAfterProducer(halfOutput, GraphEditing.NewNode("Cast", new[] { halfOutput }, networkOutput, GraphEditing.IntAttribute("to", (long)TensorProto.Types.DataType.Float)));
            edit.Graph.ValueInfo.Clear();
        }
    }
}
