using System;
using System.IO;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>PNG files written whole or not at all.</summary>
    internal static class PngFile
    {
        /// <summary>Checks that <paramref name="path"/> names a file in an existing folder.</summary>
        /// <exception cref="ArgumentException">The path is empty or a folder, or its folder does not exist.</exception>
        public static void CheckPath(string path)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("Give the path of the PNG file to write.", nameof(path));
            if (Directory.Exists(path) || Path.GetFileName(Path.GetFullPath(path)).Length == 0)
                throw new ArgumentException($"'{path}' is a folder; give the path of the PNG file to write in it.", nameof(path));
            string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
            if (folder is null || !Directory.Exists(folder))
                throw new ArgumentException($"The folder of '{path}' does not exist; create it first.", nameof(path));
        }

        /// <summary>
        /// Writes <paramref name="png"/> to <paramref name="path"/> atomically: to a hidden temporary file in the same folder, flushed
        /// to the disk, then moved over <paramref name="path"/>; on failure the temporary file is deleted and <paramref name="path"/>
        /// is left as it was.
        /// </summary>
        public static void Write(string path, byte[] png)
        {
            string full = Path.GetFullPath(path);
            string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
            try
            {
                using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    stream.Write(png);
                    stream.Flush(flushToDisk: true);
                }

                File.Move(temporary, full, overwrite: true);
            }
            catch
            {
                try
                {
                    File.Delete(temporary);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // The error that led here matters more than a leftover.
                }

                throw;
            }
        }
    }
}
