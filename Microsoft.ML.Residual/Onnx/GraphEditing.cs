using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Residual.Onnx.Proto;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>What the graph passes (folding, half precision, quantisation) share: initializer data, producers, consumers, new nodes.</summary>
    internal sealed class GraphEditing
    {
        public GraphEditing(ModelProto model)
        {
            Model = model;
            Graph = model.Graph ?? throw new ArgumentException("The ONNX model has no graph.");
            Initializers = Graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
        }

        public ModelProto Model { get; }

        public GraphProto Graph { get; }

        public Dictionary<string, TensorProto> Initializers { get; }

        /// <summary>The node that writes each tensor.</summary>
        public Dictionary<string, NodeProto> Producers() =>
            Graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).Where(p => p.o.Length > 0).ToDictionary(p => p.o, p => p.n, StringComparer.Ordinal);

        /// <summary>How many node inputs and graph outputs read each tensor.</summary>
        public Dictionary<string, int> ReaderCounts()
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (string name in Graph.Node.SelectMany(n => n.Input).Concat(Graph.Output.Select(o => o.Name)))
            {
                if (name.Length > 0) counts[name] = counts.GetValueOrDefault(name) + 1;
            }

            return counts;
        }

        /// <summary>The nodes <paramref name="output"/> depends on (the network, when it is the network's output).</summary>
        public HashSet<NodeProto> NodesComputing(string output)
        {
            Dictionary<string, NodeProto> producers = Producers();
            if (!producers.ContainsKey(output)) throw new ArgumentException($"No node of the graph writes '{output}'.");
            var nodes = new HashSet<NodeProto>();
            var pending = new Stack<string>(new[] { output });
            while (pending.Count > 0)
            {
                if (!producers.TryGetValue(pending.Pop(), out NodeProto? node) || !nodes.Add(node)) continue;
                foreach (string read in node.Input.Where(i => i.Length > 0)) pending.Push(read);
            }

            return nodes;
        }

        /// <summary>A metadata value of the model, or null.</summary>
        public string? Metadata(string key) => Model.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value;

        /// <summary>Sets (or replaces) a metadata value.</summary>
        public void SetMetadata(string key, string value)
        {
            StringStringEntryProto? entry = Model.MetadataProps.FirstOrDefault(p => p.Key == key);
            if (entry is null) Model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            else entry.Value = value;
        }

        public bool IsFloatInitializer(string name) =>
            Initializers.TryGetValue(name, out TensorProto? t) && t.DataType == (int)TensorProto.Types.DataType.Float;

        /// <summary>The float32 values of an initializer.</summary>
        public float[] Floats(string name)
        {
            TensorProto t = Initializers[name];
            if (t.DataType != (int)TensorProto.Types.DataType.Float) throw new InvalidOperationException($"Initializer '{name}' is not float32.");
            return t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : t.FloatData.ToArray();
        }

        /// <summary>Adds an initializer, or replaces the one of that name.</summary>
        public void SetInitializer<T>(string name, long[] dims, T[] values, TensorProto.Types.DataType type)
            where T : struct
        {
            var proto = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
            proto.Dims.AddRange(dims);
            if (Initializers.TryGetValue(name, out TensorProto? old)) Graph.Initializer[Graph.Initializer.IndexOf(old)] = proto;
            else Graph.Initializer.Add(proto);
            Initializers[name] = proto;
        }

        /// <summary>Removes the initializers no node reads any more.</summary>
        public void RemoveUnusedInitializers()
        {
            var read = new HashSet<string>(Graph.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
            foreach (TensorProto unused in Graph.Initializer.Where(i => !read.Contains(i.Name)).ToList())
            {
                Graph.Initializer.Remove(unused);
                Initializers.Remove(unused.Name);
            }
        }

        /// <summary>A node of <paramref name="op"/> from <paramref name="inputs"/> to <paramref name="output"/> (not yet in the graph).</summary>
        public static NodeProto NewNode(string op, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = output + "/" + op };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            return node;
        }

        public static AttributeProto IntAttribute(string name, long value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        /// <summary>The float attribute <paramref name="name"/> of <paramref name="node"/>, or <paramref name="otherwise"/>.</summary>
        public static float FloatAttribute(NodeProto node, string name, float otherwise) =>
            node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : otherwise;

        /// <summary>The int attribute <paramref name="name"/> of <paramref name="node"/>, or <paramref name="otherwise"/>.</summary>
        public static long IntAttribute(NodeProto node, string name, long otherwise) =>
            node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : otherwise;

        /// <summary>Makes every node input (and nothing else) that reads <paramref name="from"/> read <paramref name="to"/>, except in <paramref name="except"/>.</summary>
        public void Rewire(string from, string to, ISet<NodeProto>? only = null, NodeProto? except = null)
        {
            foreach (NodeProto node in Graph.Node)
            {
                if (ReferenceEquals(node, except) || (only != null && !only.Contains(node))) continue;
                for (int i = 0; i < node.Input.Count; i++)
                {
                    if (node.Input[i] == from) node.Input[i] = to;
                }
            }
        }

        /// <summary>Inserts <paramref name="nodes"/> right after the node that writes <paramref name="tensor"/> (first, for a graph input or initializer).</summary>
        public void InsertAfterProducer(string tensor, params NodeProto[] nodes)
        {
            int index = 0;
            for (int i = 0; i < Graph.Node.Count; i++)
            {
                if (Graph.Node[i].Output.Contains(tensor))
                {
                    index = i + 1;
                    break;
                }
            }

            for (int i = 0; i < nodes.Length; i++) Graph.Node.Insert(index + i, nodes[i]);
        }
    }
}
