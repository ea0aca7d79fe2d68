using System;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// A strict <see cref="StateDict.Load(TorchSharp.torch.nn.Module, string, bool, StateDictLoadOptions?)"/> found keys that are missing, unexpected or differ in shape. The
/// message lists every such key; nothing was copied, so the module is unchanged.
/// </summary>
public sealed class StateDictMismatchException : InvalidOperationException
{
    internal StateDictMismatchException(StateDictLoadReport report, string message)
        : base(message)
    {
        Report = report;
    }

    /// <summary>The comparison of the file with the module (its <see cref="StateDictLoadReport.LoadedKeys"/> is empty).</summary>
    public StateDictLoadReport Report { get; }
}
