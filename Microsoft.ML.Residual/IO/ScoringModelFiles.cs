using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;

namespace Microsoft.ML.Residual.IO
{
    /// <summary>
    /// Where ML.NET's ONNX transformers of this process keep their model files. <c>ApplyOnnxModel</c> writes each in-memory
    /// ONNX model to a file in the context's temporary folder and reads it back by name when the model is saved, so the file
    /// must live as long as the transformer. ML.NET removes it only when the transformer is disposed or finalised, which a
    /// process that exits first never does: every Fit left a file (about 100 MB for ResNet-50) in the system's temporary
    /// folder. The estimators therefore use one folder per process, removed when the process exits; a later process removes
    /// the folders of processes that ended without exiting normally.
    /// </summary>
    internal static class ScoringModelFiles
    {
        /// <summary>Folder names: this prefix and the owning process's id.</summary>
        internal const string Prefix = "ResidualML-onnx-";

        private static readonly Lazy<string> ProcessFolder = new(CreateProcessFolder);

        /// <summary>This process's folder (created on first use).</summary>
        public static string Folder => ProcessFolder.Value;

        private static string CreateProcessFolder()
        {
            string root = Path.GetTempPath();
            RemoveFoldersOfEndedProcesses(root);
            string folder = Path.Combine(root, Prefix + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            Directory.CreateDirectory(folder);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => AtomicFile.TryDeleteDirectory(folder);
            return folder;
        }

        /// <summary>Removes the folders under <paramref name="root"/> whose process is no longer running.</summary>
        internal static void RemoveFoldersOfEndedProcesses(string root)
        {
            string[] folders;
            try
            {
                folders = Directory.GetDirectories(root, Prefix + "*");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return;
            }

            foreach (string folder in folders)
            {
                string id = Path.GetFileName(folder).Substring(Prefix.Length);
                if (int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out int processId) && !IsRunning(processId))
                    AtomicFile.TryDeleteDirectory(folder);
            }
        }

        private static bool IsRunning(int processId)
        {
            try
            {
                using Process process = Process.GetProcessById(processId);
                return !process.HasExited;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                return false;
            }
        }
    }
}
