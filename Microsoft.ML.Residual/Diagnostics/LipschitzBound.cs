using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>
    /// Upper bounds of a ResNet's Lipschitz constant (ℓ2, BatchNorm with its running statistics), block by block (see
    /// <see cref="LipschitzBound.Measure"/>). A residual block y = (1 − β)·s(x) + α·F(x) is bounded path by path:
    /// Lip ≤ (1 − β)·Lip(s) + α·Lip(F), with Lip(F) the product of its layers' constants; the network's bound is the product
    /// of the stem's, the blocks' and the head's.
    /// </summary>
    public sealed class LipschitzReport
    {
        internal LipschitzReport(string[] blockNames, double[] branchBounds, double[] shortcutBounds, double[] blockBounds, double stemBound, double headBound)
        {
            BlockNames = blockNames;
            BranchBounds = branchBounds;
            ShortcutBounds = shortcutBounds;
            BlockBounds = blockBounds;
            StemBound = stemBound;
            HeadBound = headBound;
        }

        /// <summary>The blocks' state-dict prefixes, from the first block to the last.</summary>
        public string[] BlockNames { get; }

        /// <summary>Lip(F) of each block's residual branch: the product of its convolutions' spectral norms and its BatchNorms' largest scales.</summary>
        public double[] BranchBounds { get; }

        /// <summary>Lip of each block's shortcut: 1 for the identity and for option A (subsample, zero-pad), the projection's bound for B/C/D (D's average pool included), 0 for plain blocks.</summary>
        public double[] ShortcutBounds { get; }

        /// <summary>The path-separated bound of each block: (1 − β)·shortcut + α·branch (1 + Lip(F) for a plain residual block).</summary>
        public double[] BlockBounds { get; }

        /// <summary>The bound of the layers before the first block (convolution, BatchNorm, max pooling).</summary>
        public double StemBound { get; }

        /// <summary>The bound of the layers after the last block (final BatchNorm, average pooling, classifier).</summary>
        public double HeadBound { get; }

        /// <summary>The network's Lipschitz upper bound with residual blocks bounded path by path: stem × ∏ blocks × head.</summary>
        public double UpperBound => StemBound * BlockBounds.Aggregate(1.0, (p, b) => p * b) * HeadBound;

        /// <summary>
        /// The naive product: every layer's constant multiplied along the chain stem → branches → head, as for a plain network.
        /// It ignores the shortcuts, so for a residual network it is not a bound (it can fall far below the true constant);
        /// for a plain network it equals <see cref="UpperBound"/>. Compare the two to see what the identity paths carry.
        /// </summary>
        public double LayerProduct => StemBound * BranchBounds.Aggregate(1.0, (p, b) => p * b) * HeadBound;
    }

    /// <summary>Lipschitz upper bounds of the ResNet family (see <see cref="LipschitzReport"/>).</summary>
    public static class LipschitzBound
    {
        /// <summary>Bounds the Lipschitz constant of <paramref name="module"/> on height×width inputs; the module is left as it was.</summary>
        /// <param name="module">
        /// A network whose blocks follow one another directly, as in the ResNet family (any variant but Highway blocks),
        /// including a user's own <see cref="ResidualModule"/> built that way.
        /// </param>
        /// <param name="height">Input height in pixels (convolutions' spectral norms depend on the map size).</param>
        /// <param name="width">Input width in pixels.</param>
        /// <param name="iterations">Power-iteration steps per convolution.</param>
        /// <exception cref="ArgumentException">The module's blocks do not form such a chain, or it has Highway blocks.</exception>
        public static LipschitzReport Measure(nn.Module<Tensor, Tensor> module, int height, int width, int iterations = 50)
        {
            if (module is not ResidualModule network)
                throw new ArgumentException($"Lipschitz bounds are computed for the ResNet family; got {module?.GetType().Name ?? "null"}.", nameof(module));
            if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"The input size {height}×{width} is not an image size.");
            if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "Give at least one power-iteration step.");
            var blocks = DiagnosticBlocks.Of(module);
            Conv2d first = module.modules().OfType<Conv2d>().FirstOrDefault()
                ?? throw new ArgumentException($"{module.GetType().Name} has no convolution to take its input channels from.", nameof(module));

            using var scope = NewDisposeScope();
            using var mode = DiagnosticBlocks.MeasuringMode(module, BatchNormStatistics.Running);
            using var noGrad = torch.no_grad();
            Device device = module.parameters().First().device;
            // Only the shapes matter: the bounds do not depend on the values.
            Tensor input = torch.zeros(new long[] { 1, first.in_channels, height, width }, device: device);
            var bounds = new LipschitzOperations(blocks, iterations);
            return bounds.Report(network.Forward(bounds, new LipschitzOperations.Bound(input, 1.0)));
        }

        /// <summary>The largest singular value of a convolution (without its bias) as a linear map of inputs shaped like <paramref name="like"/>.</summary>
        internal static double ConvolutionNorm(Conv2d conv, Tensor like, int iterations)
        {
            using var scope = NewDisposeScope();
            using var enableGrad = torch.enable_grad();
            Tensor weight = conv.weight!.detach();
            Tensor Apply(Tensor x) => ConvolutionPaths.Convolve(x, weight, null, conv.stride!, conv.padding!, conv.dilation!, conv.groups);
            using var generator = new Generator(17UL, like.device);
            Tensor v = torch.randn(like.shape, dtype: ScalarType.Float32, device: like.device, generator: generator);
            v = v.div(v.norm());
            double sigma = 0;
            for (int k = 0; k < iterations; k++)
            {
                using var step = NewDisposeScope();
                Tensor x = v.detach().requires_grad_(true);
                Tensor y = Apply(x);
                sigma = y.norm().item<float>();
                Tensor back = torch.autograd.grad(new[] { y }, new[] { x }, new[] { y })[0];
                double length = back.norm().item<float>();
                if (!(length > 0)) return 0.0;
                v = back.DividedBy(length).detach().MoveToOuterDisposeScope();
            }

            return sigma;
        }

        // BatchNorm with running statistics scales channel c by γ_c / √(var_c + ε): its Lipschitz constant is the largest |scale|.
        internal static double NormScale(BatchNorm norm)
        {
            Tensor scale = norm.running_var!.Plus(norm.eps).rsqrt();
            if (norm.weight is not null) scale = scale.mul(norm.weight.detach());
            return scale.abs().max().item<float>();
        }
    }
}
