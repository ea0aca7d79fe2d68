using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>
/// Named tensors read from a weights file, in the file's order. The dictionary owns its tensors:
/// disposing it disposes them (dispose it, or move the tensors you keep elsewhere with
/// <see cref="torch.Tensor.clone"/> first).
/// </summary>
public sealed class TensorDictionary : IReadOnlyDictionary<string, torch.Tensor>, IDisposable
{
    private readonly List<KeyValuePair<string, torch.Tensor>> _items = new();
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private bool _disposed;

    internal TensorDictionary(string filePath, IReadOnlyDictionary<string, string> metadata)
    {
        FilePath = filePath;
        Metadata = metadata;
    }

    /// <summary>The file the tensors were read from.</summary>
    public string FilePath { get; }

    /// <summary>The safetensors <c>__metadata__</c> strings (empty for PyTorch files).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The number of tensors.</summary>
    public int Count => _items.Count;

    /// <summary>The keys, in file order.</summary>
    public IEnumerable<string> Keys
    {
        get
        {
            foreach (var item in _items) yield return item.Key;
        }
    }

    /// <summary>The tensors, in file order.</summary>
    public IEnumerable<torch.Tensor> Values
    {
        get
        {
            ThrowIfDisposed();
            foreach (var item in _items) yield return item.Value;
        }
    }

    /// <summary>The tensor named <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">The file has no tensor of that name.</exception>
    public torch.Tensor this[string key]
    {
        get
        {
            ThrowIfDisposed();
            if (!_index.TryGetValue(key, out int position))
            {
                throw new KeyNotFoundException($"The weights file '{FilePath}' has no tensor named '{key}'.");
            }
            return _items[position].Value;
        }
    }

    /// <summary>Whether the file has a tensor named <paramref name="key"/>.</summary>
    public bool ContainsKey(string key) => _index.ContainsKey(key);

    /// <summary>Gets the tensor named <paramref name="key"/>, if there is one.</summary>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out torch.Tensor value)
    {
        ThrowIfDisposed();
        if (_index.TryGetValue(key, out int position))
        {
            value = _items[position].Value;
            return true;
        }
        value = null;
        return false;
    }

    /// <summary>Enumerates the tensors in file order.</summary>
    public IEnumerator<KeyValuePair<string, torch.Tensor>> GetEnumerator()
    {
        ThrowIfDisposed();
        return _items.GetEnumerator();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var item in _items) item.Value.Dispose();
    }

    internal void Add(string key, torch.Tensor value)
    {
        _index.Add(key, _items.Count);
        _items.Add(new KeyValuePair<string, torch.Tensor>(key, value));
    }

    /// <summary>Replaces the tensor of <paramref name="key"/> (which must exist) by <paramref name="value"/>, disposing the old one.</summary>
    internal void Replace(string key, torch.Tensor value)
    {
        ThrowIfDisposed();
        int i = _index[key];
        torch.Tensor old = _items[i].Value;
        _items[i] = new KeyValuePair<string, torch.Tensor>(key, value);
        old.Dispose();
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(TensorDictionary), $"The tensors read from '{FilePath}' have been disposed.");
    }
}
