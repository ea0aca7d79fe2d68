namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>The numbers an exported graph computes with. Inputs and outputs are float32 in every case.</summary>
    public enum OnnxPrecision
    {
        /// <summary>Single precision throughout (the default).</summary>
        Float32,

        /// <summary>Half-precision weights and computation inside the network: half the file; fast where the hardware computes in float16 (GPUs).</summary>
        Float16,

        /// <summary>
        /// 8-bit integers (static quantisation in ONNX's QuantizeLinear/DequantizeLinear form): weights int8 per output channel,
        /// activations uint8 with ranges calibrated on example images. About a quarter of the file and faster on CPUs.
        /// </summary>
        Int8,
    }

    /// <summary>How INT8 quantisation chooses each activation's range from the calibration images.</summary>
    public enum CalibrationMethod
    {
        /// <summary>The smallest and largest value seen: nothing is clipped, but one outlier coarsens every step.</summary>
        MinMax,

        /// <summary>The values at <see cref="OnnxCalibration.Percentile"/> and its complement: rare outliers are clipped, the rest resolved finer.</summary>
        Percentile,
    }

    /// <summary>Calibration settings of INT8 quantisation.</summary>
    public sealed class OnnxCalibration
    {
        /// <summary>How each activation's range is chosen. Default <see cref="CalibrationMethod.Percentile"/>.</summary>
        public CalibrationMethod Method { get; set; } = CalibrationMethod.Percentile;

        /// <summary>With <see cref="CalibrationMethod.Percentile"/>: the share of values (in percent, 50–100) inside the range. Default 99.999.</summary>
        public double Percentile { get; set; } = 99.999;

        /// <summary>Images run through the float graph at once while calibrating. Default 16.</summary>
        public int BatchSize { get; set; } = 16;
    }
}
