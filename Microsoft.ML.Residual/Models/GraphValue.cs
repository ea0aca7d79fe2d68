using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A value of a graph being exported: its name in the graph and what it holds for the example input the export
    /// traces (so that shapes are known at every step).
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
}
