using System;
using System.Globalization;
using System.Linq;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Deploy;

/// <summary>Reads slot names, key values and label columns of any item type as text.</summary>
internal static class Annotations
{
    private static readonly MethodInfo ReadVectorMethod = typeof(Annotations).GetMethod(nameof(ReadVector), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo KeyReaderMethod = typeof(Annotations).GetMethod(nameof(KeyReader), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo TextReaderMethod = typeof(Annotations).GetMethod(nameof(TextReader), BindingFlags.NonPublic | BindingFlags.Static)!;

    /// <summary>The vector annotation <paramref name="kind"/> (e.g. SlotNames, KeyValues) as text, or null when absent.</summary>
    public static string[]? Strings(DataViewSchema.Annotations annotations, string kind)
    {
        DataViewSchema.Column? column = annotations.Schema.GetColumnOrNull(kind);
        if (column?.Type is not VectorDataViewType vector) return null;
        return (string[])ReadVectorMethod.MakeGenericMethod(vector.ItemType.RawType).Invoke(null, new object[] { annotations, kind })!;
    }

    /// <summary>
    /// Reads <paramref name="column"/> of the current row as text: a key through its key values (1-based; 0 is the
    /// missing key), anything else with its invariant string form.
    /// </summary>
    public static Func<string> LabelReader(DataViewRow row, DataViewSchema.Column column, string[]? keyValues)
    {
        if (column.Type is KeyDataViewType key)
        {
            var get = (Func<ulong>)KeyReaderMethod.MakeGenericMethod(key.RawType).Invoke(null, new object[] { row, column })!;
            return () =>
            {
                ulong k = get();
                if (k == 0) return "(missing)";
                return keyValues != null && k <= (ulong)keyValues.Length ? keyValues[k - 1] : "key " + k.ToString(CultureInfo.InvariantCulture);
            };
        }

        return (Func<string>)TextReaderMethod.MakeGenericMethod(column.Type.RawType).Invoke(null, new object[] { row, column })!;
    }

    private static string[] ReadVector<T>(DataViewSchema.Annotations annotations, string kind)
    {
        VBuffer<T> values = default;
        annotations.GetValue(kind, ref values);
        return values.DenseValues().Select(v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? string.Empty).ToArray();
    }

    private static Func<ulong> KeyReader<T>(DataViewRow row, DataViewSchema.Column column)
    {
        ValueGetter<T> getter = row.GetGetter<T>(column);
        T value = default!;
        return () =>
        {
            getter(ref value);
            return Convert.ToUInt64(value, CultureInfo.InvariantCulture);
        };
    }

    private static Func<string> TextReader<T>(DataViewRow row, DataViewSchema.Column column)
    {
        ValueGetter<T> getter = row.GetGetter<T>(column);
        T value = default!;
        return () =>
        {
            getter(ref value);
            return Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty;
        };
    }
}
