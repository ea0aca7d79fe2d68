using System;
using System.IO;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// An image file that cannot be loaded: empty, truncated, damaged, not an image in a format the decoder knows, or
    /// (as <see cref="ImageTooLargeException"/>) larger than the pixel limit. The message names the file and says what
    /// to do; <see cref="FilePath"/> holds the path for code that collects or skips bad files. An <see cref="IOException"/>
    /// (<see cref="InvalidDataException"/> is sealed), so code that catches I/O failures of a file catches it too.
    /// </summary>
    public class InvalidImageException : IOException
    {
        /// <summary>An exception about the image file <paramref name="filePath"/>.</summary>
        /// <param name="message">What is wrong and what to do; should name the file.</param>
        /// <param name="filePath">The full path of the image file.</param>
        /// <param name="innerException">The exception that caused this one, if any.</param>
        public InvalidImageException(string message, string filePath, Exception? innerException = null)
            : base(message, innerException)
        {
            FilePath = filePath ?? throw new ArgumentNullException(nameof(filePath));
        }

        /// <summary>The full path of the image file that could not be loaded.</summary>
        public string FilePath { get; }
    }

    /// <summary>
    /// An image whose header declares more pixels than <see cref="ImageLoadOptions.MaxPixels"/> allows, refused before any
    /// pixel memory is allocated (a "decompression bomb" is a small file that declares a huge image).
    /// </summary>
    public sealed class ImageTooLargeException : InvalidImageException
    {
        /// <summary>An exception about the image file <paramref name="filePath"/> of <paramref name="width"/>×<paramref name="height"/> pixels.</summary>
        /// <param name="message">What is wrong and what to do; should name the file.</param>
        /// <param name="filePath">The full path of the image file.</param>
        /// <param name="width">The width the file's header declares.</param>
        /// <param name="height">The height the file's header declares.</param>
        /// <param name="maxPixels">The limit in force.</param>
        public ImageTooLargeException(string message, string filePath, int width, int height, long maxPixels)
            : base(message, filePath)
        {
            Width = width;
            Height = height;
            MaxPixels = maxPixels;
        }

        /// <summary>The width in pixels that the file's header declares.</summary>
        public int Width { get; }

        /// <summary>The height in pixels that the file's header declares.</summary>
        public int Height { get; }

        /// <summary>The pixel limit (<see cref="ImageLoadOptions.MaxPixels"/>) that the image exceeds.</summary>
        public long MaxPixels { get; }
    }
}
