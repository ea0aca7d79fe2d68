using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>
    /// Where the gradient goes in a residual network: one forward/backward pass over a batch, with the gradient's norm at each
    /// block's input and its split between the residual branch and the identity path. The identity shortcut makes
    /// ∂L/∂x = ∂L/∂y·(I + ∂F/∂x); this shows both terms on the user's own model and data.
    /// </summary>
    public static class GradientFlow
    {
        /// <summary>
        /// Runs <paramref name="inputs"/> through <paramref name="module"/>, takes the mean cross-entropy against
        /// <paramref name="targets"/> and differentiates it. The network is in evaluation mode (no dropout, no stochastic depth)
        /// and, by default, BatchNorm uses its running statistics (<see cref="BatchNormStatistics"/>). Nothing of the module
        /// changes: no parameter's <c>.grad</c>, no running statistic, no mode.
        /// </summary>
        /// <param name="module">A ResNet, DenseNet or U-Net of <see cref="ResidualModels"/> (on any device).</param>
        /// <param name="inputs">A batch of images, N×C×H×W, in the layout and normalisation the network expects.</param>
        /// <param name="targets">Class indices: N for classifiers, N×H×W for segmentation (int64).</param>
        /// <param name="statistics">How BatchNorm normalises during the pass.</param>
        /// <exception cref="ArgumentException">The module has no residual or dense blocks, or the targets do not fit the output.</exception>
        public static GradientFlowReport Measure(nn.Module<Tensor, Tensor> module, Tensor inputs, Tensor targets, BatchNormStatistics statistics = BatchNormStatistics.Running)
        {
            if (module is null) throw new ArgumentNullException(nameof(module));
            if (inputs is null) throw new ArgumentNullException(nameof(inputs));
            if (targets is null) throw new ArgumentNullException(nameof(targets));
            if (inputs.dim() != 4) throw new ArgumentException($"The inputs must be a batch N×C×H×W; got shape [{string.Join(", ", inputs.shape)}].", nameof(inputs));
            var blocks = DiagnosticBlocks.Of(module);
            Device device = module.parameters().First().device;

            using var scope = NewDisposeScope();
            using var mode = DiagnosticBlocks.MeasuringMode(module, statistics);
            using var enableGrad = torch.enable_grad();
            var blockInputs = new Tensor?[blocks.Count];
            var paths = new (Tensor Branch, Tensor Identity)?[blocks.Count];
            // Each block reads a view of its input: the view's gradient is ∂L/∂x at the block input, whatever the
            // surrounding containers do with their intermediate tensors. An input outside the graph (the images
            // themselves, for a U-Net's first level) becomes a leaf that requires its gradient.
            var probe = new ProbeOperations(blocks,
                input: (index, x) =>
                {
                    Tensor view = x.requires_grad ? x.view_as(x) : x.detach().requires_grad_(true);
                    blockInputs[index] = view;
                    return view;
                },
                paths: (index, branch, identity) => paths[index] = (branch, identity));

            Tensor logits = probe.Run(module, inputs.to(device));
            Tensor loss = CrossEntropy(logits, targets.to(device));
            // LibTorch aborts the process (it does not throw) when asked for the gradient of a tensor outside the graph.
            if (!loss.requires_grad) throw new InvalidOperationException("The loss does not depend on any block's input; the module's output bypasses its blocks.");
            var named = module.named_parameters().Where(p => p.parameter.requires_grad).ToList();
            var wanted = new List<Tensor>();
            for (int b = 0; b < blocks.Count; b++)
            {
                wanted.Add(blockInputs[b] ?? throw new InvalidOperationException($"Block '{blocks[b].Name}' did not run in the forward pass; it cannot be measured."));
                if (paths[b] is var (branch, identity))
                {
                    wanted.Add(branch);
                    wanted.Add(identity);
                }
            }

            int blockTensors = wanted.Count;
            wanted.AddRange(named.Select(p => (Tensor)p.parameter));
            IList<Tensor> gradients = torch.autograd.grad(new[] { loss }, wanted, retain_graph: false, create_graph: false, allow_unused: true);

            var inputNorms = new double[blocks.Count];
            var branchNorms = new double[blocks.Count];
            var identityNorms = new double[blocks.Count];
            int at = 0;
            for (int b = 0; b < blocks.Count; b++)
            {
                inputNorms[b] = Norm(gradients[at++]);
                if (paths[b] is null)
                {
                    branchNorms[b] = identityNorms[b] = double.NaN;
                    continue;
                }

                branchNorms[b] = Norm(gradients[at++]);
                identityNorms[b] = Norm(gradients[at++]);
            }

            var groups = new Dictionary<string, double>(StringComparer.Ordinal);
            for (int p = 0; p < named.Count; p++)
            {
                string group = GroupOf(named[p].name, blocks);
                double norm = Norm(gradients[blockTensors + p]);
                groups[group] = groups.TryGetValue(group, out double sum) ? Math.Sqrt(sum * sum + norm * norm) : norm;
            }

            return new GradientFlowReport(blocks.Select(b => b.Name).ToArray(), inputNorms, branchNorms, identityNorms, groups, loss.item<float>());
        }

        internal static Tensor CrossEntropy(Tensor logits, Tensor targets)
        {
            bool classifier = logits.dim() == 2 && targets.dim() == 1 && targets.shape[0] == logits.shape[0];
            bool segmenter = logits.dim() == 4 && targets.dim() == 3 && targets.shape[0] == logits.shape[0]
                && targets.shape[1] == logits.shape[2] && targets.shape[2] == logits.shape[3];
            if (!classifier && !segmenter)
                throw new ArgumentException(
                    $"The targets (shape [{string.Join(", ", targets.shape)}]) do not fit the network's output (shape [{string.Join(", ", logits.shape)}]): "
                    + "give class indices, N for a classifier or N×H×W for a segmenter.", nameof(targets));
            return nn.functional.cross_entropy(logits, targets.to_type(ScalarType.Int64), ignore_index: -1);
        }

        private static double Norm(Tensor? gradient) => gradient is null || gradient.IsInvalid ? 0.0 : gradient.norm().item<float>();

        private static string GroupOf(string parameter, IReadOnlyList<DiagnosticBlock> blocks)
        {
            foreach (DiagnosticBlock block in blocks)
                if (parameter.StartsWith(block.Name + ".", StringComparison.Ordinal)) return block.Name;
            int dot = parameter.IndexOf('.', StringComparison.Ordinal);
            return dot < 0 ? parameter : parameter[..dot];
        }
    }
}
