using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// Reads an <see cref="IDataView"/> as TorchSharp batches: float32 N×C×H×W images (0–255, not normalised) and
    /// int64 class indices (N, or N×H×W masks for segmentation). Rows are read and decoded by <see cref="ImageBatchOptions.Workers"/> threads and made into
    /// batches on a background task at most <see cref="ImageBatchOptions.PrefetchBatches"/> batches ahead of the consumer,
    /// so decoding overlaps training and, without <see cref="ImageBatchOptions.CacheInMemory"/>, the data view is never
    /// held in memory whole.
    /// </summary>
    /// <remarks>
    /// Memory is bounded: the shuffle buffer (or the cache), up to 128 decoded rows per worker, and the prefetched batches.
    /// Each batch's tensors join the dispose scope of the thread that enumerates, if it has one; dispose each
    /// <see cref="ImageBatch"/> (or the scope). Enumerate one epoch at a time.
    /// </remarks>
    public sealed class ImageBatchReader
    {
        private readonly IDataView data;
        private readonly ImageBatchOptions options;
        private readonly DataViewSchema.Column imageColumn;
        private readonly DataViewSchema.Column? labelColumn, maskColumn, sourceImageColumn;
        private readonly MaskTarget? maskTarget;
        private readonly BoxTarget? boxTarget;
        private readonly DataViewSchema.Column? boxLabelColumn, boxColumn, widthColumn, heightColumn;
        private readonly RowCache<Sample> cache = new();
        private readonly ArrayRecycler<float> rowBuffers;

        /// <summary>Checks <paramref name="data"/>'s schema against <paramref name="options"/> and prepares the reader.</summary>
        /// <exception cref="ArgumentException">A column is missing or has the wrong type or size, or the data view has no rows.</exception>
        public ImageBatchReader(IDataView data, ImageBatchOptions options) : this(data, options, (MaskTarget?)null)
        {
        }

        /// <summary>
        /// As the public constructor; with <paramref name="mask"/> (and no label column), each batch's
        /// <see cref="ImageBatch.Labels"/> is the int64 N×H×W mask, −1 marking ignored pixels, and augmentation moves it with the image.
        /// </summary>
        internal ImageBatchReader(IDataView data, ImageBatchOptions options, MaskTarget? mask)
            : this(data, options, mask, null)
        {
        }

        /// <summary>
        /// As the public constructor; with <paramref name="boxes"/> (and no label column), each batch's <see cref="ImageBatch.Labels"/> is the
        /// float N×M×5 objects of its images (class index, x1, y1, x2, y2 in pixels of the network's input; class −1 pads), and augmentation
        /// moves the boxes with the image (<see cref="BoxTarget.Augmentation"/>).
        /// </summary>
        internal ImageBatchReader(IDataView data, ImageBatchOptions options, BoxTarget boxes)
            : this(data, options, null, boxes)
        {
        }

        private ImageBatchReader(IDataView data, ImageBatchOptions options, MaskTarget? mask, BoxTarget? boxes)
        {
            this.data = data ?? throw new ArgumentNullException(nameof(data));
            if (options is null) throw new ArgumentNullException(nameof(options));
            options.Validate();
            if (mask != null && options.Augmentation is { Policy: not AugmentationPolicy.None })
                throw new ArgumentException($"Augmentation.Policy = {options.Augmentation.Policy} moves pixels without the mask; masks take flip, RandomResizedCropScale and CropPadding.", nameof(options));
            this.options = options.Clone();

            imageColumn = SchemaChecks.Find(data.Schema, options.ImageColumnName, "image");
            int plane = options.Height * options.Width;
            switch (imageColumn.Type)
            {
                case ImageDataViewType:
                    ImageColumnKind = ImageColumnKind.Image;
                    Channels = 3;
                    break;
                case VectorDataViewType { IsKnownSize: true } vector when vector.ItemType == NumberDataViewType.Single:
                    if (vector.Size % plane != 0)
                        throw new ArgumentException(
                            $"Image column '{imageColumn.Name}' has {vector.Size} values per row, which is not C×{options.Height}×{options.Width} " +
                            $"for a whole number of channels C (expected a multiple of {plane}, e.g. {3 * plane} for RGB). " +
                            "Set Width and Height to the size given to ResizeImages/ExtractPixels.");
                    ImageColumnKind = ImageColumnKind.PixelVector;
                    Channels = vector.Size / plane;
                    break;
                default:
                    throw new ArgumentException(
                        $"Image column '{imageColumn.Name}' has type {imageColumn.Type}; it must be an image (ml.Transforms.LoadImages) " +
                        "or a known-size Single vector of C×H×W pixels in CHW order (ml.Transforms.ResizeImages then ExtractPixels).");
            }

            if (options.LabelColumnName is string label)
            {
                // A vector label holds a row's several labels: the batches' labels are then N×K float 0/1 (multi-hot).
                MultiLabel = data.Schema.GetColumnOrNull(label)?.Type is VectorDataViewType;
                Label = MultiLabel ? LabelKeyInfo.FromMultiLabelSchema(data.Schema, label) : LabelKeyInfo.FromSchema(data.Schema, label);
                labelColumn = data.Schema[label];
                if (MultiLabel && options.BalanceClasses)
                    throw new ArgumentException($"BalanceClasses draws rows by their one class; label column '{label}' gives rows several labels.", nameof(options));
            }

            if (mask is not null)
            {
                if (labelColumn is not null) throw new ArgumentException("Read a label column or a mask, not both: set LabelColumnName to null.", nameof(options));
                maskTarget = mask;
                var column = SchemaChecks.Find(data.Schema, mask.ColumnName, "mask");
                MaskColumn.CheckType(column, options.Height, options.Width);
                maskColumn = column;
                if (mask.SourceImageColumnName is string source && data.Schema.GetColumnOrNull(source) is { Type: ImageDataViewType } image && column.Type is ImageDataViewType)
                    sourceImageColumn = image;
            }

            if (boxes is not null)
            {
                if (labelColumn is not null || mask is not null) throw new ArgumentException("Read a label column, a mask or boxes, not two: set LabelColumnName to null.", nameof(options));
                if (options.Augmentation is { IsIdentity: false })
                    throw new ArgumentException("ImageAugmentation moves pixels without the boxes; detection takes BoxTarget.Augmentation.", nameof(options));
                boxTarget = boxes;
                boxLabelColumn = SchemaChecks.Find(data.Schema, boxes.LabelColumnName, "label");
                boxColumn = SchemaChecks.Find(data.Schema, boxes.BoxColumnName, "box");
                Data.BoxColumns.CheckTypes(boxLabelColumn.Value, boxColumn.Value);
                if (boxes.SourceImageColumnName is string source && data.Schema.GetColumnOrNull(source) is { Type: ImageDataViewType } image) sourceImageColumn = image;
                else if (boxes.WidthColumnName is string w && boxes.HeightColumnName is string h)
                {
                    widthColumn = SchemaChecks.Find(data.Schema, w, "image width");
                    heightColumn = SchemaChecks.Find(data.Schema, h, "image height");
                }
            }

            // The rows one epoch has in flight: the shuffle buffer, those waiting on the reading threads, and a batch.
            rowBuffers = new ArrayRecycler<float>(Channels * plane, options.ShuffleBufferSize + options.Workers * (OrderedRows.RowsHeldPerThread + 1) + options.BatchSize);
            if (data.GetRowCount() == 0) throw new ArgumentException(NoRows, nameof(data));
        }

        /// <summary>What a mask reader reads instead of a label key column.</summary>
        /// <param name="ColumnName">The mask column: any type <see cref="MaskColumn"/> reads, of the options' Height×Width.</param>
        /// <param name="NumClasses">Classes; a mask value at or above it is an error naming the row and the pixel.</param>
        /// <param name="IgnoreIndex">The mask value that marks ignored pixels (read as −1), or null.</param>
        /// <param name="SourceImageColumnName">The unresized image column, checked row by row to have the mask image's size (for an image mask), or null.</param>
        internal sealed record MaskTarget(string ColumnName, int NumClasses, int? IgnoreIndex = null, string? SourceImageColumnName = null);

        /// <summary>What a detection reader reads instead of a label key column.</summary>
        /// <param name="LabelColumnName">A vector of label keys, one per object.</param>
        /// <param name="BoxColumnName">A vector of Single, x1, y1, x2, y2 in pixels of the original image per object.</param>
        /// <param name="NumClasses">Classes (the key count).</param>
        /// <param name="SourceImageColumnName">The unresized MLImage column, whose size the boxes are in; or null.</param>
        /// <param name="WidthColumnName">Without a source image: a column with each original image's width in pixels, or null (the boxes are in the pixel vector's frame).</param>
        /// <param name="HeightColumnName">As <paramref name="WidthColumnName"/>, the height.</param>
        /// <param name="Augmentation">Box-aware augmentation of training epochs, or null.</param>
        internal sealed record BoxTarget(
            string LabelColumnName, string BoxColumnName, int NumClasses, string? SourceImageColumnName, string? WidthColumnName, string? HeightColumnName,
            Detection.DetectionAugmentation? Augmentation);

        /// <summary>How the image column holds its pixels.</summary>
        public ImageColumnKind ImageColumnKind { get; }

        /// <summary>Channels C of the batch images: 3 for an image column, length/(H·W) for a pixel vector.</summary>
        public int Channels { get; }

        /// <summary>Class count and names of the label column, or null when the options name no label column.</summary>
        public LabelKeyInfo? Label { get; }

        /// <summary>
        /// Whether the label column holds several labels per row (a vector of keys, or a known-size Boolean vector): each batch's
        /// <see cref="ImageBatch.Labels"/> is then float32 N×K, 1 where the row has label k and 0 elsewhere.
        /// </summary>
        public bool MultiLabel { get; }

        /// <summary>
        /// One training epoch: rows shuffled (when <see cref="ImageBatchOptions.Shuffle"/>; the order depends on the
        /// seed and <paramref name="epoch"/>), augmented (when <see cref="ImageBatchOptions.Augmentation"/> is set),
        /// the last short batch dropped (when <see cref="ImageBatchOptions.DropLast"/>).
        /// </summary>
        /// <param name="epoch">Epoch number (0-based); the same epoch with the same seed gives the same batches.</param>
        /// <exception cref="InvalidOperationException">A row cannot be read (the message names the row and column), or an epoch would have no batch.</exception>
        public IEnumerable<ImageBatch> ReadEpoch(int epoch) => Read(epoch, training: true);

        /// <summary>Every row once, in data-view order, without augmentation, the last batch kept: for validation and scoring.</summary>
        /// <exception cref="InvalidOperationException">A row cannot be read (the message names the row and column).</exception>
        public IEnumerable<ImageBatch> ReadAll() => Read(0, training: false);

        private IEnumerable<ImageBatch> Read(int epoch, bool training) =>
            Prefetch.Run<ImageBatch, ImageBatch>((emit, token) => Produce(epoch, training, emit, token), options.PrefetchBatches, InConsumerScope, batch => batch.Dispose());

        // The batch's tensors were made on the producer's thread; aliases made here join the consumer's dispose scope.
        private static ImageBatch InConsumerScope(ImageBatch made)
        {
            using (made)
                return new ImageBatch(made.Images.alias(), made.Labels?.alias(), made.RowIndices);
        }

        private string NoRows => $"The data view has no rows; give the reader at least one row of column '{imageColumn.Name}'"
            + (maskColumn is DataViewSchema.Column m ? $" and mask column '{m.Name}'." : ".");

        private void Produce(int epoch, bool training, Action<ImageBatch> emit, CancellationToken token)
        {
            Random? shuffle = training && options.Shuffle ? Seeds.Random(options.Seed, epoch, 1) : null;
            IEnumerable<Sample> rows = training && options.BalanceClasses
                ? cache.Balanced(() => StreamRows(token), Seeds.Random(options.Seed, epoch, 3), row => row.Label)
                : BatchAssembly.EpochRows(() => StreamRows(token), options.CacheInMemory ? cache : null, shuffle, options.ShuffleBufferSize);
            var augmentation = training && options.Augmentation is { IsIdentity: false } a ? a : null;
            long total = BatchAssembly.Group(rows, options.BatchSize, training && options.DropLast, (pending, first) =>
            {
                var indices = new long[pending.Count];
                Tensor images = BatchAssembly.Empty(new long[] { pending.Count, Channels, options.Height, options.Width }, ScalarType.Float32);
                float[][]? objects = boxTarget is not null ? new float[pending.Count][] : null;
                Tensor? labels = boxTarget is not null ? null
                    : maskColumn is not null ? BatchAssembly.Empty(new long[] { pending.Count, options.Height, options.Width }, ScalarType.Int64)
                    : MultiLabel ? BatchAssembly.Empty(new long[] { pending.Count, Label!.ClassCount }, ScalarType.Float32)
                    : labelColumn is not null ? BatchAssembly.Empty(new long[] { pending.Count }, ScalarType.Int64) : null;
                try
                {
                    BatchAssembly.ForEachRow(pending.Count, options.Workers, token, i =>
                    {
                        Sample row = pending[i];
                        var target = BatchAssembly.Row<float>(images, i);
                        int[]? mask = row.Mask;
                        if (objects is not null) objects[i] = BoxRow(row, target, training, epoch, first + i);
                        else if (augmentation is null) row.Pixels.CopyTo(target);
                        else mask = PixelOps.Augment(row.Pixels, target, Channels, options.Height, options.Width, augmentation, Seeds.Random(options.Seed, epoch, 2, first + i), mask);
                        if (labels is not null && row.Targets is float[] targets) targets.CopyTo(BatchAssembly.Row<float>(labels, i));
                        else if (labels is not null)
                        {
                            var label = BatchAssembly.Row<long>(labels, i);
                            if (mask is null) label[0] = row.Label;
                            else for (int p = 0; p < mask.Length; p++) label[p] = mask[p];
                        }

                        indices[i] = row.Row;
                        if (!options.CacheInMemory) rowBuffers.Return(row.Pixels);
                    });
                    images = BatchAssembly.Pinned(images, options.PinMemory);
                    if (objects is not null) labels = Data.BoxColumns.Stack(objects);
                    if (labels is not null) labels = BatchAssembly.Pinned(labels, options.PinMemory);
                }
                catch
                {
                    images.Dispose();
                    labels?.Dispose();
                    throw;
                }

                emit(new ImageBatch(images, labels, indices));
            });

            if (total == 0) throw new InvalidOperationException(NoRows);
            if (training && options.DropLast && total < options.BatchSize)
                throw new InvalidOperationException(
                    $"The data view has {total} rows, fewer than BatchSize {options.BatchSize}, and DropLast is set, so an epoch has no batch. " +
                    "Lower BatchSize or clear DropLast.");
        }

        // A detection row: its pixels into the batch (moved with its boxes by the training augmentation), and its objects.
        private float[] BoxRow(Sample row, Span<float> target, bool training, int epoch, long place)
        {
            float[] objects = row.Boxes!;
            if (!training || boxTarget!.Augmentation is not { IsIdentity: false } boxAugmentation)
            {
                row.Pixels.CopyTo(target);
                return objects;
            }

            int count = objects.Length / Data.BoxColumns.ObjectValues;
            var boxes = new float[4 * count];
            var classes = new int[count];
            for (int j = 0; j < count; j++)
            {
                classes[j] = (int)objects[j * Data.BoxColumns.ObjectValues];
                Array.Copy(objects, j * Data.BoxColumns.ObjectValues + 1, boxes, 4 * j, 4);
            }

            var moved = new float[row.Pixels.Length];
            var (keptBoxes, keptClasses) = Detection.BoxAugmentation.Apply(
                boxAugmentation, Seeds.Random(options.Seed, epoch, 2, place), row.Pixels, moved, Channels, options.Height, options.Width, boxes, classes);
            moved.CopyTo(target);
            var result = new float[keptClasses.Length * Data.BoxColumns.ObjectValues];
            for (int j = 0; j < keptClasses.Length; j++)
            {
                result[j * Data.BoxColumns.ObjectValues] = keptClasses[j];
                Array.Copy(keptBoxes, 4 * j, result, j * Data.BoxColumns.ObjectValues + 1, 4);
            }

            return result;
        }

        /// <summary>
        /// Emits a permutation of <paramref name="source"/>: holds up to <paramref name="capacity"/> rows and, for
        /// each new row once full, emits a random held row in its place; finally emits the held rows in random order.
        /// </summary>
        internal static IEnumerable<T> ShuffleBuffer<T>(IEnumerable<T> source, int capacity, Random random)
        {
            var buffer = new List<T>(Math.Min(capacity, 4096));
            foreach (var item in source)
            {
                if (buffer.Count < capacity)
                {
                    buffer.Add(item);
                    continue;
                }

                int j = random.Next(capacity);
                yield return buffer[j];
                buffer[j] = item;
            }

            for (int i = buffer.Count - 1; i >= 0; i--)
            {
                int j = random.Next(i + 1);
                yield return buffer[j];
                buffer[j] = buffer[i];
            }
        }

        private IEnumerable<Sample> StreamRows(CancellationToken token)
        {
            var columns = new[] { imageColumn, labelColumn, maskColumn, sourceImageColumn, boxLabelColumn, boxColumn, widthColumn, heightColumn }.OfType<DataViewSchema.Column>().ToArray();
            return OrderedRows.Read<Sample>(data, columns, options.Workers, cursor =>
            {
                Action? checkSizes = sourceImageColumn is DataViewSchema.Column source && maskColumn is not null ? SizeCheck(cursor, source, maskColumn!.Value) : null;
                var readPixels = ImageColumnKind == ImageColumnKind.Image ? ImageReader(cursor) : VectorReader(cursor);
                Func<long> readLabel = labelColumn is DataViewSchema.Column label && !MultiLabel ? LabelReader(cursor, label) : (() => -1);
                Func<float[]?> readTargets = () => null;
                if (labelColumn is DataViewSchema.Column tags && MultiLabel) readTargets = MultiLabelColumn.Reader(cursor, tags, Label!.ClassCount);
                Func<int[]?> readMask = maskColumn is DataViewSchema.Column m ? MaskReader(cursor, m, maskTarget!) : (() => null);
                Func<float[]?> readBoxes = () => null;
                if (boxTarget is not null)
                    readBoxes = Data.BoxColumns.Reader(cursor, boxTarget, boxLabelColumn!.Value, boxColumn!.Value, sourceImageColumn, widthColumn, heightColumn, options.Width, options.Height);
                return () =>
                {
                    checkSizes?.Invoke();
                    return new Sample(-1, readPixels(), readLabel(), readMask(), readTargets(), readBoxes());
                };
            }, token).Select(r => r.Value with { Row = r.Row });
        }

        // A mask image must have its (unresized) image's size.
        private static Action SizeCheck(DataViewRowCursor cursor, DataViewSchema.Column source, DataViewSchema.Column mask)
        {
            var imageGetter = cursor.GetGetter<MLImage>(source);
            var maskGetter = cursor.GetGetter<MLImage>(mask);
            return () =>
            {
                MLImage image = null!, maskImage = null!;
                imageGetter(ref image);
                maskGetter(ref maskImage);
                if (image is null || maskImage is null || (image.Width == maskImage.Width && image.Height == maskImage.Height)) return;
                int imageWidth = image.Width, imageHeight = image.Height, maskWidth = maskImage.Width, maskHeight = maskImage.Height;
                throw new RowReadException(row =>
                    $"Row {row}: image column '{source.Name}' is {imageWidth}×{imageHeight} but mask column '{mask.Name}' is "
                    + $"{maskWidth}×{maskHeight}; a mask must have its image's size. Fix or filter the row out.");
            };
        }

        // Class indices, −1 for the ignore index; a class at or above NumClasses names the row and the pixel.
        private Func<int[]?> MaskReader(DataViewRowCursor cursor, DataViewSchema.Column column, MaskTarget target)
        {
            Func<int[]> read = MaskColumn.CreateRowReader(cursor, column, options.Height, options.Width, target.IgnoreIndex);
            int classes = target.NumClasses, width = options.Width;
            return () =>
            {
                int[] values = read();
                for (int i = 0; i < values.Length; i++)
                {
                    if (values[i] < classes) continue;
                    int x = i % width, y = i / width, found = values[i];
                    throw new RowReadException(row =>
                        $"Mask column '{column.Name}', row {row}: pixel (x {x}, y {y}) has class {found}, but NumClasses is {classes} "
                        + "(classes 0…NumClasses−1). Raise NumClasses, or set IgnoreIndex if the value marks unlabelled pixels.");
                }

                return values;
            };
        }

        private Func<float[]> ImageReader(DataViewRowCursor cursor)
        {
            var getter = cursor.GetGetter<MLImage>(imageColumn);
            string name = imageColumn.Name;
            // One image per cursor, handed back to the getter each row as ML.NET's own transforms do, so it can reuse or
            // free the previous one.
            MLImage? image = null;
            return () =>
            {
                try
                {
                    getter(ref image!);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new RowReadException(row =>
                        $"Image column '{name}', row {row}: the image could not be read ({ex.Message}). " +
                        "Check that the file exists and is a readable image, or filter the row out.", ex);
                }

                if (image is null || image.Width <= 0 || image.Height <= 0)
                    throw new RowReadException(row =>
                        $"Image column '{name}', row {row}: there is no image (null or empty). Check the row's image path " +
                        "and the imageFolder given to LoadImages, or filter the row out.");
                var pixels = rowBuffers.Rent();
                PixelOps.ImageToChw(image, pixels, options.Height, options.Width);
                return pixels;
            };
        }

        private Func<float[]> VectorReader(DataViewRowCursor cursor)
        {
            var getter = cursor.GetGetter<VBuffer<float>>(imageColumn);
            string name = imageColumn.Name;
            int size = Channels * options.Height * options.Width, plane = options.Height * options.Width;
            VBuffer<float> buffer = default;
            return () =>
            {
                try
                {
                    getter(ref buffer);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new RowReadException(row =>
                        $"Image column '{name}', row {row}: the pixels could not be read ({ex.Message}). " +
                        "If they come from an image file, check that it exists and is a readable image, or filter the row out.", ex);
                }

                int found = buffer.Length;
                if (found != size)
                    throw new RowReadException(row => $"Image column '{name}', row {row}: expected {size} values, found {found}.");
                var pixels = rowBuffers.Rent();
                var values = buffer.GetValues();
                if (buffer.IsDense)
                {
                    values.CopyTo(pixels);
                }
                else
                {
                    Array.Clear(pixels);
                    var indices = buffer.GetIndices();
                    for (int i = 0; i < indices.Length; i++) pixels[indices[i]] = values[i];
                }

                for (int i = 0; i < size; i++)
                {
                    if (float.IsFinite(pixels[i])) continue;
                    int c = i / plane, y = i % plane / options.Width, x = i % options.Width;
                    float bad = pixels[i];
                    throw new RowReadException(row =>
                        $"Image column '{name}', row {row}: pixel (channel {c}, y {y}, x {x}) is {bad}; pixels must be finite " +
                        "numbers in 0–255. Fix or filter the row out.");
                }

                return pixels;
            };
        }

        private static Func<long> LabelReader(DataViewRowCursor cursor, DataViewSchema.Column column)
        {
            Func<ulong> read = column.Type.RawType switch
            {
                var t when t == typeof(uint) => Key<uint>(cursor, column, v => v),
                var t when t == typeof(ulong) => Key<ulong>(cursor, column, v => v),
                var t when t == typeof(ushort) => Key<ushort>(cursor, column, v => v),
                var t when t == typeof(byte) => Key<byte>(cursor, column, v => v),
                var t => throw new ArgumentException($"Label column '{column.Name}' has a key of raw type {t.Name}, which the reader does not support; use MapValueToKey's default (UInt32)."),
            };
            return () =>
            {
                ulong key = read();
                if (key == 0)
                    throw new RowReadException(row =>
                        $"Label column '{column.Name}', row {row}: the key value is 0 (missing: the label was empty or not in the key's dictionary). " +
                        "Remove such rows or give the row a label that MapValueToKey knows.");
                return (long)(key - 1);
            };
        }

        private static Func<ulong> Key<T>(DataViewRow row, DataViewSchema.Column column, Func<T, ulong> widen)
        {
            var getter = row.GetGetter<T>(column);
            T value = default!;
            return () =>
            {
                getter(ref value);
                return widen(value);
            };
        }

        // Label: the class index (−1 without a label column or with several labels); Mask: the H×W class indices, or null without a
        // mask column; Targets: a multi-label row's K values, 1 for each label it has, or null.
        // Boxes: a detection row's objects, 5 values each (BoxColumns.ObjectValues), or null.
        private readonly record struct Sample(long Row, float[] Pixels, long Label, int[]? Mask, float[]? Targets = null, float[]? Boxes = null);

    }

    /// <summary>Deterministic, process-independent seeds for the reader's generators.</summary>
    internal static class Seeds
    {
        public static Random Random(int seed, int epoch, int stream) => Random(seed, epoch, stream, 0);

        /// <summary>The generator of item <paramref name="index"/> (e.g. a row's place in its epoch) of a stream, whichever thread draws from it.</summary>
        public static Random Random(int seed, int epoch, int stream, long index)
        {
            ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)epoch * 0xC2B2AE3D27D4EB4FUL ^ (ulong)stream * 0x165667B19E3779F9UL
                ^ (ulong)index * 0xD6E8FEB86659FD93UL);
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            z ^= z >> 31;
            return new Random((int)(z & 0x7FFFFFFF));
        }
    }
}
