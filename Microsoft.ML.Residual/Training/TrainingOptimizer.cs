using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
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
    /// <remarks>
    /// SGD and AdamW are this library's own implementation of the update rules of TorchSharp 0.107's (and PyTorch's)
    /// <c>torch.optim.SGD</c> (dampening 0) and <c>torch.optim.AdamW</c> (β = 0.9, 0.999, ε = 1e-8, no AMSGrad), with the
    /// same numerics. TorchSharp's optimisers hand libtorch Scalars that nothing keeps alive, which the garbage
    /// collector can free during the native call; here every Scalar is held for its call (<see cref="ScalarSafe"/>).
    /// </remarks>
    public sealed class TrainingOptimizer : IDisposable
    {
        private const double Beta1 = 0.9;
        private const double Beta2 = 0.999;
        private const double Epsilon = 1e-8;
        private const string StepSuffix = ".step";
        private const string MomentumSuffix = ".momentum_buffer";
        private const string ExpAvgSuffix = ".exp_avg";
        private const string ExpAvgSqSuffix = ".exp_avg_sq";
        private const string KindKey = "optimizer";

        private readonly OptimizerKind kind;
        private readonly double momentum;
        private readonly bool nesterov;
        private readonly double weightDecay;
        private readonly double[] rates;
        private readonly ParameterState[][] states;
        private bool disposed;

        // Per parameter: the steps it was updated in and the running tensors (SGD: First = the momentum buffer, made at the
        // first update; AdamW: First = exp_avg, Second = exp_avg_sq, zeros from the start, as TorchSharp makes them).
        private sealed class ParameterState
        {
            public ParameterState(string name, Parameter parameter)
            {
                Name = name;
                Parameter = parameter;
            }

            public string Name { get; }

            public Parameter Parameter { get; }

            public long Step { get; set; }

            public Tensor? First { get; set; }

            public Tensor? Second { get; set; }

            public void DisposeTensors()
            {
                First?.Dispose();
                Second?.Dispose();
                First = Second = null;
            }
        }

        private TrainingOptimizer(TrainingOptions options, IReadOnlyList<ParameterGroup> groups)
        {
            kind = options.Optimizer;
            momentum = options.Momentum;
            nesterov = options.Nesterov && options.Momentum > 0;
            weightDecay = options.WeightDecay;
            Groups = groups;
            rates = groups.Select(g => options.LearningRate * g.LearningRateFactor).ToArray();
            states = groups.Select(g => g.Parameters.Select(p => new ParameterState(p.Name, p.Parameter)).ToArray()).ToArray();
            if (kind == OptimizerKind.AdamW)
            {
                foreach (ParameterState state in states.SelectMany(s => s))
                {
                    state.First = zeros_like(state.Parameter).DetachFromDisposeScope();
                    state.Second = zeros_like(state.Parameter).DetachFromDisposeScope();
                }
            }
        }

        /// <summary>The groups, in the optimiser's order.</summary>
        public IReadOnlyList<ParameterGroup> Groups { get; }

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
            if (options.Optimizer is not (OptimizerKind.Sgd or OptimizerKind.AdamW)) throw new ArgumentException($"Unknown optimiser {options.Optimizer}.", nameof(options));
            options.Validate();
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

            return new TrainingOptimizer(options, groups);
        }

        /// <summary>Sets every group's rate to <paramref name="rate"/> times its factor.</summary>
        public void SetLearningRate(double rate)
        {
            for (int i = 0; i < rates.Length; i++) rates[i] = rate * Groups[i].LearningRateFactor;
        }

        /// <summary>The rates the groups use now.</summary>
        public IReadOnlyList<double> LearningRates => rates.ToArray();

        /// <summary>Sets the gradients of the optimised parameters to zero in place (as TorchSharp's <c>zero_grad</c>); parameters without one keep none.</summary>
        public void ZeroGrad()
        {
            ThrowIfDisposed();
            foreach (ParameterState state in states.SelectMany(s => s))
            {
                using Tensor? grad = state.Parameter.grad;
                grad?.zero_();
            }
        }

        /// <summary>Applies one update to every parameter that has a gradient (parameters without one are left alone).</summary>
        public void Step()
        {
            ThrowIfDisposed();
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            for (int g = 0; g < states.Length; g++)
            {
                double rate = rates[g];
                double decay = Groups[g].Decay ? weightDecay : 0;
                foreach (ParameterState state in states[g])
                {
                    Tensor? grad = state.Parameter.grad;
                    if (grad is null) continue;
                    state.Step++;
                    if (kind == OptimizerKind.Sgd) SgdUpdate(state, grad, rate, decay);
                    else AdamWUpdate(state, grad, rate, decay);
                }
            }
        }

        // torch.optim.SGD with dampening 0: d = g + λθ; b = d at the first step, then b = μb + d; d = d + μb (Nesterov) or b; θ -= lr·d.
        private void SgdUpdate(ParameterState state, Tensor grad, double rate, double decay)
        {
            Tensor direction = decay != 0 ? grad.PlusScaled(state.Parameter, decay) : grad;
            if (momentum != 0)
            {
                if (state.First is null) state.First = direction.clone().detach().DetachFromDisposeScope();
                else state.First.TimesInPlace(momentum).PlusInPlace(direction);
                direction = nesterov ? direction.PlusScaled(state.First, momentum) : state.First;
            }

            state.Parameter.PlusScaledInPlace(direction, -rate);
        }

        // torch.optim.AdamW: θ *= 1 − lr·λ; m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; θ −= lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε).
        private static void AdamWUpdate(ParameterState state, Tensor grad, double rate, double decay)
        {
            Tensor expAvg = state.First!, expAvgSq = state.Second!;
            // With no decay the factor is exactly 1 (TorchSharp multiplies by it anyway; skipping changes no bit).
            if (decay != 0) state.Parameter.TimesInPlace(1 - rate * decay);
            double biasCorrection1 = 1 - Math.Pow(Beta1, state.Step);
            double biasCorrection2 = 1 - Math.Pow(Beta2, state.Step);
            expAvg.TimesInPlace(Beta1).PlusScaledInPlace(grad, 1 - Beta1);
            expAvgSq.TimesInPlace(Beta2).PlusProductInPlace(grad, grad, 1 - Beta2);
            Tensor denominator = expAvgSq.sqrt().DividedBy(Math.Sqrt(biasCorrection2)).PlusInPlace(Epsilon);
            state.Parameter.PlusQuotientInPlace(expAvg, denominator, -(rate / biasCorrection1));
        }

        /// <summary>
        /// Writes the optimiser's state to <paramref name="path"/> as safetensors: per parameter (by state-dict name)
        /// <c>name.step</c> (int64, the updates so far) and the running tensors, <c>name.momentum_buffer</c> (SGD with
        /// momentum, once updated) or <c>name.exp_avg</c> and <c>name.exp_avg_sq</c> (AdamW). The file is replaced atomically.
        /// </summary>
        /// <param name="path">The file to create or replace.</param>
        public void SaveState(string path)
        {
            ThrowIfDisposed();
            using var scope = NewDisposeScope();
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (ParameterState state in states.SelectMany(s => s))
            {
                tensors.Add(new(state.Name + StepSuffix, tensor(state.Step)));
                if (kind == OptimizerKind.Sgd)
                {
                    if (state.First is not null) tensors.Add(new(state.Name + MomentumSuffix, state.First));
                }
                else
                {
                    tensors.Add(new(state.Name + ExpAvgSuffix, state.First!));
                    tensors.Add(new(state.Name + ExpAvgSqSuffix, state.Second!));
                }
            }

            SafeTensors.Write(path, tensors, new Dictionary<string, string> { [KindKey] = KindName(kind) });
        }

        /// <summary>
        /// Replaces the optimiser's state by the one <see cref="SaveState"/> wrote to <paramref name="path"/> for the same
        /// parameters and optimiser. The whole file is checked before anything changes.
        /// </summary>
        /// <param name="path">The file to read.</param>
        /// <exception cref="InvalidDataException">The file was written for another optimiser or other parameters: a tensor is missing, extra, or of another shape or dtype.</exception>
        public void LoadState(string path)
        {
            ThrowIfDisposed();
            using TensorDictionary file = SafeTensors.Read(path);
            InvalidDataException Mismatch(string? name, string problem) => new(
                $"The optimiser state '{path}'{(name is null ? string.Empty : $", tensor '{name}'")}: {problem} "
                + "The file was written for another optimiser or other parameters; load it with the options and model that wrote it.");

            if (!file.Metadata.TryGetValue(KindKey, out string? written) || written != KindName(kind))
                throw Mismatch(null, $"it holds the state of the optimiser '{written ?? "(none)"}', not of {KindName(kind)}.");

            var expected = new HashSet<string>(StringComparer.Ordinal);
            var loaded = new List<(ParameterState State, long Step, Tensor? First, Tensor? Second)>();
            foreach (ParameterState state in states.SelectMany(s => s))
            {
                string stepName = state.Name + StepSuffix;
                Tensor step = Required(stepName, Array.Empty<long>(), ScalarType.Int64);
                long steps = step.item<long>();
                if (steps < 0) throw Mismatch(stepName, $"the step count {steps} is negative.");
                if (kind == OptimizerKind.Sgd)
                {
                    Tensor? buffer = momentum != 0 && steps > 0 ? Required(state.Name + MomentumSuffix, state.Parameter.shape, state.Parameter.dtype) : null;
                    loaded.Add((state, steps, buffer, null));
                }
                else
                {
                    loaded.Add((state, steps, Required(state.Name + ExpAvgSuffix, state.Parameter.shape, state.Parameter.dtype),
                        Required(state.Name + ExpAvgSqSuffix, state.Parameter.shape, state.Parameter.dtype)));
                }
            }

            if (file.Keys.FirstOrDefault(k => !expected.Contains(k)) is string extra)
                throw Mismatch(extra, "this optimiser has no such state (no parameter of that name, or no momentum buffer for it).");

            foreach (var (state, steps, first, second) in loaded)
            {
                state.DisposeTensors();
                state.Step = steps;
                state.First = first?.to(state.Parameter.device, copy: true).DetachFromDisposeScope();
                state.Second = second?.to(state.Parameter.device, copy: true).DetachFromDisposeScope();
            }

            Tensor Required(string name, long[] shape, ScalarType dtype)
            {
                expected.Add(name);
                if (!file.TryGetValue(name, out Tensor? value)) throw Mismatch(name, "the file has no such tensor.");
                if (value.dtype != dtype) throw Mismatch(name, $"its dtype is {value.dtype}, not {dtype}.");
                if (!value.shape.SequenceEqual(shape)) throw Mismatch(name, $"its shape is {StateDictShapeMismatch.FormatShape(value.shape)}, not {StateDictShapeMismatch.FormatShape(shape)}.");
                return value;
            }
        }

        /// <summary>Frees the optimiser's state tensors.</summary>
        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            foreach (ParameterState state in states.SelectMany(s => s)) state.DisposeTensors();
        }

        private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

        private static string KindName(OptimizerKind kind) => kind == OptimizerKind.Sgd ? "sgd" : "adamw";
    }
}
