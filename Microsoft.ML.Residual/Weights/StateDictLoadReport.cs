using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Microsoft.ML.Residual.Weights;

/// <summary>A key whose tensor has one shape in the module and another in the file.</summary>
public sealed class StateDictShapeMismatch
{
    internal StateDictShapeMismatch(string key, long[] moduleShape, long[] fileShape)
    {
        Key = key;
        ModuleShape = moduleShape;
        FileShape = fileShape;
    }

    /// <summary>The key, as the module names it.</summary>
    public string Key { get; }

    /// <summary>The shape of the module's tensor.</summary>
    public IReadOnlyList<long> ModuleShape { get; }

    /// <summary>The shape of the file's tensor.</summary>
    public IReadOnlyList<long> FileShape { get; }

    /// <summary>For example <c>fc.weight: module [10, 512], file [1000, 512]</c>.</summary>
    public override string ToString() => $"{Key}: module {FormatShape(ModuleShape)}, file {FormatShape(FileShape)}";

    internal static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}

/// <summary>
/// What <see cref="StateDict.Load(TorchSharp.torch.nn.Module, string, bool, StateDictLoadOptions?)"/> did: which keys it loaded, which the file lacked, which the module
/// lacked, which differed in shape and which it skipped. Keys are the module's names (file keys after
/// <see cref="StateDictLoadOptions.MapKey"/>).
/// </summary>
public sealed class StateDictLoadReport
{
    internal StateDictLoadReport(
        string filePath,
        IReadOnlyList<string> loadedKeys,
        IReadOnlyList<string> missingKeys,
        IReadOnlyList<string> unexpectedKeys,
        IReadOnlyList<StateDictShapeMismatch> shapeMismatches,
        IReadOnlyList<string> skippedKeys)
    {
        FilePath = filePath;
        LoadedKeys = loadedKeys;
        MissingKeys = missingKeys;
        UnexpectedKeys = unexpectedKeys;
        ShapeMismatches = shapeMismatches;
        SkippedKeys = skippedKeys;
    }

    /// <summary>The file the weights came from.</summary>
    public string FilePath { get; }

    /// <summary>Keys whose values were copied into the module (empty when a strict load threw).</summary>
    public IReadOnlyList<string> LoadedKeys { get; }

    /// <summary>Module keys for which the file has no tensor; they keep the module's values.</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>File keys (after <see cref="StateDictLoadOptions.MapKey"/>) that the module does not have.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>Keys present on both sides with different shapes; they keep the module's values.</summary>
    public IReadOnlyList<StateDictShapeMismatch> ShapeMismatches { get; }

    /// <summary>
    /// Keys left alone on purpose: those under <see cref="StateDictLoadOptions.SkipPrefixes"/>, file keys that
    /// <see cref="StateDictLoadOptions.MapKey"/> dropped (listed by their name in the file), and
    /// <c>num_batches_tracked</c> counters present on one side only (see <see cref="StateDict.Load(TorchSharp.torch.nn.Module, string, bool, StateDictLoadOptions?)"/>).
    /// </summary>
    public IReadOnlyList<string> SkippedKeys { get; }

    /// <summary>True when no key is missing, unexpected or mismatched in shape.</summary>
    public bool IsExactMatch => MissingKeys.Count == 0 && UnexpectedKeys.Count == 0 && ShapeMismatches.Count == 0;

    /// <summary>A multi-line summary listing every problem key.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append($"Loaded {LoadedKeys.Count} tensors from '{FilePath}'");
        if (SkippedKeys.Count > 0) text.Append($", skipped {SkippedKeys.Count}");
        text.Append('.');
        AppendProblems(text);
        return text.ToString();
    }

    internal void AppendProblems(StringBuilder text)
    {
        AppendList(text, "Missing from the file (the module has them)", MissingKeys);
        AppendList(text, "Unexpected in the file (the module does not have them)", UnexpectedKeys);
        AppendList(text, "Shape mismatches", ShapeMismatches.Select(m => m.ToString()).ToList());
    }

    private static void AppendList(StringBuilder text, string title, IReadOnlyList<string> items)
    {
        if (items.Count == 0) return;
        text.Append(Environment.NewLine).Append(title).Append(" (").Append(items.Count).Append("):");
        foreach (string item in items) text.Append(Environment.NewLine).Append("  ").Append(item);
    }
}
