using System;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>Options every model family understands. A null property keeps the named model's default.</summary>
    public class ModelOptions
    {
        /// <summary>Dropout probability applied to the pooled features before the classifier (0 = none).</summary>
        public double? DropRate { get; set; }

        /// <summary>Seed for the random weight initialisation; null draws from TorchSharp's global generator.</summary>
        public long? Seed { get; set; }

        internal static void CheckProbability(double? value, string name)
        {
            if (value is double p && (double.IsNaN(p) || p < 0 || p >= 1))
                throw new ArgumentOutOfRangeException(name, p, $"{name} must be in [0, 1).");
        }
    }

    /// <summary>Options of a network whose stem can be chosen (the estimators choose it by image size).</summary>
    public interface IStemOptions
    {
        /// <summary>The stem (a <see cref="StemKind"/> the family supports; DenseNets take ImageNet or Cifar); null keeps the named model's.</summary>
        StemKind? Stem { get; set; }
    }

    /// <summary>How the input enters the first residual stage.</summary>
    public enum StemKind
    {
        /// <summary>7×7 stride-2 convolution and 3×3 stride-2 max pooling (ImageNet models, 4× downsampling).</summary>
        ImageNet,

        /// <summary>One 3×3 stride-1 convolution and no pooling (CIFAR models, full resolution).</summary>
        Cifar,

        /// <summary>
        /// Three 3×3 convolutions (the first with stride 2; widths w/2, w/2, w for a stem width w) and 3×3 stride-2 max
        /// pooling: the "deep stem" of ResNet-C/D (He et al. 2019, timm's <c>stem_type='deep'</c>), 4× downsampling.
        /// </summary>
        Deep,
    }

    /// <summary>The block that each residual stage repeats.</summary>
    public enum ResidualBlockKind
    {
        /// <summary>Two 3×3 convolutions (ResNet-18/34, CIFAR ResNets); expansion 1.</summary>
        Basic,

        /// <summary>1×1 reduce, 3×3 (strided, grouped), 1×1 expand; expansion 4 (ResNet-50 and deeper).</summary>
        Bottleneck,
    }

    /// <summary>The shortcut options of He et al. 2015, section 4.1.</summary>
    public enum ShortcutOption
    {
        /// <summary>Option A: parameter-free identity; where the shape changes, a strided subsample with zero-padded channels.</summary>
        A,

        /// <summary>Option B: identity, with a 1×1 projection (and BatchNorm) only where the shape changes. torchvision's choice.</summary>
        B,

        /// <summary>Option C: a 1×1 projection on every block.</summary>
        C,

        /// <summary>
        /// ResNet-D (He et al. 2019): like B, but a strided projection first averages 2×2 windows and then projects with a
        /// stride-1 1×1 convolution, so it reads every input pixel (timm's <c>avg_down</c>).
        /// </summary>
        D,
    }

    /// <summary>How a block combines its residual branch F(x) with its input x.</summary>
    public enum SkipConnection
    {
        /// <summary>y = (1 − β)·shortcut(x) + α·F(x); α = 1, β = 0 is the ordinary residual block.</summary>
        Identity,

        /// <summary>y = F(x): the plain network of the same depth (no shortcut at all).</summary>
        None,

        /// <summary>y = T(x)·F(x) + (1 − T(x))·shortcut(x) with a learned gate T = sigmoid(1×1 conv(x)) (Highway networks).</summary>
        Highway,
    }

    /// <summary>
    /// Variant options for the ResNet family. Every property left null keeps the default of the named
    /// architecture (for example option A shortcuts for resnet20, option B for resnet18).
    /// </summary>
    public sealed class ResNetOptions : ModelOptions, IStemOptions
    {
        /// <summary>Start every residual branch at zero so that each block begins as the identity (Goyal et al. 2017).</summary>
        public bool? ZeroInitResidual { get; set; }

        /// <inheritdoc />
        public StemKind? Stem { get; set; }

        /// <summary>Pre-activation blocks (BN → ReLU → conv, He et al. 2016) instead of post-activation.</summary>
        public bool? PreActivation { get; set; }

        /// <summary>Shortcut option A, B or C.</summary>
        public ShortcutOption? Shortcut { get; set; }

        /// <summary>Residual, plain (no skip) or Highway combination.</summary>
        public SkipConnection? Skip { get; set; }

        /// <summary>α: the factor on the residual branch (the step size of the forward-Euler view). Default 1.</summary>
        public double? ResidualScale { get; set; }

        /// <summary>β: the identity path is multiplied by (1 − β). Default 0.</summary>
        public double? IdentityDecay { get; set; }

        /// <summary>Stochastic depth: the drop probability of the last block's branch; earlier blocks scale linearly from 0.</summary>
        public double? DropPathRate { get; set; }

        /// <summary>Initial bias of the Highway gate; negative values start the block close to carrying its input. Default −1.</summary>
        public double? HighwayGateBias { get; set; }
    }
}
