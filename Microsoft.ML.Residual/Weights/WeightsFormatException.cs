using System;
using System.IO;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// A weights file (safetensors or a PyTorch <c>torch.save</c> archive) is malformed, truncated, uses a
/// feature this library does not read, or refers to code. The message names the file and, where one is
/// involved, the tensor key, and says what to do. It derives from <see cref="IOException"/> (as
/// <see cref="FileNotFoundException"/> does) because <see cref="InvalidDataException"/> is sealed: one
/// <c>catch (IOException)</c> covers a missing and an unreadable weights file.
/// </summary>
public sealed class WeightsFormatException : IOException
{
    /// <summary>Creates the exception for a problem in <paramref name="filePath"/>.</summary>
    /// <param name="filePath">The file that could not be read.</param>
    /// <param name="tensorKey">The tensor key involved, or <see langword="null"/> when the problem is not about one tensor.</param>
    /// <param name="problem">What is wrong and what to do, without the file name (it is prepended).</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public WeightsFormatException(string filePath, string? tensorKey, string problem, Exception? innerException = null)
        : base(Compose(filePath, tensorKey, problem), innerException)
    {
        FilePath = filePath;
        TensorKey = tensorKey;
    }

    /// <summary>The weights file that could not be read.</summary>
    public string FilePath { get; }

    /// <summary>The tensor key the problem concerns, or <see langword="null"/>.</summary>
    public string? TensorKey { get; }

    private static string Compose(string filePath, string? tensorKey, string problem)
        => tensorKey is null
            ? $"Weights file '{filePath}': {problem}"
            : $"Weights file '{filePath}', tensor '{tensorKey}': {problem}";
}
