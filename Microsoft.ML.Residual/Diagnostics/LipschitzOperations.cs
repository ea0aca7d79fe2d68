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
    /// The network's own forward pass run on Lipschitz bounds (ℓ2, BatchNorm with running statistics): each value carries
    /// an upper bound of the Lipschitz constant of the map from the current block's input (from the network's input before
    /// the first block, from the last block's output after it) to that value, and an example tensor for its shape. A
    /// layer multiplies the bound by its own constant; the residual sum bounds path by path, (1 − β)·Lip(s) + α·Lip(F).
    /// </summary>
    internal sealed class LipschitzOperations : IOperations<LipschitzOperations.Bound>
    {
        private readonly Dictionary<nn.Module, int> indices = new(ReferenceEqualityComparer.Instance);
        private readonly string[] names;
        private readonly double[] branches;
        private readonly double[] shortcuts;
        private readonly double[] blockBounds;
        private readonly bool[] joined;
        private readonly int iterations;
        private readonly Stack<int> running = new();
        private Bound? lastExit;
        private int completed;
        private double stem = double.NaN;

        public LipschitzOperations(IReadOnlyList<DiagnosticBlock> blocks, int iterations)
        {
            for (int b = 0; b < blocks.Count; b++) indices[blocks[b].Module] = b;
            names = blocks.Select(b => b.Name).ToArray();
            branches = new double[blocks.Count];
            shortcuts = new double[blocks.Count];
            blockBounds = new double[blocks.Count];
            joined = new bool[blocks.Count];
            this.iterations = iterations;
        }

        /// <summary>A bound and an example of the value's shape.</summary>
        internal sealed record Bound(Tensor Like, double Value);

        /// <summary>The report, once the forward pass has ended with the head's bound <paramref name="head"/>.</summary>
        public LipschitzReport Report(double head)
        {
            if (completed != names.Length) throw new ArgumentException($"Block '{names[completed]}' did not run in the forward pass; it cannot be bounded.");
            return new LipschitzReport(names, branches, shortcuts, blockBounds, stem, head);
        }

        public Bound Call(nn.Module module, Bound input)
        {
            switch (module)
            {
                case ResidualModule residual when indices.TryGetValue(module, out int index):
                    return Block(residual, index, input);
                case ResidualModule residual:
                    return residual.Forward(this, input);
                case Sequential sequence:
                    Bound x = input;
                    foreach (var (_, child) in sequence.named_children()) x = Call(child, x);
                    return x;
                case Conv2d convolution when !convolution.transposed:
                    return Layer(module, input, LipschitzBound.ConvolutionNorm(convolution, input.Like, iterations));
                case BatchNorm norm:
                    return Layer(module, input, LipschitzBound.NormScale(norm));
                case MaxPool2d pool:
                    return Layer(module, input, PoolBound(pool.kernel_size, pool.stride, average: false));
                case AvgPool2d pool:
                    // Partial windows at a ceil-mode edge average fewer values (as few as one): no 1/K there.
                    return Layer(module, input, PoolBound(pool.kernel_size, pool.stride, average: !pool.ceil_mode));
                case AdaptiveAvgPool2d pool when pool.output_size.All(s => s == 1):
                    return GlobalAveragePool(input);
                case Linear linear:
                    return Layer(module, input, torch.linalg.svdvals(linear.weight!.detach().to_type(ScalarType.Float64))[0].item<double>());
                case TorchSharp.Modules.Dropout or Identity or ReLU:
                    return input;
                default:
                    throw new ArgumentException($"Lipschitz bounds are computed for the ResNet family's layers; {module.GetType().Name} has no bound here.");
            }
        }

        public IReadOnlyList<Bound> CallStages(nn.Module encoder, Bound input) => TensorOperations.StageEncoder(encoder).ForwardStages(this, input);

        public long[] Shape(Bound x) => x.Like.shape;

        public (Bound Branch, Bound Shortcut) Fork(Bound x) => (x, x);

        public Bound Residual(Bound branch, Bound shortcut, double branchScale = 1.0, double shortcutScale = 1.0)
        {
            if (running.Count > 0)
            {
                branches[running.Peek()] = branch.Value;
                shortcuts[running.Peek()] = shortcut.Value;
                joined[running.Peek()] = true;
            }

            return new Bound(branch.Like, Math.Abs(shortcutScale) * shortcut.Value + Math.Abs(branchScale) * branch.Value);
        }

        public Bound Relu(Bound x) => x;

        public Bound Sigmoid(Bound x) =>
            throw new ArgumentException("Highway blocks gate their shortcut with the input itself; they have no path-separated bound here.");

        public Bound Add(Bound a, Bound b) => new(a.Like, a.Value + b.Value);

        public Bound Mul(Bound a, Bound b) =>
            throw new ArgumentException("A product of two values that depend on the input has no Lipschitz bound from its factors' bounds (Highway and gated blocks).");

        public Bound Affine(Bound x, double scale, double shift) => x with { Value = Math.Abs(scale) * x.Value };

        // ‖[Δa, Δb]‖² = ‖Δa‖² + ‖Δb‖².
        public Bound Concat(IReadOnlyList<Bound> values, int axis) => values.Count == 1 ? values[0]
            : new Bound(torch.cat(values.Select(v => v.Like).ToArray(), axis), Math.Sqrt(values.Sum(v => v.Value * v.Value)));

        public Bound MaxPool(Bound x, long kernel, long stride, long padding = 0) =>
            new(nn.functional.max_pool2d(x.Like, kernel, stride, padding), x.Value * PoolBound(new[] { kernel, kernel }, new[] { stride, stride }, average: false));

        public Bound Pad(Bound x, long[] pads, PaddingModes mode)
        {
            if (mode is not (PaddingModes.Constant or PaddingModes.Zeros))
                throw new ArgumentException($"Padding by {mode} repeats input values; it has no bound here (the ResNet family pads with zeros).");
            return x with { Like = nn.functional.pad(x.Like, pads) };
        }

        public Bound Slice(Bound x, int axis, long start, long end, long step = 1) => x with { Like = x.Like.slice(axis, start, end, step) };

        // Each input reaches at most fh·fw outputs with weights that sum to at most fh·fw, and each output's weights sum to 1
        // (Schur's test): √(fh·fw), exactly the factor of nearest-neighbour copies.
        public Bound Upsample(Bound x, long factorHeight, long factorWidth, InterpolationMode mode) =>
            new(TensorOperations.Instance.Upsample(x.Like, factorHeight, factorWidth, mode), x.Value * Math.Sqrt(factorHeight * factorWidth));

        // The mean of H·W values: (Σ Δ / n)² ≤ Σ Δ² / n.
        public Bound GlobalAveragePool(Bound x) =>
            new(nn.functional.adaptive_avg_pool2d(x.Like, 1), x.Value / Math.Sqrt(x.Like.shape[2] * x.Like.shape[3]));

        public Bound Flatten(Bound x) => x with { Like = x.Like.flatten(1) };

        public Bound Dropout(Bound x, double probability, bool training) => x;

        public Bound DropPath(Bound x, double probability, bool training) => x;

        private Bound Layer(nn.Module module, Bound input, double bound) =>
            new(TensorOperations.Instance.Call(module, input.Like), input.Value * bound);

        // Block i is bounded on its own, from its input: the chain stem → block 1 → … → block n → head multiplies.
        private Bound Block(ResidualModule block, int index, Bound input)
        {
            if (index != completed || (completed > 0 && !ReferenceEquals(input, lastExit)))
            {
                throw new ArgumentException(
                    $"Lipschitz bounds are computed for the ResNet family, whose blocks follow one another directly; block '{names[index]}' "
                    + "reads something other than the previous block's output.");
            }

            if (completed == 0) stem = input.Value;
            running.Push(index);
            Bound output;
            try
            {
                output = block.Forward(this, new Bound(input.Like, 1.0));
            }
            finally
            {
                running.Pop();
            }

            blockBounds[index] = output.Value;
            if (!joined[index]) branches[index] = output.Value; // no shortcut: the block is its branch
            completed++;
            lastExit = new Bound(output.Like, 1.0);
            return lastExit;
        }

        // Each input lies in at most ⌈kh/sh⌉·⌈kw/sw⌉ windows (a 3×3 stride-2 max pooling: 4, so a factor 2); an average
        // of K = kh·kw values adds ‖Δ‖²/K per window.
        private static double PoolBound(long[] kernel, long[]? stride, bool average)
        {
            stride ??= kernel;
            long kh = kernel[0], kw = kernel.Length > 1 ? kernel[1] : kernel[0];
            long sh = stride[0], sw = stride.Length > 1 ? stride[1] : stride[0];
            double windows = Math.Ceiling((double)kh / sh) * Math.Ceiling((double)kw / sw);
            return Math.Sqrt(average ? windows / (kh * kw) : windows);
        }
    }
}
