using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Google.Protobuf;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.ML.Residual.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// Reads the weights back out of an ONNX model: its initializers are named by state-dict keys (the
    /// exporter's rule), so an exported model can be loaded into a fresh module and trained further.
    /// </summary>
    public static class OnnxWeights
    {
        private const int MaxDimensions = 64;

        /// <summary>The numeric initializers of the ONNX model at <paramref name="path"/>, except the exporter's own constants.</summary>
        /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
        /// <exception cref="WeightsFormatException">The file is not a readable ONNX model.</exception>
        public static TensorDictionary Read(string path)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"The ONNX model '{path}' does not exist.", path);
            using FileStream stream = File.OpenRead(path);
            return Read(stream, path);
        }

        /// <summary>The numeric initializers of an ONNX model held in memory (<paramref name="sourceName"/> names it in messages).</summary>
        /// <exception cref="WeightsFormatException">The bytes are not a readable ONNX model: not protobuf, truncated, no graph,
        /// repeated metadata keys or initializer names, or an initializer whose data does not match its shape.</exception>
        public static TensorDictionary Read(Stream model, string sourceName = "<stream>")
        {
            ArgumentNullException.ThrowIfNull(model);
            ModelProto proto;
            try
            {
                proto = ModelProto.Parser.ParseFrom(model);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new WeightsFormatException(sourceName, null, $"this is not a readable ONNX model ({e.Message}). Export it again with OnnxExporter.Export.", e);
            }

            if (proto.Graph is null) throw new WeightsFormatException(sourceName, null, "the ONNX model has no graph.");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (StringStringEntryProto entry in proto.MetadataProps)
            {
                if (!metadata.TryAdd(entry.Key, entry.Value))
                    throw new WeightsFormatException(sourceName, null, $"the ONNX model's metadata names '{entry.Key}' twice; the model is corrupt. Export it again.");
            }

            if (metadata.TryGetValue(OnnxModelConverter.PrecisionKey, out string? precision) && precision == "int8")
            {
                throw new WeightsFormatException(sourceName, null,
                    "the graph is quantised to INT8, so it does not hold the float weights. Read the float32 model (export it with precision float32) or a training checkpoint.");
            }

            var result = new TensorDictionary(sourceName, metadata);
            var tensors = new List<(string Name, Tensor Value)>();
            var index = new Dictionary<string, int>(StringComparer.Ordinal);
            try
            {
                // Initializers, and the Constant nodes a float16 graph keeps its weights in (ML.NET reads every initializer's type and has no float16).
                IEnumerable<TensorProto> constants = proto.Graph.Node.Where(n => n.OpType == "Constant" && n.Output.Count == 1)
                    .Select(n => n.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } t ? WithName(t, n.Output[0]) : null).OfType<TensorProto>();
                foreach (TensorProto initializer in proto.Graph.Initializer.Concat(constants))
                {
                    if (initializer.Name.StartsWith(OnnxGraphBuilder.ConstantPrefix, StringComparison.Ordinal)) continue;
                    ScalarType? type = OnnxTypes.ToScalarType(initializer.DataType);
                    if (type is null) continue;
                    if (!index.TryAdd(initializer.Name, tensors.Count))
                        throw new WeightsFormatException(sourceName, initializer.Name, "the ONNX graph has two initializers of this name; the model is corrupt. Export it again.");
                    using var scope = NewDisposeScope();
                    Tensor tensor = ToTensor(initializer, type.Value, sourceName);
                    if (type == ScalarType.Float16) tensor = tensor.to_type(ScalarType.Float32);
                    tensors.Add((initializer.Name, scope.MoveToOuter(tensor)));
                }

                // A folded graph: the BatchNorms and convolution weights as they were before folding.
                if (metadata.TryGetValue(BatchNormFolding.MetadataKey, out string? folded))
                {
                    float[] Read(string name) => index.TryGetValue(name, out int at) ? tensors[at].Value.data<float>().ToArray()
                        : throw new WeightsFormatException(sourceName, name, "the graph's metadata lists this folded convolution weight but the graph does not hold it; the model is corrupt. Export it again.");
                    foreach (var (name, values) in BatchNormFolding.Unfold(folded, Read).ToList())
                    {
                        if (index.TryGetValue(name, out int at))
                        {
                            using Tensor unfolded = torch.tensor(values, tensors[at].Value.shape);
                            tensors[at].Value.copy_(unfolded);
                        }
                        else
                        {
                            index[name] = tensors.Count;
                            tensors.Add((name, torch.tensor(values)));
                        }
                    }
                }

                foreach (var (name, value) in tensors) result.Add(name, value);
            }
            catch (FormatException e)
            {
                foreach (var (_, value) in tensors) value.Dispose();
                result.Dispose();
                throw new WeightsFormatException(sourceName, null, e.Message + " Export the model again.", e);
            }
            catch
            {
                foreach (var (_, value) in tensors) value.Dispose();
                result.Dispose();
                throw;
            }

            return result;
        }

        /// <summary>Loads the weights of the ONNX model at <paramref name="path"/> into <paramref name="module"/> (see <see cref="StateDict.Load(nn.Module, TensorDictionary, bool, StateDictLoadOptions?)"/>).</summary>
        /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
        /// <exception cref="WeightsFormatException">The file is not a readable ONNX model.</exception>
        /// <exception cref="StateDictMismatchException">A strict load found mismatched keys; nothing was copied.</exception>
        public static StateDictLoadReport Load(nn.Module module, string path, bool strict = true, StateDictLoadOptions? options = null)
        {
            using TensorDictionary tensors = Read(path);
            return StateDict.Load(module, tensors, strict, options);
        }

        private static TensorProto WithName(TensorProto tensor, string name)
        {
            TensorProto named = tensor.Clone();
            named.Name = name;
            return named;
        }

        private static Tensor ToTensor(TensorProto initializer, ScalarType type, string sourceName)
        {
            // Everything is checked against the data actually present before anything is allocated, so a corrupt
            // dimension (e.g. 2^40) is an error here, not a huge allocation or a native failure.
            long[] shape = initializer.Dims.ToArray();
            if (shape.Length > MaxDimensions)
                throw new WeightsFormatException(sourceName, initializer.Name, $"the initializer has {shape.Length} dimensions; at most {MaxDimensions} are supported. The model is corrupt.");
            if (shape.Any(d => d < 0)) throw new WeightsFormatException(sourceName, initializer.Name, "the initializer has a negative dimension.");
            long bytes;
            try
            {
                bytes = checked(WeightsDType.CheckedElementCount(shape) * WeightsDType.ElementSize(type));
            }
            catch (OverflowException)
            {
                throw new WeightsFormatException(sourceName, initializer.Name, $"the initializer's shape {StateDictShapeMismatch.FormatShape(shape)} declares more than 2^63 bytes; the model is corrupt.");
            }

            long present = initializer.RawData.Length > 0 ? initializer.RawData.Length
                : type == ScalarType.Float32 ? initializer.FloatData.Count * (long)sizeof(float)
                : type == ScalarType.Int64 ? initializer.Int64Data.Count * (long)sizeof(long)
                : 0;
            if (present != bytes)
            {
                throw new WeightsFormatException(sourceName, initializer.Name,
                    $"the initializer's shape {StateDictShapeMismatch.FormatShape(shape)} needs {bytes} bytes of data but it holds {present}; the model is corrupt. Export it again.");
            }

            Tensor tensor = torch.empty(shape, type);
            if (bytes == 0) return tensor;
            if (initializer.RawData.Length > 0) initializer.RawData.Span.CopyTo(tensor.bytes);
            else if (type == ScalarType.Float32) tensor.copy_(torch.tensor(initializer.FloatData.ToArray(), shape));
            else tensor.copy_(torch.tensor(initializer.Int64Data.ToArray(), shape));

            return tensor;
        }
    }
}
