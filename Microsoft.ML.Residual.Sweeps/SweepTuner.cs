using System;
using Microsoft.ML.Residual.Sweeps;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>
    /// How a sweep chooses what to train next. <see cref="Random"/>, <see cref="Grid"/> and <see cref="TreeParzen"/> train every
    /// configuration for the full epochs per trial; <see cref="SuccessiveHalving"/> trains many configurations briefly and
    /// only the best for longer.
    /// </summary>
    public abstract class SweepTuner
    {
        private protected SweepTuner()
        {
        }

        /// <summary>Random search: configurations drawn independently from the search space (Bergstra &amp; Bengio).</summary>
        public static SweepTuner Random => new ConfigurationTuner("Random", (space, seed) => new RandomSampler(space, seed));

        /// <summary>
        /// Grid search: every combination of the choices, with three evenly spaced points per range (on the log scale for
        /// log-uniform ranges), in order. The sweep ends when the grid is done.
        /// </summary>
        public static SweepTuner Grid => GridWith(pointsPerRange: 3);

        /// <summary>
        /// Model-based search: a tree-structured Parzen estimator (Bergstra et al. 2011). After a few random trials it splits
        /// the scored trials into the best quarter and the rest, models each parameter's density in both groups, and tries
        /// the candidate where the first density is largest relative to the second. Failed trials count as the worst.
        /// </summary>
        public static SweepTuner TreeParzen => new ConfigurationTuner("TreeParzen", (space, seed) => new TreeParzenSampler(space, seed));

        /// <summary>
        /// Successive halving on epochs, in its asynchronous form (ASHA, Li et al. 2020) for trials run one after another:
        /// every new configuration trains for one epoch (the first rung); a trial is continued to the next rung (×3 the
        /// epochs, the last rung being the epochs per trial) once it ranks in the top third of the trials that reached its
        /// rung; otherwise a new configuration starts. Continued trials resume from their checkpoint, under a schedule that
        /// spans the full epochs per trial, so a trial that reaches the last rung is the one an uninterrupted run gives.
        /// When no new configuration may start (trial count reached), the best trials are continued until one reaches the
        /// last rung. Poor configurations cost one epoch.
        /// </summary>
        public static SweepTuner SuccessiveHalving => SuccessiveHalvingWith(reductionFactor: 3, minEpochs: 1);

        /// <summary>Grid search with <paramref name="pointsPerRange"/> evenly spaced points for each range.</summary>
        public static SweepTuner GridWith(int pointsPerRange)
        {
            if (pointsPerRange < 1) throw new ArgumentOutOfRangeException(nameof(pointsPerRange), pointsPerRange, "A grid needs at least one point per range.");
            return new ConfigurationTuner($"Grid({pointsPerRange} points per range)", (space, _) => new GridSampler(space, pointsPerRange));
        }

        /// <summary>
        /// Successive halving with rungs at <paramref name="minEpochs"/>, ×<paramref name="reductionFactor"/>, … epochs (the
        /// last rung is the sweep's epochs per trial); the top 1/<paramref name="reductionFactor"/> of a rung continue.
        /// </summary>
        public static SweepTuner SuccessiveHalvingWith(int reductionFactor = 3, int minEpochs = 1)
        {
            if (reductionFactor < 2) throw new ArgumentOutOfRangeException(nameof(reductionFactor), reductionFactor, "The reduction factor must be at least 2.");
            if (minEpochs < 1) throw new ArgumentOutOfRangeException(nameof(minEpochs), minEpochs, "The first rung needs at least one epoch.");
            return new SuccessiveHalvingTuner(reductionFactor, minEpochs);
        }

        /// <summary>The tuner's name, as logged.</summary>
        public abstract string Name { get; }

        /// <summary>A planner for one sweep.</summary>
        internal abstract TrialPlanner CreatePlanner(SearchSpace space, int maxEpochs, int? maxTrials, int seed);

        /// <inheritdoc />
        public override string ToString() => Name;

        private sealed class ConfigurationTuner : SweepTuner
        {
            private readonly Func<SearchSpace, int, ConfigurationSampler> sampler;

            public ConfigurationTuner(string name, Func<SearchSpace, int, ConfigurationSampler> sampler)
            {
                Name = name;
                this.sampler = sampler;
            }

            public override string Name { get; }

            internal override TrialPlanner CreatePlanner(SearchSpace space, int maxEpochs, int? maxTrials, int seed) =>
                new FullTrainingPlanner(sampler(space, seed), maxEpochs, maxTrials);
        }

        private sealed class SuccessiveHalvingTuner : SweepTuner
        {
            private readonly int reductionFactor;
            private readonly int minEpochs;

            public SuccessiveHalvingTuner(int reductionFactor, int minEpochs)
            {
                this.reductionFactor = reductionFactor;
                this.minEpochs = minEpochs;
            }

            public override string Name => $"SuccessiveHalving(η = {reductionFactor}, first rung {minEpochs} epoch(s))";

            internal override TrialPlanner CreatePlanner(SearchSpace space, int maxEpochs, int? maxTrials, int seed) =>
                new SuccessiveHalvingPlanner(new RandomSampler(space, seed), maxEpochs, maxTrials, reductionFactor, minEpochs);
        }
    }
}
