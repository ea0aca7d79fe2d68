using System;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// Random augmentation of training images, applied per image to the decoded C×H×W pixels (after the resize
    /// to the batch size) in this order: random-resized-crop, random crop with padding, the <see cref="Policy"/>
    /// (e.g. TrivialAugment), horizontal flip. Draws
    /// come from a generator seeded by <see cref="ImageBatchOptions.Seed"/> and the epoch, so an epoch is
    /// reproducible.
    /// </summary>
    public sealed class ImageAugmentation
    {
        /// <summary>Probability of flipping an image left–right; 0 turns the flip off. Default 0.</summary>
        public double HorizontalFlipProbability { get; set; }

        /// <summary>
        /// Pad each side by this many pixels and crop a random H×W window back out (the CIFAR recipe uses 4);
        /// 0 turns it off. Default 0.
        /// </summary>
        public int CropPadding { get; set; }

        /// <summary>What the padding of <see cref="CropPadding"/> holds. Default <see cref="PaddingMode.Zero"/>.</summary>
        public PaddingMode CropPaddingMode { get; set; } = PaddingMode.Zero;

        /// <summary>
        /// Crop a random box whose area is a fraction in this range of the image and whose width/height ratio is in
        /// <see cref="RandomResizedCropRatio"/>, then resize it back to H×W (bilinear). Null turns it off; the
        /// ImageNet recipe uses (0.08, 1).
        /// </summary>
        public (double Min, double Max)? RandomResizedCropScale { get; set; }

        /// <summary>Range of the width/height ratio of the random-resized-crop box (drawn log-uniformly). Default (3/4, 4/3).</summary>
        public (double Min, double Max) RandomResizedCropRatio { get; set; } = (3.0 / 4.0, 4.0 / 3.0);

        /// <summary>
        /// A policy of operations applied after the crops and before the flip (one random operation per image for
        /// <see cref="AugmentationPolicy.TrivialAugmentWide"/>). Default <see cref="AugmentationPolicy.None"/>.
        /// </summary>
        public AugmentationPolicy Policy { get; set; }

        /// <summary>
        /// Largest translation of the <see cref="Policy"/>'s TranslateX/TranslateY as a fraction of the image width/height,
        /// in [0, 1]. Default 32/224: torchvision's 32 pixels for 224-pixel images, scaled down for small ones (4 pixels at 32).
        /// Use 1 for the absolute 32 pixels the paper used on 32×32 CIFAR images.
        /// </summary>
        public double PolicyMaxTranslateFraction { get; set; } = 32.0 / 224.0;

        /// <summary>The CIFAR recipe: pad 4 (zeros), random 32×32-style crop back to the size, horizontal flip with p = 0.5.</summary>
        public static ImageAugmentation Cifar() => new() { CropPadding = 4, HorizontalFlipProbability = 0.5 };

        /// <summary>The ImageNet recipe: random-resized-crop (scale 0.08–1, ratio 3/4–4/3) and horizontal flip with p = 0.5.</summary>
        public static ImageAugmentation ImageNet() => new() { RandomResizedCropScale = (0.08, 1.0), HorizontalFlipProbability = 0.5 };

        /// <summary>
        /// TrivialAugment (wide) with horizontal flip p = 0.5 — the paper's recipe adds the usual crop on top: set
        /// <see cref="CropPadding"/> (CIFAR) or <see cref="RandomResizedCropScale"/> (ImageNet) as well if wanted.
        /// </summary>
        public static ImageAugmentation TrivialAugment() => new() { HorizontalFlipProbability = 0.5, Policy = AugmentationPolicy.TrivialAugmentWide };

        internal void Validate(int width, int height)
        {
            double p = HorizontalFlipProbability;
            if (double.IsNaN(p) || p < 0 || p > 1)
                throw new ArgumentOutOfRangeException(nameof(HorizontalFlipProbability), p, "HorizontalFlipProbability must be in [0, 1].");
            if (CropPadding < 0)
                throw new ArgumentOutOfRangeException(nameof(CropPadding), CropPadding, "CropPadding must be 0 (off) or positive.");
            if (CropPaddingMode == PaddingMode.Reflect && CropPadding >= Math.Min(width, height))
                throw new ArgumentOutOfRangeException(nameof(CropPadding), CropPadding,
                    $"Reflect padding needs CropPadding smaller than the image ({width}×{height}); use a smaller padding or PaddingMode.Zero.");
            if (RandomResizedCropScale is var (min, max) && !(min > 0 && min <= max && max <= 1))
                throw new ArgumentOutOfRangeException(nameof(RandomResizedCropScale), RandomResizedCropScale,
                    "RandomResizedCropScale must satisfy 0 < Min <= Max <= 1 (fractions of the image area).");
            var (rmin, rmax) = RandomResizedCropRatio;
            if (!(rmin > 0 && rmin <= rmax && !double.IsInfinity(rmax)))
                throw new ArgumentOutOfRangeException(nameof(RandomResizedCropRatio), RandomResizedCropRatio,
                    "RandomResizedCropRatio must satisfy 0 < Min <= Max (width/height).");
            if (!Enum.IsDefined(Policy))
                throw new ArgumentOutOfRangeException(nameof(Policy), Policy, "Policy must be a defined AugmentationPolicy value.");
            double t = PolicyMaxTranslateFraction;
            if (double.IsNaN(t) || t < 0 || t > 1)
                throw new ArgumentOutOfRangeException(nameof(PolicyMaxTranslateFraction), t, "PolicyMaxTranslateFraction must be in [0, 1] (a fraction of the image size).");
        }

        internal bool IsIdentity => HorizontalFlipProbability == 0 && CropPadding == 0 && RandomResizedCropScale is null
            && Policy == AugmentationPolicy.None;
    }

    /// <summary>What lies outside the image when <see cref="ImageAugmentation.CropPadding"/> pads it.</summary>
    public enum PaddingMode
    {
        /// <summary>Zeros (black).</summary>
        Zero,

        /// <summary>The image mirrored at its border, without repeating the edge pixel (PyTorch's <c>reflect</c>).</summary>
        Reflect,
    }
}
