using System.Collections.Generic;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>Builds a fitted chain step by step, each step fitted on (or applied to) the output of the steps before it.</summary>
    internal sealed class ChainBuilder
    {
        private readonly List<ITransformer> parts = new();

        public ChainBuilder(IDataView input) => Current = input;

        /// <summary>The data as the steps so far leave it.</summary>
        public IDataView Current { get; private set; }

        /// <summary>Appends a fitted step.</summary>
        public ChainBuilder Add(ITransformer? transformer)
        {
            if (transformer is null) return this;
            parts.Add(transformer);
            Current = transformer.Transform(Current);
            return this;
        }

        /// <summary>Fits <paramref name="estimator"/> on <see cref="Current"/> and appends it.</summary>
        public ChainBuilder Fit(IEstimator<ITransformer> estimator) => Add(estimator.Fit(Current));

        public TransformerChain<ITransformer> Build() => new(parts.ToArray());
    }
}
