using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>The largest singular value of each block's input–output Jacobian at a batch of inputs (see <see cref="BlockJacobian.Measure"/>).</summary>
    public sealed class JacobianReport
    {
        internal JacobianReport(string[] blockNames, double[] spectralNorms, int iterations)
        {
            BlockNames = blockNames;
            SpectralNorms = spectralNorms;
            Iterations = iterations;
        }

        /// <summary>The blocks' state-dict prefixes, from the first block to the last.</summary>
        public string[] BlockNames { get; }

        /// <summary>
        /// σ_max(∂y/∂x) of each block at the inputs it received: how much the block can stretch a small change of its input.
        /// A residual block y = x + F(x) starts near 1 (exactly 1 when F is zero-initialised); a strong F can push it far above.
        /// </summary>
        public double[] SpectralNorms { get; }

        /// <summary>The power-iteration steps each estimate took.</summary>
        public int Iterations { get; }
    }

    /// <summary>
    /// Block Jacobians by power iteration: for each block, the largest singular value of ∂y/∂x at the inputs the block receives
    /// in a forward pass of the network, from Jacobian–vector products (exact, by double differentiation; never the whole
    /// Jacobian). With the running statistics (the default) BatchNorm acts per image, so the value is the largest over the
    /// batch's images.
    /// </summary>
    public static class BlockJacobian
    {
        /// <summary>Estimates σ_max of every block's Jacobian at <paramref name="inputs"/>; the module is left as it was.</summary>
        /// <param name="module">A ResNet, DenseNet or U-Net of <c>ResidualModels</c>.</param>
        /// <param name="inputs">A batch N×C×H×W (a few images are enough; the cost is about 3 × iterations block passes per block).</param>
        /// <param name="iterations">Power-iteration steps (the estimate approaches σ_max from below).</param>
        /// <param name="seed">Seed of the starting vectors.</param>
        /// <param name="statistics">How BatchNorm normalises during the passes.</param>
        /// <exception cref="ArgumentException">The module has no residual or dense blocks, or the inputs are not a batch of images.</exception>
        public static JacobianReport Measure(nn.Module<Tensor, Tensor> module, Tensor inputs, int iterations = 20, long seed = 0,
            BatchNormStatistics statistics = BatchNormStatistics.Running)
        {
            if (module is null) throw new ArgumentNullException(nameof(module));
            if (inputs is null) throw new ArgumentNullException(nameof(inputs));
            if (inputs.dim() != 4) throw new ArgumentException($"The inputs must be a batch N×C×H×W; got shape [{string.Join(", ", inputs.shape)}].", nameof(inputs));
            if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "Give at least one power-iteration step (20 is usually plenty).");
            var blocks = DiagnosticBlocks.Of(module);
            Device device = module.parameters().First().device;

            using var scope = NewDisposeScope();
            using var mode = DiagnosticBlocks.MeasuringMode(module, statistics);
            Tensor[] blockInputs = DiagnosticBlocks.CaptureInputs(module, blocks, inputs.to(device));
            using var generator = new Generator((ulong)seed, device);
            var norms = new double[blocks.Count];
            for (int b = 0; b < blocks.Count; b++)
            {
                using var blockScope = NewDisposeScope();
                norms[b] = LargestSingularValue(blocks[b].Apply, blockInputs[b], iterations, generator);
            }

            return new JacobianReport(blocks.Select(b => b.Name).ToArray(), norms, iterations);
        }

        /// <summary>σ_max of the whole network's Jacobian (output with respect to input) at <paramref name="inputs"/>, BatchNorm on running statistics.</summary>
        internal static double NetworkNorm(nn.Module<Tensor, Tensor> module, Tensor inputs, int iterations = 20, long seed = 0)
        {
            Device device = module.parameters().First().device;
            using var scope = NewDisposeScope();
            using var mode = DiagnosticBlocks.MeasuringMode(module, BatchNormStatistics.Running);
            using var generator = new Generator((ulong)seed, device);
            return LargestSingularValue(module.call, inputs.to(device), iterations, generator);
        }

        // Power iteration on JᵀJ: v ← JᵀJv / ‖JᵀJv‖, σ ≈ ‖Jv‖. Jᵀu is one backward pass; Jv is the derivative of Jᵀw with
        // respect to w (double backward), so no forward-mode differentiation is needed.
        private static double LargestSingularValue(Func<Tensor, Tensor> block, Tensor input, int iterations, Generator generator)
        {
            using var enableGrad = torch.enable_grad();
            Tensor x = input.clone().requires_grad_(true);
            Tensor y = block(x);
            Tensor w = torch.zeros_like(y).requires_grad_(true);
            Tensor transposedProduct = torch.autograd.grad(new[] { y }, new[] { x }, new[] { w }, retain_graph: true, create_graph: true)[0];
            Tensor v = torch.randn(x.shape, dtype: x.dtype, device: x.device, generator: generator);
            v = v.div(v.norm());
            double sigma = 0;
            for (int k = 0; k < iterations; k++)
            {
                using var step = NewDisposeScope();
                Tensor jv = torch.autograd.grad(new[] { transposedProduct }, new[] { w }, new[] { v }, retain_graph: true)[0];
                sigma = jv.norm().item<float>();
                Tensor jtjv = torch.autograd.grad(new[] { y }, new[] { x }, new[] { jv }, retain_graph: true)[0];
                double length = jtjv.norm().item<float>();
                if (!(length > 0)) break;
                v = jtjv.DividedBy(length).MoveToOuterDisposeScope();
            }

            return sigma;
        }
    }
}
