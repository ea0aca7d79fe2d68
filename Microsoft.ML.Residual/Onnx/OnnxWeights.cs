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
        public static TensorDictionary Read(Stream model, string sourceName = "<stream>")
        {
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
            var result = new TensorDictionary(sourceName, proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value));
            try
            {
                foreach (TensorProto initializer in proto.Graph.Initializer)
                {
                    if (initializer.Name.StartsWith(OnnxGraphBuilder.ConstantPrefix, StringComparison.Ordinal)) continue;
                    ScalarType? type = OnnxTypes.ToScalarType(initializer.DataType);
                    if (type is null) continue;
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
        public static StateDictLoadReport Load(nn.Module module, string path, bool strict = true, StateDictLoadOptions? options = null)
        {
            using TensorDictionary tensors = Read(path);
            return StateDict.Load(module, tensors, strict, options);
        }

        private static Tensor ToTensor(TensorProto initializer, ScalarType type, string sourceName)
        {
            long[] shape = initializer.Dims.ToArray();
            if (shape.Any(d => d < 0)) throw new WeightsFormatException(sourceName, initializer.Name, "the initializer has a negative dimension.");
            Tensor tensor = torch.empty(shape, type);
            long bytes = tensor.numel() * tensor.element_size();
            if (initializer.RawData.Length > 0)
            {
                if (initializer.RawData.Length != bytes)
                    throw new WeightsFormatException(sourceName, initializer.Name, $"the initializer holds {initializer.RawData.Length} bytes but its shape needs {bytes}.");
                if (bytes > 0) initializer.RawData.Span.CopyTo(tensor.bytes);
            }
            else if (type == ScalarType.Float32 && initializer.FloatData.Count == tensor.numel())
            {
                tensor.copy_(torch.tensor(initializer.FloatData.ToArray(), shape));
            }
            else if (type == ScalarType.Int64 && initializer.Int64Data.Count == tensor.numel())
            {
                tensor.copy_(torch.tensor(initializer.Int64Data.ToArray(), shape));
            }
            else if (tensor.numel() > 0)
            {
                throw new WeightsFormatException(sourceName, initializer.Name, "the initializer's data is missing or does not match its shape.");
            }

            return tensor;
        }
    }
}
