using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using Microsoft.ML.Residual.Onnx.Proto;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// Folds each BatchNormalization that reads a convolution's output (and nothing else reads it) into that convolution:
    /// W′ = W·s, b′ = β + (b − μ)·s per output channel, s = γ/√(σ² + ε), computed in double. The folded weight keeps the
    /// convolution's state-dict name and the folded bias takes the BatchNorm's bias name. The metadata keeps each folded
    /// BatchNorm's γ, β, μ and σ² (and a convolution bias), so reading the weights back gives them exactly and the
    /// convolution's weight as W′/s (see <see cref="Unfold"/>).
    /// </summary>
    internal static class BatchNormFolding
    {
        /// <summary>
        /// Metadata key: one line per folded BatchNorm, tab-separated: the convolution's weight name; the BatchNorm's scale, bias,
        /// mean and variance names; ε; the convolution's original bias name (or nothing); γ, β, μ, σ² (and that bias) as
        /// little-endian float32, base64; and, for each channel whose weights W′/s does not give back, its index and its weights
        /// (float32, base64; else nothing).
        /// </summary>
        public const string MetadataKey = "folded-batchnorm";

        /// <summary>Drops the metadata's copies of weights that W′/s cannot give back (for graphs that are not read back exactly: float16, INT8).</summary>
        public static void DropLostChannels(ModelProto model)
        {
            var edit = new GraphEditing(model);
            if (edit.Metadata(MetadataKey) is not { Length: > 0 } lines) return;
            edit.SetMetadata(MetadataKey, string.Join('\n', lines.Split('\n').Select(line =>
            {
                string[] parts = line.Split('\t');
                if (parts.Length == 9) parts[8] = string.Empty;
                return string.Join('\t', parts);
            })));
        }

        /// <summary>Folds what can be folded; returns how many BatchNorms went.</summary>
        public static int Fold(ModelProto model)
        {
            var edit = new GraphEditing(model);
            Dictionary<string, NodeProto> producers = edit.Producers();
            Dictionary<string, int> readers = edit.ReaderCounts();
            var lines = new List<string>();
            if (edit.Metadata(MetadataKey) is { Length: > 0 } earlier) lines.AddRange(earlier.Split('\n'));
            int folded = 0;
            foreach (NodeProto norm in edit.Graph.Node.Where(n => n.OpType == "BatchNormalization").ToList())
            {
                if (norm.Input.Count < 5 || !producers.TryGetValue(norm.Input[0], out NodeProto? conv) || conv.OpType != "Conv") continue;
                if (readers.GetValueOrDefault(norm.Input[0]) != 1) continue;
                string weightName = conv.Input[1];
                string? convBias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? conv.Input[2] : null;
                string[] statistics = norm.Input.Skip(1).Take(4).ToArray();
                if (!edit.IsFloatInitializer(weightName) || readers.GetValueOrDefault(weightName) != 1) continue;
                if (convBias != null && (!edit.IsFloatInitializer(convBias) || readers.GetValueOrDefault(convBias) != 1)) continue;
                if (statistics.Any(s => !edit.IsFloatInitializer(s) || readers.GetValueOrDefault(s) != 1)) continue;

                float epsilon = GraphEditing.FloatAttribute(norm, "epsilon", 1e-5f);
                float[] gamma = edit.Floats(statistics[0]), beta = edit.Floats(statistics[1]), mean = edit.Floats(statistics[2]), variance = edit.Floats(statistics[3]);
                float[] weight = edit.Floats(weightName);
                float[]? bias = convBias is null ? null : edit.Floats(convBias);
                int channels = gamma.Length;
                if (channels == 0 || weight.Length % channels != 0) continue;
                int perChannel = weight.Length / channels;
                var foldedBias = new float[channels];
                // Where W′/s does not give a channel's weights back (γ = 0, as zero-initialised residual branches start, or a
                // product that underflows), the metadata keeps them: its index, then its weights.
                var lost = new List<float>();
                for (int c = 0; c < channels; c++)
                {
                    double scale = Scale(gamma[c], variance[c], epsilon);
                    float[] channel = weight.AsSpan(c * perChannel, perChannel).ToArray();
                    bool recoverable = true;
                    for (int i = c * perChannel; i < (c + 1) * perChannel; i++)
                    {
                        float original = weight[i];
                        weight[i] = (float)(original * scale);
                        recoverable &= Math.Abs(Recovered(weight[i], scale) - (double)original) <= RecoveryTolerance * Math.Abs(original);
                    }

                    if (!recoverable)
                    {
                        lost.Add(c);
                        lost.AddRange(channel);
                    }

                    foldedBias[c] = (float)(beta[c] + ((bias?[c] ?? 0.0) - mean[c]) * scale);
                }

                float[] kept = gamma.Concat(beta).Concat(mean).Concat(variance).Concat(bias ?? Array.Empty<float>()).ToArray();
                edit.SetInitializer(weightName, edit.Initializers[weightName].Dims.ToArray(), weight, TensorProto.Types.DataType.Float);
                edit.SetInitializer(statistics[1], new long[] { channels }, foldedBias, TensorProto.Types.DataType.Float);
                if (conv.Input.Count > 2) conv.Input[2] = statistics[1];
                else conv.Input.Add(statistics[1]);
                conv.Output[0] = norm.Output[0];
                edit.Graph.Node.Remove(norm);
                lines.Add(string.Join('\t', new[] { weightName }.Concat(statistics).Append(epsilon.ToString("R", CultureInfo.InvariantCulture))
                    .Append(convBias ?? string.Empty).Append(Base64(kept)).Append(lost.Count == 0 ? string.Empty : Base64(lost.ToArray()))));
                folded++;
            }

            edit.RemoveUnusedInitializers();
            if (lines.Count > 0) edit.SetMetadata(MetadataKey, string.Join('\n', lines));
            return folded;
        }

        /// <summary>
        /// The state-dict entries of the unfolded network, from the metadata and the folded graph's tensors (<paramref name="read"/>
        /// gives one by name): each BatchNorm's γ, β, μ, σ² and a convolution bias exactly, the convolution's weight as W′/s (within
        /// a rounding or two of the original, or as kept where that cannot give it back).
        /// </summary>
        public static IEnumerable<(string Name, float[] Values)> Unfold(string metadata, Func<string, float[]> read)
        {
            foreach (string line in metadata.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] parts = line.Split('\t');
                if (parts.Length != 9 || !float.TryParse(parts[5], NumberStyles.Float, CultureInfo.InvariantCulture, out float epsilon))
                    throw new FormatException($"The metadata '{MetadataKey}' line '{Shorten(line)}' is not what the exporter writes.");
                float[] kept = Floats(parts[7], parts[0]);
                bool hasBias = parts[6].Length > 0;
                int vectors = hasBias ? 5 : 4, channels = kept.Length / vectors;
                float[] weight = read(parts[0]);
                float[] lost = parts[8].Length > 0 ? Floats(parts[8], parts[0]) : Array.Empty<float>();
                int perChannel = channels == 0 ? 0 : weight.Length / channels;
                if (channels == 0 || kept.Length != vectors * channels || weight.Length % channels != 0 || lost.Length % (perChannel + 1) != 0)
                    throw new FormatException($"The metadata '{MetadataKey}' entry of '{parts[0]}' does not fit the graph's weight.");
                float[] Part(int index) => kept.AsSpan(index * channels, channels).ToArray();
                float[] gamma = Part(0), variance = Part(3);
                for (int c = 0; c < channels; c++)
                {
                    double scale = Scale(gamma[c], variance[c], epsilon);
                    for (int i = c * perChannel; i < (c + 1) * perChannel; i++) weight[i] = Recovered(weight[i], scale);
                }

                for (int at = 0; at < lost.Length; at += perChannel + 1)
                {
                    int c = (int)lost[at];
                    if (c < 0 || c >= channels || c != lost[at]) throw new FormatException($"The metadata '{MetadataKey}' entry of '{parts[0]}' names a channel it does not have.");
                    lost.AsSpan(at + 1, perChannel).CopyTo(weight.AsSpan(c * perChannel, perChannel));
                }
                yield return (parts[0], weight);
                for (int k = 0; k < 4; k++) yield return (parts[1 + k], Part(k));
                if (hasBias) yield return (parts[6], Part(4));
            }
        }

        // W′ = fl(W·s) and fl(W′/s) round twice: within 2u (u = 2⁻²⁴) of W unless the product underflowed or s is 0.
        private const double RecoveryTolerance = 2.0 / (1 << 24) * 1.0001;

        private static double Scale(float gamma, float variance, float epsilon) => gamma / Math.Sqrt((double)variance + epsilon);

        private static float Recovered(float folded, double scale) => scale == 0 ? 0f : (float)(folded / scale);

        private static string Base64(float[] values) => Convert.ToBase64String(MemoryMarshal.AsBytes(values.AsSpan()));

        private static float[] Floats(string base64, string weightName)
        {
            try
            {
                return MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(base64)).ToArray();
            }
            catch (FormatException)
            {
                throw new FormatException($"The metadata '{MetadataKey}' entry of '{weightName}' holds no readable parameters.");
            }
        }

        private static string Shorten(string line) => line.Length <= 120 ? line : line[..120] + "…";
    }
}
