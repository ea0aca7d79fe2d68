using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Residual.IO;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.ML.Transforms.Onnx;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>Makes the ResidualML graph inside a saved model.zip a scoring graph (<see cref="ScoringOptions"/>), keeping the rest of the pipeline.</summary>
    internal static class SavedModelScoring
    {
        public static void Convert(ModelOperationsCatalog catalog, string modelPath, string outputPath, ScoringOptions options)
        {
            if (string.IsNullOrWhiteSpace(modelPath)) throw new ArgumentException("Give the model file's path.", nameof(modelPath));
            if (string.IsNullOrWhiteSpace(outputPath)) throw new ArgumentException("Give the path of the model file to write.", nameof(outputPath));
            string source = Path.GetFullPath(modelPath), target = Path.GetFullPath(outputPath);
            if (string.Equals(source, target, StringComparison.Ordinal))
                throw new ArgumentException($"The converted model would replace '{source}'; write it to another file.", nameof(outputPath));
            options.Check(nameof(ScoringOptions));
            ITransformer model = catalog.LoadChecked(source, out _);
            byte[] graph = ResidualGraph(source);
            // The calibration rows reach the graph through the model's own transforms before it (image loading, resizing, pixels).
            IDataView? calibration = options.CalibrationSet is { } rows ? UpToGraph(model, rows) : null;
            string pixelColumn = ModelProto.Parser.ParseFrom(graph).Graph.Input[0].Name;
            AtomicFile.Write(target, temporary => MlNetInternals.RewriteOnnxModels(source, temporary,
                bytes => IsResidualGraph(bytes) ? options.Apply(bytes, calibration, null, pixelColumn) : bytes));
            catalog.LoadChecked(target, out _);
        }

        private static byte[] ResidualGraph(string path)
        {
            using ZipArchive zip = ZipFile.OpenRead(path);
            foreach (ZipArchiveEntry entry in MlNetInternals.OnnxModelEntries(zip))
            {
                byte[] bytes = MlNetInternals.ReadOnnxModel(entry, new FileInfo(path).Length);
                if (IsResidualGraph(bytes)) return bytes;
            }

            throw new ArgumentException($"Model file '{path}' holds no graph exported by a ResidualML estimator of this version; train it again to convert it.");
        }

        private static bool IsResidualGraph(byte[] bytes) =>
            ModelProto.Parser.ParseFrom(bytes).MetadataProps.Any(p => p.Key == OnnxModelConverter.NetworkOutputKey);

        // The rows as the graph reads them: every transform of the model before its first ONNX transform.
        private static IDataView UpToGraph(ITransformer model, IDataView rows)
        {
            foreach (ITransformer step in Flatten(model))
            {
                if (step is OnnxTransformer) return rows;
                rows = step.Transform(rows);
            }

            throw new ArgumentException("The model has no ONNX transform.");
        }

        private static IEnumerable<ITransformer> Flatten(ITransformer model) =>
            model is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { model };
    }
}
