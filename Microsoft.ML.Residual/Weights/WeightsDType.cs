using System;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>The element types the weights formats share with TorchSharp, and their names in each format.</summary>
internal static class WeightsDType
{
    /// <summary>Safetensors dtype names that the format defines but TorchSharp has no tensor type for.</summary>
    private static readonly string[] KnownButUnsupported = { "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64" };

    public static bool TryParseSafeTensors(string name, out torch.ScalarType type)
    {
        switch (name)
        {
            case "F64": type = torch.ScalarType.Float64; return true;
            case "F32": type = torch.ScalarType.Float32; return true;
            case "F16": type = torch.ScalarType.Float16; return true;
            case "BF16": type = torch.ScalarType.BFloat16; return true;
            case "I64": type = torch.ScalarType.Int64; return true;
            case "I32": type = torch.ScalarType.Int32; return true;
            case "I16": type = torch.ScalarType.Int16; return true;
            case "I8": type = torch.ScalarType.Int8; return true;
            case "U8": type = torch.ScalarType.Byte; return true;
            case "BOOL": type = torch.ScalarType.Bool; return true;
            default: type = default; return false;
        }
    }

    public static bool IsKnownButUnsupportedSafeTensors(string name) => Array.IndexOf(KnownButUnsupported, name) >= 0;

    public static string? SafeTensorsName(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 => "F64",
        torch.ScalarType.Float32 => "F32",
        torch.ScalarType.Float16 => "F16",
        torch.ScalarType.BFloat16 => "BF16",
        torch.ScalarType.Int64 => "I64",
        torch.ScalarType.Int32 => "I32",
        torch.ScalarType.Int16 => "I16",
        torch.ScalarType.Int8 => "I8",
        torch.ScalarType.Byte => "U8",
        torch.ScalarType.Bool => "BOOL",
        _ => null,
    };

    public static int ElementSize(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        torch.ScalarType.Int8 or torch.ScalarType.Byte or torch.ScalarType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not an element type of the weights formats."),
    };

    /// <summary>The element type of a PyTorch typed-storage class (<c>torch.FloatStorage</c> …), by its name in <c>torch</c>.</summary>
    public static bool TryParseStorageClass(string name, out torch.ScalarType type)
    {
        switch (name)
        {
            case "FloatStorage": type = torch.ScalarType.Float32; return true;
            case "HalfStorage": type = torch.ScalarType.Float16; return true;
            case "BFloat16Storage": type = torch.ScalarType.BFloat16; return true;
            case "DoubleStorage": type = torch.ScalarType.Float64; return true;
            case "LongStorage": type = torch.ScalarType.Int64; return true;
            case "IntStorage": type = torch.ScalarType.Int32; return true;
            case "ShortStorage": type = torch.ScalarType.Int16; return true;
            case "CharStorage": type = torch.ScalarType.Int8; return true;
            case "ByteStorage": type = torch.ScalarType.Byte; return true;
            case "BoolStorage": type = torch.ScalarType.Bool; return true;
            default: type = default; return false;
        }
    }

    /// <summary>The number of elements of <paramref name="shape"/>; throws <see cref="OverflowException"/> past <see cref="long.MaxValue"/>.</summary>
    public static long CheckedElementCount(long[] shape)
    {
        long count = 1;
        foreach (long dim in shape) count = checked(count * dim);
        return count;
    }
}
