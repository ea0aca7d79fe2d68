using System;
using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// Reads a segmentation mask column as class indices. A mask is height×width class indices, row-major; -1 marks
    /// an ignored pixel. Three column types hold masks:
    /// <list type="bullet">
    /// <item><description>An image (<see cref="ImageDataViewType"/>, e.g. from <c>LoadImages</c> over PNG masks): the pixel value is the
    /// class index, so R, G and B must agree (alpha is ignored; a grayscale PNG loads with equal channels). An image of another size is
    /// resized with nearest neighbour, never blended: output pixel (x, y) reads source pixel
    /// (⌊(x + ½)·sourceWidth/width⌋, ⌊(y + ½)·sourceHeight/height⌋), the source pixel whose area holds the output pixel's centre.</description></item>
    /// <item><description>A vector of height·width <c>Byte</c>, <c>UInt16</c>, <c>UInt32</c>, <c>Int32</c>, <c>Int64</c> or <c>Single</c>
    /// values (known or variable size): the value is the class index; a <c>Single</c> must be a whole number.</description></item>
    /// <item><description>A vector of height·width keys (e.g. <c>MapValueToKey</c> over class names): key k ≥ 1 is class k − 1; key 0
    /// (missing) is ignored.</description></item>
    /// </list>
    /// For images and number vectors a value equal to the ignore index becomes -1; any other negative value is an error. The class
    /// range is not checked here: the caller knows the number of classes.
    /// </summary>
    internal static class MaskColumn
    {
        private const string Supported =
            "A mask column must be an image (ml.Transforms.LoadImages over mask files whose pixel value is the class index), " +
            "a vector of height×width Byte, UInt16, UInt32, Int32, Int64 or Single class indices, or a vector of height×width keys " +
            "(key k is class k − 1, key 0 is ignored).";

        /// <summary>Throws <see cref="ArgumentException"/> naming the column (and saying what is supported) when the type cannot hold a mask.</summary>
        /// <exception cref="ArgumentException">The type is not a mask type, or a known-size vector does not have <paramref name="height"/>·<paramref name="width"/> values.</exception>
        public static void CheckType(DataViewSchema.Column column, int height, int width)
        {
            CheckSize(height, width);
            switch (column.Type)
            {
                case ImageDataViewType:
                    return;
                case VectorDataViewType vector when IsNumberItem(vector.ItemType) || IsKeyItem(vector.ItemType):
                    long plane = (long)height * width;
                    if (vector.IsKnownSize && vector.Size != plane)
                        throw new ArgumentException(
                            $"Mask column '{column.Name}' has {vector.Size} values per row; a {height}×{width} mask needs {plane} " +
                            $"(height×width, row-major). Give masks of {height}×{width} pixels or set the mask size to the column's.");
                    return;
                default:
                    throw new ArgumentException($"Mask column '{column.Name}' has type {column.Type}, which cannot hold a mask. {Supported}");
            }
        }

        /// <summary>
        /// A reader for the current row of <paramref name="row"/> (a cursor): each call returns a new int[height·width] of class
        /// indices, row-major, -1 marking an ignored pixel. Its argument is the row number used in error messages.
        /// </summary>
        /// <exception cref="ArgumentException">The column's type cannot hold a mask (see <see cref="CheckType"/>).</exception>
        /// <remarks>
        /// The reader throws <see cref="InvalidOperationException"/> naming the column and the row when the value cannot be read (e.g. an
        /// unreadable image file), has the wrong length, an image's channels disagree, or a value is negative, not a whole number or too
        /// large; pixel errors also name the pixel (x, y).
        /// </remarks>
        public static Func<long, int[]> CreateReader(DataViewRow row, DataViewSchema.Column column, int height, int width, int? ignoreIndex = null)
        {
            Func<int[]> read = CreateRowReader(row, column, height, width, ignoreIndex);
            return rowIndex =>
            {
                try
                {
                    return read();
                }
                catch (RowReadException e)
                {
                    throw e.ForRow(rowIndex);
                }
            };
        }

        /// <summary>
        /// As <see cref="CreateReader"/>, for a reader that does not know its row's number: it throws <see cref="RowReadException"/>,
        /// whose message the caller completes with the row (e.g. <see cref="OrderedRows"/> on a reading thread).
        /// </summary>
        internal static Func<int[]> CreateRowReader(DataViewRow row, DataViewSchema.Column column, int height, int width, int? ignoreIndex = null)
        {
            if (row is null) throw new ArgumentNullException(nameof(row));
            CheckType(column, height, width);
            if (column.Type is ImageDataViewType) return ImageReader(row, column, height, width, ignoreIndex);

            var item = ((VectorDataViewType)column.Type).ItemType;
            string name = column.Name;
            if (item is KeyDataViewType)
            {
                var raw = item.RawType;
                if (raw == typeof(uint)) return VectorReader<uint>(row, column, height, width, (v, p) => FromKey(v, name, p, width));
                if (raw == typeof(byte)) return VectorReader<byte>(row, column, height, width, (v, p) => FromKey(v, name, p, width));
                if (raw == typeof(ushort)) return VectorReader<ushort>(row, column, height, width, (v, p) => FromKey(v, name, p, width));
                return VectorReader<ulong>(row, column, height, width, (v, p) => FromKey(v, name, p, width));
            }

            if (item == NumberDataViewType.Single)
                return VectorReader<float>(row, column, height, width, (v, p) => FromSingle(v, ignoreIndex, name, p, width));
            if (item == NumberDataViewType.Byte)
                return VectorReader<byte>(row, column, height, width, (v, p) => FromInteger(v, ignoreIndex, name, p, width));
            if (item == NumberDataViewType.UInt16)
                return VectorReader<ushort>(row, column, height, width, (v, p) => FromInteger(v, ignoreIndex, name, p, width));
            if (item == NumberDataViewType.UInt32)
                return VectorReader<uint>(row, column, height, width, (v, p) => FromInteger(v, ignoreIndex, name, p, width));
            if (item == NumberDataViewType.Int32)
                return VectorReader<int>(row, column, height, width, (v, p) => FromInteger(v, ignoreIndex, name, p, width));
            return VectorReader<long>(row, column, height, width, (v, p) => FromInteger(v, ignoreIndex, name, p, width));
        }

        private static void CheckSize(int height, int width)
        {
            if (height <= 0 || width <= 0 || (long)height * width > int.MaxValue)
                throw new ArgumentOutOfRangeException(nameof(height), $"A mask must be at least 1×1 pixels and at most {int.MaxValue} pixels; got {height}×{width}.");
        }

        private static bool IsNumberItem(DataViewType item) =>
            item == NumberDataViewType.Byte || item == NumberDataViewType.UInt16 || item == NumberDataViewType.UInt32 ||
            item == NumberDataViewType.Int32 || item == NumberDataViewType.Int64 || item == NumberDataViewType.Single;

        private static bool IsKeyItem(DataViewType item) =>
            item is KeyDataViewType key && (key.RawType == typeof(uint) || key.RawType == typeof(byte) || key.RawType == typeof(ushort) || key.RawType == typeof(ulong));

        private static string Pixel(int index, int width) =>
            string.Create(CultureInfo.InvariantCulture, $"pixel (x {index % width}, y {index / width})");

        private static int FromInteger(long value, int? ignoreIndex, string column, int pixel, int width)
        {
            if (ignoreIndex is int ignore && value == ignore) return -1;
            if (value < 0) throw Negative(value.ToString(CultureInfo.InvariantCulture), ignoreIndex, column, pixel, width);
            if (value > int.MaxValue) throw TooLarge(value.ToString(CultureInfo.InvariantCulture), column, pixel, width);
            return (int)value;
        }

        private static int FromSingle(float value, int? ignoreIndex, string column, int pixel, int width)
        {
            if (ignoreIndex is int ignore && value == ignore) return -1;
            string text = value.ToString("R", CultureInfo.InvariantCulture);
            if (!float.IsFinite(value) || value != MathF.Floor(value))
                throw new RowReadException(row =>
                    $"Mask column '{column}', row {row}, {Pixel(pixel, width)}: the value {text} is not a whole number; " +
                    "a Single mask must hold class indices 0, 1, 2, … (round or convert it, or use a UInt32 or key vector).");
            if (value < 0) throw Negative(text, ignoreIndex, column, pixel, width);
            if (value > int.MaxValue) throw TooLarge(text, column, pixel, width);
            return (int)value;
        }

        private static RowReadException Negative(string value, int? ignoreIndex, string column, int pixel, int width) =>
            new(row => $"Mask column '{column}', row {row}, {Pixel(pixel, width)}: the value {value} is negative; class indices must be 0 or more. " +
                (ignoreIndex is int i
                    ? $"Only the ignore index {i} marks ignored pixels; fix the mask or set the ignore index to {value}."
                    : $"To ignore such pixels, set the ignore index to {value}."));

        private static RowReadException TooLarge(string value, string column, int pixel, int width) =>
            new(row => $"Mask column '{column}', row {row}, {Pixel(pixel, width)}: the value {value} is too large to be a class index.");

        private static int FromKey(ulong key, string column, int pixel, int width)
        {
            if (key == 0) return -1;
            if (key - 1 > int.MaxValue)
                throw new RowReadException(row => $"Mask column '{column}', row {row}, {Pixel(pixel, width)}: the key {key} is too large to be a class index.");
            return (int)(key - 1);
        }

        private delegate int Convert<T>(T value, int pixel);

        private static Func<int[]> VectorReader<T>(DataViewRow row, DataViewSchema.Column column, int height, int width, Convert<T> convert)
        {
            var getter = row.GetGetter<VBuffer<T>>(column);
            string name = column.Name;
            int plane = height * width;
            VBuffer<T> buffer = default;
            return () =>
            {
                try
                {
                    getter(ref buffer);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new RowReadException(rowIndex => $"Mask column '{name}', row {rowIndex}: the mask could not be read ({ex.Message}).", ex);
                }

                int found = buffer.Length;
                if (found != plane)
                    throw new RowReadException(rowIndex =>
                        $"Mask column '{name}', row {rowIndex}: expected {plane} values (a {height}×{width} mask, row-major), found {found}. " +
                        "Give every row a mask of that size, or filter the row out.");
                var mask = new int[plane];
                var values = buffer.GetValues();
                if (buffer.IsDense)
                {
                    for (int i = 0; i < plane; i++) mask[i] = convert(values[i], i);
                }
                else
                {
                    // Implicit entries are default(T): key 0 (ignored) or the value 0.
                    int zero = convert(default!, 0);
                    Array.Fill(mask, zero);
                    var indices = buffer.GetIndices();
                    for (int i = 0; i < indices.Length; i++) mask[indices[i]] = convert(values[i], indices[i]);
                }

                return mask;
            };
        }

        private static Func<int[]> ImageReader(DataViewRow row, DataViewSchema.Column column, int height, int width, int? ignoreIndex)
        {
            var getter = row.GetGetter<MLImage>(column);
            string name = column.Name;
            return () =>
            {
                MLImage? image = null;
                try
                {
                    getter(ref image!);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new RowReadException(rowIndex =>
                        $"Mask column '{name}', row {rowIndex}: the mask image could not be read ({ex.Message}). " +
                        "Check that the file exists and is a readable image, or filter the row out.", ex);
                }

                if (image is null || image.Width <= 0 || image.Height <= 0)
                    throw new RowReadException(rowIndex =>
                        $"Mask column '{name}', row {rowIndex}: there is no mask image (null or empty). Check the row's mask path " +
                        "and the imageFolder given to LoadImages, or filter the row out.");
                return ReadImage(image, name, height, width, ignoreIndex);
            };
        }

        /// <summary>The class indices of a mask image, resized to <paramref name="width"/>×<paramref name="height"/> by nearest neighbour.</summary>
        internal static int[] ReadImage(MLImage image, string column, int height, int width, int? ignoreIndex)
        {
            int w = image.Width, h = image.Height;
            int r = image.PixelFormat switch
            {
                MLPixelFormat.Bgra32 => 2,
                MLPixelFormat.Rgba32 => 0,
                var other => throw new RowReadException(row => $"Mask column '{column}', row {row}: unsupported pixel format {other}."),
            };
            int b = 2 - r;
            ReadOnlySpan<byte> pixels = image.Pixels;
            int stride = pixels.Length / h;

            // Every source pixel is checked, so a mask with disagreeing channels fails whatever the output size.
            var source = new int[h * w];
            for (int y = 0; y < h; y++)
            {
                var line = pixels.Slice(y * stride, 4 * w);
                for (int x = 0; x < w; x++)
                {
                    byte red = line[4 * x + r], green = line[4 * x + 1], blue = line[4 * x + b];
                    if (red != green || red != blue)
                        throw new RowReadException(row =>
                            $"Mask column '{column}', row {row}: pixel (x {x}, y {y}) of the {w}×{h} mask image has R={red}, G={green}, B={blue}; " +
                            "this is a mask with more than one channel that disagrees. A mask image must hold the class index in every channel " +
                            "(a grayscale PNG, or R = G = B). Convert colour-coded masks to class indices first.");
                    source[y * w + x] = ignoreIndex is int ignore && red == ignore ? -1 : red;
                }
            }

            if (w == width && h == height) return source;
            var mask = new int[height * width];
            var sx = new int[width];
            for (int x = 0; x < width; x++) sx[x] = NearestSource(x, width, w);
            for (int y = 0; y < height; y++)
            {
                int o = NearestSource(y, height, h) * w;
                for (int x = 0; x < width; x++) mask[y * width + x] = source[o + sx[x]];
            }

            return mask;
        }

        /// <summary>The source index whose cell holds output pixel <paramref name="output"/>'s centre: ⌊(output + ½)·source/size⌋.</summary>
        internal static int NearestSource(int output, int size, int source) =>
            (int)Math.Min(((2L * output + 1) * source) / (2L * size), source - 1);
    }
}
