using System;
using System.Collections.Generic;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>
    /// The tensor operations with probes: the network's own forward pass runs, and each measured block's input can be read
    /// or replaced, and its branch and shortcut receive two views of that input (through <see cref="IOperations{T}.Fork"/>)
    /// whose gradients tell the two paths apart. Nothing is set on the modules.
    /// </summary>
    internal sealed class ProbeOperations : TensorOperations
    {
        private readonly Dictionary<nn.Module, int> indices = new(ReferenceEqualityComparer.Instance);
        private readonly Func<int, Tensor, Tensor>? input;
        private readonly Action<int, Tensor, Tensor>? paths;
        private readonly Stack<int> running = new();

        /// <param name="blocks">The blocks to probe; the callbacks receive their index.</param>
        /// <param name="input">Receives a block's input and returns what the block reads instead.</param>
        /// <param name="paths">Receives the branch's and the shortcut's views of a block's input.</param>
        public ProbeOperations(IReadOnlyList<DiagnosticBlock> blocks, Func<int, Tensor, Tensor>? input = null, Action<int, Tensor, Tensor>? paths = null)
        {
            for (int b = 0; b < blocks.Count; b++) indices[blocks[b].Module] = b;
            this.input = input;
            this.paths = paths;
        }

        /// <summary>Runs <paramref name="module"/> on <paramref name="x"/> with the probes in place.</summary>
        /// <exception cref="ArgumentException">The module is neither a <see cref="ResidualModule"/> nor a <c>Sequential</c>: its own forward pass cannot be probed.</exception>
        public Tensor Run(nn.Module<Tensor, Tensor> module, Tensor x)
        {
            if (module is not (ResidualModule or Sequential))
            {
                throw new ArgumentException(
                    $"The diagnostics run the network's own forward pass, written over IOperations; {module.GetType().Name} is not a ResidualModule "
                    + "(nor a Sequential of modules). Measure the network itself rather than a module that wraps it.", nameof(module));
            }

            return Call(module, x);
        }

        /// <inheritdoc />
        public override Tensor Call(nn.Module module, Tensor x)
        {
            if (module is Sequential sequence) return CallEach(sequence, x); // every block inside runs with the probes
            if (module is not ResidualModule residual) return base.Call(module, x);
            int index = indices.TryGetValue(module, out int b) ? b : -1;
            if (index >= 0 && input != null) x = input(index, x);
            running.Push(index);
            try
            {
                return residual.Forward(this, x);
            }
            finally
            {
                running.Pop();
            }
        }

        /// <inheritdoc />
        public override IReadOnlyList<Tensor> CallStages(nn.Module encoder, Tensor x)
        {
            running.Push(-1);
            try
            {
                return StageEncoder(encoder).ForwardStages(this, x);
            }
            finally
            {
                running.Pop();
            }
        }

        /// <inheritdoc />
        public override (Tensor Branch, Tensor Shortcut) Fork(Tensor x)
        {
            if (paths is null || running.Count == 0 || running.Peek() < 0) return (x, x);
            Tensor branch = x.view_as(x), shortcut = x.view_as(x);
            paths(running.Peek(), branch, shortcut);
            return (branch, shortcut);
        }
    }
}
