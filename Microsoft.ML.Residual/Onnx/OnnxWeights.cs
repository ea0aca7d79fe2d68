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

            var result = new TensorDictionary(sourceName, metadata);
            var names = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                foreach (TensorProto initializer in proto.Graph.Initializer)
                {
                    if (initializer.Name.StartsWith(OnnxGraphBuilder.ConstantPrefix, StringComparison.Ordinal)) continue;
                    ScalarType? type = OnnxTypes.ToScalarType(initializer.DataType);
                    if (type is null) continue;
                    if (!names.Add(initializer.Name))
                        throw new WeightsFormatException(sourceName, initializer.Name, "the ONNX graph has two initializers of this name; the model is corrupt. Export it again.");
                    using var scope = NewDisposeScope();
                    result.Add(initializer.Name, scope.MoveToOuter(ToTensor(initializer, type.Value, sourceName)));
                }
            }
            catch
            {
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
