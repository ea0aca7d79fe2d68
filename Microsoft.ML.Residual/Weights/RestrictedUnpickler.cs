using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;
using TorchSharp;

namespace Microsoft.ML.Residual.Weights;

/// <summary>What an allow-listed global stands for. Nothing else can be named by a pickle.</summary>
internal enum PickleGlobalKind
{
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage,
}

/// <summary>An allow-listed global; "calling" it runs our own C# code for it, never anything from the file.</summary>
internal sealed class PickleGlobal
{
    public PickleGlobal(string module, string name, PickleGlobalKind kind, torch.ScalarType storageType = default)
    {
        Module = module;
        Name = name;
        Kind = kind;
        StorageType = storageType;
    }

    public string Module { get; }

    public string Name { get; }

    public PickleGlobalKind Kind { get; }

    /// <summary>For <see cref="PickleGlobalKind.Storage"/>: the element type of the storage class.</summary>
    public torch.ScalarType StorageType { get; }

    public string FullName => Module + "." + Name;
}

/// <summary>A dict or OrderedDict, in insertion order. Keys are strings, integers, floats, booleans or None.</summary>
internal sealed class PickleDict
{
    private static readonly object NoneKey = new();
    private readonly Dictionary<object, int> _index = new();

    public List<KeyValuePair<object?, object?>> Items { get; } = new();

    /// <summary>Python semantics: setting an existing key replaces its value in place.</summary>
    public void Set(object? key, object? value)
    {
        object indexKey = key ?? NoneKey;
        if (_index.TryGetValue(indexKey, out int position))
        {
            Items[position] = new KeyValuePair<object?, object?>(key, value);
            return;
        }
        _index.Add(indexKey, Items.Count);
        Items.Add(new KeyValuePair<object?, object?>(key, value));
    }
}

/// <summary>A storage named by a persistent id: ('storage', storage class, key, location, element count).</summary>
internal sealed class StorageRef
{
    public StorageRef(string key, torch.ScalarType dtype, string location, long elementCount)
    {
        Key = key;
        DType = dtype;
        Location = location;
        ElementCount = elementCount;
    }

    public string Key { get; }

    public torch.ScalarType DType { get; }

    public string Location { get; }

    public long ElementCount { get; }
}

/// <summary>A tensor described by <c>torch._utils._rebuild_tensor_v2</c>: a strided view of a storage.</summary>
internal sealed class TensorRef
{
    public TensorRef(StorageRef storage, long storageOffset, long[] size, long[] stride)
    {
        Storage = storage;
        StorageOffset = storageOffset;
        Size = size;
        Stride = stride;
    }

    public StorageRef Storage { get; }

    public long StorageOffset { get; }

    public long[] Size { get; }

    public long[] Stride { get; }
}

/// <summary>
/// Reads the pickle (protocols 2–5) that <c>torch.save</c> writes for a state dict, without executing anything.
/// It builds plain values (None, bool, int, float, str, tuple, list, dict) and, for the few allow-listed
/// globals, runs its own C# stand-ins; any other global is rejected the moment it is named, before it
/// could be called. Depth, stack, memo and container sizes are bounded, and parsing is a single loop over
/// the bytes, so hostile input gives a <see cref="WeightsFormatException"/>, never a stack overflow or a hang.
/// </summary>
internal sealed class RestrictedUnpickler
{
    public const int MaxMarkDepth = 1000;
    public const int MaxStackItems = 1_000_000;
    public const int MaxMemoEntries = 4_000_000;
    public const long MaxContainerItems = 20_000_000;
    public const int MaxTensorDimensions = 64;
    private const int MaxGlobalNameLength = 256;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly string _filePath;
    private readonly string _entryName;
    private readonly Func<object?, int, object> _persistentLoad;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<uint, object?> _memo = new();
    private long _containerItems;
    private int _position;
    private int _opcodeOffset;

