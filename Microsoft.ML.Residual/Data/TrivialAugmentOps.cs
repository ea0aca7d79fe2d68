using System;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>The operations of <see cref="AugmentationPolicy.TrivialAugmentWide"/>, in the order they are drawn.</summary>
    internal enum TrivialAugmentOp
    {
        Identity,
        ShearX,
        ShearY,
        TranslateX,
        TranslateY,
        Rotate,
        Brightness,
        Color,
        Contrast,
        Sharpness,
        Posterize,
        Solarize,
        AutoContrast,
        Equalize,
    }

    /// <summary>
    /// TrivialAugment (wide search space) on managed C×H×W float images with values 0–255, in place. Each operation
    /// allocates at most one image-sized scratch array. Pixel coordinates: pixel (x, y) covers [x, x+1)×[y, y+1), so
    /// its centre is (x + ½, y + ½); geometric operations map each output centre back to the input and take the pixel
    /// it falls in (nearest), 0 outside.
    /// </summary>
    internal static class TrivialAugmentOps
    {
        /// <summary>Number of magnitude bins (0…30).</summary>
        public const int Bins = 31;

        /// <summary>Number of operations.</summary>
        public const int OperationCount = 14;

        public const double MaxShear = 0.99;
        public const double MaxRotationDegrees = 135;
        public const double MaxEnhance = 0.99;

        /// <summary>
        /// Draws an operation, a magnitude bin and a sign (always these three draws, so the stream of
        /// <paramref name="random"/> advances the same way for every operation) and applies it to <paramref name="image"/>.
        /// </summary>
        public static void ApplyRandom(float[] image, int channels, int height, int width, double maxTranslateFraction, Random random)
        {
            var op = (TrivialAugmentOp)random.Next(OperationCount);
            int bin = random.Next(Bins);
            bool negative = random.Next(2) == 1;
            Apply(image, channels, height, width, op, bin, negative, maxTranslateFraction);
        }

        /// <summary>Applies <paramref name="op"/> at magnitude bin <paramref name="bin"/> (0…30), negated for signed operations when <paramref name="negative"/>.</summary>
        public static void Apply(float[] image, int channels, int height, int width, TrivialAugmentOp op, int bin, bool negative, double maxTranslateFraction)
        {
            if (bin < 0 || bin >= Bins) throw new ArgumentOutOfRangeException(nameof(bin), bin, $"bin must be in [0, {Bins - 1}].");
            double level = (double)bin / (Bins - 1);
            double sign = negative ? -1 : 1;
            switch (op)
            {
                case TrivialAugmentOp.Identity:
                    break;
                case TrivialAugmentOp.ShearX:
                    ShearX(image, channels, height, width, sign * MaxShear * level);
                    break;
                case TrivialAugmentOp.ShearY:
                    ShearY(image, channels, height, width, sign * MaxShear * level);
                    break;
                case TrivialAugmentOp.TranslateX:
                    Translate(image, channels, height, width, (int)sign * TranslationPixels(width, maxTranslateFraction, level), 0);
                    break;
                case TrivialAugmentOp.TranslateY:
                    Translate(image, channels, height, width, 0, (int)sign * TranslationPixels(height, maxTranslateFraction, level));
                    break;
                case TrivialAugmentOp.Rotate:
                    Rotate(image, channels, height, width, sign * MaxRotationDegrees * level);
                    break;
                case TrivialAugmentOp.Brightness:
                    Brightness(image, (float)(1 + sign * MaxEnhance * level));
                    break;
                case TrivialAugmentOp.Color:
                    Color(image, channels, height, width, (float)(1 + sign * MaxEnhance * level));
                    break;
                case TrivialAugmentOp.Contrast:
                    Contrast(image, channels, height, width, (float)(1 + sign * MaxEnhance * level));
                    break;
                case TrivialAugmentOp.Sharpness:
                    Sharpness(image, channels, height, width, (float)(1 + sign * MaxEnhance * level));
                    break;
                case TrivialAugmentOp.Posterize:
                    Posterize(image, PosterizeBits(bin));
                    break;
                case TrivialAugmentOp.Solarize:
                    Solarize(image, (float)(255 * (1 - level)));
                    break;
                case TrivialAugmentOp.AutoContrast:
                    AutoContrast(image, channels, height, width);
                    break;
                case TrivialAugmentOp.Equalize:
                    Equalize(image, channels, height, width);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(op), op, "unknown TrivialAugment operation");
            }
        }

        /// <summary>Whole pixels of a translation at <paramref name="level"/> (0…1): truncated, as torchvision truncates its 0…32 range.</summary>
        internal static int TranslationPixels(int size, double maxFraction, double level) => (int)(size * maxFraction * level + 1e-9);

        /// <summary>Bits kept by Posterize at a bin: 8 at bin 0 down to 2 at bin 30 (one bit per five bins, rounded).</summary>
        internal static int PosterizeBits(int bin) => 8 - (int)Math.Round(bin / 5.0);

        // ---- geometric -------------------------------------------------------------------------------------------

        /// <summary>Output (x, y) takes input (x + <paramref name="shear"/>·y, y): a shear about the top-left corner.</summary>
        internal static void ShearX(float[] image, int channels, int height, int width, double shear) =>
            Affine(image, channels, height, width, 1, shear, 0, 0, 1, 0);

        /// <summary>Output (x, y) takes input (x, y + <paramref name="shear"/>·x).</summary>
        internal static void ShearY(float[] image, int channels, int height, int width, double shear) =>
            Affine(image, channels, height, width, 1, 0, 0, shear, 1, 0);

        /// <summary>Moves the content by (<paramref name="dx"/>, <paramref name="dy"/>) pixels (right, down); 0 fills the uncovered part.</summary>
        internal static void Translate(float[] image, int channels, int height, int width, int dx, int dy) =>
            Affine(image, channels, height, width, 1, 0, -dx, 0, 1, -dy);

        /// <summary>Rotates the content counter-clockwise (as seen on screen) by <paramref name="degrees"/> about the image centre.</summary>
        internal static void Rotate(float[] image, int channels, int height, int width, double degrees)
        {
            double radians = degrees * Math.PI / 180, cos = Math.Cos(radians), sin = Math.Sin(radians);
            double cx = width / 2.0, cy = height / 2.0;
            // Inverse map about the centre: input = centre + R(−θ in screen terms) · (output − centre).
            Affine(image, channels, height, width,
                cos, -sin, cx - cos * cx + sin * cy,
                sin, cos, cy - sin * cx - cos * cy);
        }

        /// <summary>
        /// Output pixel (x, y) takes the input pixel containing (a·X + b·Y + c, d·X + e·Y + f) with (X, Y) = (x + ½, y + ½)
        /// its centre; 0 where that point lies outside the image.
        /// </summary>
        private static void Affine(float[] image, int channels, int height, int width, double a, double b, double c, double d, double e, double f)
        {
            var source = (float[])image.Clone();
            int plane = height * width;
            for (int y = 0; y < height; y++)
            {
                double cy = y + 0.5;
                for (int x = 0; x < width; x++)
                {
                    double cx = x + 0.5;
                    double sx = Math.Floor(a * cx + b * cy + c), sy = Math.Floor(d * cx + e * cy + f);
                    bool inside = sx >= 0 && sx < width && sy >= 0 && sy < height;
                    int from = inside ? (int)sy * width + (int)sx : 0, to = y * width + x;
                    for (int ch = 0; ch < channels; ch++)
                        image[ch * plane + to] = inside ? source[ch * plane + from] : 0f;
                }
            }
        }

        // ---- enhancements (PIL's ImageEnhance: blend with a degenerate image, clamped) ---------------------------------

        /// <summary>Blend with black: v·<paramref name="factor"/>.</summary>
        internal static void Brightness(float[] image, float factor)
        {
            for (int i = 0; i < image.Length; i++) image[i] = Clamp(image[i] * factor);
        }

        /// <summary>Blend with the grayscale image (saturation); the identity unless there are 3 channels.</summary>
        internal static void Color(float[] image, int channels, int height, int width, float factor)
        {
            if (channels != 3) return;
            int plane = height * width;
            for (int i = 0; i < plane; i++)
            {
                float gray = Gray(image, channels, plane, i);
                for (int c = 0; c < channels; c++)
                    image[c * plane + i] = Blend(gray, image[c * plane + i], factor);
            }
        }

        /// <summary>Blend with a uniform image at the mean gray level.</summary>
        internal static void Contrast(float[] image, int channels, int height, int width, float factor)
        {
            int plane = height * width;
            double sum = 0;
            for (int i = 0; i < plane; i++) sum += Gray(image, channels, plane, i);
            float mean = (float)(sum / plane);
            for (int i = 0; i < image.Length; i++) image[i] = Blend(mean, image[i], factor);
        }

        /// <summary>
        /// Blend with the image smoothed by the 3×3 kernel [1 1 1; 1 5 1; 1 1 1]/13 (PIL's SMOOTH filter); the border
        /// pixels of the smoothed image are the original ones, so the border stays unchanged. Images under 3×3: identity.
        /// </summary>
        internal static void Sharpness(float[] image, int channels, int height, int width, float factor)
        {
            if (height < 3 || width < 3) return;
            var original = (float[])image.Clone();
            int plane = height * width;
            for (int c = 0; c < channels; c++)
            {
                int p = c * plane;
                for (int y = 1; y < height - 1; y++)
                    for (int x = 1; x < width - 1; x++)
                    {
                        int i = p + y * width + x;
                        float sum = 4 * original[i];
                        for (int oy = -1; oy <= 1; oy++)
                            for (int ox = -1; ox <= 1; ox++)
                                sum += original[i + oy * width + ox];
                        image[i] = Blend(sum / 13f, original[i], factor);
                    }
            }
        }

        /// <summary>Grayscale value of pixel <paramref name="i"/>: ITU-R 601 luma (PIL's "L") for 3 channels, otherwise the mean of the channels.</summary>
        private static float Gray(float[] image, int channels, int plane, int i)
        {
            if (channels == 3) return 0.299f * image[i] + 0.587f * image[plane + i] + 0.114f * image[2 * plane + i];
            float sum = 0;
            for (int c = 0; c < channels; c++) sum += image[c * plane + i];
            return sum / channels;
        }

        /// <summary>factor·value + (1 − factor)·degenerate, clamped: exactly the value at factor 1 and the degenerate value at 0.</summary>
        private static float Blend(float degenerate, float value, float factor) => Clamp(factor * value + (1 - factor) * degenerate);

        private static float Clamp(float v) => v < 0 ? 0 : v > 255 ? 255 : v;

        // ---- value operations (PIL's ImageOps) ----------------------------------------------------------------------

        /// <summary>Rounds each value to an integer 0–255 and keeps its top <paramref name="bits"/> bits (1…8).</summary>
        internal static void Posterize(float[] image, int bits)
        {
            int mask = (0xFF << (8 - bits)) & 0xFF;
            for (int i = 0; i < image.Length; i++) image[i] = ToByte(image[i]) & mask;
        }

        /// <summary>Values at or above <paramref name="threshold"/> become 255 − v (on floats; the same as PIL's table on integers).</summary>
        internal static void Solarize(float[] image, float threshold)
        {
            for (int i = 0; i < image.Length; i++)
                if (image[i] >= threshold) image[i] = 255 - image[i];
        }

        /// <summary>Maps each channel's min…max linearly onto 0…255 (a constant channel stays as it is). On floats, not truncated.</summary>
        internal static void AutoContrast(float[] image, int channels, int height, int width)
        {
            int plane = height * width;
            for (int c = 0; c < channels; c++)
            {
                var channel = image.AsSpan(c * plane, plane);
                float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
                foreach (float v in channel)
                {
                    if (v < lo) lo = v;
                    if (v > hi) hi = v;
                }

                if (!(hi > lo)) continue;
                float range = hi - lo;
                for (int i = 0; i < channel.Length; i++) channel[i] = Clamp((channel[i] - lo) * 255f / range);
            }
        }

        /// <summary>
        /// Histogram equalisation of each channel on values rounded to integers 0–255, with PIL's table: with h the
        /// histogram and L the count of the highest value present, step = ⌊(N − L)/255⌋ and value i maps to
        /// min(255, ⌊(⌊step/2⌋ + Σ_{j&lt;i} h[j]) / step⌋); a channel with one value or step 0 is only rounded.
        /// </summary>
        internal static void Equalize(float[] image, int channels, int height, int width)
        {
            int plane = height * width;
            Span<int> histogram = stackalloc int[256];
            Span<int> table = stackalloc int[256];
            for (int c = 0; c < channels; c++)
            {
                var channel = image.AsSpan(c * plane, plane);
                histogram.Clear();
                foreach (float v in channel) histogram[ToByte(v)]++;

                int highest = 255;
                while (histogram[highest] == 0) highest--;
                int step = (plane - histogram[highest]) / 255;
                for (int i = 0; i < 256; i++) table[i] = i;
                if (step > 0)
                {
                    int cumulative = step / 2;
                    for (int i = 0; i < 256; i++)
                    {
                        table[i] = Math.Min(255, cumulative / step);
                        cumulative += histogram[i];
                    }
                }

                for (int i = 0; i < channel.Length; i++) channel[i] = table[ToByte(channel[i])];
            }
        }

        private static int ToByte(float v) => v <= 0 || float.IsNaN(v) ? 0 : v >= 255 ? 255 : (int)MathF.Round(v);
    }
}
