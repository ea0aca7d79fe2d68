using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>Proposes configurations as coordinates, one per search-space parameter (see <see cref="SearchParameter.Decode"/>).</summary>
    internal abstract class ConfigurationSampler
    {
        protected ConfigurationSampler(SearchSpace space)
        {
            Parameters = space.Parameters;
        }

        protected IReadOnlyList<SearchParameter> Parameters { get; }

        /// <summary>Whether the sampler runs out of configurations (a grid).</summary>
        public virtual bool IsFinite => false;

        /// <summary>The next configuration, or null when there is none left.</summary>
        public abstract double[]? Next(IReadOnlyList<SweepTrial> trials);

        /// <summary>A uniformly random configuration.</summary>
        protected double[] Uniform(Random random) => Parameters.Select(p => p.Sample(random)).ToArray();

        protected static bool IsNew(double[] coordinates, IReadOnlyList<SweepTrial> trials) =>
            !trials.Any(t => t.Coordinates.AsSpan().SequenceEqual(coordinates));
    }

    /// <summary>Independent uniform draws; a configuration already tried is drawn again a few times before it is accepted.</summary>
    internal sealed class RandomSampler : ConfigurationSampler
    {
        private const int Attempts = 32;
        private readonly Random random;

        public RandomSampler(SearchSpace space, int seed) : base(space)
        {
            random = new Random(seed);
        }

        public override double[]? Next(IReadOnlyList<SweepTrial> trials)
        {
            double[] coordinates = Uniform(random);
            for (int attempt = 1; attempt < Attempts && !IsNew(coordinates, trials); attempt++) coordinates = Uniform(random);
            return coordinates;
        }
    }

    /// <summary>Every combination in order, the last parameter changing fastest.</summary>
    internal sealed class GridSampler : ConfigurationSampler
    {
        private readonly double[][] axes;
        private long next;

        public GridSampler(SearchSpace space, int pointsPerRange) : base(space)
        {
            axes = Parameters.Select(p => p.GridCoordinates(pointsPerRange).ToArray()).ToArray();
        }

        public override bool IsFinite => true;

        /// <summary>The number of grid points.</summary>
        public long Size => axes.Aggregate(1L, (product, axis) => product * axis.Length);

        public override double[]? Next(IReadOnlyList<SweepTrial> trials)
        {
            if (next >= Size) return null;
            var coordinates = new double[axes.Length];
            long rest = next++;
            for (int d = axes.Length - 1; d >= 0; d--)
            {
                coordinates[d] = axes[d][rest % axes[d].Length];
                rest /= axes[d].Length;
            }

            return coordinates;
        }
    }

    /// <summary>
    /// The tree-structured Parzen estimator: once a few trials are scored, l(x) models the parameters of the best quarter
    /// and g(x) those of the rest (each parameter on its own: smoothed frequencies for choices, a mixture of truncated
    /// Gaussians plus a uniform prior for ranges); of candidates drawn from l, the one with the largest l(x)/g(x) is next.
    /// </summary>
    internal sealed class TreeParzenSampler : ConfigurationSampler
    {
        private const int Candidates = 24;
        private const double GoodFraction = 0.25;
        private const double MinimumBandwidth = 0.05;
        private readonly Random random;
        private readonly int startupTrials;

        public TreeParzenSampler(SearchSpace space, int seed) : base(space)
        {
            random = new Random(seed);
            startupTrials = Math.Clamp(Parameters.Count + 2, 3, 10);
        }

        public override double[]? Next(IReadOnlyList<SweepTrial> trials)
        {
            // Scored trials, and failed ones as the worst, lower objective first.
            var observed = trials
                .Where(t => t.Objective is not null || t.Status == TrialStatus.Failed)
                .OrderBy(t => t.Objective ?? double.PositiveInfinity).ThenBy(t => t.Id)
                .Select(t => t.Coordinates).ToList();
            if (observed.Count < startupTrials) return Uniform(random);

            int goodCount = Math.Max(1, (int)Math.Ceiling(GoodFraction * observed.Count));
            var good = observed.Take(goodCount).ToList();
            var bad = observed.Skip(goodCount).ToList();
            var models = Parameters.Select((p, d) => (Good: Density.Fit(p, good.Select(c => c[d])), Bad: Density.Fit(p, bad.Select(c => c[d])))).ToArray();

            double[]? best = null;
            double bestScore = double.NegativeInfinity;
            bool bestIsNew = false;
            for (int i = 0; i < Candidates; i++)
            {
                double[] candidate = models.Select(m => m.Good.Sample(random)).ToArray();
                double score = 0;
                for (int d = 0; d < candidate.Length; d++) score += Math.Log(models[d].Good.At(candidate[d])) - Math.Log(models[d].Bad.At(candidate[d]));
                bool isNew = IsNew(candidate, trials);
                if (best == null || (isNew && !bestIsNew) || (isNew == bestIsNew && score > bestScore))
                {
                    best = candidate;
                    bestScore = score;
                    bestIsNew = isNew;
                }
            }

            return best;
        }

        /// <summary>A one-parameter density on the coordinate scale.</summary>
        private sealed class Density
        {
            private readonly SearchParameter parameter;
            private readonly double[] centres;
            private readonly double[] bandwidths;
            private readonly double[] frequencies;

            private Density(SearchParameter parameter, double[] centres, double[] bandwidths, double[] frequencies)
            {
                this.parameter = parameter;
                this.centres = centres;
                this.bandwidths = bandwidths;
                this.frequencies = frequencies;
            }

            public static Density Fit(SearchParameter parameter, IEnumerable<double> coordinates)
            {
                double[] points = coordinates.ToArray();
                if (parameter.IsChoice)
                {
                    // Counts with one pseudo-count per value (the prior).
                    var counts = Enumerable.Repeat(1.0, parameter.Values.Count).ToArray();
                    foreach (double point in points) counts[(int)point] += 1;
                    double total = counts.Sum();
                    return new Density(parameter, Array.Empty<double>(), Array.Empty<double>(), counts.Select(c => c / total).ToArray());
                }

                // Each point's bandwidth: the larger gap to its neighbours (the range's ends included), at least the minimum.
                double[] sorted = points.Append(0.0).Append(1.0).OrderBy(x => x).ToArray();
                double[] widths = points.Select(x =>
                {
                    int at = Array.IndexOf(sorted, x);
                    double left = at > 0 ? x - sorted[at - 1] : 0, right = at < sorted.Length - 1 ? sorted[at + 1] - x : 0;
                    return Math.Clamp(Math.Max(left, right), MinimumBandwidth, 1.0);
                }).ToArray();
                return new Density(parameter, points, widths, Array.Empty<double>());
            }

            public double Sample(Random random)
            {
                if (parameter.IsChoice)
                {
                    double u = random.NextDouble(), sum = 0;
                    for (int k = 0; k < frequencies.Length; k++)
                    {
                        sum += frequencies[k];
                        if (u < sum) return k;
                    }

                    return frequencies.Length - 1;
                }

                // One component at random: the uniform prior, or a Gaussian around a point, kept inside [0, 1].
                int component = random.Next(centres.Length + 1);
                if (component == centres.Length) return random.NextDouble();
                for (int attempt = 0; attempt < 100; attempt++)
                {
                    double x = centres[component] + bandwidths[component] * StandardNormal(random);
                    if (x >= 0 && x <= 1) return x;
                }

                return Math.Clamp(centres[component], 0, 1);
            }

            public double At(double coordinate)
            {
                if (parameter.IsChoice) return frequencies[(int)coordinate];
                double sum = 1.0; // the uniform prior's density on [0, 1]
                for (int i = 0; i < centres.Length; i++)
                {
                    double mu = centres[i], sigma = bandwidths[i];
                    double mass = NormalCdf((1 - mu) / sigma) - NormalCdf(-mu / sigma);
                    sum += Math.Exp(-0.5 * Math.Pow((coordinate - mu) / sigma, 2)) / (sigma * Math.Sqrt(2 * Math.PI)) / Math.Max(mass, 1e-12);
                }

                return sum / (centres.Length + 1);
            }

            private static double StandardNormal(Random random) =>
                Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

            // Φ via Abramowitz & Stegun 7.1.26 (error below 1.5e-7).
            private static double NormalCdf(double z)
            {
                double x = Math.Abs(z) / Math.Sqrt(2);
                double t = 1 / (1 + 0.3275911 * x);
                double erf = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
                return 0.5 * (1 + Math.Sign(z) * erf);
            }
        }
    }
}
