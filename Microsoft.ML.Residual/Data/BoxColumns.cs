using System;
using System.Collections.Generic;
using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// A detection row's objects read from its label and box columns: a vector of label keys and a vector of 4 floats per object
    /// (x1, y1, x2, y2 in pixels of the original image), scaled to the network's input size. The original size is the unresized
    /// MLImage's, or that of the width and height columns, or else the pixel vector's own.
    /// </summary>
    internal static class BoxColumns
    {
        /// <summary>Values per object in a reader's row and in a batch's targets: class index (0-based), x1, y1, x2, y2.</summary>
        public const int ObjectValues = 5;

        /// <summary>
        /// A row reader giving the row's objects as <see cref="ObjectValues"/> floats each, in pixels of the <paramref name="width"/>×<paramref name="height"/>
        /// network input; boxes reaching out of the image are clipped to it, boxes without area are an error naming the row.
        /// </summary>
        public static Func<float[]> Reader(
            DataViewRowCursor cursor, ImageBatchReader.BoxTarget target, DataViewSchema.Column labels, DataViewSchema.Column boxes,
            DataViewSchema.Column? sourceImage, DataViewSchema.Column? widthColumn, DataViewSchema.Column? heightColumn, int width, int height)
        {
            var keyGetter = cursor.GetGetter<VBuffer<uint>>(labels);
            var boxGetter = cursor.GetGetter<VBuffer<float>>(boxes);
            Func<(double Width, double Height)> size = sourceImage is DataViewSchema.Column image ? ImageSize(cursor, image)
                : widthColumn is DataViewSchema.Column w && heightColumn is DataViewSchema.Column h ? ColumnSize(cursor, w, h)
                : () => (width, height);
            VBuffer<uint> keys = default;
            VBuffer<float> coordinates = default;
            int classes = target.NumClasses;
            return () =>
            {
                keyGetter(ref keys);
                boxGetter(ref coordinates);
                var (originalWidth, originalHeight) = size();
                int count = keys.Length;
                if (coordinates.Length != 4 * count)
                {
                    int found = coordinates.Length;
                    throw new RowReadException(row =>
                        $"Row {row}: label column '{labels.Name}' has {count} labels but box column '{boxes.Name}' has {found} values; give 4 values "
                        + "(x1, y1, x2, y2 in pixels) per label, in the labels' order.");
                }

                uint[] keyValues = keys.DenseValues() is var k ? System.Linq.Enumerable.ToArray(k) : Array.Empty<uint>();
                float[] values = System.Linq.Enumerable.ToArray(coordinates.DenseValues());
                double sx = width / originalWidth, sy = height / originalHeight;
                var objects = new List<float>(count * ObjectValues);
                for (int i = 0; i < count; i++)
                {
                    uint key = keyValues[i];
                    int index = i;
                    if (key == 0 || key > classes)
                        throw new RowReadException(row =>
                            $"Row {row}: label {index} of column '{labels.Name}' is key {key}, which is missing (0) or beyond the {classes} classes. "
                            + "Give every object a label that MapValueToKey knows, or remove it.");
                    float x1 = values[4 * i], y1 = values[4 * i + 1], x2 = values[4 * i + 2], y2 = values[4 * i + 3];
                    if (!(float.IsFinite(x1) && float.IsFinite(y1) && float.IsFinite(x2) && float.IsFinite(y2)) || x2 <= x1 || y2 <= y1)
                        throw new RowReadException(row =>
                            $"Row {row}: box {index} of column '{boxes.Name}' is ({x1}, {y1}, {x2}, {y2}); a box is x1, y1, x2, y2 in pixels with x1 < x2 and y1 < y2. "
                            + "Fix or remove it.");
                    double cx1 = Math.Clamp(x1, 0, originalWidth) * sx, cy1 = Math.Clamp(y1, 0, originalHeight) * sy;
                    double cx2 = Math.Clamp(x2, 0, originalWidth) * sx, cy2 = Math.Clamp(y2, 0, originalHeight) * sy;
                    if (cx2 <= cx1 || cy2 <= cy1)
                        throw new RowReadException(row =>
                            $"Row {row}: box {index} of column '{boxes.Name}' ({x1}, {y1}, {x2}, {y2}) lies outside the {originalWidth}×{originalHeight} image. Fix or remove it.");
                    objects.Add(key - 1);
                    objects.Add((float)cx1);
                    objects.Add((float)cy1);
                    objects.Add((float)cx2);
                    objects.Add((float)cy2);
                }

                return objects.ToArray();
            };
        }

        private static Func<(double, double)> ImageSize(DataViewRowCursor cursor, DataViewSchema.Column column)
        {
            var getter = cursor.GetGetter<MLImage>(column);
            MLImage image = null!;
            return () =>
            {
                getter(ref image);
                if (image is null || image.Width <= 0 || image.Height <= 0)
                    throw new RowReadException(row => $"Image column '{column.Name}', row {row}: there is no image (null or empty). Check the row's image path, or filter the row out.");
                return (image.Width, image.Height);
            };
        }

        private static Func<(double, double)> ColumnSize(DataViewRowCursor cursor, DataViewSchema.Column widthColumn, DataViewSchema.Column heightColumn)
        {
            Func<double> width = Number(cursor, widthColumn), height = Number(cursor, heightColumn);
            return () =>
            {
                double w = width(), h = height();
                if (!(w >= 1 && h >= 1 && double.IsFinite(w) && double.IsFinite(h)))
                    throw new RowReadException(row => $"Row {row}: the image size in columns '{widthColumn.Name}' and '{heightColumn.Name}' is {w}×{h}; give the original image's width and height in pixels.");
                return (w, h);
            };
        }

        /// <summary>A numeric column (Single, Double, Int32, Int64, UInt32) read as a double.</summary>
        public static Func<double> Number(DataViewRow row, DataViewSchema.Column column)
        {
            Func<double> Read<T>(Func<T, double> widen)
            {
                var getter = row.GetGetter<T>(column);
                T value = default!;
                return () =>
                {
                    getter(ref value);
                    return widen(value);
                };
            }

            return column.Type.RawType switch
            {
                var t when t == typeof(float) => Read<float>(v => v),
                var t when t == typeof(double) => Read<double>(v => v),
                var t when t == typeof(int) => Read<int>(v => v),
                var t when t == typeof(long) => Read<long>(v => v),
                var t when t == typeof(uint) => Read<uint>(v => v),
                var t when t == typeof(ulong) => Read<ulong>(v => v),
                var t when t == typeof(short) => Read<short>(v => v),
                var t when t == typeof(ushort) => Read<ushort>(v => v),
                var t when t == typeof(sbyte) => Read<sbyte>(v => v),
                var t when t == typeof(byte) => Read<byte>(v => v),
                var t => throw new ArgumentException($"Column '{column.Name}' has type {column.Type}; the image size columns must hold numbers."),
            };
        }

        /// <summary>Checks the label column (a vector of keys) and the box column (a vector of Single) of a detection input.</summary>
        public static int CheckTypes(DataViewSchema.Column labels, DataViewSchema.Column boxes)
        {
            if (labels.Type is not VectorDataViewType { ItemType: KeyDataViewType key } || key.RawType != typeof(uint))
                throw new ArgumentException(
                    $"Label column '{labels.Name}' has type {labels.Type}; it must be a vector of keys (UInt32), one per object: "
                    + "map the class names with ml.Transforms.Conversion.MapValueToKey.", "input");
            if (boxes.Type is not VectorDataViewType { ItemType: NumberDataViewType number } || number != NumberDataViewType.Single)
                throw new ArgumentException(
                    $"Box column '{boxes.Name}' has type {boxes.Type}; it must be a vector of Single: x1, y1, x2, y2 in pixels for each object, in the labels' order.", "input");
            return checked((int)key.Count);
        }

        /// <summary>The batch's targets: N × M × <see cref="ObjectValues"/> (M the most objects of a row, at least 1), rows of class −1 padding the rest.</summary>
        public static Tensor Stack(IReadOnlyList<float[]> rows)
        {
            int most = 1;
            foreach (float[] row in rows) most = Math.Max(most, row.Length / ObjectValues);
            var values = new float[rows.Count * most * ObjectValues];
            for (int i = 0; i < rows.Count; i++)
            {
                int start = i * most * ObjectValues;
                rows[i].CopyTo(values, start);
                for (int j = rows[i].Length / ObjectValues; j < most; j++) values[start + j * ObjectValues] = -1;
            }

            return tensor(values, new long[] { rows.Count, most, ObjectValues });
        }
    }
}
