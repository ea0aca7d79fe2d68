using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.Residual.Models;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Mixup and CutMix for one epoch: blends each batch with a permutation of itself. All draws (which method,
    /// λ, the permutation, the box) come from a generator seeded by the run's seed and the epoch, so an epoch —
    /// and a resumed run — repeats exactly on the CPU.
    /// </summary>
    internal sealed class BatchMixing
    {
        private readonly double mixupAlpha;
        private readonly double cutMixAlpha;
        private readonly Random random;

        private BatchMixing(double mixupAlpha, double cutMixAlpha, Random random)
        {
            this.mixupAlpha = mixupAlpha;
            this.cutMixAlpha = cutMixAlpha;
            this.random = random;
        }

        /// <summary>
        /// A blended batch: the images, the labels of the images blended in, and the weight λ of the original labels. For
        /// CutMix on per-pixel labels (N×H×W masks), <c>OtherLabels</c> is the mixed mask and λ is 0: it is the one target.
        /// </summary>
        public sealed record Mixed(Tensor Images, Tensor OtherLabels, double Lambda);

        /// <summary>The mixing of <paramref name="epoch"/>, or null when both methods are off.</summary>
        public static BatchMixing? Create(TrainingOptions options, int epoch)
        {
            if (options.MixupAlpha <= 0 && options.CutMixAlpha <= 0) return null;
            long seed = options.Seed ?? 0;
            return new BatchMixing(options.MixupAlpha, options.CutMixAlpha, new Random(unchecked((int)(seed * 1_000_003 + epoch * 7_919 + 17))));
        }

        /// <summary>Blends the batch <paramref name="images"/> (N×C×H×W) with labels <paramref name="labels"/>; null for a batch of one.</summary>
        public Mixed? Mix(Tensor images, Tensor labels)
        {
            long n = images.shape[0];
            if (n < 2) return null;
            bool cutMix = cutMixAlpha > 0 && (mixupAlpha <= 0 || random.NextDouble() < 0.5);
            double lambda = SampleBeta(cutMix ? cutMixAlpha : mixupAlpha, random);
            long[] order = Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray();
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = random.Next(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }

            using Tensor permutation = tensor(order, device: images.device);
            Tensor other = images.index_select(0, permutation);
            Tensor otherLabels = labels.index_select(0, permutation);
            if (!cutMix) return new Mixed(images.Times(lambda).Plus(other.Times(1 - lambda)), otherLabels, lambda);

            long height = images.shape[2], width = images.shape[3];
            var (top, left, boxHeight, boxWidth) = CutMixBox(height, width, lambda, random);
            Tensor mixed = images.clone();
            if (boxHeight > 0 && boxWidth > 0)
            {
                using Tensor patch = other.narrow(2, top, boxHeight).narrow(3, left, boxWidth);
                using Tensor target = mixed.narrow(2, top, boxHeight).narrow(3, left, boxWidth);
                using (no_grad()) target.copy_(patch);
            }

            // Per-pixel targets (N×H×W masks) get the same box: the mixed mask is the one target, so λ = 0 weighs it alone.
            if (labels.dim() == 3)
            {
                Tensor mixedLabels = labels.clone();
                if (boxHeight > 0 && boxWidth > 0)
                {
                    using Tensor patch = otherLabels.narrow(1, top, boxHeight).narrow(2, left, boxWidth);
                    using Tensor target = mixedLabels.narrow(1, top, boxHeight).narrow(2, left, boxWidth);
                    target.copy_(patch);
                }

                return new Mixed(mixed, mixedLabels, 0);
            }

            // λ is the share of the image that stayed, after the box was clipped to the image.
            double kept = 1.0 - (double)(boxHeight * boxWidth) / (height * width);
            return new Mixed(mixed, otherLabels, kept);
        }

        /// <summary>A box of about (1 − λ)·H·W pixels centred at a uniform random pixel, clipped to the image.</summary>
        internal static (long Top, long Left, long Height, long Width) CutMixBox(long height, long width, double lambda, Random random)
        {
            double side = Math.Sqrt(1 - lambda);
            long cutHeight = (long)(height * side), cutWidth = (long)(width * side);
            long centreY = random.Next((int)height), centreX = random.Next((int)width);
            long top = Math.Clamp(centreY - cutHeight / 2, 0, height), bottom = Math.Clamp(centreY + cutHeight / 2, 0, height);
            long left = Math.Clamp(centreX - cutWidth / 2, 0, width), right = Math.Clamp(centreX + cutWidth / 2, 0, width);
            return (top, left, bottom - top, right - left);
        }

        /// <summary>A draw from Beta(α, α) as X / (X + Y) with X, Y ~ Gamma(α).</summary>
        internal static double SampleBeta(double alpha, Random random)
        {
            double x = SampleGamma(alpha, random), y = SampleGamma(alpha, random);
            return x + y > 0 ? x / (x + y) : 0.5;
        }

        // Marsaglia and Tsang's method; for α < 1, Gamma(α) = Gamma(α + 1)·U^(1/α).
        private static double SampleGamma(double alpha, Random random)
        {
            if (alpha < 1) return SampleGamma(alpha + 1, random) * Math.Pow(1 - random.NextDouble(), 1 / alpha);
            double d = alpha - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
            while (true)
            {
                double z = SampleNormal(random), v = 1 + c * z;
                if (v <= 0) continue;
                v = v * v * v;
                double u = 1 - random.NextDouble();
                if (Math.Log(u) < 0.5 * z * z + d - d * v + d * Math.Log(v)) return d * v;
            }
        }

        private static double SampleNormal(Random random)
        {
            double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
            return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
    }
}
