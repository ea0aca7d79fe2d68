using System;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>What an <see cref="ImageBatchReader"/> reads from a data view and how it groups rows into batches.</summary>
    public sealed class ImageBatchOptions
    {
        /// <summary>
        /// Name of the image column: an image column (<c>ml.Transforms.LoadImages</c>, ML.NET's image type) or a
        /// known-size <see cref="float"/> vector of C×<see cref="Height"/>×<see cref="Width"/> values in CHW order
        /// (as <c>ml.Transforms.ExtractPixels</c> writes with its defaults). Default <c>"Image"</c>.
        /// </summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>
        /// Name of the label column, a key column (<c>ml.Transforms.Conversion.MapValueToKey</c>); null when the
        /// data has no labels (scoring, featurising). Default <c>"Label"</c>.
        /// </summary>
        public string? LabelColumnName { get; set; } = "Label";

        /// <summary>Width of the batch images in pixels. Images are resized to it (bilinear); vectors must have it.</summary>
        public int Width { get; set; } = 224;

        /// <summary>Height of the batch images in pixels. Images are resized to it (bilinear); vectors must have it.</summary>
        public int Height { get; set; } = 224;

        /// <summary>Rows per batch. Default 32.</summary>
        public int BatchSize { get; set; } = 32;

        /// <summary>
        /// Whether training epochs visit the rows in a random order (seeded by <see cref="Seed"/> and the epoch
        /// number). With <see cref="CacheInMemory"/> every epoch is a uniform random permutation; when streaming
        /// the order comes from a shuffle buffer of <see cref="ShuffleBufferSize"/> rows. Default true.
        /// </summary>
        public bool Shuffle { get; set; } = true;

        /// <summary>Seed of the shuffling and of the augmentation. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>
        /// Balanced sampling for imbalanced labels: each training epoch draws as many rows as the data has, with replacement,
        /// every class equally likely and then every row of the class (PyTorch's <c>WeightedRandomSampler</c> with weights
        /// 1/n_class), seeded by <see cref="Seed"/> and the epoch. Needs <see cref="LabelColumnName"/> and <see cref="CacheInMemory"/>.
        /// Default false.
        /// </summary>
        public bool BalanceClasses { get; set; }

        /// <summary>Whether a training epoch drops its last batch when it has fewer than <see cref="BatchSize"/> rows. Default false.</summary>
        public bool DropLast { get; set; }

        /// <summary>
        /// Keep the decoded (resized, not augmented) pixels of every row in memory after the first epoch, so later
        /// epochs do not read or decode the data view again. Costs 4·C·H·W bytes per row. Default false.
        /// </summary>
        public bool CacheInMemory { get; set; }

        /// <summary>
        /// Rows held by the streaming shuffle buffer (used when <see cref="Shuffle"/> is set and
        /// <see cref="CacheInMemory"/> is not). A row can move at most about this many places earlier than its
        /// position in the data view; memory is 4·C·H·W bytes per row. Default 512.
        /// </summary>
        public int ShuffleBufferSize { get; set; } = 512;

        /// <summary>
        /// Batches prepared ahead of the consumer (the bound of the queue between the readers and training). Default 2.
        /// </summary>
        public int PrefetchBatches { get; set; } = 2;

        /// <summary>
        /// Threads that read and prepare rows at once: each reads its own share of the data view (loading, decoding and
        /// resizing images as the view's transforms do), and a batch's rows are augmented and copied in parallel. Batches,
        /// their order and their augmentation are the same for every value. Default: half the processor count, 1 to 8.
        /// </summary>
        public int Workers { get; set; } = DefaultWorkers;

        /// <summary>
        /// Make batch tensors in page-locked host memory, so their copy to a CUDA device can run while the device computes.
        /// Needs a CUDA build of libtorch; set it only when training on a GPU. Default false.
        /// </summary>
        public bool PinMemory { get; set; }

        /// <summary>The largest <see cref="Workers"/> accepted.</summary>
        public const int MaxWorkers = 64;

        /// <summary>Half the processor count, at least 1 and at most 8: the default of <see cref="Workers"/>.</summary>
        public static int DefaultWorkers => Math.Clamp(Environment.ProcessorCount / 2, 1, 8);

        /// <summary>Random augmentation applied to training epochs; null for none. Never applied by <see cref="ImageBatchReader.ReadAll"/>.</summary>
        public ImageAugmentation? Augmentation { get; set; }

        internal ImageBatchOptions Clone() => (ImageBatchOptions)MemberwiseClone();

        internal void Validate()
        {
            if (string.IsNullOrWhiteSpace(ImageColumnName))
                throw new ArgumentException("ImageColumnName must name the image column of the data view.", nameof(ImageColumnName));
            if (LabelColumnName is not null && LabelColumnName.Trim().Length == 0)
                throw new ArgumentException("LabelColumnName must name the label column, or be null when there is none.", nameof(LabelColumnName));
            CheckPositive(Width, nameof(Width));
            CheckPositive(Height, nameof(Height));
            CheckPositive(BatchSize, nameof(BatchSize));
            CheckPositive(ShuffleBufferSize, nameof(ShuffleBufferSize));
            CheckPositive(PrefetchBatches, nameof(PrefetchBatches));
            CheckPositive(Workers, nameof(Workers));
            if (Workers > MaxWorkers)
                throw new ArgumentOutOfRangeException(nameof(Workers), Workers,
                    $"Workers must be at most {MaxWorkers}: each worker holds up to 128 decoded rows, and more threads than cores only add memory.");
            Augmentation?.Validate(Width, Height);
            if (BalanceClasses && (LabelColumnName is null || !CacheInMemory))
                throw new ArgumentException("BalanceClasses draws rows by their label at random, so it needs LabelColumnName and CacheInMemory = true.", nameof(BalanceClasses));
        }

        private static void CheckPositive(int value, string name)
        {
            if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
        }
    }

    /// <summary>How the image column of a data view holds its pixels.</summary>
    public enum ImageColumnKind
    {
        /// <summary>ML.NET's image type (<c>MLImage</c>): decoded, converted to RGB and resized by the reader.</summary>
        Image,

        /// <summary>A known-size <see cref="float"/> vector of C×H×W values in CHW order, 0–255; used as it is.</summary>
        PixelVector,
    }
}
