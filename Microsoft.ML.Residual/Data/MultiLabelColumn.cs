using System;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>A multi-label column read row by row: a vector of label keys, or a known-size Boolean vector (<see cref="LabelKeyInfo.FromMultiLabelSchema"/>).</summary>
    internal static class MultiLabelColumn
    {
        /// <summary>A row's K targets (1 for each label it has) from a vector of keys (key k + 1 marks label k; missing keys, 0, mark none) or of Booleans.</summary>
        public static Func<float[]> Reader(DataViewRowCursor cursor, DataViewSchema.Column column, int classes)
        {
            var vector = (VectorDataViewType)column.Type;
            if (vector.ItemType is BooleanDataViewType)
            {
                var flags = cursor.GetGetter<VBuffer<bool>>(column);
                VBuffer<bool> value = default;
                return () =>
                {
                    flags(ref value);
                    var targets = new float[classes];
                    foreach (var (slot, on) in value.Items()) if (on) targets[slot] = 1;
                    return targets;
                };
            }

            if (vector.ItemType.RawType != typeof(uint))
                throw new ArgumentException($"Label column '{column.Name}' holds keys of raw type {vector.ItemType.RawType.Name}, which the reader does not support; use MapValueToKey's default (UInt32).");
            var keys = cursor.GetGetter<VBuffer<uint>>(column);
            VBuffer<uint> held = default;
            return () =>
            {
                keys(ref held);
                var targets = new float[classes];
                foreach (uint key in held.DenseValues()) if (key >= 1 && key <= classes) targets[key - 1] = 1;
                return targets;
            };
        }
    }
}
