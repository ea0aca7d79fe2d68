using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>The next piece of work: continue an existing trial, or start a new configuration, up to a number of epochs.</summary>
    internal readonly record struct TrialJob(SweepTrial? Continue, double[]? Coordinates, int TargetEpochs);

    /// <summary>Decides, from the trials so far, what the sweep trains next.</summary>
    internal abstract class TrialPlanner
    {
        /// <summary>Whether trials are paused and continued (they then need checkpoints).</summary>
        public abstract bool ResumesTrials { get; }

        /// <summary>Whether the search ends by itself (a grid), without a trial count or time budget.</summary>
        public abstract bool IsBounded { get; }

        /// <summary>The next job, or null when the search is over.</summary>
        /// <param name="trials">The trials so far.</param>
        /// <param name="secondsLeft">The time budget left, if the sweep has one.</param>
        public abstract TrialJob? Next(IReadOnlyList<SweepTrial> trials, double? secondsLeft = null);
    }

    /// <summary>Every configuration trains for the full epochs; the sampler chooses the configurations.</summary>
    internal sealed class FullTrainingPlanner : TrialPlanner
    {
        private readonly ConfigurationSampler sampler;
        private readonly int maxEpochs;
        private readonly int? maxTrials;

        public FullTrainingPlanner(ConfigurationSampler sampler, int maxEpochs, int? maxTrials)
        {
            this.sampler = sampler;
            this.maxEpochs = maxEpochs;
            this.maxTrials = maxTrials;
        }

        public override bool ResumesTrials => false;

        public override bool IsBounded => sampler.IsFinite;

        public override TrialJob? Next(IReadOnlyList<SweepTrial> trials, double? secondsLeft = null)
        {
            if (trials.Count >= maxTrials) return null;
            return sampler.Next(trials) is double[] coordinates ? new TrialJob(null, coordinates, maxEpochs) : null;
        }
    }

    /// <summary>
    /// Asynchronous successive halving (ASHA) for trials run one at a time. Rungs at r, rη, rη², … epochs, the last one being
    /// the epochs per trial. A trial that finished rung k is continued to rung k + 1 when it ranks in the top ⌊n/η⌋ of the n
    /// trials that finished rung k; higher rungs are served first. With nothing to promote a new configuration starts; when
    /// none may start, the best paused trials continue until one reaches the last rung. Under a time budget, "none may start"
    /// also holds once the time left would not cover the next job and then the training of the most advanced paused trial to
    /// the last rung (at the seconds per epoch seen so far): so the sweep ends with a fully trained trial whenever the budget
    /// allows one.
    /// </summary>
    internal sealed class SuccessiveHalvingPlanner : TrialPlanner
    {
        private readonly ConfigurationSampler sampler;
        private readonly int? maxTrials;
        private readonly int reductionFactor;

        public SuccessiveHalvingPlanner(ConfigurationSampler sampler, int maxEpochs, int? maxTrials, int reductionFactor, int minEpochs)
        {
            this.sampler = sampler;
            this.maxTrials = maxTrials;
            this.reductionFactor = reductionFactor;
            Rungs = RungsFor(maxEpochs, reductionFactor, minEpochs);
        }

        /// <summary>The epochs of each rung, ascending; the last is the epochs per trial.</summary>
        public IReadOnlyList<int> Rungs { get; }

        public override bool ResumesTrials => true;

        public override bool IsBounded => false;

        public static int[] RungsFor(int maxEpochs, int reductionFactor, int minEpochs)
        {
            var rungs = new List<int>();
            for (long epochs = minEpochs; epochs < maxEpochs; epochs *= reductionFactor) rungs.Add((int)epochs);
            rungs.Add(maxEpochs);
            return rungs.ToArray();
        }

        public override TrialJob? Next(IReadOnlyList<SweepTrial> trials, double? secondsLeft = null)
        {
            TrialJob? job = Search(trials);
            if (job is TrialJob next && secondsLeft is double left && !trials.Any(t => t.Epochs >= Rungs[^1])
                && MostAdvancedPaused(trials) is SweepTrial finalist && next.Continue != finalist
                && SweepTrial.SecondsPerEpoch(trials) is double perEpoch)
            {
                int epochs = next.TargetEpochs - (next.Continue?.Epochs ?? 0) + Rungs[^1] - finalist.Epochs;
                if (epochs * perEpoch * SweepTrial.TimeMargin > left) return ToNextRung(finalist);
            }

            return job;
        }

        // Promotions first, then a new configuration; with neither, the end game.
        private TrialJob? Search(IReadOnlyList<SweepTrial> trials)
        {
            for (int k = Rungs.Count - 2; k >= 0; k--)
            {
                int rung = Rungs[k];
                var finished = trials.Where(t => t.ObjectiveAt(rung) is not null).ToList();
                SweepTrial? promoted = finished
                    .OrderBy(t => t.ObjectiveAt(rung)!.Value).ThenBy(t => t.ValidationLossAt(rung)).ThenBy(t => t.Id)
                    .Take(finished.Count / reductionFactor)
                    .FirstOrDefault(t => IsPaused(t) && t.Epochs == rung);
                if (promoted != null) return new TrialJob(promoted, null, Rungs[k + 1]);
            }

            if ((maxTrials is null || trials.Count < maxTrials) && sampler.Next(trials) is double[] coordinates)
                return new TrialJob(null, coordinates, Rungs[0]);

            // Nothing new may start: continue the most advanced, best paused trial until one trial has trained fully.
            if (trials.Any(t => t.Epochs >= Rungs[^1])) return null;
            SweepTrial? best = MostAdvancedPaused(trials);
            return best == null ? null : ToNextRung(best);
        }

        private TrialJob ToNextRung(SweepTrial trial) => new(trial, null, Rungs.First(r => r > trial.Epochs));

        private static SweepTrial? MostAdvancedPaused(IReadOnlyList<SweepTrial> trials) =>
            trials.Where(IsPaused).OrderByDescending(t => t.Epochs).ThenBy(t => t.Objective).ThenBy(t => t.Id).FirstOrDefault();

        private static bool IsPaused(SweepTrial trial) => !trial.Settled;
    }
}
