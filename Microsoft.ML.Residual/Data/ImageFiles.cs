using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading.Tasks;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>How much of each image file <see cref="ImageFiles.CheckAll"/> reads.</summary>
    public enum ImageCheck
    {
        /// <summary>No check.</summary>
        None,

        /// <summary>
        /// The header only (<see cref="ImageFiles.Probe"/>) and the pixel limit: finds missing, empty and non-image files
        /// and decompression bombs, in microseconds per file, but not files truncated or damaged inside their pixel data.
        /// </summary>
        Header,

        /// <summary>The whole file is decoded (<see cref="ImageFiles.Verify"/>) and the pixels dropped: finds every problem <see cref="ImageFiles.Load"/> would.</summary>
        Decode,
    }

    /// <summary>
    /// Loads image files safely: the header is read first and images above <see cref="ImageLoadOptions.MaxPixels"/> are
    /// refused before any pixel memory is allocated; truncated or damaged files fail with <see cref="InvalidImageException"/>
    /// instead of giving a half-grey image; every pixel layout (gray, RGBA, 16 bits per channel, palette, CMYK JPEG) comes
    /// out as 8-bit BGRA, as ML.NET's <c>LoadImages</c> gives it; and the EXIF orientation of camera photos is applied.
    /// Decoding is SkiaSharp's (<c>SKCodec</c>), the decoder ML.NET itself uses. Thread-safe.
    /// </summary>
    public static class ImageFiles
    {
        private const string Formats = "PNG, JPEG, GIF, BMP, WebP or ICO";

        /// <summary>
        /// What the header of the image file at <paramref name="path"/> says: format, size, EXIF orientation. Reads only
        /// the header (the first few KB); no pixel is decoded and the pixel limit is not applied.
        /// </summary>
        /// <param name="path">The image file.</param>
        /// <exception cref="ArgumentException">The path is null or blank.</exception>
        /// <exception cref="FileNotFoundException">No file at the path.</exception>
        /// <exception cref="InvalidImageException">The file is empty, not an image in a format the decoder reads, or its header is truncated or damaged.</exception>
        /// <exception cref="IOException">The file cannot be read.</exception>
        /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
        public static ImageFileInfo Probe(string path)
        {
            using var opened = Open(path);
            return opened.Info;
        }

        /// <summary>
        /// Decodes the image file at <paramref name="path"/> into an <see cref="MLImage"/> of 8-bit BGRA pixels (alpha
        /// premultiplied, as ML.NET's <c>LoadImages</c> gives them), upright by its EXIF orientation unless
        /// <see cref="ImageLoadOptions.ApplyExifOrientation"/> is false. <see cref="MLImage.Tag"/> is the full path.
        /// </summary>
        /// <param name="path">The image file.</param>
        /// <param name="options">The pixel limit and orientation handling; null for the defaults (8192 × 8192 pixels at most).</param>
        /// <exception cref="ArgumentException">The path is null or blank.</exception>
        /// <exception cref="FileNotFoundException">No file at the path.</exception>
        /// <exception cref="ImageTooLargeException">The header declares more than <see cref="ImageLoadOptions.MaxPixels"/> pixels.</exception>
        /// <exception cref="InvalidImageException">The file is empty, truncated, damaged, or not an image in a format the decoder reads.</exception>
        /// <exception cref="IOException">The file cannot be read.</exception>
        /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
        public static MLImage Load(string path, ImageLoadOptions? options = null) => Decode(path, options ?? new ImageLoadOptions(), keep: true).Image!;

        /// <summary>
        /// Checks that <see cref="Load"/> would succeed on <paramref name="path"/>: decodes the whole file, drops the pixels
        /// and returns what its header says. Throws what <see cref="Load"/> throws.
        /// </summary>
        /// <param name="path">The image file.</param>
        /// <param name="options">The pixel limit; null for the defaults.</param>
        /// <exception cref="ArgumentException">The path is null or blank.</exception>
        /// <exception cref="FileNotFoundException">No file at the path.</exception>
        /// <exception cref="ImageTooLargeException">The header declares more than <see cref="ImageLoadOptions.MaxPixels"/> pixels.</exception>
        /// <exception cref="InvalidImageException">The file is empty, truncated, damaged, or not an image in a format the decoder reads.</exception>
        /// <exception cref="IOException">The file cannot be read.</exception>
        /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
        public static ImageFileInfo Verify(string path, ImageLoadOptions? options = null) => Decode(path, options ?? new ImageLoadOptions(), keep: false).Info;

        /// <summary>
        /// Checks every file of <paramref name="paths"/> (in parallel) before work starts, and throws for the first bad one in
        /// list order, the message naming the file and, with <paramref name="columnName"/>, its row (the index in
        /// <paramref name="paths"/>) and column, and how many other files are bad. Use it on the paths a data view will load
        /// with <c>LoadImages</c>, which decodes without a size limit and turns truncated files into partly grey images.
        /// </summary>
        /// <param name="paths">The image files, in row order.</param>
        /// <param name="check">Header only, or a full decode (the default).</param>
        /// <param name="options">The pixel limit; null for the defaults.</param>
        /// <param name="columnName">The data view column that holds the paths, to name in messages; null when there is no data view.</param>
        /// <exception cref="ArgumentNullException"><paramref name="paths"/> is null.</exception>
        /// <exception cref="ArgumentException">A path is null or blank.</exception>
        /// <exception cref="FileNotFoundException">A file does not exist.</exception>
        /// <exception cref="ImageTooLargeException">A file declares more than <see cref="ImageLoadOptions.MaxPixels"/> pixels.</exception>
        /// <exception cref="InvalidImageException">A file is empty, truncated, damaged, or not an image.</exception>
        /// <exception cref="IOException">A file cannot be read.</exception>
        /// <exception cref="UnauthorizedAccessException">A file may not be read.</exception>
        public static void CheckAll(IReadOnlyList<string> paths, ImageCheck check = ImageCheck.Decode, ImageLoadOptions? options = null, string? columnName = null)
        {
            if (paths is null) throw new ArgumentNullException(nameof(paths));
            if (check == ImageCheck.None || paths.Count == 0) return;
            options ??= new ImageLoadOptions();
            var errors = new Exception?[paths.Count];
            Parallel.For(0, paths.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                try
                {
                    if (check == ImageCheck.Header) CheckLimit(Probe(paths[i]), options);
                    else Verify(paths[i], options);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
                {
                    errors[i] = e;
                }
            });

            int first = Array.FindIndex(errors, e => e != null);
            if (first < 0) return;
            Exception error = errors[first]!;
            string where = columnName is null ? string.Empty : $"Row {first}, column '{columnName}': ";
            int others = errors.Count(e => e != null) - 1;
            string more = others == 0 ? string.Empty
                : $" ({others} other file{(others == 1 ? " is" : "s are")} bad too, the next: '{paths[Array.FindIndex(errors, first + 1, e => e != null)]}'.)";
            string message = where + error.Message + more;
            throw error switch
            {
                ImageTooLargeException big => new ImageTooLargeException(message, big.FilePath, big.Width, big.Height, big.MaxPixels),
                InvalidImageException bad => new InvalidImageException(message, bad.FilePath, bad),
                FileNotFoundException missing => new FileNotFoundException(message, missing.FileName, missing),
                UnauthorizedAccessException denied => new UnauthorizedAccessException(message, denied),
                ArgumentException argument => new ArgumentException(message, nameof(paths), argument),
                _ => new IOException(message, error),
            };
        }

        private static (ImageFileInfo Info, MLImage? Image) Decode(string path, ImageLoadOptions options, bool keep)
        {
            using var opened = Open(path);
            ImageFileInfo info = opened.Info;
            CheckLimit(info, options);

            SKAlphaType alpha = opened.Codec.Info.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Premul;
            // No colour space: pixel values as stored, as SKBitmap.Decode (ML.NET's LoadImages) gives them.
            var target = new SKImageInfo(info.Width, info.Height, SKColorType.Bgra8888, alpha);
            long bytes = info.PixelCount * 4;
            IntPtr pixels = Marshal.AllocHGlobal(new IntPtr(bytes));
            IntPtr turned = IntPtr.Zero;
            try
            {
                SKCodecResult result = opened.Codec.GetPixels(target, pixels);
                if (result != SKCodecResult.Success) throw DecodeFailed(opened, result);
                if (!keep) return (info, null);

                IntPtr source = pixels;
                int width = info.Width, height = info.Height;
                if (options.ApplyExifOrientation && info.Orientation != 1)
                {
                    turned = Marshal.AllocHGlobal(new IntPtr(bytes));
                    Orient(pixels, turned, info.Width, info.Height, info.Orientation);
                    (source, width, height) = (turned, info.OrientedWidth, info.OrientedHeight);
                }

                MLImage image;
                unsafe
                {
                    image = MLImage.CreateFromPixels(width, height, MLPixelFormat.Bgra32, new ReadOnlySpan<byte>((void*)source, checked((int)bytes)));
                }

                image.Tag = info.Path;
                return (info, image);
            }
            finally
            {
                Marshal.FreeHGlobal(pixels);
                if (turned != IntPtr.Zero) Marshal.FreeHGlobal(turned);
            }
        }

        private static void CheckLimit(ImageFileInfo info, ImageLoadOptions options)
        {
            if (info.PixelCount <= options.MaxPixels) return;
            throw new ImageTooLargeException(
                $"Image file '{info.Path}' declares {info.Width.ToString("N0", CultureInfo.InvariantCulture)}×{info.Height.ToString("N0", CultureInfo.InvariantCulture)} = {info.PixelCount.ToString("N0", CultureInfo.InvariantCulture)} pixels, more than the limit of " +
                $"{options.MaxPixels.ToString("N0", CultureInfo.InvariantCulture)} (ImageLoadOptions.MaxPixels); it was not decoded. Downscale the image, or raise ImageLoadOptions.MaxPixels if the file is trusted and memory allows (4 bytes per pixel, twice).",
                info.Path, info.Width, info.Height, options.MaxPixels);
        }

        /// <summary>Opens the file and reads its header; the caller disposes.</summary>
        private static OpenedImage Open(string path)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("Give the image file's path.", nameof(path));
            string full = System.IO.Path.GetFullPath(path);
            if (!File.Exists(full))
            {
                throw new FileNotFoundException(Directory.Exists(full)
                    ? $"Image file '{full}' is a folder, not a file. Give the path of an image file."
                    : $"Image file '{full}' does not exist. Check the path (a relative path is taken from the current folder, '{Environment.CurrentDirectory}').", full);
            }

            var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 64 * 1024);
            try
            {
                long length = stream.Length;
                if (length == 0)
                    throw new InvalidImageException($"Image file '{full}' is empty (0 bytes): the copy, download or export that made it did not finish. Re-create the file, or remove it from the data.", full);
                byte[] head = new byte[(int)Math.Min(16, length)];
                stream.ReadExactly(head);
                stream.Position = 0;

                // SkiaSharp wraps a seekable stream without copying it, and reads only what the header needs. The codec owns
                // the stream from here on (some codecs read it whole and close it): only dispose it, after the codec.
                SKCodec? codec = SKCodec.Create(stream, out SKCodecResult result);
                if (codec is null) throw HeaderFailed(full, length, head, result);
                try
                {
                    SKImageInfo info = codec.Info;
                    if (info.Width <= 0 || info.Height <= 0)
                        throw new InvalidImageException($"Image file '{full}' is damaged: its header declares a size of {info.Width}×{info.Height} pixels. Re-export the image or remove it from the data.", full);
                    int orientation = (int)codec.EncodedOrigin;
                    if (orientation < 1 || orientation > 8) orientation = 1;
                    var described = new ImageFileInfo(full, FormatOf(codec.EncodedFormat), info.Width, info.Height, orientation,
                        hasAlpha: info.AlphaType != SKAlphaType.Opaque, isGrayscale: info.ColorType == SKColorType.Gray8);
                    return new OpenedImage(stream, codec, described, length);
                }
                catch
                {
                    codec.Dispose();
                    throw;
                }
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        }

        private static InvalidImageException HeaderFailed(string path, long length, byte[] head, SKCodecResult result)
        {
            if (result == SKCodecResult.IncompleteInput)
                return new InvalidImageException($"Image file '{path}' is truncated: it ends inside the image header, after {length.ToString("N0", CultureInfo.InvariantCulture)} bytes. Copy it again from its source, or remove it from the data.", path);
            string looks = LooksLikeText(head) ? "it looks like text" : $"it starts with the bytes {Convert.ToHexString(head, 0, Math.Min(8, head.Length))}";
            return new InvalidImageException($"Image file '{path}' is not an image in a format the decoder reads ({Formats}): {looks}. Remove it from the data, or convert it to PNG or JPEG.", path);
        }

        private static InvalidImageException DecodeFailed(OpenedImage opened, SKCodecResult result)
        {
            ImageFileInfo info = opened.Info;
            string what = $"{info.Format} {info.Width}×{info.Height}, {opened.Length.ToString("N0", CultureInfo.InvariantCulture)} bytes";
            return result switch
            {
                SKCodecResult.IncompleteInput => new InvalidImageException($"Image file '{info.Path}' is truncated: its pixel data ends early ({what}). Copy it again from its source, or remove it from the data.", info.Path),
                SKCodecResult.ErrorInInput or SKCodecResult.InvalidInput => new InvalidImageException($"Image file '{info.Path}' is damaged: the decoder found an error in its pixel data ({what}). Re-export the image, or remove it from the data.", info.Path),
                _ => new InvalidImageException($"Image file '{info.Path}' could not be decoded ({what}; decoder result {result}). Convert it to PNG or JPEG, or remove it from the data.", info.Path),
            };
        }

        private static bool LooksLikeText(byte[] head) => head.Length > 0 && head.All(b => b is (>= 0x20 and < 0x7F) or (byte)'\n' or (byte)'\r' or (byte)'\t' or >= 0x80);

        private static ImageFileFormat FormatOf(SKEncodedImageFormat format) => format switch
        {
            SKEncodedImageFormat.Png => ImageFileFormat.Png,
            SKEncodedImageFormat.Jpeg => ImageFileFormat.Jpeg,
            SKEncodedImageFormat.Gif => ImageFileFormat.Gif,
            SKEncodedImageFormat.Bmp => ImageFileFormat.Bmp,
            SKEncodedImageFormat.Webp => ImageFileFormat.Webp,
            SKEncodedImageFormat.Ico => ImageFileFormat.Ico,
            SKEncodedImageFormat.Wbmp => ImageFileFormat.Wbmp,
            _ => ImageFileFormat.Other,
        };

        /// <summary>
        /// Writes the upright image of <paramref name="source"/> (<paramref name="width"/>×<paramref name="height"/> BGRA
        /// pixels as stored) to <paramref name="target"/>, for EXIF orientation 2–8. The upright image is
        /// <paramref name="height"/>×<paramref name="width"/> for orientations 5–8.
        /// </summary>
        internal static unsafe void Orient(IntPtr source, IntPtr target, int width, int height, int orientation)
        {
            uint* s = (uint*)source;
            uint* t = (uint*)target;
            bool transposed = orientation >= 5;
            int outWidth = transposed ? height : width, outHeight = transposed ? width : height;
            for (int y = 0; y < outHeight; y++)
            {
                uint* row = t + (long)y * outWidth;
                for (int x = 0; x < outWidth; x++)
                {
                    // (sx, sy): the stored pixel shown at (x, y) of the upright image.
                    (int sx, int sy) = orientation switch
                    {
                        2 => (width - 1 - x, y),
                        3 => (width - 1 - x, height - 1 - y),
                        4 => (x, height - 1 - y),
                        5 => (y, x),
                        6 => (y, height - 1 - x),
                        7 => (width - 1 - y, height - 1 - x),
                        8 => (width - 1 - y, x),
                        _ => (x, y),
                    };
                    row[x] = s[(long)sy * width + sx];
                }
            }
        }

        private sealed class OpenedImage : IDisposable
        {
            private readonly FileStream stream;

            public OpenedImage(FileStream stream, SKCodec codec, ImageFileInfo info, long length)
            {
                this.stream = stream;
                Codec = codec;
                Info = info;
                Length = length;
            }

            public SKCodec Codec { get; }

            public ImageFileInfo Info { get; }

            public long Length { get; }

            public void Dispose()
            {
                Codec.Dispose();
                stream.Dispose();
            }
        }
    }
}
