using System;
using System.Collections.Generic;

namespace Microsoft.ML.Residual.Weights;

/// <summary>Options for <see cref="StateDict.Load(TorchSharp.torch.nn.Module, string, bool, StateDictLoadOptions?)"/>.</summary>
public sealed class StateDictLoadOptions
{
    /// <summary>
    /// Keys that start with any of these prefixes (ordinal comparison, after <see cref="MapKey"/>) are neither
    /// loaded nor reported as missing or unexpected; they are listed in
    /// <see cref="StateDictLoadReport.SkippedKeys"/>. End a prefix with a dot to mean a whole submodule:
    /// <c>"fc."</c> skips <c>fc.weight</c> and <c>fc.bias</c> (the classifier head when fine-tuning)
    /// but not <c>fc2.weight</c>.
    /// </summary>
    public IList<string> SkipPrefixes { get; set; } = new List<string>();

    /// <summary>
    /// When <see langword="true"/>, a key whose shape differs between the file and the module keeps the
    /// module's value and is reported in <see cref="StateDictLoadReport.ShapeMismatches"/> instead of
    /// making a strict load throw. Missing and unexpected keys still make a strict load throw.
    /// </summary>
    public bool IgnoreShapeMismatches { get; set; }

    /// <summary>
    /// Renames each key of the file before it is matched with the module's keys; return
    /// <see langword="null"/> to drop the tensor (it is then listed in
    /// <see cref="StateDictLoadReport.SkippedKeys"/>). Use it for checkpoints whose names differ from the
    /// module's, e.g. <c>k =&gt; k.StartsWith("module.") ? k.Substring(7) : k</c> for a model saved from
    /// <c>DataParallel</c>. Two file keys must not map to the same name.
    /// </summary>
    public Func<string, string?>? MapKey { get; set; }
}
