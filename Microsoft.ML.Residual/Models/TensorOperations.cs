using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// <see cref="IOperations{T}"/> on TorchSharp tensors: what training and inference run. Convolutions take the library's
    /// fast paths (<see cref="ConvolutionPaths"/>), layers compute in an <see cref="Autocast"/> scope's type, ReLU and the
    /// residual sum work in place, and a <see cref="ResidualModule"/> child runs through <c>call</c> (so forward hooks run).
    /// </summary>
    public class TensorOperations : IOperations<Tensor>
    {
        /// <summary>The shared instance (the class holds no state).</summary>
        public static readonly TensorOperations Instance = new();

        /// <summary>Creates the operations (subclasses change how children are called).</summary>
        protected TensorOperations()
        {
        }

        /// <inheritdoc />
        public virtual Tensor Call(nn.Module module, Tensor input)
        {
            switch (module)
            {
                case ResidualModule residual:
                    return residual.call(input);
                case Conv2d convolution when !convolution.transposed:
                    return convolution.Convolve(input);
                case ConvTranspose2d transposed:
                    ConvolutionKernels.EnsureCorrect();
                    return Autocast.Call(transposed, input);
                case Linear linear:
                    return linear.Apply(input);
                case GroupNorm norm:
                    return norm.call(Autocast.ToFloat32(input)); // normalised in float32, as autocast does
                case Sequential sequence when sequence.children().All(c => c is ResidualModule):
                    return sequence.call(input); // a stage of blocks: hooks on the stage (layer4, say) run
                case Sequential sequence:
                    return CallEach(sequence, input); // layers one by one, each on its fast path
                case nn.Module<Tensor, Tensor> layer:
                    return Autocast.Call(layer, input);
                default:
                    throw new ArgumentException($"{module?.GetType().Name ?? "null"} is not a tensor-to-tensor module.", nameof(module));
            }
        }

        /// <summary>The children of <paramref name="sequence"/> applied in turn through <see cref="Call"/>.</summary>
        protected Tensor CallEach(Sequential sequence, Tensor input)
        {
            if (sequence is null) throw new ArgumentNullException(nameof(sequence));
            Tensor x = input;
            foreach (var (_, child) in sequence.named_children()) x = Call(child, x);
            return x;
        }

        /// <inheritdoc />
        public virtual IReadOnlyList<Tensor> CallStages(nn.Module encoder, Tensor input) => StageEncoder(encoder).ForwardStages(this, input);

        /// <summary>The module as a stage encoder, or an error that says what it lacks.</summary>
        internal static IStageEncoder StageEncoder(nn.Module encoder) => encoder as IStageEncoder
            ?? throw new ArgumentException($"The module {encoder?.GetType().Name ?? "null"} does not implement IStageEncoder: it has no stage outputs.", nameof(encoder));

        /// <inheritdoc />
        public long[] Shape(Tensor x) => x.shape;

        /// <inheritdoc />
        public virtual (Tensor Branch, Tensor Shortcut) Fork(Tensor x) => (x, x);

        /// <inheritdoc />
        public Tensor Residual(Tensor branch, Tensor shortcut, double branchScale = 1.0, double shortcutScale = 1.0)
        {
            Tensor scaledBranch = branchScale == 1.0 ? branch : branch.Times(branchScale);
            Tensor scaledShortcut = shortcutScale == 1.0 ? shortcut : shortcut.Times(shortcutScale);
            return scaledBranch.PlusInPlace(scaledShortcut);
        }

        /// <inheritdoc />
        public Tensor Relu(Tensor x) => nn.functional.relu(x, inplace: true);

        /// <inheritdoc />
        public Tensor Clip(Tensor x, double minimum, double maximum) => x.Clamp(minimum, maximum, inPlace: true);

        /// <inheritdoc />
        public Tensor Sigmoid(Tensor x) => torch.sigmoid(x);

        /// <inheritdoc />
        public Tensor Add(Tensor a, Tensor b) => a.Plus(b);

        /// <inheritdoc />
        public Tensor Mul(Tensor a, Tensor b) => a.mul(b);

        /// <inheritdoc />
        public Tensor Affine(Tensor x, double scale, double shift)
        {
            Tensor scaled = scale == 1.0 ? x : x.Times(scale);
            return shift == 0.0 ? scaled : scaled.Plus(shift);
        }

        /// <inheritdoc />
        public Tensor Concat(IReadOnlyList<Tensor> values, int axis) => values.Count == 1 ? values[0] : torch.cat(values.ToArray(), axis);

        /// <inheritdoc />
        public Tensor MaxPool(Tensor x, long kernel, long stride, long padding = 0) => nn.functional.max_pool2d(x, kernel, stride, padding);

        /// <inheritdoc />
        public Tensor Pad(Tensor x, long[] pads, PaddingModes mode) =>
            mode is PaddingModes.Constant or PaddingModes.Zeros ? nn.functional.pad(x, pads) : nn.functional.pad(x, pads, mode);

        /// <inheritdoc />
        public Tensor Slice(Tensor x, int axis, long start, long end, long step = 1) => x.slice(axis, start, end, step);

        /// <inheritdoc />
        public Tensor Upsample(Tensor x, long factorHeight, long factorWidth, InterpolationMode mode) =>
            nn.functional.interpolate(x, scale_factor: new[] { (double)factorHeight, factorWidth }, mode: mode,
                align_corners: mode == InterpolationMode.Bilinear ? false : null);

        /// <inheritdoc />
        public Tensor GlobalAveragePool(Tensor x) => nn.functional.adaptive_avg_pool2d(x, 1);

        /// <inheritdoc />
        public Tensor Flatten(Tensor x) => x.flatten(1);

        /// <inheritdoc />
        public Tensor Reshape(Tensor x, params long[] shape) => x.reshape(ReshapeSizes(x.shape, shape));

        /// <summary>ONNX <c>Reshape</c>'s target sizes with every 0 replaced by the input's size of that dimension.</summary>
        internal static long[] ReshapeSizes(long[] input, long[] shape)
        {
            if (shape is null) throw new ArgumentNullException(nameof(shape));
            var sizes = new long[shape.Length];
            for (int i = 0; i < shape.Length; i++)
            {
                if (shape[i] == 0 && i >= input.Length)
                    throw new ArgumentException($"Reshape entry {i} is 0 (keep the input's size) but the input has only {input.Length} dimensions.", nameof(shape));
                if (shape[i] < -1) throw new ArgumentException($"Reshape entry {i} is {shape[i]}: sizes are positive, 0 (keep) or -1 (infer).", nameof(shape));
                sizes[i] = shape[i] == 0 ? input[i] : shape[i];
            }

            if (sizes.Count(s => s == -1) > 1) throw new ArgumentException("Reshape infers at most one size (one -1).", nameof(shape));
            return sizes;
        }

        /// <inheritdoc />
        public Tensor Dropout(Tensor x, double probability, bool training) =>
            training && probability > 0 ? nn.functional.dropout(x, probability, training) : x;

        /// <inheritdoc />
        public Tensor DropPath(Tensor x, double probability, bool training)
        {
            if (!training || probability <= 0) return x;
            // Stochastic depth (Huang et al. 2016): drop the whole value per sample, rescale the survivors.
            double keep = 1.0 - probability;
            var maskShape = new long[x.dim()];
            maskShape[0] = x.shape[0];
            for (int i = 1; i < maskShape.Length; i++) maskShape[i] = 1;
            Tensor mask = torch.empty(maskShape, x.dtype, x.device).bernoulli_(keep);
            return x.mul(mask).DividedBy(keep);
        }

        /// <inheritdoc />
        public Tensor Permute(Tensor x, params int[] order) => x.permute(order.Select(d => (long)d).ToArray());

        /// <inheritdoc />
        public Tensor Gelu(Tensor x) => nn.functional.gelu(x);

        /// <inheritdoc />
        public Tensor LayerNorm(Tensor x, Parameter weight, Parameter bias, double eps) =>
            nn.functional.layer_norm(Autocast.ToFloat32(x), new[] { weight.shape[0] }, weight, bias, eps); // normalised in float32, as autocast does

        /// <inheritdoc />
        public Tensor Scale(Tensor x, Parameter scale) => x.mul(scale);
    }

    /// <summary>Tensor shortcuts of the networks' generic methods.</summary>
    public static class TensorForward
    {
        /// <summary>Runs the backbone on tensors and returns every stage's output, in the order of <see cref="IStageEncoder.StageChannels"/>.</summary>
        public static IReadOnlyList<Tensor> ForwardStages(this IStageEncoder encoder, Tensor input)
        {
            if (encoder is null) throw new ArgumentNullException(nameof(encoder));
            return encoder.ForwardStages(TensorOperations.Instance, input);
        }
    }
}
