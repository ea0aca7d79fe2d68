namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// A policy of photometric and geometric operations applied per training image by <see cref="ImageAugmentation"/>
    /// (see <see cref="ImageAugmentation.Policy"/>).
    /// </summary>
    public enum AugmentationPolicy
    {
        /// <summary>No policy: only the crops and the flip of <see cref="ImageAugmentation"/>.</summary>
        None,

        /// <summary>
        /// TrivialAugment in its wide search space (Müller &amp; Hutter 2021; torchvision's <c>TrivialAugmentWide</c>):
        /// per image one operation is drawn uniformly from the 14 below and one strength uniformly from 31 bins
        /// k = 0…30 (level k/30); the signed operations take the negative value with probability 1/2.
        /// <list type="bullet">
        /// <item><description>Identity.</description></item>
        /// <item><description>ShearX, ShearY: shear factor up to ±0.99 (about the top-left corner).</description></item>
        /// <item><description>TranslateX, TranslateY: up to ±<see cref="ImageAugmentation.PolicyMaxTranslateFraction"/> of the
        /// width/height, whole pixels (default 32/224: torchvision's 32 pixels at 224, 4 pixels at 32).</description></item>
        /// <item><description>Rotate: up to ±135° about the image centre.</description></item>
        /// <item><description>Brightness, Color (saturation), Contrast, Sharpness: enhancement factor 1 ± 0.99, i.e. a blend with
        /// a black image, the grayscale image, the mean gray level or the 3×3-smoothed image (PIL's ImageEnhance), clamped to 0–255.
        /// Color is the identity unless the image has 3 channels.</description></item>
        /// <item><description>Posterize: keep the top 8 → 2 bits of each value.</description></item>
        /// <item><description>Solarize: invert (255 − v) the values at or above a threshold 255 → 0.</description></item>
        /// <item><description>AutoContrast: stretch each channel's min…max to 0…255.</description></item>
        /// <item><description>Equalize: histogram equalisation of each channel (PIL's ImageOps.equalize).</description></item>
        /// </list>
        /// Geometric operations sample the nearest pixel and fill 0 outside the image. The policy expects pixel values in 0–255.
        /// </summary>
        TrivialAugmentWide,
    }
}
