using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// Loads and saves the weights of a TorchSharp module by state-dict key (the names torchvision and timm use),
/// from safetensors files and from PyTorch <c>torch.save</c> files (<c>.pt</c>/<c>.pth</c>).
/// </summary>
/// <example>
/// <code>
/// StateDict.Load(model, "resnet50.safetensors");                        // strict: every key must match
/// StateDict.Load(model, "resnet50.pth", strict: true,
///     new StateDictLoadOptions { SkipPrefixes = { "fc." } });             // fine-tuning: all but the head
/// StateDict.Save(model, "finetuned.safetensors");
/// </code>
/// </example>
public static class StateDict
{
    private const string CounterSuffix = "num_batches_tracked";

    /// <summary>
    /// Copies the tensors of a weights file into <paramref name="module"/>'s parameters and buffers, matched by
    /// <c>state_dict()</c> key. The format is chosen by the file's content (a zip archive is read as a
    /// <c>torch.save</c> file, anything else as safetensors), not by its extension.
    /// </summary>
    /// <remarks>
    /// <para>Everything is compared before anything is copied. With <paramref name="strict"/> set, any key that
    /// is missing from the file, unexpected in it, or of another shape (unless
    /// <see cref="StateDictLoadOptions.IgnoreShapeMismatches"/>) makes the load throw one
    /// <see cref="StateDictMismatchException"/> that lists every such key, and the module is left unchanged.
    /// Without it, the keys that match are copied and the rest is reported.</para>
    /// <para>Values are copied under <c>torch.no_grad()</c> with <c>copy_</c>, which converts the element type
    /// (an F16, BF16 or F64 file into F32 parameters) and moves the data to the module's device.</para>
    /// <para>A module implementing <see cref="IStateDictKeyUpgrade"/> (e.g. DenseNet) renames old-style file keys
    /// after <see cref="StateDictLoadOptions.MapKey"/>, so legacy checkpoints load without options.</para>
    /// <para>BatchNorm's <c>num_batches_tracked</c> counter: TorchSharp registers it as a buffer, as PyTorch
    /// does, so it is loaded like any other key. A counter present on one side only is not a problem: it is
    /// listed in <see cref="StateDictLoadReport.SkippedKeys"/> and never reported missing or unexpected,
    /// because checkpoints from PyTorch before 0.4.1 lack it and frozen BatchNorm layers drop it.</para>
    /// </remarks>
    /// <param name="module">The module to fill.</param>
    /// <param name="path">A safetensors file or a <c>torch.save</c> file of a state dict.</param>
    /// <param name="strict">Whether any mismatch throws (the default) or only what matches is loaded.</param>
    /// <param name="options">Keys to skip, a key renaming, and what to do with shape mismatches.</param>
    /// <returns>Which keys were loaded, missing, unexpected, mismatched or skipped.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="WeightsFormatException">The file is malformed, unsupported, or refers to code.</exception>
    /// <exception cref="StateDictMismatchException">A strict load found mismatched keys; nothing was copied.</exception>
    /// <exception cref="ArgumentException">A skip prefix is null or empty, or <see cref="StateDictLoadOptions.MapKey"/> maps two keys to one name.</exception>
    public static StateDictLoadReport Load(torch.nn.Module module, string path, bool strict = true, StateDictLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var reader = WeightsReader.Open(path);
        return Load(module, reader, strict, options);
    }

    /// <summary>
    /// Copies tensors already in memory (e.g. read from an ONNX model's initializers) into <paramref name="module"/>,
    /// with exactly the rules of <see cref="Load(torch.nn.Module, string, bool, StateDictLoadOptions?)"/>. The tensors stay
    /// owned by <paramref name="tensors"/>.
    /// </summary>
    /// <param name="module">The module to fill.</param>
    /// <param name="tensors">Named tensors; <see cref="TensorDictionary.FilePath"/> names their source in messages.</param>
    /// <param name="strict">Whether any mismatch throws (the default) or only what matches is loaded.</param>
    /// <param name="options">Keys to skip, a key renaming, and what to do with shape mismatches.</param>
    /// <returns>Which keys were loaded, missing, unexpected, mismatched or skipped.</returns>
    public static StateDictLoadReport Load(torch.nn.Module module, TensorDictionary tensors, bool strict = true, StateDictLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(tensors);
        using var reader = new InMemoryWeightsReader(tensors);
        return Load(module, reader, strict, options);
    }

