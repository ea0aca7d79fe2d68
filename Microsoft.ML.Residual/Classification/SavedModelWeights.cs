using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Weights;

namespace Microsoft.ML.Residual.Classification
{
    /// <summary>
    /// Reads the network weights back out of a saved model: an ML.NET model.zip holds each OnnxTransformer's graph in
    /// an entry named <c>…/OnnxModel</c> (a 4-byte length, then the ONNX bytes); the graph our exporter wrote carries
    /// its architecture in the metadata and its weights as initializers named by state-dict keys.
    /// </summary>
    internal static class SavedModelWeights
    {
        /// <summary>Metadata key of the architecture name in graphs the estimators export.</summary>
        public const string ArchitectureKey = "architecture";

        /// <summary>Metadata key of the class names (one per line, key order).</summary>
        public const string ClassesKey = "classes";

        /// <summary>Metadata key of the stem ("ImageNet" or "Cifar").</summary>
        public const string StemKey = "stem";

        /// <summary>The weights and metadata of the ResidualML graph in <paramref name="path"/> (a model.zip or an .onnx file).</summary>
        /// <exception cref="ArgumentException">The file is missing, unreadable, or holds no graph exported by ResidualML.</exception>
        public static TensorDictionary Read(string path, string optionName)
        {
            string Problem(string what) => $"ImageClassifierOptions.{optionName} = '{path}': {what}";
            if (!File.Exists(path)) throw new ArgumentException(Problem("there is no such file."), optionName);
            try
            {
                if (!path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) && !IsZip(path)) return OnnxWeights.Read(path);
                using ZipArchive zip = ZipFile.OpenRead(path);
                var graphs = MlNetInternals.OnnxModelEntries(zip);
                foreach (ZipArchiveEntry entry in graphs)
                {
                    byte[] onnx = MlNetInternals.ReadOnnxModel(entry, new FileInfo(path).Length);
                    TensorDictionary tensors = OnnxWeights.Read(new MemoryStream(onnx, writable: false), $"{path} ({entry.FullName})");
                    if (tensors.Metadata.ContainsKey(ArchitectureKey)) return tensors;
                    tensors.Dispose();
                }

                throw new ArgumentException(
                    Problem(graphs.Count == 0
                        ? "the model holds no ONNX graph; give a model.zip saved from a ResidualML classifier (ml.Model.Save) or an .onnx file from OnnxExporter."
                        : "none of its ONNX graphs was exported by a ResidualML classifier."),
                    optionName);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or WeightsFormatException)
            {
                throw new ArgumentException(Problem($"the file cannot be read as a saved model ({e.Message})."), optionName, e);
            }
        }

        /// <summary>The class names recorded in the graph's metadata, or null.</summary>
        public static string[]? ClassNames(TensorDictionary tensors) =>
            tensors.Metadata.TryGetValue(ClassesKey, out string? classes) ? classes.Split('\n') : null;

        private static bool IsZip(string path)
        {
            using FileStream stream = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return stream.Read(magic) == 4 && magic[0] == (byte)'P' && magic[1] == (byte)'K' && magic[2] == 3 && magic[3] == 4;
        }
    }
}
