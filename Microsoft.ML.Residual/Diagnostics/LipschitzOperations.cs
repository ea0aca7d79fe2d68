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

        /// <summary>
        /// A bound, an example of the value's shape, and the chain position it is measured from: the number of blocks
        /// completed before it (a bound measured from block k's output cannot be combined with one from block j's).
        /// </summary>
        internal sealed record Bound(Tensor Like, double Value, int Position = 0);

        /// <summary>The report, once the forward pass has ended with the network's <paramref name="output"/> (its bound is the head's).</summary>
        public LipschitzReport Report(Bound output)
        {
            if (completed != names.Length) throw new ArgumentException($"Block '{names[completed]}' did not run in the forward pass; it cannot be bounded.");
            if (output.Position != completed) throw NotAChain("the output reads a value from before the last block");
            return new LipschitzReport(names, branches, shortcuts, blockBounds, stem, output.Value);
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
                    return Layer(module, input, PoolBound(pool.kernel_size, pool.stride, pool.dilation, average: false));
                case AvgPool2d pool:
                    // Partial windows (at a ceil-mode edge, or over padding that is not counted) average fewer values, as
                    // few as one: no 1/K there.
                    bool fullWindows = !pool.ceil_mode && (pool.count_include_pad || pool.padding is null || pool.padding.All(p => p == 0));
                    return Layer(module, input, PoolBound(pool.kernel_size, pool.stride, null, average: fullWindows));
                case AdaptiveAvgPool2d pool when pool.output_size.All(s => s == 1):
                    return GlobalAveragePool(input);
                case Linear linear:
                    return Layer(module, input, torch.linalg.svdvals(linear.weight!.detach().to_type(ScalarType.Float64))[0].item<double>());
                case TorchSharp.Modules.Dropout or Identity or ReLU:
                    return input;
                case GroupNorm:
                    throw new ArgumentException("Group normalisation divides by the spread of its own input; it has no Lipschitz bound here (FCOS heads).");
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

            return new Bound(branch.Like, Math.Abs(shortcutScale) * shortcut.Value + Math.Abs(branchScale) * branch.Value, SamePosition(branch, shortcut));
        }

        public Bound Relu(Bound x) => x;

        public Bound Clip(Bound x, double minimum, double maximum) => x;

        public Bound Sigmoid(Bound x) =>
            throw new ArgumentException("Highway blocks gate their shortcut with the input itself; they have no path-separated bound here.");

        public Bound Add(Bound a, Bound b) => new(a.Like, a.Value + b.Value, SamePosition(a, b));

        public Bound Mul(Bound a, Bound b) =>
            throw new ArgumentException("A product of two values that depend on the input has no Lipschitz bound from its factors' bounds (Highway and gated blocks).");

        public Bound Affine(Bound x, double scale, double shift) => x with { Value = Math.Abs(scale) * x.Value };

        // ‖[Δa, Δb]‖² = ‖Δa‖² + ‖Δb‖².
        public Bound Concat(IReadOnlyList<Bound> values, int axis) => values.Count == 1 ? values[0]
            : new Bound(torch.cat(values.Select(v => v.Like).ToArray(), axis), Math.Sqrt(values.Sum(v => v.Value * v.Value)), SamePosition(values.ToArray()));

        public Bound MaxPool(Bound x, long kernel, long stride, long padding = 0) =>
            new(nn.functional.max_pool2d(x.Like, kernel, stride, padding), x.Value * PoolBound(new[] { kernel, kernel }, new[] { stride, stride }, null, average: false), x.Position);

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
            new(TensorOperations.Instance.Upsample(x.Like, factorHeight, factorWidth, mode), x.Value * Math.Sqrt(factorHeight * factorWidth), x.Position);

        // The mean of H·W values: (Σ Δ / n)² ≤ Σ Δ² / n.
        public Bound GlobalAveragePool(Bound x) =>
            new(nn.functional.adaptive_avg_pool2d(x.Like, 1), x.Value / Math.Sqrt(x.Like.shape[2] * x.Like.shape[3]), x.Position);

        public Bound Flatten(Bound x) => x with { Like = x.Like.flatten(1) };

        // The same values in another shape: ‖Δ‖ is unchanged.
        public Bound Reshape(Bound x, params long[] shape) => x with { Like = TensorOperations.Instance.Reshape(x.Like, shape) };

        public Bound Dropout(Bound x, double probability, bool training) => x;

        public Bound DropPath(Bound x, double probability, bool training) => x;

        public Bound Permute(Bound x, params int[] order) => x with { Like = x.Like.permute(order.Select(d => (long)d).ToArray()) };

        // GELU's slope Φ(x) + x·φ(x) is largest at x = √2: Φ(√2) + √2·φ(√2) = (1 + erf 1) / 2 + 1 / (e·√π) ≈ 1.1289.
        public Bound Gelu(Bound x) => x with { Value = x.Value * GeluSlope };

        public Bound LayerNorm(Bound x, Parameter weight, Parameter bias, double eps) =>
            throw new ArgumentException("Layer normalisation divides by the spread of its own input; it has no Lipschitz bound here (ConvNeXt).");

        public Bound Scale(Bound x, Parameter scale) => x with { Value = x.Value * scale.detach().abs().max().to_type(ScalarType.Float64).item<double>() };

        private static readonly double GeluSlope = (1 + 0.8427007929497149) / 2 + 1 / (Math.E * Math.Sqrt(Math.PI));

        private Bound Layer(nn.Module module, Bound input, double bound) =>
            new(TensorOperations.Instance.Call(module, input.Like), input.Value * bound, input.Position);

        private static int SamePosition(params Bound[] values)
        {
            if (values.Any(v => v.Position != values[0].Position)) throw NotAChain("a value from before a block is combined with one after it");
            return values[0].Position;
        }

        private static ArgumentException NotAChain(string what) =>
            new($"Lipschitz bounds are computed for the ResNet family, whose blocks follow one another directly; here {what}.");

        // Block i is bounded on its own, from its input: the chain stem → block 1 → … → block n → head multiplies.
        private Bound Block(ResidualModule block, int index, Bound input)
        {
            if (index != completed || input.Position != completed || (completed > 0 && !ReferenceEquals(input, lastExit)))
                throw NotAChain($"block '{names[index]}' reads something other than the previous block's output");

            if (completed == 0) stem = input.Value;
            running.Push(index);
            Bound output;
            try
            {
                output = block.Forward(this, new Bound(input.Like, 1.0, completed));
            }
            finally
            {
                running.Pop();
            }

            blockBounds[index] = output.Value;
            if (!joined[index]) branches[index] = output.Value; // no shortcut: the block is its branch
            completed++;
            if (output.Position != index) throw NotAChain($"block '{names[index]}' outputs a value from before its input");
            lastExit = new Bound(output.Like, 1.0, completed);
            return lastExit;
        }

        // Each input lies in at most min(k, ⌈span/s⌉) windows per axis, span = (k − 1)·d + 1 (a 3×3 stride-2 max pooling:
        // 2·2 = 4, so a factor 2); an average of K = kh·kw values adds at most ‖Δ‖²/K per window.
        private static double PoolBound(long[] kernel, long[]? stride, long[]? dilation, bool average)
        {
            stride ??= kernel;
            double Windows(int axis)
            {
                long k = kernel[Math.Min(axis, kernel.Length - 1)], s = stride[Math.Min(axis, stride.Length - 1)];
                long d = dilation is { Length: > 0 } ? dilation[Math.Min(axis, dilation.Length - 1)] : 1;
                return Math.Min(k, Math.Ceiling((double)((k - 1) * d + 1) / s));
            }

            double windows = Windows(0) * Windows(1);
            long size = kernel[0] * kernel[Math.Min(1, kernel.Length - 1)];
            return Math.Sqrt(average ? windows / size : windows);
        }
    }
}
