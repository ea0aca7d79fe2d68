using System;
using System.Collections.Generic;
using System.Linq;
using Google.Protobuf;
using Microsoft.ML.Residual.Onnx.Proto;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// Turns a float32 graph exported by ResidualML into a scoring graph: BatchNorm folded into the convolutions, test-time
    /// augmentation, half precision, or INT8 (calibrated on example images). Inputs, outputs and their names stay as they are, so the result
    /// replaces the original wherever it is scored (ONNX Runtime, ML.NET's <c>ApplyOnnxModel</c>).
    /// </summary>
    public static class OnnxModelConverter
    {
        /// <summary>Metadata key of the network's output tensor (where post-processing begins), written by the exporter.</summary>
        internal const string NetworkOutputKey = "network-output";

        /// <summary>Metadata key of the precision of a converted graph ("float16", "int8"); absent for float32.</summary>
        internal const string PrecisionKey = "precision";

        /// <summary>Folds every BatchNorm that follows a convolution into it (see <see cref="OnnxExportOptions.FoldBatchNorm"/>).</summary>
        /// <exception cref="ArgumentException">The bytes are not an ONNX model.</exception>
        public static byte[] FoldBatchNorm(byte[] model)
        {
            ModelProto proto = Parse(model);
            BatchNormFolding.Fold(proto);
            return proto.ToByteArray();
        }

        /// <summary>
        /// Converts the float32 graph <paramref name="model"/> to <paramref name="precision"/>, folding BatchNorm first, and with
        /// <paramref name="testTimeAugmentation"/> averaging the network's logits over views of each image.
        /// <paramref name="calibrationImages"/> (INT8 only): images as the graph's input reads them, C·H·W floats each (0–255
        /// pixels when the graph normalises); a few hundred images from the training data are typical.
        /// </summary>
        /// <exception cref="ArgumentException">The graph was not exported by ResidualML, is not float32, or INT8 lacks calibration images or they have the wrong size.</exception>
        public static byte[] Convert(byte[] model, OnnxPrecision precision, IEnumerable<float[]>? calibrationImages = null, OnnxCalibration? calibration = null,
            TestTimeAugmentation testTimeAugmentation = TestTimeAugmentation.None) =>
            ForScoring(model, foldBatchNorm: true, testTimeAugmentation, precision, calibrationImages?.ToList(), calibration ?? new OnnxCalibration());

        /// <summary>Folding (when asked, and always before float16 or INT8), then test-time augmentation, then precision.</summary>
        internal static byte[] ForScoring(byte[] model, bool foldBatchNorm, TestTimeAugmentation testTimeAugmentation, OnnxPrecision precision,
            IReadOnlyList<float[]>? calibrationImages, OnnxCalibration calibration)
        {
            ModelProto proto = Parse(model);
            ForScoring(proto, foldBatchNorm, testTimeAugmentation, precision, calibrationImages, calibration);
            return proto.ToByteArray();
        }

        internal static void ForScoring(ModelProto model, bool foldBatchNorm, TestTimeAugmentation testTimeAugmentation, OnnxPrecision precision,
            IReadOnlyList<float[]>? calibrationImages, OnnxCalibration calibration)
        {
            if (foldBatchNorm || precision != OnnxPrecision.Float32) BatchNormFolding.Fold(model);
            if (testTimeAugmentation != TestTimeAugmentation.None)
            {
                var (input, networkOutput) = Boundary(model);
                TestTimeAugmentationGraph.Apply(model, input, networkOutput, testTimeAugmentation);
            }

            Convert(model, precision, calibrationImages, calibration);
        }

        /// <summary>The precision a graph computes in (float32 unless this class converted it).</summary>
        public static OnnxPrecision PrecisionOf(byte[] model) => PrecisionOf(Parse(model));

        internal static OnnxPrecision PrecisionOf(ModelProto model) =>
            model.MetadataProps.FirstOrDefault(p => p.Key == PrecisionKey)?.Value switch
            {
                null => OnnxPrecision.Float32,
                "float16" => OnnxPrecision.Float16,
                "int8" => OnnxPrecision.Int8,
                string other => throw new ArgumentException($"The graph's metadata names an unknown precision '{other}'."),
            };

        internal static void Convert(ModelProto model, OnnxPrecision precision, IReadOnlyList<float[]>? calibrationImages, OnnxCalibration calibration)
        {
            if (precision == OnnxPrecision.Float32) return;
            OnnxPrecision current = PrecisionOf(model);
            if (current != OnnxPrecision.Float32)
                throw new ArgumentException($"The graph already computes in {current}; convert the float32 graph instead.");
            var (input, networkOutput) = Boundary(model);
            BatchNormFolding.Fold(model);
            BatchNormFolding.DropLostChannels(model);
            if (precision == OnnxPrecision.Float16)
            {
                Float16Conversion.Convert(model, input, networkOutput);
            }
            else
            {
                if (calibrationImages is null || calibrationImages.Count == 0)
                    throw new ArgumentException("INT8 quantisation calibrates each activation's range on example images; give at least one (a few hundred from the training data is typical).");
                CheckCalibration(calibration);
                Int8Quantization.Quantize(model, input, networkOutput, calibrationImages, calibration);

                // An INT8 graph is not read back (its float weights are gone), so what unfolding needs goes too.
                StringStringEntryProto? folded = model.MetadataProps.FirstOrDefault(p => p.Key == BatchNormFolding.MetadataKey);
                if (folded != null) model.MetadataProps.Remove(folded);
            }

            model.MetadataProps.Add(new StringStringEntryProto { Key = PrecisionKey, Value = precision == OnnxPrecision.Float16 ? "float16" : "int8" });
        }

        /// <summary>The graph's image input and the network's output (where post-processing begins).</summary>
        private static (string Input, string NetworkOutput) Boundary(ModelProto model)
        {
            string networkOutput = model.MetadataProps.FirstOrDefault(p => p.Key == NetworkOutputKey)?.Value
                ?? throw new ArgumentException($"The graph does not record its network output (metadata '{NetworkOutputKey}'); export it again with this version of ResidualML.");
            string input = model.Graph.Input.Count == 1 ? model.Graph.Input[0].Name
                : throw new ArgumentException($"The graph has {model.Graph.Input.Count} inputs; conversion expects one image input.");
            return (input, networkOutput);
        }

        /// <summary>Checks calibration settings, naming the one that is wrong.</summary>
        internal static void CheckCalibration(OnnxCalibration calibration)
        {
            if (!Enum.IsDefined(calibration.Method)) throw new ArgumentException($"OnnxCalibration.Method = {calibration.Method} is not a calibration method.");
            if (!(calibration.Percentile >= 50 && calibration.Percentile <= 100))
                throw new ArgumentException($"OnnxCalibration.Percentile = {calibration.Percentile}; give a share of values in percent, between 50 and 100 (e.g. 99.999).");
            if (calibration.BatchSize < 1) throw new ArgumentException($"OnnxCalibration.BatchSize = {calibration.BatchSize}; it must be at least 1.");
        }

        /// <summary>The rows (C·H·W floats each) of an N×C×H×W tensor.</summary>
        internal static List<float[]> Rows(Tensor images)
        {
            if (images.dim() < 2) throw new ArgumentException("CalibrationImages must be N×C×H×W.");
            using Tensor flat = images.detach().cpu().to_type(ScalarType.Float32).reshape(images.shape[0], -1);
            float[] all = flat.data<float>().ToArray();
            int length = (int)flat.shape[1];
            return Enumerable.Range(0, (int)flat.shape[0]).Select(r => all.AsSpan(r * length, length).ToArray()).ToList();
        }

        private static ModelProto Parse(byte[] model)
        {
            ArgumentNullException.ThrowIfNull(model);
            try
            {
                ModelProto proto = ModelProto.Parser.ParseFrom(model);
                return proto.Graph is null ? throw new ArgumentException("The ONNX model has no graph.", nameof(model)) : proto;
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new ArgumentException($"The bytes are not an ONNX model ({e.Message}).", nameof(model), e);
            }
        }
    }
}
