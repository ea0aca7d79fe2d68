using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Diagnostics
{
    /// <summary>How BatchNorm layers normalise while a diagnostic runs.</summary>
    public enum BatchNormStatistics
    {
        /// <summary>With their running statistics, as the network scores (at initialisation: mean 0, variance 1, so BatchNorm is the identity).</summary>
        Running,

        /// <summary>With each batch's own statistics, as in a training step. The running statistics are restored afterwards.</summary>
        Batch,
    }

    /// <summary>
    /// One block the diagnostics look at: a <see cref="ResidualBlock"/> (a <see cref="ResNetBlock"/>, also inside a U-Net
    /// encoder, a <see cref="DenseBlock"/>, a U-Net's level, or a user's own). Its "input" is what its layers read: for a
    /// U-Net decoder level, the features after upsampling and concatenation with the skip.
    /// </summary>
    internal sealed class DiagnosticBlock
    {
        public DiagnosticBlock(string name, ResidualBlock module)
        {
            Name = name;
            Module = module;
        }

        /// <summary>The block itself.</summary>
        public ResidualBlock Module { get; }

        /// <summary>The block's state-dict prefix.</summary>
        public string Name { get; }

        /// <summary>The block as a function of its input.</summary>
        public Tensor Apply(Tensor input) => Module.call(input);
    }

    /// <summary>
    /// The blocks the diagnostics look at, in forward order, and a scope that puts the network in the measuring mode and
    /// restores it afterwards.
    /// </summary>
    internal static class DiagnosticBlocks
    {
        public static IReadOnlyList<DiagnosticBlock> Of(nn.Module module)
        {
            var blocks = module.named_modules()
                .Where(m => m.module is ResidualBlock)
                .Select(m => new DiagnosticBlock(m.name, (ResidualBlock)m.module))
                .ToList();
            if (blocks.Count == 0)
                throw new ArgumentException(
                    $"The module ({module.GetType().Name}) has no blocks to measure; the diagnostics measure the ResidualBlock modules of a network (the residual, dense and U-Net blocks of ResidualModels' networks).",
                    nameof(module));
            return blocks;
        }

        /// <summary>
        /// Runs <paramref name="inputs"/> through <paramref name="module"/> without gradients and returns a detached copy of the
        /// input each block received (its first call, for blocks that run more than once).
        /// </summary>
        public static Tensor[] CaptureInputs(nn.Module<Tensor, Tensor> module, IReadOnlyList<DiagnosticBlock> blocks, Tensor inputs)
        {
            var captured = new Tensor?[blocks.Count];
            var probe = new ProbeOperations(blocks, input: (index, x) =>
            {
                captured[index] ??= x.detach().clone();
                return x;
            });
            using (torch.no_grad()) probe.Run(module, inputs);

            return captured.Select((x, b) => x ?? throw new InvalidOperationException($"Block '{blocks[b].Name}' did not run in the forward pass; it cannot be measured.")).ToArray();
        }

        /// <summary>
        /// Evaluation mode everywhere (no dropout, no stochastic depth); with <see cref="BatchNormStatistics.Batch"/> the
        /// BatchNorm layers normalise with batch statistics. Disposing restores every module's mode and every BatchNorm's
        /// running statistics.
        /// </summary>
        public static IDisposable MeasuringMode(nn.Module module, BatchNormStatistics statistics) => new ModeScope(module, statistics);

        private sealed class ModeScope : IDisposable
        {
            private readonly List<(nn.Module Module, bool Training)> modes;
            private readonly List<(Tensor Buffer, Tensor Saved)> buffers = new();

            public ModeScope(nn.Module module, BatchNormStatistics statistics)
            {
                // modules() leaves the module itself out; parents come before their children, so restoring in order works.
                modes = new[] { module }.Concat(module.modules()).Select(m => (m, m.training)).ToList();
                module.eval();
                if (statistics != BatchNormStatistics.Batch) return;
                using var noGrad = torch.no_grad();
                foreach (nn.Module child in module.modules().Where(m => m is BatchNorm))
                {
                    foreach (Tensor buffer in child.buffers(recurse: false)) buffers.Add((buffer, buffer.detach().clone()));
                    child.train();
                }
            }

            public void Dispose()
            {
                using (torch.no_grad())
                {
                    foreach (var (buffer, saved) in buffers)
                    {
                        buffer.copy_(saved);
                        saved.Dispose();
                    }
                }

                foreach (var (module, training) in modes) module.train(training);
            }
        }
    }
}