    private static StateDictLoadReport Load(torch.nn.Module module, WeightsReader reader, bool strict, StateDictLoadOptions? options)
    {
        string path = reader.FilePath;

        options ??= new StateDictLoadOptions();
        string[] prefixes = (options.SkipPrefixes ?? Array.Empty<string>()).ToArray();
        if (prefixes.Any(string.IsNullOrEmpty))
        {
            throw new ArgumentException("StateDictLoadOptions.SkipPrefixes contains a null or empty prefix; an empty prefix would skip every key.", nameof(options));
        }
        bool IsSkipped(string key) => prefixes.Any(prefix => key.StartsWith(prefix, StringComparison.Ordinal));

        var moduleTensors = module.state_dict();
        var skipped = new List<string>();
        var skippedSet = new HashSet<string>(StringComparer.Ordinal);
        void Skip(string key)
        {
            if (skippedSet.Add(key)) skipped.Add(key);
        }

        // File side: rename, drop, skip; two file keys must not meet under one name.
        var fileEntries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var fileOrder = new List<string>();
        foreach (var entry in reader.Entries)
        {
            string? key = options.MapKey is null ? entry.Key : options.MapKey(entry.Key);
            if (key is not null && module is IStateDictKeyUpgrade upgrade) key = upgrade.UpgradeKey(key);
            if (key is null)
            {
                Skip(entry.Key);
                continue;
            }
            if (IsSkipped(key))
            {
                Skip(key);
                continue;
            }
            if (!fileEntries.TryAdd(key, entry))
            {
                throw new ArgumentException(
                    $"StateDictLoadOptions.MapKey maps both '{fileEntries[key].Key}' and '{entry.Key}' of '{path}' to '{key}'; each file key needs its own name (or null to drop it).",
                    nameof(options));
            }
            fileOrder.Add(key);
        }

        // Module side: compare names and shapes; nothing is read or copied yet.
        var toCopy = new List<(string Key, torch.Tensor Target, TensorEntry Source)>();
        var missing = new List<string>();
        var mismatches = new List<StateDictShapeMismatch>();
        foreach (var (key, target) in moduleTensors)
        {
            if (IsSkipped(key))
            {
                Skip(key);
                continue;
            }
            if (!fileEntries.TryGetValue(key, out var source))
            {
                if (IsCounter(key)) Skip(key);
                else missing.Add(key);
                continue;
            }
            long[] moduleShape = target.shape;
            if (!moduleShape.AsSpan().SequenceEqual(source.Shape))
            {
                mismatches.Add(new StateDictShapeMismatch(key, moduleShape, source.Shape));
                continue;
            }
            toCopy.Add((key, target, source));
        }

        var unexpected = new List<string>();
        foreach (string key in fileOrder)
        {
            if (moduleTensors.ContainsKey(key)) continue;
            if (IsCounter(key)) Skip(key);
            else unexpected.Add(key);
        }

        bool fails = missing.Count > 0 || unexpected.Count > 0 || (mismatches.Count > 0 && !options.IgnoreShapeMismatches);
        if (strict && fails)
        {
            var report = new StateDictLoadReport(path, Array.Empty<string>(), missing, unexpected, mismatches, skipped);
            throw new StateDictMismatchException(report, DescribeMismatch(module, report));
        }

        // Read every source first, so a read error leaves the module unchanged; then copy.
        using (var scope = torch.NewDisposeScope())
        {
            var sources = new List<torch.Tensor>(toCopy.Count);
            foreach (var item in toCopy) sources.Add(reader.ReadTensor(item.Source));

            using (torch.no_grad())
            {
                for (int i = 0; i < toCopy.Count; i++)
                {
                    using var step = torch.NewDisposeScope();
                    toCopy[i].Target.copy_(sources[i]);
                }
            }
        }

        return new StateDictLoadReport(path, toCopy.Select(item => item.Key).ToList(), missing, unexpected, mismatches, skipped);
    }

