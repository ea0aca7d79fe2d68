using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>One parameter group: its parameters, whether weight decay applies, and its learning-rate factor.</summary>
    /// <param name="Name">For messages: e.g. "backbone, decay".</param>
    /// <param name="Parameters">The parameters, by state-dict name.</param>
    /// <param name="Decay">Whether weight decay applies.</param>
    /// <param name="LearningRateFactor">Multiplies the schedule's rate (discriminative learning rates).</param>
    public sealed record ParameterGroup(string Name, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, bool Decay, double LearningRateFactor);

    /// <summary>
    /// The optimiser with its parameter groups: weight decay only on weights of two or more dimensions
    /// (not on BatchNorm γ/β and biases, unless asked), and an optional lower learning rate for the backbone
    /// than for the classifier head (fastai's discriminative rates).
    /// </summary>
    public sealed class TrainingOptimizer : IDisposable
    {
        private readonly optim.Optimizer optimizer;

        private TrainingOptimizer(optim.Optimizer optimizer, IReadOnlyList<ParameterGroup> groups)
        {
            this.optimizer = optimizer;
            Groups = groups;
        }

        /// <summary>The groups, in the optimiser's order.</summary>
        public IReadOnlyList<ParameterGroup> Groups { get; }

        /// <summary>The TorchSharp optimiser (for its state).</summary>
        public optim.Optimizer Optimizer => optimizer;

        /// <summary>Groups the module's parameters and creates the optimiser of <paramref name="options"/>.</summary>
        /// <param name="module">The network.</param>
        /// <param name="options">Optimiser, rate, momentum, weight decay.</param>
        /// <param name="headPrefix">State-dict prefix of the classifier head (e.g. <c>"fc."</c>); null: one group for everything.</param>
        /// <param name="backboneLearningRateFactor">Rate factor of everything outside the head.</param>
        /// <param name="headOnly">Optimise only the head's parameters (the backbone frozen); needs <paramref name="headPrefix"/>.</param>
        public static TrainingOptimizer Create(nn.Module module, TrainingOptions options, string? headPrefix = null, double backboneLearningRateFactor = 1.0, bool headOnly = false)
        {
            if (headOnly && headPrefix is null) throw new ArgumentException("Optimising only the head needs the head's prefix.", nameof(headPrefix));
            return Create(module, options, headPrefix == null ? null : name => !name.StartsWith(headPrefix, StringComparison.Ordinal), backboneLearningRateFactor, headOnly,
                headPrefix ?? string.Empty);
        }

        /// <summary>As the public overload, with the backbone given by a predicate on parameter names (everything else is the "head").</summary>
        internal static TrainingOptimizer Create(nn.Module module, TrainingOptions options, Func<string, bool>? isBackbone, double backboneLearningRateFactor, bool headOnly, string headDescription)
        {
            if (module is null) throw new ArgumentNullException(nameof(module));
            if (options is null) throw new ArgumentNullException(nameof(options));
            if (!(backboneLearningRateFactor > 0)) throw new ArgumentOutOfRangeException(nameof(backboneLearningRateFactor), "must be positive");
            var buckets = new Dictionary<(bool Head, bool Decay), List<(string, Parameter)>>();
            foreach (var (name, parameter) in module.named_parameters())
            {
                bool head = isBackbone != null && !isBackbone(name);
                if (headOnly && !head) continue;
                bool decay = options.DecayNormsAndBiases || parameter.dim() > 1;
                if (!buckets.TryGetValue((head, decay), out var list)) buckets[(head, decay)] = list = new List<(string, Parameter)>();
                list.Add((name, parameter));
            }

            var groups = buckets
                .OrderBy(b => b.Key.Head).ThenByDescending(b => b.Key.Decay)
                .Select(b => new ParameterGroup(
                    $"{(isBackbone == null ? "all" : b.Key.Head ? "head" : "backbone")}, {(b.Key.Decay ? "decay" : "no decay")}",
                    b.Value, b.Key.Decay, b.Key.Head || isBackbone == null ? 1.0 : backboneLearningRateFactor))
                .ToList();
            if (groups.Count == 0)
                throw new ArgumentException(headOnly ? $"The module has no trainable parameters outside the backbone ({headDescription})." : "The module has no parameters to train.", nameof(module));

            optim.Optimizer optimizer = options.Optimizer switch
            {
                OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(
                    g.Parameters.Select(p => p.Parameter), options.LearningRate * g.LearningRateFactor, options.Momentum, 0,
                    g.Decay ? options.WeightDecay : 0, options.Nesterov && options.Momentum > 0, false)), options.LearningRate),
                OptimizerKind.AdamW => optim.AdamW(groups.Select(g => new AdamW.ParamGroup(
                    g.Parameters.Select(p => p.Parameter), options.LearningRate * g.LearningRateFactor, 0.9, 0.999, 1e-8,
                    g.Decay ? options.WeightDecay : 0, false, false)), options.LearningRate),
                _ => throw new ArgumentException($"Unknown optimiser {options.Optimizer}.", nameof(options)),
            };
            return new TrainingOptimizer(optimizer, groups);
        }

        /// <summary>Sets every group's rate to <paramref name="rate"/> times its factor.</summary>
        public void SetLearningRate(double rate)
        {
            int index = 0;
            foreach (var group in optimizer.ParamGroups) group.LearningRate = rate * Groups[index++].LearningRateFactor;
        }

        /// <summary>The rates the groups use now.</summary>
        public IReadOnlyList<double> LearningRates => optimizer.ParamGroups.Select(g => g.LearningRate).ToList();

        /// <summary>Writes the optimiser's state (momentum buffers, Adam moments) to <paramref name="path"/>.</summary>
        public void SaveState(string path) => ((OptimizerHelper)optimizer).save_state_dict(path);

        /// <summary>Reads state written by <see cref="SaveState"/> for the same groups.</summary>
        public void LoadState(string path) => ((OptimizerHelper)optimizer).load_state_dict(path);

        /// <summary>Clears the gradients.</summary>
        public void ZeroGrad() => optimizer.zero_grad();

        /// <summary>Applies one update.</summary>
        public void Step() => optimizer.step();

        /// <inheritdoc />
        public void Dispose() => optimizer.Dispose();
    }
}
