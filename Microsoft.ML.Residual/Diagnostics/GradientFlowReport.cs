using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.IO;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>
    /// The gradient of one forward/backward pass (see <see cref="GradientFlow.Measure"/>), block by block from the first to
    /// the last: its norm at each block's input, how it splits between the block's residual branch and its identity path,
    /// and the norm of each parameter group's gradient.
    /// </summary>
    public sealed class GradientFlowReport
    {
        internal GradientFlowReport(string[] blockNames, double[] inputNorms, double[] branchNorms, double[] identityNorms,
            IReadOnlyDictionary<string, double> parameterGroups, double loss)
        {
            BlockNames = blockNames;
            BlockInputGradientNorms = inputNorms;
            BranchGradientNorms = branchNorms;
            IdentityGradientNorms = identityNorms;
            ParameterGroupGradientNorms = parameterGroups;
            Loss = loss;
        }

        /// <summary>The blocks' state-dict prefixes (e.g. <c>layer1.0</c>), from the first block to the last.</summary>
        public string[] BlockNames { get; }

        /// <summary>The L2 norm of ∂loss/∂x at each block's input x (over the whole batch), from the first block to the last.</summary>
        public double[] BlockInputGradientNorms { get; }

        /// <summary>
        /// For residual blocks: the norm of the part of ∂loss/∂x that comes back through the residual branch F (∂loss/∂y · ∂F/∂x).
        /// NaN for blocks without that split (dense blocks).
        /// </summary>
        public double[] BranchGradientNorms { get; }

        /// <summary>
        /// For residual blocks: the norm of the part of ∂loss/∂x that comes back through the shortcut (∂loss/∂y through the identity,
        /// or through the projection of a downsampling block); 0 for plain blocks, NaN for blocks without that split.
        /// </summary>
        public double[] IdentityGradientNorms { get; }

        /// <summary>branch / (branch + identity) of each block: 0 when everything flows through the shortcut, 1 for a plain block.</summary>
        public double[] BranchShares => BranchGradientNorms.Zip(IdentityGradientNorms, (b, i) => b + i > 0 ? b / (b + i) : double.NaN).ToArray();

        /// <summary>
        /// The L2 norm of the gradient of each parameter group: a block's parameters are one group (its name), every other
        /// top-level module is another (e.g. <c>conv1</c>, <c>bn1</c>, <c>fc</c>).
        /// </summary>
        public IReadOnlyDictionary<string, double> ParameterGroupGradientNorms { get; }

        /// <summary>The loss of the pass (mean cross-entropy).</summary>
        public double Loss { get; }

        /// <summary>The first block's input-gradient norm over the last block's: far below 1, gradients vanish on the way back; far above, they grow.</summary>
        public double FirstToLastRatio => BlockInputGradientNorms[0] / BlockInputGradientNorms[^1];

        /// <summary>One line per block: block, input gradient norm, branch and identity gradient norms, branch share (invariant culture).</summary>
        public string ToCsv()
        {
            var text = new StringBuilder("block,name,input_gradient_norm,branch_gradient_norm,identity_gradient_norm,branch_share\n");
            double[] shares = BranchShares;
            for (int i = 0; i < BlockNames.Length; i++)
            {
                text.Append(string.Join(',', new[]
                {
                    (i + 1).ToString(CultureInfo.InvariantCulture), BlockNames[i], Number(BlockInputGradientNorms[i]),
                    Number(BranchGradientNorms[i]), Number(IdentityGradientNorms[i]), Number(shares[i]),
                })).Append('\n');
            }

            return text.ToString();
        }

        /// <summary>
        /// The report as JSON: <c>loss</c>, <c>firstToLastGradientRatio</c>, <c>blocks</c> (each block's <c>name</c>,
        /// <c>inputGradientNorm</c>, <c>branchGradientNorm</c>, <c>identityGradientNorm</c>, <c>branchShare</c>) and
        /// <c>parameterGroupGradientNorms</c>. Values that are not finite (a missing path split) are <c>null</c>.
        /// </summary>
        public string ToJson()
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                json.WriteStartObject();
                WriteJsonProperties(json);
                json.WriteEndObject();
            }

            return Encoding.UTF8.GetString(buffer.ToArray());
        }

        /// <summary>Writes the properties of <see cref="ToJson"/> into the object <paramref name="json"/> has open.</summary>
        internal void WriteJsonProperties(Utf8JsonWriter json)
        {
            WriteNumber(json, "loss", Loss);
            WriteNumber(json, "firstToLastGradientRatio", FirstToLastRatio);
            json.WriteStartArray("blocks");
            double[] shares = BranchShares;
            for (int i = 0; i < BlockNames.Length; i++)
            {
                json.WriteStartObject();
                json.WriteString("name", BlockNames[i]);
                WriteNumber(json, "inputGradientNorm", BlockInputGradientNorms[i]);
                WriteNumber(json, "branchGradientNorm", BranchGradientNorms[i]);
                WriteNumber(json, "identityGradientNorm", IdentityGradientNorms[i]);
                WriteNumber(json, "branchShare", shares[i]);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartObject("parameterGroupGradientNorms");
            foreach (var (group, norm) in ParameterGroupGradientNorms) WriteNumber(json, group, norm);
            json.WriteEndObject();
        }

        /// <summary>A JSON number, or null for NaN and infinities (which JSON cannot hold).</summary>
        internal static void WriteNumber(Utf8JsonWriter json, string name, double value)
        {
            if (double.IsFinite(value)) json.WriteNumber(name, value);
            else json.WriteNull(name);
        }

        private static string Number(double value) => double.IsNaN(value) ? string.Empty : value.ToString("R", CultureInfo.InvariantCulture);
    }
}
