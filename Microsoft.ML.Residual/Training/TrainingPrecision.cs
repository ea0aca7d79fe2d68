namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// The number format of the library's networks' convolutions and matrix products during training and validation.
    /// Weights, normalisation, losses and the optimiser stay in float32, and the exported ONNX graph is float32 whatever
    /// the choice (docs/training.md, "Mixed precision").
    /// </summary>
    public enum TrainingPrecision
    {
        /// <summary>Everything in float32 (the default).</summary>
        Float32,

        /// <summary>
        /// Convolutions and matrix products in bfloat16 (float32's range, 8 bits of mantissa): no loss scaling is needed.
        /// The usual choice on GPUs that have it (NVIDIA Ampere and later) and on CPUs with AVX-512 BF16 or AMX.
        /// </summary>
        BFloat16,

        /// <summary>
        /// Convolutions and matrix products in float16 (11 bits of mantissa, at most 65,504) with dynamic loss scaling:
        /// the loss is multiplied by a scale before the backward pass, a step whose gradients overflow is skipped and the
        /// scale halved, and the scale doubles after 2,000 steps without overflow. Checking for overflow reads one value
        /// on the host per step.
        /// </summary>
        Float16,
    }
}
