using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Transforms.Image;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>
    /// Reads image pixels (a C×H×W float vector column) and masks (any <see cref="MaskColumn"/> type) as TorchSharp
    /// batches: float32 N×C×H×W (0–255) and int64 N×H×W class indices (−1: ignored). Rows are read by
    /// <see cref="Estimators.ImageTrainerOptions.Workers"/> threads and made into batches on a background task a few batches ahead; geometric augmentation moves image and mask together (the mask with nearest neighbour).
    /// </summary>
    internal sealed class SegmentationBatchReader
    {
        private const int PrefetchBatches = 2;
        private const int ShuffleBufferSize = 512;

        private readonly IDataView data;
        private readonly DataViewSchema.Column pixelColumn;
        private readonly DataViewSchema.Column maskColumn;
        private readonly DataViewSchema.Column? sourceImageColumn;
        private readonly DataViewSchema.Column? sourceMaskImage;
        private readonly int width, height, classes, batchSize, seed;
        private readonly int? ignoreIndex;
        private readonly int workers;
        private readonly bool cacheInMemory, pinMemory, imageColumn;
        private readonly ImageAugmentation? augmentation;
        private readonly RowCache<Sample> cache = new();

        // pinMemory: make batches in page-locked memory (only when training on CUDA).
        public SegmentationBatchReader(IDataView data, string pixelColumn, string maskColumn, string? sourceImageColumn, SegmenterOptions options, bool training, bool pinMemory = false)
        {
            this.data = data;
            width = options.ImageWidth;
            height = options.ImageHeight;
            classes = options.NumClasses;
            batchSize = options.BatchSize;
            seed = options.Seed;
            ignoreIndex = options.IgnoreIndex;
            cacheInMemory = options.CacheInMemory;
            workers = options.Workers;
            this.pinMemory = pinMemory;
            augmentation = training ? options.Augmentation ?? new ImageAugmentation { HorizontalFlipProbability = 0.5 } : null;
            this.pixelColumn = data.Schema.GetColumnOrNull(pixelColumn) ?? throw new ArgumentException($"The data has no image column '{pixelColumn}'.");
            imageColumn = this.pixelColumn.Type is ImageDataViewType;
            if (imageColumn)
                Channels = 3;
            else if (this.pixelColumn.Type is VectorDataViewType { IsKnownSize: true, ItemType: var item } vector && item == NumberDataViewType.Single && vector.Size % (width * height) == 0)
                Channels = vector.Size / (width * height);
            else
                throw new ArgumentException(
                    $"Image column '{pixelColumn}' has type {this.pixelColumn.Type}; it must be an image (LoadImages) or a float vector of C×{height}×{width} pixels (ExtractPixels).");
            this.maskColumn = data.Schema.GetColumnOrNull(maskColumn)
                ?? throw new ArgumentException($"The input has no mask column '{maskColumn}'. Columns: {string.Join(", ", data.Schema.Select(c => c.Name))}.");
            MaskColumn.CheckType(this.maskColumn, height, width);
            if (sourceImageColumn != null && data.Schema.GetColumnOrNull(sourceImageColumn) is { Type: ImageDataViewType } image && this.maskColumn.Type is ImageDataViewType)
            {
                this.sourceImageColumn = image;
                sourceMaskImage = this.maskColumn;
            }
        }

        /// <summary>Channels of the images.</summary>
        public int Channels { get; }

        /// <summary>A training epoch (shuffled by seed and epoch, augmented).</summary>
        public IEnumerable<(Tensor Images, Tensor Masks)> ReadEpoch(int epoch) => Read(epoch, training: true);

        /// <summary>Every row once, in order, without augmentation.</summary>
        public IEnumerable<(Tensor Images, Tensor Masks)> ReadAll() => Read(0, training: false);

        private IEnumerable<(Tensor Images, Tensor Masks)> Read(int epoch, bool training) =>
            Prefetch.Run<(Tensor Images, Tensor Masks), (Tensor, Tensor)>(
                (emit, token) => Produce(epoch, training, emit, token), PrefetchBatches, InConsumerScope, batch => { batch.Images.Dispose(); batch.Masks.Dispose(); });

        // The batch's tensors were made on the producer's thread; aliases made here join the consumer's dispose scope.
        private static (Tensor, Tensor) InConsumerScope((Tensor Images, Tensor Masks) made)
        {
            using (made.Images)
            using (made.Masks)
                return (made.Images.alias(), made.Masks.alias());
        }

        private void Produce(int epoch, bool training, Action<(Tensor Images, Tensor Masks)> emit, CancellationToken token)
        {
            Random? shuffle = training ? Seeds.Random(seed, epoch, 1) : null;
            IEnumerable<Sample> rows = BatchAssembly.EpochRows(() => Stream(token), cacheInMemory ? cache : null, shuffle, ShuffleBufferSize);
            var augment = training ? augmentation : null;
            int plane = height * width, size = Channels * plane;
            long total = BatchAssembly.Group(rows, batchSize, dropLast: false, (pending, first) =>
            {
                Tensor images = BatchAssembly.Empty(new long[] { pending.Count, Channels, height, width }, ScalarType.Float32);
                Tensor masks = BatchAssembly.Empty(new long[] { pending.Count, height, width }, ScalarType.Int64);
                try
                {
                    BatchAssembly.ForEachRow(pending.Count, workers, token, i =>
                    {
                        var (image, mask) = augment is null ? (pending[i].Pixels, pending[i].Mask) : Augment(pending[i], augment, Seeds.Random(seed, epoch, 2, first + i));
                        image.CopyTo(BatchAssembly.Row<float>(images, i));
                        var target = BatchAssembly.Row<long>(masks, i);
                        for (int p = 0; p < plane; p++) target[p] = mask[p];
                    });
                    images = BatchAssembly.Pinned(images, pinMemory);
                    masks = BatchAssembly.Pinned(masks, pinMemory);
                }
                catch
                {
                    images.Dispose();
                    masks.Dispose();
                    throw;
                }

                emit((images, masks));
            });

            if (total == 0) throw new InvalidOperationException($"The data has no rows; give at least one row of columns '{pixelColumn.Name}' and '{maskColumn.Name}'.");
        }

        // Flip, random-resized crop and pad + crop, drawn once per image and applied to image (bilinear) and mask (nearest).
        private (float[] Image, int[] Mask) Augment(Sample sample, ImageAugmentation a, Random random)
        {
            float[] image = sample.Pixels;
            int[] mask = sample.Mask;
            if (a.RandomResizedCropScale is var (min, max))
            {
                var (top, left, boxHeight, boxWidth) = PixelOps.RandomResizedCropBox(height, width, min, max, a.RandomResizedCropRatio, random);
                var resized = new float[image.Length];
                PixelOps.Bilinear(image, Channels, height, width, top, left, boxHeight, boxWidth, resized, height, width);
                image = resized;
                var resizedMask = new int[mask.Length];
                for (int y = 0; y < height; y++)
                {
                    int sy = top + MaskColumn.NearestSource(y, height, boxHeight);
                    for (int x = 0; x < width; x++)
                        resizedMask[y * width + x] = mask[sy * width + left + MaskColumn.NearestSource(x, width, boxWidth)];
                }

                mask = resizedMask;
            }

            if (a.CropPadding > 0)
            {
                int pad = a.CropPadding;
                int dy = random.Next(2 * pad + 1) - pad, dx = random.Next(2 * pad + 1) - pad;
                var shifted = new float[image.Length];
                PixelOps.PaddedShift(image, shifted, Channels, height, width, dy, dx, a.CropPaddingMode);
                image = shifted;
                var shiftedMask = new int[mask.Length];
                for (int y = 0; y < height; y++)
                {
                    int sy = PixelOps.PaddedSource(y + dy, height, a.CropPaddingMode);
                    for (int x = 0; x < width; x++)
                    {
                        int sx = PixelOps.PaddedSource(x + dx, width, a.CropPaddingMode);
                        shiftedMask[y * width + x] = sy < 0 || sx < 0 ? -1 : mask[sy * width + sx];
                    }
                }

                mask = shiftedMask;
            }

            if (a.HorizontalFlipProbability > 0 && random.NextDouble() < a.HorizontalFlipProbability)
            {
                var flipped = new float[image.Length];
                for (int r = 0; r < Channels * height; r++)
                for (int x = 0; x < width; x++) flipped[r * width + x] = image[r * width + width - 1 - x];
                image = flipped;
                var flippedMask = new int[mask.Length];
                for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++) flippedMask[y * width + x] = mask[y * width + width - 1 - x];
                mask = flippedMask;
            }

            return (image, mask);
        }

        private IEnumerable<Sample> Stream(CancellationToken token)
        {
            var columns = new List<DataViewSchema.Column> { pixelColumn, maskColumn };
            if (sourceImageColumn is DataViewSchema.Column source) columns.Add(source);
            return OrderedRows.Read(data, columns, workers, RowReader, token).Select(r => new Sample(r.Row, r.Value.Pixels, r.Value.Mask));
        }

        // Reads one cursor's current row; errors are RowReadExceptions, named with the row when its turn comes.
        private Func<(float[] Pixels, int[] Mask)> RowReader(DataViewRowCursor cursor)
        {
            Func<float[]> readPixels = imageColumn ? ImagePixels(cursor) : VectorPixels(cursor);
            Func<int[]> readMask = MaskColumn.CreateRowReader(cursor, maskColumn, height, width, ignoreIndex);
            ValueGetter<MLImage>? imageGetter = sourceImageColumn is DataViewSchema.Column s ? cursor.GetGetter<MLImage>(s) : null;
            ValueGetter<MLImage>? maskImageGetter = sourceMaskImage is DataViewSchema.Column m ? cursor.GetGetter<MLImage>(m) : null;
            string maskName = maskColumn.Name;
            return () =>
            {
                if (imageGetter != null && maskImageGetter != null)
                {
                    MLImage image = null!, maskImage = null!;
                    imageGetter(ref image);
                    maskImageGetter(ref maskImage);
                    if (image != null && maskImage != null && (image.Width != maskImage.Width || image.Height != maskImage.Height))
                    {
                        string sourceName = sourceImageColumn!.Value.Name;
                        int imageWidth = image.Width, imageHeight = image.Height, maskWidth = maskImage.Width, maskHeight = maskImage.Height;
                        throw new RowReadException(row =>
                            $"Row {row}: image column '{sourceName}' is {imageWidth}×{imageHeight} but mask column '{maskName}' is "
                            + $"{maskWidth}×{maskHeight}; a mask must have its image's size. Fix or filter the row out.");
                    }
                }

                float[] pixels = readPixels();
                int[] mask = readMask();
                for (int i = 0; i < mask.Length; i++)
                {
                    if (mask[i] < classes) continue;
                    int x = i % width, y = i / width, found = mask[i];
                    throw new RowReadException(row =>
                        $"Mask column '{maskName}', row {row}: pixel (x {x}, y {y}) has class {found}, but NumClasses is {classes} "
                        + "(classes 0…NumClasses−1). Raise NumClasses, or set IgnoreIndex if the value marks unlabelled pixels.");
                }

                return (pixels, mask);
            };
        }

        private Func<float[]> VectorPixels(DataViewRowCursor cursor)
        {
            ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(pixelColumn);
            VBuffer<float> buffer = default;
            int size = Channels * height * width;
            string name = pixelColumn.Name;
            return () =>
            {
                Read(() => getter(ref buffer), name);
                var pixels = new float[size];
                buffer.CopyTo(pixels);
                for (int i = 0; i < size; i++)
                {
                    if (float.IsFinite(pixels[i])) continue;
                    int pixel = i;
                    float bad = pixels[i];
                    throw new RowReadException(row => $"Image column '{name}', row {row}: pixel {pixel} is {bad}; pixels must be finite numbers in 0–255.");
                }

                return pixels;
            };
        }

        // A resized image (ResizeImages to width×height): its RGB planes, the values ExtractPixels would give.
        private Func<float[]> ImagePixels(DataViewRowCursor cursor)
        {
            ValueGetter<MLImage> getter = cursor.GetGetter<MLImage>(pixelColumn);
            string name = pixelColumn.Name;
            // One image per cursor, handed back to the getter each row as ML.NET's own transforms do.
            MLImage image = null!;
            return () =>
            {
                Read(() => getter(ref image), name);
                if (image is null || image.Width <= 0 || image.Height <= 0)
                    throw new RowReadException(row => $"Image column '{name}', row {row}: there is no image (null or empty). Check the row's image path, or filter the row out.");
                var pixels = new float[3 * height * width];
                PixelOps.ImageToChw(image, pixels, height, width);
                return pixels;
            };
        }

        private static void Read(Action get, string column)
        {
            try
            {
                get();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new RowReadException(row =>
                    $"Image column '{column}', row {row}: the pixels could not be read ({e.Message}). Check the image file, or filter the row out.", e);
            }
        }

        private sealed record Sample(long Row, float[] Pixels, int[] Mask);
    }
}
