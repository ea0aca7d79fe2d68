using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// How the learning-rate finder sweeps (see <see cref="TrainingLoop.FindLearningRate"/>): a short run whose learning
    /// rate grows geometrically from <see cref="StartLearningRate"/> to <see cref="EndLearningRate"/>, one step per rate.
    /// </summary>
    public sealed class LearningRateFinderOptions
    {
        /// <summary>The rate of the first step (default 1e-7).</summary>
        public double StartLearningRate { get; set; } = 1e-7;

        /// <summary>The rate of the last step (default 10).</summary>
        public double EndLearningRate { get; set; } = 10;

        /// <summary>Training steps (mini-batches) in the sweep, at least 5 (default 100); the data repeats when it has fewer batches.</summary>
        public int Steps { get; set; } = 100;

        /// <summary>
        /// The weight of the past in the loss's exponential moving average, 0 to below 1 (default 0.98; 0: no smoothing). The
        /// average is corrected for its start at zero, as Adam's moments are.
        /// </summary>
        public double Smoothing { get; set; } = 0.98;

        /// <summary>The sweep stops once the smoothed loss exceeds this multiple of its lowest value, above 1 (default 4).</summary>
        public double StopFactor { get; set; } = 4;

        /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
        public void Validate()
        {
            void Check(bool valid, string name, object value, string rule)
            {
                if (!valid) throw new ArgumentException($"LearningRateFinderOptions.{name} = {value}: {rule}.", name);
            }

            Check(double.IsFinite(StartLearningRate) && StartLearningRate > 0, nameof(StartLearningRate), StartLearningRate, "must be a positive number");
            Check(double.IsFinite(EndLearningRate) && EndLearningRate > StartLearningRate, nameof(EndLearningRate), EndLearningRate,
                $"must be a finite number above StartLearningRate ({StartLearningRate:G3})");
            Check(Steps >= 5, nameof(Steps), Steps, "must be at least 5");
            Check(Smoothing >= 0 && Smoothing < 1, nameof(Smoothing), Smoothing, "must be at least 0 and below 1");
            Check(StopFactor > 1 && !double.IsNaN(StopFactor), nameof(StopFactor), StopFactor, "must be above 1");
        }
    }

    /// <summary>One step of the learning-rate finder.</summary>
    /// <param name="LearningRate">The step's learning rate.</param>
    /// <param name="Loss">The training loss of the step's batch, before the step.</param>
    /// <param name="SmoothedLoss">The exponential moving average of the losses so far.</param>
    public sealed record LearningRatePoint(double LearningRate, double Loss, double SmoothedLoss);

    /// <summary>
    /// What the learning-rate finder measured: the smoothed training loss against a geometrically growing learning rate, and
    /// rates read from that curve. From 20 points on, the first twentieth of the curve (a few batches' worth of average) is
    /// left out of the suggestions. The suggestions are null when the smoothed loss never fell below its starting value by
    /// more than 1 % (nothing was learnt in the sweep: widen the range, or check the data).
    /// </summary>
    public sealed class LearningRateFinderResult
    {
        // The share of the smoothed loss's whole fall that counts as the start of the descent.
        private const double DescentThreshold = 0.05;

        internal LearningRateFinderResult(IReadOnlyList<LearningRatePoint> points, bool stoppedEarly)
        {
            Points = points;
            StoppedEarly = stoppedEarly;
            if (points.Count == 0) return;
            // The first points rest on one or a few batches (the average is bias-corrected), so one noisy batch there would
            // move the baseline: from 20 points on, the first twentieth is left out of the suggestions.
            int skip = points.Count >= 20 ? points.Count / 20 : 0;
            double[] smoothed = points.Select(p => p.SmoothedLoss).ToArray();
            int lowest = skip;
            for (int i = skip; i < smoothed.Length; i++)
                if (smoothed[i] < smoothed[lowest]) lowest = i;
            double fall = smoothed[skip] - smoothed[lowest];
            if (!(fall > 0.01 * Math.Abs(smoothed[skip]))) return;

            Minimum = points[lowest].LearningRate;
            MinimumOverTen = Minimum / 10;
            Steepest = points[SteepestIndex(points, skip, lowest)].LearningRate;
            // The descent starts at the last point before the minimum that has not yet fallen by 5 % of the whole fall; the
            // valley is the middle of the descent on the logarithmic rate axis.
            int start = skip;
            for (int i = skip; i <= lowest; i++)
                if (smoothed[i] >= smoothed[skip] - DescentThreshold * fall) start = i;
            Valley = Math.Sqrt(points[start].LearningRate * points[lowest].LearningRate);
        }

        /// <summary>Every step of the sweep, in order of rising rate.</summary>
        public IReadOnlyList<LearningRatePoint> Points { get; }

        /// <summary>Whether the sweep stopped before its last rate because the loss rose past the stop factor (or became NaN).</summary>
        public bool StoppedEarly { get; }

        /// <summary>The rate at the lowest smoothed loss: the edge of stability, too high to train at.</summary>
        public double? Minimum { get; }

        /// <summary>A tenth of <see cref="Minimum"/>, a common rule of thumb.</summary>
        public double? MinimumOverTen { get; }

        /// <summary>The rate, up to the minimum, where the smoothed loss falls fastest against the logarithm of the rate (a central difference).</summary>
        public double? Steepest { get; }

        /// <summary>
        /// The middle, on a logarithmic scale, of the descent: from the last rate at which the smoothed loss had fallen by
        /// less than 5 % of its whole fall, to the rate of the lowest smoothed loss.
        /// </summary>
        public double? Valley { get; }

        /// <summary>The suggested learning rate: <see cref="Valley"/>.</summary>
        public double? Suggested => Valley;

        private static int SteepestIndex(IReadOnlyList<LearningRatePoint> points, int first, int lowest)
        {
            int best = first;
            double steepest = double.PositiveInfinity;
            for (int i = first; i <= lowest; i++)
            {
                // A central difference inside, one-sided at the ends, against log10 of the rate.
                int left = Math.Max(0, i - 1), right = Math.Min(points.Count - 1, i + 1);
                double slope = (points[right].SmoothedLoss - points[left].SmoothedLoss)
                    / (Math.Log10(points[right].LearningRate) - Math.Log10(points[left].LearningRate));
                if (slope < steepest)
                {
                    steepest = slope;
                    best = i;
                }
            }

            return best;
        }
    }
}
