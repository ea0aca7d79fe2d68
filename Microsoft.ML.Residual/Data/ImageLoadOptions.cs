using System;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>Options of <see cref="ImageFiles.Load"/>, <see cref="ImageFiles.Verify"/> and <see cref="ImageFiles.CheckAll"/>.</summary>
    public sealed class ImageLoadOptions
    {
        /// <summary>The default <see cref="MaxPixels"/>: 8192 × 8192 = 67,108,864 pixels (256 MiB of BGRA pixels).</summary>
        public const long DefaultMaxPixels = 8192L * 8192L;

        /// <summary>
        /// The largest <see cref="MaxPixels"/> that can be set: 536,870,911, the most pixels whose BGRA bytes fit one .NET
        /// array and one <see cref="Microsoft.ML.Data.MLImage"/> (2 GiB).
        /// </summary>
        public const long LargestMaxPixels = int.MaxValue / 4;

        private long maxPixels = DefaultMaxPixels;

        /// <summary>
        /// The most pixels (width × height, as the file's header declares them) an image may have. Larger images are
        /// refused with <see cref="ImageTooLargeException"/> after reading the header and before any pixel memory is
        /// allocated. Default <see cref="DefaultMaxPixels"/> (8192 × 8192); at most <see cref="LargestMaxPixels"/>.
        /// Loading needs about 2 × 4 × pixels bytes at its peak (3 × when the image is rotated by its EXIF orientation).
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">The value is below 1 or above <see cref="LargestMaxPixels"/>.</exception>
        public long MaxPixels
        {
            get => maxPixels;
            set
            {
                if (value < 1 || value > LargestMaxPixels)
                    throw new ArgumentOutOfRangeException(nameof(MaxPixels), value, $"MaxPixels must lie between 1 and {LargestMaxPixels:N0} (the most pixels one MLImage holds); the default is {DefaultMaxPixels:N0} (8192 × 8192).");
                maxPixels = value;
            }
        }

        /// <summary>
        /// Turn and mirror the image as its EXIF orientation tag says (how cameras and phones mark portrait photos), so
        /// that the loaded image is upright and its width and height are the displayed ones. Default true. ML.NET's
        /// <c>LoadImages</c> does not do this; set false to get its pixel layout.
        /// </summary>
        public bool ApplyExifOrientation { get; set; } = true;
    }
}
