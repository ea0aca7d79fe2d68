using System;
using System.IO;

namespace Microsoft.ML.Residual.IO
{
    /// <summary>Files written whole or not at all, and best-effort clean-up of what a failed write leaves.</summary>
    internal static class AtomicFile
    {
        /// <summary>
        /// Writes <paramref name="path"/> whole or not at all: <paramref name="write"/> fills a hidden temporary file in the same
        /// folder (so that the final step is a rename), which is flushed to the disk and then replaces <paramref name="path"/>.
        /// On failure the temporary file is deleted and the error rethrown; an existing <paramref name="path"/> is left as it was.
        /// </summary>
        /// <param name="path">The file to create or replace.</param>
        /// <param name="write">Writes the content to the temporary path it is given.</param>
        /// <param name="temporaryExtension">The temporary file's extension (e.g. ".tmp.png" for writers that choose the format by extension).</param>
        public static void Write(string path, Action<string> write, string temporaryExtension = ".tmp")
        {
            string full = Path.GetFullPath(path);
            string temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}{temporaryExtension}");
            try
            {
                write(temporary);
                FlushToDisk(temporary);
                FaultInjection.Wrote(temporary);
                File.Move(temporary, full, overwrite: true);
            }
            catch
            {
                TryDeleteFile(temporary);
                throw;
            }
        }

        /// <summary>
        /// Makes a written file durable before it is renamed into place, so that a power cut cannot leave the new name on
        /// an empty file (fsync applies to the file, whichever handle wrote it).
        /// </summary>
        private static void FlushToDisk(string path)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 1);
            stream.Flush(flushToDisk: true);
        }

        /// <summary>Deletes a file if it can; the error that led here matters more than a leftover.</summary>
        public static void TryDeleteFile(string path)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        /// <summary>Deletes a directory and its content if it can.</summary>
        public static void TryDeleteDirectory(string path)
        {
            try
            {
                if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
