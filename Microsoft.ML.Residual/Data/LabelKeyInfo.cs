using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>The classes of a key-typed label column: their number and, when the key has them, their names.</summary>
    public sealed class LabelKeyInfo
    {
        private LabelKeyInfo(string columnName, int classCount, IReadOnlyList<string>? classNames)
        {
            ColumnName = columnName;
            ClassCount = classCount;
            ClassNames = classNames;
        }

        /// <summary>The label column.</summary>
        public string ColumnName { get; }

        /// <summary>Number of classes: the key's count. Class index i is key value i + 1.</summary>
        public int ClassCount { get; }

        /// <summary>
        /// Name of each class index, from the column's <c>KeyValues</c> annotation (written by <c>MapValueToKey</c>),
        /// formatted with the invariant culture; null when the key has no such annotation.
        /// </summary>
        public IReadOnlyList<string>? ClassNames { get; }

        /// <summary>Reads the key count and the key values of <paramref name="labelColumnName"/> in <paramref name="schema"/>.</summary>
        /// <exception cref="ArgumentException">The column is missing or is not a key column.</exception>
        public static LabelKeyInfo FromSchema(DataViewSchema schema, string labelColumnName)
        {
            if (schema is null) throw new ArgumentNullException(nameof(schema));
            if (labelColumnName is null) throw new ArgumentNullException(nameof(labelColumnName));
            var column = SchemaChecks.Find(schema, labelColumnName, "label");
            var key = SchemaChecks.KeyType(column);
            if (key.Count > int.MaxValue)
                throw new ArgumentException($"Label column '{labelColumnName}' has {key.Count} key values, more than a classifier can have; map the labels to fewer classes.");
            int count = (int)key.Count;

            IReadOnlyList<string>? names = null;
            var keyValues = column.Annotations.Schema.GetColumnOrNull("KeyValues");
            if (keyValues is { Type: VectorDataViewType vector })
            {
                var read = typeof(LabelKeyInfo).GetMethod(nameof(ReadKeyValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                    .MakeGenericMethod(vector.ItemType.RawType);
                names = (IReadOnlyList<string>)read.Invoke(null, new object[] { column.Annotations, "KeyValues" })!;
                if (names.Count != count)
                    throw new ArgumentException($"Label column '{labelColumnName}' has {count} keys but {names.Count} key values; rebuild it with MapValueToKey.");
            }

            return new LabelKeyInfo(labelColumnName, count, names);
        }

        /// <summary>
        /// The labels of a multi-label column: a vector of keys (e.g. <c>MapValueToKey</c> over tokenised tags; variable length,
        /// each key a label the row has) or a known-size Boolean vector (one slot per label, names from its slot names).
        /// </summary>
        /// <exception cref="ArgumentException">The column is missing or is neither.</exception>
        internal static LabelKeyInfo FromMultiLabelSchema(DataViewSchema schema, string labelColumnName)
        {
            var column = SchemaChecks.Find(schema, labelColumnName, "label");
            IReadOnlyList<string>? Names(string annotation, int count)
            {
                if (column.Annotations.Schema.GetColumnOrNull(annotation) is not { Type: VectorDataViewType vector }) return null;
                var read = typeof(LabelKeyInfo).GetMethod(nameof(ReadKeyValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                    .MakeGenericMethod(vector.ItemType.RawType);
                var names = (IReadOnlyList<string>)read.Invoke(null, new object[] { column.Annotations, annotation })!;
                return names.Count == count ? names : null;
            }

            switch (column.Type)
            {
                case VectorDataViewType { ItemType: KeyDataViewType key } when key.RawType != typeof(uint):
                    throw new ArgumentException($"Label column '{labelColumnName}' holds keys of raw type {key.RawType.Name}; use MapValueToKey's default (UInt32).");
                case VectorDataViewType { ItemType: KeyDataViewType key } when key.Count is > 0 and <= int.MaxValue:
                    return new LabelKeyInfo(labelColumnName, (int)key.Count, Names("KeyValues", (int)key.Count));
                case VectorDataViewType { ItemType: BooleanDataViewType, IsKnownSize: true } flags:
                    return new LabelKeyInfo(labelColumnName, flags.Size, Names("SlotNames", flags.Size));
                default:
                    throw new ArgumentException(
                        $"Label column '{labelColumnName}' has type {column.Type}; a multi-label classifier needs a vector of keys (the labels of each row, e.g. "
                        + $"ml.Transforms.Text.TokenizeIntoWords(\"{labelColumnName}\", separators: new[] {{ ';' }}) then MapValueToKey(\"{labelColumnName}\")) "
                        + "or a known-size Boolean vector with one slot per label.");
            }
        }

        /// <summary>The rows of each class (key value k + 1 counts for class k; missing keys, 0, count for none) in a key-typed column.</summary>
        internal static long[] CountKeys(IDataView data, string labelColumnName)
        {
            DataViewSchema.Column column = SchemaChecks.Find(data.Schema, labelColumnName, "label");
            KeyDataViewType key = SchemaChecks.KeyType(column);
            var count = typeof(LabelKeyInfo).GetMethod(nameof(CountKeysOf), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                .MakeGenericMethod(key.RawType);
            return (long[])count.Invoke(null, new object[] { data, column, checked((int)key.Count) })!;
        }

        private static long[] CountKeysOf<T>(IDataView data, DataViewSchema.Column column, int classes)
        {
            var counts = new long[classes];
            using DataViewRowCursor cursor = data.GetRowCursor(new[] { column });
            ValueGetter<T> getter = cursor.GetGetter<T>(column);
            T value = default!;
            while (cursor.MoveNext())
            {
                getter(ref value);
                ulong k = Convert.ToUInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                if (k >= 1 && k <= (ulong)classes) counts[k - 1]++;
            }

            return counts;
        }

        private static IReadOnlyList<string> ReadKeyValues<T>(DataViewSchema.Annotations annotations, string name)
        {
            VBuffer<T> values = default;
            annotations.GetValue(name, ref values);
            return values.DenseValues()
                .Select(v => v switch
                {
                    ReadOnlyMemory<char> text => text.ToString(),
                    IFormattable formattable => formattable.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
                    null => "",
                    var other => other.ToString() ?? "",
                })
                .ToArray();
        }
    }

    /// <summary>Schema look-ups with errors that name the column and say what to do.</summary>
    internal static class SchemaChecks
    {
        public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role)
        {
            if (schema.GetColumnOrNull(name) is { IsHidden: false } column) return column;
            var names = schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'");
            throw new ArgumentException(
                $"The data view has no {role} column '{name}'. Its columns are: {string.Join(", ", names)}. " +
                $"Set the {role} column name to one of them, or add a transform that creates '{name}'.");
        }

        public static KeyDataViewType KeyType(DataViewSchema.Column column) =>
            column.Type as KeyDataViewType ?? throw new ArgumentException(
                $"Label column '{column.Name}' has type {column.Type}; it must be a key type. " +
                (column.Type is VectorDataViewType
                    ? "It holds several values per row: for images with several labels use ml.MultiLabelClassification().ImageClassifier."
                    : $"Add ml.Transforms.Conversion.MapValueToKey(\"{column.Name}\") before reading it."));
    }
}
