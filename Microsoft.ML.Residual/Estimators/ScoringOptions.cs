using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Onnx;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// How a trained network becomes the saved model's scoring graph: BatchNorm folding, test-time augmentation and precision.
    /// Inputs, outputs and their columns stay the same whatever is chosen. Set on the estimators' options
    /// (<see cref="ImageTrainerOptions.Scoring"/>) or given to <c>ml.Model.SaveForScoring</c> for a model already saved.
    /// </summary>
    public sealed class ScoringOptions
    {
        /// <summary>
        /// Fold each BatchNorm into the convolution before it (equal within float rounding, fewer nodes). Default true. The graph's
        /// metadata keeps what folding changed, so <c>ResumeFromModelPath</c> and <c>OnnxWeights</c> read the trained weights back.
        /// </summary>
        public bool FoldBatchNorm { get; set; } = true;

        /// <summary>What the network computes in: float32 (default), float16 (half the file) or INT8 (about a quarter, faster on CPUs).</summary>
        public OnnxPrecision Precision { get; set; }

        /// <summary>Views of each image whose logits are averaged inside the graph (default none); see <see cref="Onnx.TestTimeAugmentation"/>.</summary>
        public TestTimeAugmentation TestTimeAugmentation { get; set; }

        /// <summary>With <see cref="OnnxPrecision.Int8"/>: rows whose images calibrate the activation ranges (null: the training data, or for
        /// <c>SaveForScoring</c> none, which INT8 refuses).</summary>
        public IDataView? CalibrationSet { get; set; }

        /// <summary>With <see cref="OnnxPrecision.Int8"/>: how many images calibrate, spread evenly over the calibration rows. Default 256.</summary>
        public int CalibrationRows { get; set; } = 256;

        /// <summary>With <see cref="OnnxPrecision.Int8"/>: how each activation's range is chosen from the calibration images.</summary>
        public OnnxCalibration Calibration { get; set; } = new();

        /// <summary>Checks every setting; the message names <paramref name="owner"/> (e.g. "ImageClassifierOptions.Scoring") and the setting.</summary>
        internal void Check(string owner)
        {
            void Check(bool valid, string setting, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"{owner}.{setting} = {value}: {rule}.", "options");
            }

            Check(Enum.IsDefined(Precision), nameof(Precision), Precision, "choose Float32, Float16 or Int8");
            Check(Enum.IsDefined(TestTimeAugmentation), nameof(TestTimeAugmentation), TestTimeAugmentation, "choose None, Flip or FlipAndCrops");
            Check(CalibrationRows >= 1, nameof(CalibrationRows), CalibrationRows, "calibrate on at least one image (a few hundred is typical)");
            Check(Calibration is not null, nameof(Calibration), "null", "give calibration settings (new OnnxCalibration() for the defaults)");
            try
            {
                OnnxModelConverter.CheckCalibration(Calibration!);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{owner}.{nameof(Calibration)}: {e.Message}", "options", e);
            }
        }

        /// <summary>
        /// The scoring graph of the float32 graph <paramref name="onnx"/>. INT8 calibrates on <see cref="CalibrationRows"/> rows spread
        /// evenly over <paramref name="calibrationRows"/> (the caller's choice: <see cref="CalibrationSet"/> or the training data), made
        /// pixels by <paramref name="pixelTransform"/> as scoring makes them.
        /// </summary>
        internal byte[] Apply(byte[] onnx, IDataView? calibrationRows, ITransformer? pixelTransform, string pixelColumn)
        {
            List<float[]>? images = null;
            if (Precision == OnnxPrecision.Int8)
            {
                if (calibrationRows is null)
                    throw new ArgumentException("INT8 calibrates on example images: set ScoringOptions.CalibrationSet to rows the model scores (e.g. the training data).", "options");
                try
                {
                    images = PixelRows(calibrationRows, pixelTransform, pixelColumn, CalibrationRows);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or KeyNotFoundException)
                {
                    throw new ArgumentException($"The calibration rows (ScoringOptions.CalibrationSet, or the training data) cannot be read as the model's input is ({e.Message}); give rows with the same image column.", "options", e);
                }

                if (images.Count == 0) throw new ArgumentException("ScoringOptions.CalibrationSet has no rows; give at least one image to calibrate INT8 on (a few hundred is typical).", "options");
            }

            return OnnxModelConverter.ForScoring(onnx, FoldBatchNorm, TestTimeAugmentation, Precision, images, Calibration);
        }

        /// <summary>Up to <paramref name="count"/> pixel vectors spread evenly over <paramref name="rows"/> (only those rows' images are read).</summary>
        internal static List<float[]> PixelRows(IDataView rows, ITransformer? pixelTransform, string pixelColumn, int count)
        {
            IDataView pixels = pixelTransform?.Transform(rows) ?? rows;
            long total = rows.GetRowCount() ?? CountRows(rows);
            long stride = Math.Max(1, total / count);
            var result = new List<float[]>();
            DataViewSchema.Column column = pixels.Schema[pixelColumn];
            using DataViewRowCursor cursor = pixels.GetRowCursor(new[] { column });
            ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            for (long row = 0; result.Count < count && cursor.MoveNext(); row++)
            {
                if (row % stride != 0) continue;
                getter(ref buffer);
                result.Add(buffer.DenseValues().ToArray());
            }

            return result;
        }

        private static long CountRows(IDataView rows)
        {
            long total = 0;
            using DataViewRowCursor cursor = rows.GetRowCursor(Array.Empty<DataViewSchema.Column>());
            while (cursor.MoveNext()) total++;
            return total;
        }
    }
}
