using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// The operations a network's forward pass is written in — once, for every way the library runs it: on tensors
    /// (<see cref="TensorOperations"/>: training and inference), as an ONNX graph (export), and inside the diagnostics
    /// (probes of a block's input and paths; Lipschitz bounds). <typeparamref name="T"/> is what flows between the
    /// operations: a tensor, a graph value, a bound.
    /// </summary>
    /// <typeparam name="T">The value type of one implementation.</typeparam>
    public interface IOperations<T>
        where T : class
    {
        /// <summary>
        /// A registered descendant of the module being run — a TorchSharp layer (convolution, BatchNorm, linear, pooling,
        /// dropout, <c>Sequential</c>) or a <see cref="ResidualModule"/> — applied to <paramref name="input"/>. Found by
        /// reference, so its parameters keep their state-dict names.
        /// </summary>
        T Call(nn.Module module, T input);

        /// <summary>The stage outputs of a registered descendant backbone (an <see cref="IStageEncoder"/>).</summary>
        IReadOnlyList<T> CallStages(nn.Module encoder, T input);

        /// <summary>The value's shape (its batch dimension is the example's in a graph).</summary>
        long[] Shape(T x);

        /// <summary>
        /// The inputs of a residual block's branch and shortcut: <paramref name="x"/> twice, or, inside the diagnostics, two
        /// views of it whose gradients tell the two paths apart.
        /// </summary>
        (T Branch, T Shortcut) Fork(T x);

        /// <summary>The residual sum <c>branchScale · branch + shortcutScale · shortcut</c>. May overwrite <paramref name="branch"/>.</summary>
        T Residual(T branch, T shortcut, double branchScale = 1.0, double shortcutScale = 1.0);

        /// <summary>max(x, 0). May overwrite <paramref name="x"/>: pass a value nothing else reads.</summary>
        T Relu(T x);

        /// <summary>min(max(x, <paramref name="minimum"/>), <paramref name="maximum"/>) (ReLU6: 0, 6). May overwrite <paramref name="x"/>: pass a value nothing else reads.</summary>
        T Clip(T x, double minimum, double maximum);

        /// <summary>1 / (1 + exp(−x)).</summary>
        T Sigmoid(T x);

        /// <summary>a + b (with broadcasting).</summary>
        T Add(T a, T b);

        /// <summary>a · b, element-wise (with broadcasting).</summary>
        T Mul(T a, T b);

        /// <summary>x · scale + shift.</summary>
        T Affine(T x, double scale, double shift);

        /// <summary>Concatenation along <paramref name="axis"/> (a single value is returned as it is).</summary>
        T Concat(IReadOnlyList<T> values, int axis);

        /// <summary>2-D max pooling of an N×C×H×W value.</summary>
        T MaxPool(T x, long kernel, long stride, long padding = 0);

        /// <summary>Padding in PyTorch's order (last dimension first: left, right, top, bottom, …).</summary>
        T Pad(T x, long[] pads, PaddingModes mode);

        /// <summary><c>x[…, start:end:step, …]</c> along <paramref name="axis"/>.</summary>
        T Slice(T x, int axis, long start, long end, long step = 1);

        /// <summary>Resizes the two spatial dimensions of an N×C×H×W value by integer factors (nearest or bilinear, half-pixel).</summary>
        T Upsample(T x, long factorHeight, long factorWidth, InterpolationMode mode);

        /// <summary>Mean over the spatial dimensions: N×C×H×W → N×C×1×1.</summary>
        T GlobalAveragePool(T x);

        /// <summary>N×… → N×(product of the rest).</summary>
        T Flatten(T x);

        /// <summary>
        /// The same values in another shape, as ONNX <c>Reshape</c>: an entry 0 keeps the input's size of that dimension (use
        /// it for the batch, which a graph leaves open), −1 (at most one) takes what the other sizes leave.
        /// </summary>
        T Reshape(T x, params long[] shape);

        /// <summary>Dropout: while <paramref name="training"/>, zeroes each element with <paramref name="probability"/> and rescales the rest; otherwise the identity.</summary>
        T Dropout(T x, double probability, bool training);

        /// <summary>Stochastic depth: while <paramref name="training"/>, drops the whole value per sample with <paramref name="probability"/> and rescales the rest; otherwise the identity.</summary>
        T DropPath(T x, double probability, bool training);

        /// <summary>The dimensions reordered: output dimension i is input dimension <paramref name="order"/>[i] (ONNX <c>Transpose</c>).</summary>
        T Permute(T x, params int[] order);

        /// <summary>GELU with the exact normal distribution function: x · Φ(x) = x · (1 + erf(x / √2)) / 2.</summary>
        T Gelu(T x);

        /// <summary>
        /// Layer normalisation over the last dimension, (x − mean) / √(variance + <paramref name="eps"/>) · weight + bias, where
        /// <paramref name="weight"/> and <paramref name="bias"/> are parameters registered on the module being run.
        /// </summary>
        T LayerNorm(T x, Parameter weight, Parameter bias, double eps);

        /// <summary>x · <paramref name="scale"/> (with broadcasting), a parameter registered on the module being run (ConvNeXt's layer scale).</summary>
        T Scale(T x, Parameter scale);
    }

    /// <summary>
    /// Base of the library's networks and of a user's own: the forward pass is written once, in
    /// <see cref="Forward{T}"/>, over <see cref="IOperations{T}"/>; the same code trains, scores, exports to ONNX and is
    /// measured by the diagnostics. Children are registered explicitly under their state-dict names (torchvision's),
    /// never by C# field name: TorchSharp's <c>register_module</c> calls <c>RegisterComponents()</c> on every child it
    /// adds, which by default registers each module-typed field under the field's name; for a module nested in another
    /// (a ResNet as a U-Net encoder) that would add duplicate keys.
    /// </summary>
    public abstract class ResidualModule : nn.Module<Tensor, Tensor>
    {
        /// <summary>Creates the module.</summary>
        protected ResidualModule(string name) : base(name)
        {
        }

        /// <summary>The module's computation on <paramref name="input"/>, in inference mode when <c>training</c> is false.</summary>
        public abstract T Forward<T>(IOperations<T> ops, T input)
            where T : class;

        /// <inheritdoc />
        public sealed override Tensor forward(Tensor input) => Forward(TensorOperations.Instance, input);

        /// <summary>
        /// The parameter registered on this module under <paramref name="name"/>, looked up at each use: moving the module to
        /// another type or device, or loading weights, may replace the parameter object.
        /// </summary>
        protected Parameter OwnParameter(string name) =>
            get_parameter(name) ?? throw new InvalidOperationException($"{GetType().Name} has no parameter '{name}'; register it in the constructor.");

        /// <summary>Does nothing: every child is registered explicitly by the constructor.</summary>
        protected sealed override void RegisterComponents()
        {
        }
    }

    /// <summary>
    /// A block the diagnostics measure one by one (gradient flow, Jacobians, Lipschitz bounds): a function of its input
    /// whose residual paths, if any, are separated by <see cref="IOperations{T}.Fork"/> and joined by
    /// <see cref="IOperations{T}.Residual"/>.
    /// </summary>
    public abstract class ResidualBlock : ResidualModule
    {
        /// <summary>Creates the block.</summary>
        protected ResidualBlock(string name) : base(name)
        {
        }
    }
}
