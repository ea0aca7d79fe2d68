using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Sweeps;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>
    /// The hyperparameters a sweep tries: each one names a property of the task's options
    /// (<see cref="ImageClassifierOptions"/> or <see cref="SegmenterOptions"/>, e.g. "Architecture", "LearningRate",
    /// "BatchSize") and says which values it may take. Built fluently:
    /// <c>s.Choice("Architecture", "resnet20", "preact_resnet18").LogUniform("LearningRate", 3e-4, 3e-3)</c>.
    /// </summary>
    public sealed class SearchSpace
    {
        private readonly List<SearchParameter> parameters = new();

        /// <summary>The parameters, in the order they were added.</summary>
        internal IReadOnlyList<SearchParameter> Parameters => parameters;

        /// <summary>One of the given strings (e.g. architecture names, or enum members such as "AdamW").</summary>
        public SearchSpace Choice(string name, params string[] values) => AddChoice(name, values);

        /// <summary>One of the given integers (e.g. batch sizes).</summary>
        public SearchSpace Choice(string name, params int[] values) => AddChoice(name, values);

        /// <summary>One of the given numbers.</summary>
        public SearchSpace Choice(string name, params double[] values) => AddChoice(name, values);

        /// <summary>One of the given values of any type the option accepts (e.g. <c>OptimizerKind.Sgd, OptimizerKind.AdamW</c>, or booleans).</summary>
        public SearchSpace Choice(string name, params object[] values) => AddChoice(name, values);

        /// <summary>A number drawn uniformly from [<paramref name="min"/>, <paramref name="max"/>] (rounded for an integer option).</summary>
        public SearchSpace Uniform(string name, double min, double max) => AddRange(name, min, max, logarithmic: false);

        /// <summary>
        /// A positive number drawn uniformly on a logarithmic scale from [<paramref name="min"/>, <paramref name="max"/>]: as
        /// many values between 0.001 and 0.01 as between 0.01 and 0.1 (learning rates, weight decay).
        /// </summary>
        public SearchSpace LogUniform(string name, double min, double max)
        {
            if (!(min > 0)) throw new ArgumentOutOfRangeException(nameof(min), min, $"The log-uniform range of '{name}' must have a positive minimum.");
            return AddRange(name, min, max, logarithmic: true);
        }

        private SearchSpace AddChoice<T>(string name, IReadOnlyList<T> values)
        {
            CheckName(name);
            if (values is null || values.Count == 0) throw new ArgumentException($"The choice '{name}' needs at least one value.", nameof(values));
            if (values.Any(v => v is null)) throw new ArgumentException($"The choice '{name}' has a null value.", nameof(values));
            if (values.Any(v => v is double d && !double.IsFinite(d))) throw new ArgumentException($"The choice '{name}' has a value that is not a finite number.", nameof(values));
            parameters.Add(SearchParameter.Choice(name, values.Select(v => (object)v!).ToArray()));
            return this;
        }

        private SearchSpace AddRange(string name, double min, double max, bool logarithmic)
        {
            CheckName(name);
            if (!double.IsFinite(min) || !double.IsFinite(max) || min > max)
                throw new ArgumentOutOfRangeException(nameof(max), max, $"The range of '{name}' must be finite with min ≤ max (got [{min}, {max}]).");
            parameters.Add(SearchParameter.Range(name, min, max, logarithmic));
            return this;
        }

        private void CheckName(string name)
        {
            if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A search-space parameter needs the name of an option.", nameof(name));
            if (parameters.Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"The search space already has a parameter '{name}'.", nameof(name));
        }
    }
}