    /// <param name="data">The pickle bytes.</param>
    /// <param name="filePath">The file, for error messages.</param>
    /// <param name="entryName">The archive entry holding the pickle, for error messages.</param>
    /// <param name="persistentLoad">Resolves a persistent id (and the opcode offset, for errors) to an object.</param>
    public RestrictedUnpickler(byte[] data, string filePath, string entryName, Func<object?, int, object> persistentLoad)
    {
        _data = data;
        _filePath = filePath;
        _entryName = entryName;
        _persistentLoad = persistentLoad;
    }

    public object? Load()
    {
        while (true)
        {
            if (_position >= _data.Length)
            {
                throw Error($"the pickle ends at offset {_data.Length} without a STOP opcode; the file is truncated or corrupt. Save it again.");
            }
            _opcodeOffset = _position;
            byte opcode = _data[_position++];
            switch (opcode)
            {
                case 0x80: // PROTO
                    {
                        byte version = ReadByte();
                        if (version > 5) throw Error($"the pickle uses protocol {version}; protocols 2 to 5 are supported.");
                        break;
                    }
                case 0x95: // FRAME: a length prefix for buffering; the data follows inline.
                    {
                        ulong length = ReadUInt64();
                        if (length > (ulong)(_data.Length - _position)) throw Error($"a FRAME at offset {_opcodeOffset} is longer than the rest of the pickle; the file is truncated or corrupt.");
                        break;
                    }
                case (byte)'.': // STOP
                    return Pop();
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadSpan(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadSpan(2))); break; // BININT2
                case 0x8a: Push(ReadLong1()); break; // LONG1
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadSpan(8))); break; // BINFLOAT
                case (byte)'X': Push(ReadString(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)))); break; // BINUNICODE
                case 0x8c: Push(ReadString(ReadByte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(ReadString(ReadUInt64())); break; // BINUNICODE8
                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'(': // MARK
                    if (_marks.Count >= MaxMarkDepth)
                    {
                        throw Error($"the pickle nests deeper than {MaxMarkDepth} levels (at offset {_opcodeOffset}); a state dict needs a handful. The file is corrupt or crafted.");
                    }
                    _marks.Add(_stack.Count);
                    break;
                case (byte)'t': Push(CountItems(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(CountItems(new[] { Pop() })); break; // TUPLE1
                case 0x86: // TUPLE2
                    {
                        object? second = Pop();
                        object? first = Pop();
                        Push(CountItems(new[] { first, second }));
                        break;
                    }
                case 0x87: // TUPLE3
                    {
                        object? third = Pop();
                        object? second = Pop();
                        object? first = Pop();
                        Push(CountItems(new[] { first, second, third }));
                        break;
                    }
                case (byte)'a': // APPEND
                    {
                        object? value = Pop();
                        AsList(Peek()).Add(value);
                        CountItems(1);
                        break;
                    }
                case (byte)'e': // APPENDS
                    {
                        var values = PopMark();
                        AsList(Peek()).AddRange(values);
                        CountItems(values.Count);
                        break;
                    }
                case (byte)'s': // SETITEM
                    {
                        object? value = Pop();
                        object? key = Pop();
                        SetItem(Peek(), key, value);
                        break;
                    }
                case (byte)'u': // SETITEMS
                    {
                        var values = PopMark();
                        if (values.Count % 2 != 0) throw Error($"SETITEMS at offset {_opcodeOffset} has an odd number of items; the pickle is corrupt.");
                        object? dict = Peek();
                        for (int i = 0; i < values.Count; i += 2) SetItem(dict, values[i], values[i + 1]);
                        break;
                    }
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                case 0x94: Memoize((uint)_memo.Count); break; // MEMOIZE
                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4))); break; // LONG_BINPUT
                case (byte)'h': Push(Recall(ReadByte())); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)))); break; // LONG_BINGET
                case (byte)'c': // GLOBAL
                    {
                        string module = ReadLine();
                        string name = ReadLine();
                        Push(ResolveGlobal(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        object? name = Pop();
                        object? module = Pop();
                        if (module is not string moduleName || name is not string globalName)
                        {
                            throw Error($"STACK_GLOBAL at offset {_opcodeOffset} expects two strings; the pickle is corrupt.");
                        }
                        Push(ResolveGlobal(moduleName, globalName));
                        break;
                    }
                case (byte)'R': // REDUCE
                    {
                        object? arguments = Pop();
                        object? callable = Pop();
                        Push(Call(callable, arguments));
                        break;
                    }
                case (byte)'b': // BUILD
                    {
                        Pop(); // the state
                        object? target = Peek();
                        if (target is not PickleDict)
                        {
                            throw Error($"BUILD at offset {_opcodeOffset} sets the state of a {Describe(target)}; only an OrderedDict's attributes (a state dict's _metadata) are accepted, and ignored.");
                        }
                        break;
                    }
                case (byte)'Q': // BINPERSID
                    Push(_persistentLoad(Pop(), _opcodeOffset));
                    break;
                default:
                    throw Error($"the pickle has the opcode 0x{opcode:X2} ({OpcodeName(opcode)}) at offset {_opcodeOffset}, which this reader does not accept: "
                        + "a state dict saved by torch.save never needs it, and loading weights never executes code from the file. "
                        + "Save the state dict again with torch.save(model.state_dict(), path) or, better, as safetensors.");
            }
        }
    }

    private object ResolveGlobal(string module, string name)
    {
        switch (module)
        {
            case "collections" when name == "OrderedDict":
                return new PickleGlobal(module, name, PickleGlobalKind.OrderedDict);
            case "torch._utils" when name == "_rebuild_tensor_v2":
                return new PickleGlobal(module, name, PickleGlobalKind.RebuildTensorV2);
            case "torch._utils" when name == "_rebuild_parameter":
                return new PickleGlobal(module, name, PickleGlobalKind.RebuildParameter);
            case "torch._utils" when name == "_rebuild_parameter_with_state":
                return new PickleGlobal(module, name, PickleGlobalKind.RebuildParameterWithState);
            case "torch" when WeightsDType.TryParseStorageClass(name, out var storageType):
                return new PickleGlobal(module, name, PickleGlobalKind.Storage, storageType);
        }
        throw Error($"the pickle refers to the global '{Printable(module)}.{Printable(name)}' (offset {_opcodeOffset}), which is not on the allow-list for a state dict. "
            + "Loading weights never executes code from the file: only tensors, dicts and the torch functions that rebuild tensors are accepted "
            + "(collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage). "
            + "If the file is a checkpoint with other objects, load it in Python and save only model.state_dict(), ideally as safetensors; "
            + "if you do not know where the file came from, it may be malicious.");
    }

    private object Call(object? callable, object? arguments)
    {
        if (callable is not PickleGlobal global)
        {
            throw Error($"REDUCE at offset {_opcodeOffset} calls a {Describe(callable)}; only allow-listed globals can be called.");
        }
        if (arguments is not object?[] args)
        {
            throw Error($"REDUCE at offset {_opcodeOffset} passes a {Describe(arguments)} as the arguments of {global.FullName}; a tuple is expected.");
        }

        switch (global.Kind)
        {
            case PickleGlobalKind.OrderedDict:
                if (args.Length != 0) throw Error($"collections.OrderedDict is called with {args.Length} arguments at offset {_opcodeOffset}; torch.save passes none.");
                return new PickleDict();

            case PickleGlobalKind.RebuildTensorV2:
                {
                    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                    if (args.Length is not (6 or 7)) throw Error($"{global.FullName} is called with {args.Length} arguments at offset {_opcodeOffset}; 6 or 7 are expected.");
                    if (args[0] is not StorageRef storage) throw Error($"{global.FullName} at offset {_opcodeOffset} gets a {Describe(args[0])} instead of a storage.");
                    if (args[1] is not long offset || offset < 0) throw Error($"{global.FullName} at offset {_opcodeOffset} gets a storage offset that is not a non-negative integer.");
                    long[] size = LongTuple(args[2], global.FullName, "size");
                    long[] stride = LongTuple(args[3], global.FullName, "stride");
                    if (size.Length != stride.Length) throw Error($"{global.FullName} at offset {_opcodeOffset} gets {size.Length} sizes but {stride.Length} strides.");
                    if (args[4] is not bool) throw Error($"{global.FullName} at offset {_opcodeOffset} gets a requires_grad that is not a boolean.");
                    return new TensorRef(storage, offset, size, stride);
                }

            case PickleGlobalKind.RebuildParameter:
            case PickleGlobalKind.RebuildParameterWithState:
                {
                    // (data, requires_grad, backward_hooks[, state]): a Parameter is read as its tensor.
                    int expected = global.Kind == PickleGlobalKind.RebuildParameter ? 3 : 4;
                    if (args.Length != expected) throw Error($"{global.FullName} is called with {args.Length} arguments at offset {_opcodeOffset}; {expected} are expected.");
                    if (args[0] is not TensorRef tensor) throw Error($"{global.FullName} at offset {_opcodeOffset} gets a {Describe(args[0])} instead of a tensor.");
                    return tensor;
                }

            default:
                throw Error($"the pickle calls {global.FullName} at offset {_opcodeOffset}; a storage class may only appear in a persistent id, not be called.");
        }
    }

    private long[] LongTuple(object? value, string function, string what)
    {
        if (value is not object?[] items) throw Error($"{function} at offset {_opcodeOffset} gets a {Describe(value)} as its {what}; a tuple of integers is expected.");
        if (items.Length > MaxTensorDimensions) throw Error($"{function} at offset {_opcodeOffset} gets a {what} of {items.Length} dimensions; at most {MaxTensorDimensions} are supported.");
        var result = new long[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            if (items[i] is not long number || number < 0)
            {
                throw Error($"{function} at offset {_opcodeOffset} gets a {what} whose element {i} is not a non-negative integer.");
            }
            result[i] = number;
        }
        return result;
    }

    private void SetItem(object? target, object? key, object? value)
    {
        if (target is not PickleDict dict) throw Error($"SETITEM at offset {_opcodeOffset} targets a {Describe(target)}, not a dict; the pickle is corrupt.");
        if (key is not (null or string or long or bool or double))
        {
            throw Error($"a dict key at offset {_opcodeOffset} is a {Describe(key)}; a state dict's keys are strings.");
        }
        dict.Set(key, value);
        CountItems(1);
    }

    private List<object?> AsList(object? value)
        => value as List<object?> ?? throw Error($"APPEND at offset {_opcodeOffset} targets a {Describe(value)}, not a list; the pickle is corrupt.");

    private object?[] CountItems(object?[] tuple)
    {
        CountItems(tuple.Length);
        return tuple;
    }

    private void CountItems(long count)
    {
        _containerItems += count;
        if (_containerItems > MaxContainerItems)
        {
            throw Error($"the pickle builds more than {MaxContainerItems} container items (at offset {_opcodeOffset}); that is far more than any state dict. The file is corrupt or crafted.");
        }
    }

    private void Push(object? value)
    {
        if (_stack.Count >= MaxStackItems)
        {
            throw Error($"the pickle's stack grows beyond {MaxStackItems} items (at offset {_opcodeOffset}); a state dict needs a few thousand. The file is corrupt or crafted.");
        }
        _stack.Add(value);
    }

    private object? Pop()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Error($"the opcode at offset {_opcodeOffset} pops from an empty stack; the pickle is corrupt.");
        object? value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) throw Error($"the opcode at offset {_opcodeOffset} reads an empty stack; the pickle is corrupt.");
        return _stack[^1];
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Error($"the opcode at offset {_opcodeOffset} needs a MARK, and there is none; the pickle is corrupt.");
        int start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private void Memoize(uint index)
    {
        if (!_memo.ContainsKey(index) && _memo.Count >= MaxMemoEntries)
        {
            throw Error($"the pickle memoizes more than {MaxMemoEntries} objects (at offset {_opcodeOffset}); the file is corrupt or crafted.");
        }
        _memo[index] = Peek();
    }

    private object? Recall(uint index)
    {
        if (!_memo.TryGetValue(index, out object? value))
        {
            throw Error($"the pickle recalls memo entry {index} at offset {_opcodeOffset}, which was never stored; the file is corrupt.");
        }
        return value;
    }

    private byte ReadByte() => ReadSpan(1)[0];

    private ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(ReadSpan(8));

    private ReadOnlySpan<byte> ReadSpan(ulong length)
    {
        if (length > (ulong)(_data.Length - _position))
        {
            throw Error($"the pickle ends inside the opcode at offset {_opcodeOffset} (it needs {length} more bytes, {_data.Length - _position} remain); the file is truncated or corrupt.");
        }
        var span = new ReadOnlySpan<byte>(_data, _position, (int)length);
        _position += (int)length;
        return span;
    }

    private string ReadString(ulong length)
    {
        var bytes = ReadSpan(length);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw Error($"the string at offset {_opcodeOffset} is not valid UTF-8; the file is corrupt.", e);
        }
    }

    private long ReadLong1()
    {
        int length = ReadByte();
        var bytes = ReadSpan((ulong)length);
        if (length == 0) return 0;
        if (length > 8) throw Error($"the integer at offset {_opcodeOffset} has {length} bytes; integers beyond 64 bits are not supported.");
        long value = (sbyte)bytes[length - 1] < 0 ? -1L : 0L; // sign extension
        for (int i = length - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        return value;
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _position, Math.Min(MaxGlobalNameLength + 1, _data.Length - _position));
        if (end < 0) throw Error($"the GLOBAL at offset {_opcodeOffset} has no line end within {MaxGlobalNameLength} bytes; the pickle is corrupt.");
        string text = ReadString((ulong)(end - _position));
        _position++; // the newline
        return text;
    }

    private WeightsFormatException Error(string problem, Exception? inner = null)
        => new(_filePath, null, $"in '{_entryName}': {problem}", inner);

    private static string Printable(string text)
    {
        var builder = new StringBuilder();
        foreach (char c in text.Length > 100 ? text[..100] + "…" : text) builder.Append(char.IsControl(c) ? '?' : c);
        return builder.ToString();
    }

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleGlobal g => "global " + g.FullName,
        StorageRef => "storage",
        TensorRef => "tensor",
        _ => value.GetType().Name,
    };

    private static string OpcodeName(byte opcode) => opcode switch
    {
        (byte)'i' => "INST, which calls a global",
        (byte)'o' => "OBJ, which calls a global",
        0x81 => "NEWOBJ, which creates an object of a class",
        0x92 => "NEWOBJ_EX, which creates an object of a class",
        0x82 or 0x83 or 0x84 => "EXT, which names a global through the extension registry",
        (byte)'P' => "PERSID",
        (byte)'I' => "INT",
        (byte)'L' => "LONG",
        (byte)'F' => "FLOAT",
        (byte)'S' => "STRING",
        (byte)'T' => "BINSTRING",
        (byte)'U' => "SHORT_BINSTRING",
        (byte)'V' => "UNICODE",
        (byte)'B' => "BINBYTES",
        (byte)'C' => "SHORT_BINBYTES",
        0x8e => "BINBYTES8",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        (byte)'d' => "DICT",
        (byte)'l' => "LIST",
        (byte)'g' => "GET",
        (byte)'p' => "PUT",
        0x8b => "LONG4",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        _ => "not a pickle opcode",
    };
}
