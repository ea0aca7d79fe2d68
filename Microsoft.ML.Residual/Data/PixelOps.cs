using System;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>Managed pixel arithmetic on C×H×W float images (no tensors: it runs on the decoding thread).</summary>
    internal static class PixelOps
    {
        /// <summary>
        /// Writes <paramref name="image"/> as 3×<paramref name="height"/>×<paramref name="width"/> R,G,B floats in
        /// 0–255 into <paramref name="destination"/>, resizing bilinearly when its size differs. Alpha is dropped.
        /// </summary>
        public static void ImageToChw(MLImage image, float[] destination, int height, int width)
        {
            int w = image.Width, h = image.Height;
            bool bgra = image.PixelFormat switch
            {
                MLPixelFormat.Bgra32 => true,
                MLPixelFormat.Rgba32 => false,
                var other => throw new InvalidOperationException($"unsupported pixel format {other}"),
            };
            ReadOnlySpan<byte> pixels = image.Pixels;
            int stride = pixels.Length / h;
            bool sameSize = w == width && h == height;
            float[] full = sameSize ? destination : new float[3 * h * w];
            int plane = h * w;
            int r = bgra ? 2 : 0, b = bgra ? 0 : 2;
            for (int y = 0; y < h; y++)
            {
                ReadOnlySpan<byte> row = pixels.Slice(y * stride, 4 * w);
                int o = y * w;
                for (int x = 0; x < w; x++)
                {
                    full[o + x] = row[4 * x + r];
                    full[plane + o + x] = row[4 * x + 1];
                    full[2 * plane + o + x] = row[4 * x + b];
                }
            }

            if (!sameSize) Bilinear(full, 3, h, w, 0, 0, h, w, destination, height, width);
        }

        /// <summary>
        /// Bilinear resampling of the box (<paramref name="top"/>, <paramref name="left"/>, <paramref name="boxHeight"/>,
        /// <paramref name="boxWidth"/>) of a C×<paramref name="sourceHeight"/>×<paramref name="sourceWidth"/> image to
        /// C×<paramref name="height"/>×<paramref name="width"/>. Pixel centres are aligned (half-pixel convention,
        /// PyTorch's <c>align_corners=False</c> without antialiasing); samples are clamped to the box.
        /// </summary>
        public static void Bilinear(float[] source, int channels, int sourceHeight, int sourceWidth,
            int top, int left, int boxHeight, int boxWidth, Span<float> destination, int height, int width)
        {
            var x0 = new int[width];
            var x1 = new int[width];
            var fx = new float[width];
            double scaleX = (double)boxWidth / width, scaleY = (double)boxHeight / height;
            for (int x = 0; x < width; x++)
                Coordinate(x, scaleX, boxWidth, out x0[x], out x1[x], out fx[x]);

            int sourcePlane = sourceHeight * sourceWidth, plane = height * width;
            for (int y = 0; y < height; y++)
            {
                Coordinate(y, scaleY, boxHeight, out int y0, out int y1, out float fy);
                int row0 = (top + y0) * sourceWidth + left, row1 = (top + y1) * sourceWidth + left;
                for (int c = 0; c < channels; c++)
                {
                    int s = c * sourcePlane, d = c * plane + y * width;
                    for (int x = 0; x < width; x++)
                    {
                        float a = source[s + row0 + x0[x]], b = source[s + row0 + x1[x]];
                        float e = source[s + row1 + x0[x]], f = source[s + row1 + x1[x]];
                        float upper = a + (b - a) * fx[x], lower = e + (f - e) * fx[x];
                        destination[d + x] = upper + (lower - upper) * fy;
                    }
                }
            }
        }

        private static void Coordinate(int output, double scale, int size, out int i0, out int i1, out float fraction)
        {
            double s = (output + 0.5) * scale - 0.5;
            if (s < 0) s = 0;
            i0 = Math.Min((int)s, size - 1);
            i1 = Math.Min(i0 + 1, size - 1);
            fraction = (float)(s - i0);
            if (i0 == i1) fraction = 0;
        }

        /// <summary>
        /// Writes an augmented copy of the C×H×W image <paramref name="source"/> into <paramref name="destination"/>
        /// (same size), drawing from <paramref name="random"/>: random-resized-crop, padded crop, policy, flip. An H×W
        /// <paramref name="mask"/> moves with the image (nearest neighbour; −1 where the padded crop reads zero padding).
        /// </summary>
        /// <returns>The moved mask (<paramref name="mask"/> itself when nothing moved it, never changed in place), or null without one.</returns>
        /// <exception cref="InvalidOperationException">A mask is given with a policy, which would move pixels without it.</exception>
        public static int[]? Augment(float[] source, Span<float> destination, int channels, int height, int width,
            ImageAugmentation augmentation, Random random, int[]? mask = null)
        {
            if (mask is not null && augmentation.Policy != AugmentationPolicy.None)
                throw new InvalidOperationException($"Augmentation policy {augmentation.Policy} moves pixels without the mask; augment masked images with flips and crops only.");
            float[] current = source;
            if (augmentation.RandomResizedCropScale is var (min, max))
            {
                var (top, left, boxHeight, boxWidth) = RandomResizedCropBox(height, width, min, max, augmentation.RandomResizedCropRatio, random);
                var resized = new float[current.Length];
                Bilinear(current, channels, height, width, top, left, boxHeight, boxWidth, resized, height, width);
                current = resized;
                mask = Move(mask, height, width, (y, h) => top + MaskColumn.NearestSource(y, h, boxHeight), (x, w) => left + MaskColumn.NearestSource(x, w, boxWidth));
            }

            if (augmentation.CropPadding > 0)
            {
                int pad = augmentation.CropPadding;
                int dy = random.Next(2 * pad + 1) - pad, dx = random.Next(2 * pad + 1) - pad;
                var cropped = new float[current.Length];
                PaddingMode mode = augmentation.CropPaddingMode;
                PaddedShift(current, cropped, channels, height, width, dy, dx, mode);
                current = cropped;
                mask = Move(mask, height, width, (y, h) => PaddedSource(y + dy, h, mode), (x, w) => PaddedSource(x + dx, w, mode));
            }

            if (augmentation.Policy == AugmentationPolicy.TrivialAugmentWide)
            {
                // The policy works in place; never on the caller's (possibly cached) source pixels.
                if (ReferenceEquals(current, source)) current = (float[])source.Clone();
                TrivialAugmentOps.ApplyRandom(current, channels, height, width, augmentation.PolicyMaxTranslateFraction, random);
            }

            bool flip = augmentation.HorizontalFlipProbability > 0 && random.NextDouble() < augmentation.HorizontalFlipProbability;
            int rows = channels * height;
            for (int r = 0; r < rows; r++)
            {
                var from = current.AsSpan(r * width, width);
                var to = destination.Slice(r * width, width);
                if (flip)
                    for (int x = 0; x < width; x++) to[x] = from[width - 1 - x];
                else
                    from.CopyTo(to);
            }

            return flip ? Move(mask, height, width, (y, _) => y, (x, w) => w - 1 - x) : mask;
        }

        // A new H×W mask whose pixel (y, x) is mask pixel (row(y, H), column(x, W)), or −1 (ignored) where either is −1; null stays null.
        private static int[]? Move(int[]? mask, int height, int width, Func<int, int, int> row, Func<int, int, int> column)
        {
            if (mask is null) return null;
            var moved = new int[height * width];
            for (int y = 0; y < height; y++)
            {
                int sy = row(y, height);
                for (int x = 0; x < width; x++)
                {
                    int sx = column(x, width);
                    moved[y * width + x] = sy < 0 || sx < 0 ? -1 : mask[sy * width + sx];
                }
            }

            return moved;
        }

        /// <summary>
        /// Output pixel (y, x) = padded input pixel (y + <paramref name="dy"/>, x + <paramref name="dx"/>): the
        /// H×W window at offset (pad + dy, pad + dx) of the image padded by pad on every side.
        /// </summary>
        internal static void PaddedShift(float[] source, float[] destination, int channels, int height, int width, int dy, int dx, PaddingMode mode)
        {
            int plane = height * width;
            for (int y = 0; y < height; y++)
            {
                int sy = PaddedSource(y + dy, height, mode);
                for (int x = 0; x < width; x++)
                {
                    int sx = PaddedSource(x + dx, width, mode);
                    for (int c = 0; c < channels; c++)
                        destination[c * plane + y * width + x] = sy < 0 || sx < 0 ? 0f : source[c * plane + sy * width + sx];
                }
            }
        }

        /// <summary>The source index of padded position <paramref name="i"/>: itself inside, its mirror for reflect padding, −1 for zero padding.</summary>
        internal static int PaddedSource(int i, int size, PaddingMode mode)
        {
            if (i >= 0 && i < size) return i;
            if (mode == PaddingMode.Zero) return -1;
            return i < 0 ? -i : 2 * (size - 1) - i;
        }

        /// <summary>A random box of area fraction in [min, max] and log-uniform aspect ratio; a centred box when ten draws miss.</summary>
        internal static (int Top, int Left, int Height, int Width) RandomResizedCropBox(int height, int width,
            double minScale, double maxScale, (double Min, double Max) ratio, Random random)
        {
            double area = (double)height * width;
            double logMin = Math.Log(ratio.Min), logMax = Math.Log(ratio.Max);
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double target = area * (minScale + (maxScale - minScale) * random.NextDouble());
                double aspect = Math.Exp(logMin + (logMax - logMin) * random.NextDouble());
                int w = (int)Math.Round(Math.Sqrt(target * aspect));
                int h = (int)Math.Round(Math.Sqrt(target / aspect));
                if (w > 0 && h > 0 && w <= width && h <= height)
                    return (random.Next(height - h + 1), random.Next(width - w + 1), h, w);
            }

            // Fallback: the largest centred box whose ratio lies in the range.
            double imageRatio = (double)width / height;
            int boxWidth = width, boxHeight = height;
            if (imageRatio < ratio.Min) boxHeight = Math.Max(1, (int)Math.Round(width / ratio.Min));
            else if (imageRatio > ratio.Max) boxWidth = Math.Max(1, (int)Math.Round(height * ratio.Max));
            return ((height - boxHeight) / 2, (width - boxWidth) / 2, boxHeight, boxWidth);
        }
    }
}
