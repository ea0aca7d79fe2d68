using System;
using Microsoft.ML.Residual.Onnx.Proto;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>Element types between TorchSharp and ONNX.</summary>
    internal static class OnnxTypes
    {
        public static TensorProto.Types.DataType FromScalarType(ScalarType type) => type switch
        {
            ScalarType.Float32 => TensorProto.Types.DataType.Float,
            ScalarType.Float64 => TensorProto.Types.DataType.Double,
            ScalarType.Float16 => TensorProto.Types.DataType.Float16,
            ScalarType.BFloat16 => TensorProto.Types.DataType.Bfloat16,
            ScalarType.Int64 => TensorProto.Types.DataType.Int64,
            ScalarType.Int32 => TensorProto.Types.DataType.Int32,
            ScalarType.Int16 => TensorProto.Types.DataType.Int16,
            ScalarType.Int8 => TensorProto.Types.DataType.Int8,
            ScalarType.Byte => TensorProto.Types.DataType.Uint8,
            ScalarType.Bool => TensorProto.Types.DataType.Bool,
            _ => throw new NotSupportedException($"Tensors of type {type} cannot be written to ONNX."),
        };

        public static ScalarType? ToScalarType(int dataType) => (TensorProto.Types.DataType)dataType switch
        {
            TensorProto.Types.DataType.Float => ScalarType.Float32,
            TensorProto.Types.DataType.Double => ScalarType.Float64,
            TensorProto.Types.DataType.Float16 => ScalarType.Float16,
            TensorProto.Types.DataType.Bfloat16 => ScalarType.BFloat16,
            TensorProto.Types.DataType.Int64 => ScalarType.Int64,
            TensorProto.Types.DataType.Int32 => ScalarType.Int32,
            TensorProto.Types.DataType.Int16 => ScalarType.Int16,
            TensorProto.Types.DataType.Int8 => ScalarType.Int8,
            TensorProto.Types.DataType.Uint8 => ScalarType.Byte,
            TensorProto.Types.DataType.Bool => ScalarType.Bool,
            _ => null,
        };
    }
}
