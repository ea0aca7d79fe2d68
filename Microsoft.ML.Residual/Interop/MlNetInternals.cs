using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.Residual.Interop
{
    /// <summary>
    /// Every ML.NET internal the library relies on, in one place. ML.NET gives extension packages no public way to reach
    /// the MLContext behind a catalog, to build a model from given weights, or to read a saved model's ONNX graph back, so
    /// these go through reflection and ML.NET's model.zip layout. <see cref="Missing"/> names what the loaded Microsoft.ML
    /// lacks; a test calls it, so an ML.NET upgrade that changes one of them fails there, loudly, not in a user's <c>Fit</c>.
    /// </summary>
    internal static class MlNetInternals
    {
        private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;

        // The environment of the MLContext behind a catalog: ML.NET's internal IInternalCatalog.Environment.
        private static readonly PropertyInfo? CatalogEnvironment =
            typeof(TransformsCatalog).Assembly.GetType("Microsoft.ML.Data.IInternalCatalog")?.GetProperty("Environment");

        // MaximumEntropyModelParameters(env, weights, bias, classes, features, labelNames, stats): internal.
        private static readonly ConstructorInfo? MaximumEntropyModel = typeof(MaximumEntropyModelParameters).GetConstructor(Instance, null,
            new[] { typeof(IHostEnvironment), typeof(VBuffer<float>[]), typeof(float[]), typeof(int), typeof(int), typeof(string[]), typeof(ModelStatisticsBase) }, null);

        // MulticlassPredictionTransformer(env, model, schema, features, label, score, predictedLabel): internal.
        private static readonly ConstructorInfo? MulticlassPrediction = typeof(MulticlassPredictionTransformer<MaximumEntropyModelParameters>).GetConstructor(Instance, null,
            new[] { typeof(IHostEnvironment), typeof(MaximumEntropyModelParameters), typeof(DataViewSchema), typeof(string), typeof(string), typeof(string), typeof(string) }, null);

        /// <summary>Deflate cannot expand data more than about 1032 times.</summary>
        private const long MaxDeflateRatio = 1100;

        /// <summary>The internals this Microsoft.ML lacks (empty when every one the library uses is there).</summary>
        public static IReadOnlyList<string> Missing()
        {
            var missing = new List<string>();
            if (CatalogEnvironment is null) missing.Add("Microsoft.ML.Data.IInternalCatalog.Environment");
            if (MaximumEntropyModel is null) missing.Add("MaximumEntropyModelParameters(IHostEnvironment, VBuffer<float>[], float[], int, int, string[], ModelStatisticsBase)");
            if (MulticlassPrediction is null) missing.Add("MulticlassPredictionTransformer<MaximumEntropyModelParameters>(IHostEnvironment, model, DataViewSchema, string × 4)");
            return missing;
        }

        /// <summary>The environment of the MLContext that <paramref name="catalog"/> belongs to.</summary>
        public static IHostEnvironment EnvironmentOf(object catalog)
        {
            if (catalog is null) throw new ArgumentNullException(nameof(catalog));
            return CatalogEnvironment?.GetValue(catalog) as IHostEnvironment
                ?? throw Unsupported($"the MLContext behind {catalog.GetType().Name}");
        }

        /// <summary>MLContext.GpuDeviceId and FallbackToCpu, as the environment behind a catalog holds them.</summary>
        public static (int? GpuDeviceId, bool FallbackToCpu) DeviceSettings(IHostEnvironment environment)
        {
            Type type = environment.GetType();
            var gpu = type.GetProperty("GpuDeviceId")?.GetValue(environment) as int?;
            bool fallback = type.GetProperty("FallbackToCpu")?.GetValue(environment) is true;
            return (gpu, fallback);
        }

        /// <summary>A maximum-entropy model with the given weights (one row per class) and biases.</summary>
        public static MaximumEntropyModelParameters NewMaximumEntropyModel(
            IHostEnvironment environment, VBuffer<float>[] weights, float[] bias, int features, string[] classNames) =>
            (MaximumEntropyModelParameters)(MaximumEntropyModel ?? throw Unsupported(nameof(MaximumEntropyModelParameters))).Invoke(new object?[]
            {
                environment, weights, bias, classNames.Length, features, classNames, null,
            });

        /// <summary>ML.NET's multiclass prediction transformer over <paramref name="model"/>, as its trainers return it.</summary>
        public static ITransformer NewMulticlassPredictionTransformer(
            IHostEnvironment environment, MaximumEntropyModelParameters model, DataViewSchema schema, string featuresColumn, string labelColumn,
            string scoreColumn, string predictedLabelColumn) =>
            (ITransformer)(MulticlassPrediction ?? throw Unsupported("MulticlassPredictionTransformer")).Invoke(new object[]
            {
                environment, model, schema, featuresColumn, labelColumn, scoreColumn, predictedLabelColumn,
            });

        /// <summary>The entries of a model.zip that hold an OnnxTransformer's graph (named <c>…/OnnxModel</c>).</summary>
        public static IReadOnlyList<ZipArchiveEntry> OnnxModelEntries(ZipArchive zip) =>
            zip.Entries.Where(e => e.FullName.EndsWith("/OnnxModel", StringComparison.Ordinal) || e.FullName == "OnnxModel").ToList();

        /// <summary>
        /// The ONNX bytes of an <c>OnnxModel</c> entry (a 4-byte little-endian length, then the model). The sizes the zip
        /// directory declares are checked against the file's length and what deflate can expand to before anything is
        /// allocated, so a corrupt or crafted directory is an error rather than a multi-GB allocation.
        /// </summary>
        public static byte[] ReadOnnxModel(ZipArchiveEntry entry, long fileLength)
        {
            if (entry.CompressedLength > fileLength || entry.Length > entry.CompressedLength * MaxDeflateRatio + 1024)
                throw new InvalidDataException($"entry {entry.FullName} claims {entry.Length} bytes ({entry.CompressedLength} compressed) in a file of {fileLength} bytes; the zip directory is corrupt");
            if (entry.Length < 4) throw new InvalidDataException($"entry {entry.FullName} is truncated");
            if (entry.Length - 4 > Array.MaxLength) throw new InvalidDataException($"entry {entry.FullName} holds {entry.Length} bytes, more than an ONNX model can");
            using Stream stream = entry.Open();
            Span<byte> prefix = stackalloc byte[4];
            stream.ReadExactly(prefix);
            int length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
            if (length != entry.Length - 4) throw new InvalidDataException($"entry {entry.FullName} declares {length} bytes but holds {entry.Length - 4}");
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return bytes;
        }

        /// <summary>
        /// Copies the model.zip <paramref name="source"/> to <paramref name="target"/>, each <c>OnnxModel</c> entry's graph passed
        /// through <paramref name="convert"/> (which returns it unchanged for graphs it leaves alone) and written back in the same
        /// layout (a 4-byte little-endian length, then the model).
        /// </summary>
        public static void RewriteOnnxModels(string source, string target, Func<byte[], byte[]> convert)
        {
            long length = new FileInfo(source).Length;
            using ZipArchive input = ZipFile.OpenRead(source);
            using FileStream output = File.Create(target);
            using var zip = new ZipArchive(output, ZipArchiveMode.Create);
            var graphs = new HashSet<ZipArchiveEntry>(OnnxModelEntries(input));
            var prefix = new byte[4];
            foreach (ZipArchiveEntry entry in input.Entries)
            {
                ZipArchiveEntry copy = zip.CreateEntry(entry.FullName, CompressionLevel.Optimal);
                using Stream to = copy.Open();
                if (graphs.Contains(entry))
                {
                    byte[] graph = convert(ReadOnnxModel(entry, length));
                    BinaryPrimitives.WriteInt32LittleEndian(prefix, graph.Length);
                    to.Write(prefix);
                    to.Write(graph);
                }
                else
                {
                    using Stream from = entry.Open();
                    from.CopyTo(to);
                }
            }
        }

        private static Exception Unsupported(string what) =>
            new NotSupportedException(
                $"This version of Microsoft.ML ({typeof(MLContext).Assembly.GetName().Version}) hides {what} differently from the version ResidualML was "
                + "built against; use that Microsoft.ML version, or report this with yours.");
    }
}
