namespace Microsoft.ML.Residual.Data
{
    /// <summary>The encoding of an image file, as its content (not its extension) shows.</summary>
    public enum ImageFileFormat
    {
        /// <summary>A format the decoder reads but this enum does not name.</summary>
        Other,

        /// <summary>PNG.</summary>
        Png,

        /// <summary>JPEG (JFIF or EXIF).</summary>
        Jpeg,

        /// <summary>GIF (the first frame is loaded).</summary>
        Gif,

        /// <summary>Windows bitmap.</summary>
        Bmp,

        /// <summary>WebP.</summary>
        Webp,

        /// <summary>Windows icon (the largest image is loaded).</summary>
        Ico,

        /// <summary>Wireless bitmap.</summary>
        Wbmp,
    }

    /// <summary>What an image file's header says, read by <see cref="ImageFiles.Probe"/> without decoding pixels.</summary>
    public sealed class ImageFileInfo
    {
        /// <summary>A description of the image file <paramref name="path"/>.</summary>
        /// <param name="path">Full path of the file.</param>
        /// <param name="format">The encoding.</param>
        /// <param name="width">Width in pixels as stored.</param>
        /// <param name="height">Height in pixels as stored.</param>
        /// <param name="orientation">EXIF orientation, 1–8 (1 when the file has none).</param>
        /// <param name="hasAlpha">Whether pixels may be transparent.</param>
        /// <param name="isGrayscale">Whether the file stores one gray channel.</param>
        public ImageFileInfo(string path, ImageFileFormat format, int width, int height, int orientation, bool hasAlpha, bool isGrayscale)
        {
            Path = path;
            Format = format;
            Width = width;
            Height = height;
            Orientation = orientation;
            HasAlpha = hasAlpha;
            IsGrayscale = isGrayscale;
        }

        /// <summary>Full path of the file.</summary>
        public string Path { get; }

        /// <summary>The encoding, from the file's content.</summary>
        public ImageFileFormat Format { get; }

        /// <summary>Width in pixels as stored in the file (before the EXIF orientation is applied).</summary>
        public int Width { get; }

        /// <summary>Height in pixels as stored in the file (before the EXIF orientation is applied).</summary>
        public int Height { get; }

        /// <summary>
        /// The EXIF orientation tag (274), 1–8: 1 upright, 2 mirrored, 3 turned 180°, 4 mirrored vertically, 5 transposed,
        /// 6 to be turned 90° clockwise, 7 transversed, 8 to be turned 90° counter-clockwise. 1 when the file has none.
        /// </summary>
        public int Orientation { get; }

        /// <summary>Whether the pixels may be transparent (an alpha channel or a transparent palette entry).</summary>
        public bool HasAlpha { get; }

        /// <summary>Whether the file stores a single gray channel (loaded as BGRA with B = G = R).</summary>
        public bool IsGrayscale { get; }

        /// <summary>Whether the EXIF orientation swaps width and height (orientations 5–8).</summary>
        public bool IsTransposed => Orientation >= 5;

        /// <summary>Width of the upright image, after the EXIF orientation: what <see cref="ImageFiles.Load"/> returns.</summary>
        public int OrientedWidth => IsTransposed ? Height : Width;

        /// <summary>Height of the upright image, after the EXIF orientation.</summary>
        public int OrientedHeight => IsTransposed ? Width : Height;

        /// <summary>Width × height: the count <see cref="ImageLoadOptions.MaxPixels"/> limits.</summary>
        public long PixelCount => (long)Width * Height;

        /// <inheritdoc/>
        public override string ToString() => $"{Format} {Width}×{Height}{(Orientation != 1 ? $", EXIF orientation {Orientation}" : "")}{(IsGrayscale ? ", gray" : "")}{(HasAlpha ? ", alpha" : "")}";
    }
}
