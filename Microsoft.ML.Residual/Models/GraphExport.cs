using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A value of a graph being exported: its name in the graph and what it holds for the example input
    /// the export traces (so that shapes are known at every step).
    /// </summary>
    public sealed class GraphValue
    {
        /// <summary>Creates a value.</summary>
        public GraphValue(string name, Tensor example)
        {
            Name = name;
            Example = example;
        }

        /// <summary>The value's name in the graph.</summary>
        public string Name { get; }

        /// <summary>The value computed for the example input.</summary>
        public Tensor Example { get; }

        /// <summary>The example's shape (the batch dimension is dynamic in the exported graph).</summary>
        public long[] Shape => Example.shape;
    }

    /// <summary>
    /// What a module's graph emission may use: its registered children and a small set of operators. Each
    /// operator also runs on the example values, so an emission mirrors <c>forward</c> step by step. The
    /// ONNX exporter implements it; modules never depend on a file format.
    /// </summary>
    public interface IGraphBuilder
    {
        /// <summary>
        /// Emits <paramref name="module"/> — a descendant of the module being emitted, found by reference, so
        /// its parameters keep their state-dict names — applied to <paramref name="input"/>.
        /// </summary>
        GraphValue Call(nn.Module module, GraphValue input);

        /// <summary>Emits the stage outputs of a descendant backbone (see <see cref="IGraphStageEncoder"/>).</summary>
        IReadOnlyList<GraphValue> CallStages(nn.Module encoder, GraphValue input);

        /// <summary>max(x, 0).</summary>
        GraphValue Relu(GraphValue x);

        /// <summary>1 / (1 + exp(−x)).</summary>
        GraphValue Sigmoid(GraphValue x);

        /// <summary>a + b (with broadcasting).</summary>
        GraphValue Add(GraphValue a, GraphValue b);

        /// <summary>a − b (with broadcasting).</summary>
        GraphValue Sub(GraphValue a, GraphValue b);

        /// <summary>a · b, element-wise (with broadcasting).</summary>
        GraphValue Mul(GraphValue a, GraphValue b);

        /// <summary>x · scale + shift (each step emitted only when it changes the value).</summary>
        GraphValue Affine(GraphValue x, double scale, double shift);

        /// <summary>Concatenation along <paramref name="axis"/>.</summary>
        GraphValue Concat(IReadOnlyList<GraphValue> values, int axis);

        /// <summary>2-D max pooling of an N×C×H×W value.</summary>
        GraphValue MaxPool(GraphValue x, long kernel, long stride, long padding = 0);

        /// <summary>Padding in PyTorch's order (last dimension first: left, right, top, bottom, …).</summary>
        GraphValue Pad(GraphValue x, long[] pads, PaddingModes mode);

        /// <summary><c>x[…, start:end:step, …]</c> along <paramref name="axis"/>.</summary>
        GraphValue Slice(GraphValue x, int axis, long start, long end, long step = 1);

        /// <summary>Resizes the two spatial dimensions of an N×C×H×W value by integer factors.</summary>
        GraphValue Upsample(GraphValue x, long factorHeight, long factorWidth, InterpolationMode mode);

        /// <summary>Mean over the spatial dimensions: N×C×H×W → N×C×1×1.</summary>
        GraphValue GlobalAveragePool(GraphValue x);

        /// <summary>N×… → N×(product of the rest).</summary>
        GraphValue Flatten(GraphValue x);
    }

    /// <summary>A module that emits its own graph (its inference-mode computation) through an <see cref="IGraphBuilder"/>.</summary>
    public interface IGraphExportable
    {
        /// <summary>Emits the module's inference-mode computation on <paramref name="input"/> and returns its output.</summary>
        GraphValue ExportGraph(IGraphBuilder graph, GraphValue input);
    }

    /// <summary>A backbone that can emit the stage outputs <see cref="IStageEncoder.ForwardStages"/> returns.</summary>
    public interface IGraphStageEncoder : IStageEncoder
    {
        /// <summary>Emits the backbone and returns its stage outputs, in the order of <see cref="IStageEncoder.StageChannels"/>.</summary>
        IReadOnlyList<GraphValue> ExportStages(IGraphBuilder graph, GraphValue input);
    }
}