    /// <summary>
    /// Writes <paramref name="module"/>'s <c>state_dict()</c> (parameters and buffers) to a safetensors file,
    /// atomically, with the metadata <c>format=pt</c> that Hugging Face loaders expect. Python reads it with
    /// <c>model.load_state_dict(safetensors.torch.load_file(path))</c>.
    /// </summary>
    /// <param name="module">The module whose weights to write.</param>
    /// <param name="path">The file to create or replace; it is always written as safetensors.</param>
    /// <param name="metadata">Optional extra <c>__metadata__</c> strings.</param>
    /// <exception cref="NotSupportedException"><paramref name="path"/> ends in <c>.pt</c> or <c>.pth</c>: PyTorch's pickle format is read, never written.</exception>
    public static void Save(torch.nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string extension = Path.GetExtension(path);
        if (extension.Equals(".pt", StringComparison.OrdinalIgnoreCase) || extension.Equals(".pth", StringComparison.OrdinalIgnoreCase))
        {
            throw new NotSupportedException(
                $"Cannot save to '{path}': weights are written as safetensors only, never as PyTorch pickles. "
                + $"Use a '.safetensors' path (e.g. '{Path.ChangeExtension(path, ".safetensors")}'); Python reads it with safetensors.torch.load_file.");
        }

        var allMetadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata) allMetadata[key] = value;
        }
        SafeTensors.Write(path, module.state_dict(), allMetadata);
    }

    /// <summary>
    /// Reads every tensor of a weights file (safetensors or <c>torch.save</c>, chosen by content) as CPU tensors
    /// of the stored dtype. For a <c>torch.save</c> file of a checkpoint with nested dicts, keys are joined with
    /// dots (<c>state_dict.conv1.weight</c>) and non-tensor values (epoch numbers, lists) are left out.
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The tensors in file order, owned by the returned dictionary (dispose it).</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="WeightsFormatException">The file is malformed, unsupported, or refers to code.</exception>
    public static TensorDictionary Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var reader = WeightsReader.Open(path);
        return reader.ReadAll();
    }

    private static bool IsCounter(string key)
        => key == CounterSuffix || key.EndsWith("." + CounterSuffix, StringComparison.Ordinal);

    private static string DescribeMismatch(torch.nn.Module module, StateDictLoadReport report)
    {
        int problems = report.MissingKeys.Count + report.UnexpectedKeys.Count + report.ShapeMismatches.Count;
        var text = new StringBuilder();
        text.Append($"Cannot load '{report.FilePath}' into {module.GetType().Name} strictly: {problems} key(s) do not match. "
            + "Nothing was copied; the module is unchanged.");
        report.AppendProblems(text);
        string? hint = PrefixHint(report.MissingKeys, report.UnexpectedKeys);
        if (hint is not null) text.Append(Environment.NewLine).Append(hint);
        text.Append(Environment.NewLine).Append(
            "To load what matches, pass strict: false. To leave out a part you replace (such as the classifier head), set "
            + "StateDictLoadOptions.SkipPrefixes (e.g. \"fc.\"); to rename the file's keys, set MapKey; to keep the module's values where "
            + "shapes differ, set IgnoreShapeMismatches.");
        return text.ToString();
    }

    /// <summary>Recognises a whole-file prefix difference (e.g. <c>module.</c> from DataParallel) and says how to map it.</summary>
    private static string? PrefixHint(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected)
    {
        if (missing.Count == 0 || unexpected.Count == 0) return null;

        string? filePrefix = CommonFirstSegment(unexpected);
        if (filePrefix is not null)
        {
            var missingSet = new HashSet<string>(missing, StringComparer.Ordinal);
            if (unexpected.Count(k => missingSet.Contains(k[filePrefix.Length..])) * 2 >= unexpected.Count)
            {
                return $"The file's keys carry the prefix '{filePrefix}' that the module's lack: set "
                    + $"MapKey = k => k.StartsWith(\"{filePrefix}\") ? k.Substring({filePrefix.Length}) : k.";
            }
        }

        string? modulePrefix = CommonFirstSegment(missing);
        if (modulePrefix is not null)
        {
            var unexpectedSet = new HashSet<string>(unexpected, StringComparer.Ordinal);
            if (missing.Count(k => unexpectedSet.Contains(k[modulePrefix.Length..])) * 2 >= missing.Count)
            {
                return $"The module's keys carry the prefix '{modulePrefix}' that the file's lack: set MapKey = k => \"{modulePrefix}\" + k.";
            }
        }
        return null;
    }

    private static string? CommonFirstSegment(IReadOnlyList<string> keys)
    {
        int dot = keys[0].IndexOf('.');
        if (dot <= 0) return null;
        string prefix = keys[0][..(dot + 1)];
        return keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal) && k.Length > prefix.Length) ? prefix : null;
    }
}
