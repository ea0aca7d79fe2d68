using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Deploy;

/// <summary>
/// A data view with one row per image: the path column holds the image's path, every other column its type's
/// default (empty text, zero, a missing key, an all-zero vector), except the Single columns given per row (a detector's image
/// width and height). ML.NET builds typed data views from a class;
/// here the columns come from the loaded model's input schema, so this implements <see cref="IDataView"/> directly.
/// </summary>
internal sealed class InputRows : IDataView
{
    private readonly IReadOnlyList<string> paths;
    private readonly int pathIndex;
    private readonly Dictionary<int, IReadOnlyList<float>> given = new();

    public InputRows(IEnumerable<(string Name, DataViewType Type)> columns, string pathColumn, IReadOnlyList<string> paths,
        IReadOnlyDictionary<string, IReadOnlyList<float>>? values = null)
    {
        this.paths = paths;
        var builder = new DataViewSchema.Builder();
        foreach (var (name, type) in columns) builder.AddColumn(name, type);
        Schema = builder.ToSchema();
        pathIndex = Schema[pathColumn].Index;
        if (Schema[pathIndex].Type is not TextDataViewType)
            throw new ArgumentException($"The path column '{pathColumn}' must be text.", nameof(pathColumn));
        foreach (var (name, rowValues) in values ?? new Dictionary<string, IReadOnlyList<float>>())
        {
            if (Schema.GetColumnOrNull(name) is not { Type: NumberDataViewType number } column
                || !(number.RawType == typeof(float) || number.RawType == typeof(double) || number.RawType == typeof(int) || number.RawType == typeof(long)))
                throw new DeployException($"the model's input has no numeric column '{name}' (Single, Double, Int32 or Int64) for the images' sizes (columns: {string.Join(", ", Schema.Select(c => c.Name))}).");
            given[column.Index] = rowValues;
        }
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => paths.Count;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(this);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new DataViewRowCursor[] { new Cursor(this) };

    private sealed class Cursor : DataViewRowCursor
    {
        private static readonly MethodInfo DefaultScalar = typeof(Cursor).GetMethod(nameof(ScalarDefault), BindingFlags.NonPublic | BindingFlags.Static)!;
        private static readonly MethodInfo DefaultVector = typeof(Cursor).GetMethod(nameof(VectorDefault), BindingFlags.NonPublic | BindingFlags.Static)!;

        private readonly InputRows rows;
        private long position = -1;

        public Cursor(InputRows rows) => this.rows = rows;

        public override DataViewSchema Schema => rows.Schema;

        public override long Position => position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (position + 1 >= rows.paths.Count)
            {
                position = rows.paths.Count;
                return false;
            }

            position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId value) => value = new DataViewRowId((ulong)position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == rows.pathIndex)
            {
                ValueGetter<ReadOnlyMemory<char>> path = (ref ReadOnlyMemory<char> value) => value = rows.paths[(int)position].AsMemory();
                return (ValueGetter<TValue>)(Delegate)path;
            }

            if (rows.given.TryGetValue(column.Index, out IReadOnlyList<float>? values))
            {
                Delegate number = column.Type.RawType switch
                {
                    var t when t == typeof(double) => (ValueGetter<double>)((ref double value) => value = values[(int)position]),
                    var t when t == typeof(int) => (ValueGetter<int>)((ref int value) => value = (int)values[(int)position]),
                    var t when t == typeof(long) => (ValueGetter<long>)((ref long value) => value = (long)values[(int)position]),
                    _ => (ValueGetter<float>)((ref float value) => value = values[(int)position]),
                };
                return (ValueGetter<TValue>)number;
            }

            DataViewType type = column.Type;
            Delegate getter = type is VectorDataViewType vector
                ? (Delegate)DefaultVector.MakeGenericMethod(vector.ItemType.RawType).Invoke(null, new object[] { vector.Size })!
                : (Delegate)DefaultScalar.MakeGenericMethod(type.RawType).Invoke(null, null)!;
            return (ValueGetter<TValue>)getter;
        }

        private static ValueGetter<T> ScalarDefault<T>() => (ref T value) => value = default!;

        private static ValueGetter<VBuffer<T>> VectorDefault<T>(int size) =>
            (ref VBuffer<T> value) => value = new VBuffer<T>(size, 0, Array.Empty<T>(), Array.Empty<int>());
    }
}
