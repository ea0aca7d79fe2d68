using System;
using System.Linq;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>The learning rate as a function of the optimisation step (per batch, not per epoch).</summary>
    public sealed class LearningRateSchedule
    {
        private readonly TrainingOptions options;
        private readonly long stepsPerEpoch;
        private readonly long totalSteps;
        private readonly long warmupSteps;

        /// <summary>Creates the schedule for <paramref name="stepsPerEpoch"/> batches per epoch.</summary>
        public LearningRateSchedule(TrainingOptions options, long stepsPerEpoch)
        {
            this.options = options ?? throw new ArgumentNullException(nameof(options));
            if (stepsPerEpoch < 1) throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), stepsPerEpoch, "An epoch has at least one batch.");
            this.stepsPerEpoch = stepsPerEpoch;
            totalSteps = stepsPerEpoch * options.Epochs;
            warmupSteps = options.Schedule == LearningRateScheduleKind.OneCycle ? 0 : (long)Math.Round(options.WarmupEpochs * stepsPerEpoch);
        }

        /// <summary>Optimisation steps in the whole run.</summary>
        public long TotalSteps => totalSteps;

        /// <summary>The rate for step <paramref name="step"/> (0-based; steps past the end keep the last rate).</summary>
        public double At(long step)
        {
            double peak = options.LearningRate;
            step = Math.Clamp(step, 0, totalSteps - 1);
            if (step < warmupSteps) return peak * (step + 1) / warmupSteps;
            long afterWarmup = step - warmupSteps;
            long decaySteps = Math.Max(1, totalSteps - warmupSteps);
            switch (options.Schedule)
            {
                case LearningRateScheduleKind.Constant:
                    return peak;
                case LearningRateScheduleKind.Cosine:
                    return peak * 0.5 * (1 + Math.Cos(Math.PI * afterWarmup / decaySteps));
                case LearningRateScheduleKind.Step:
                    long epoch = step / stepsPerEpoch;
                    int passed = options.StepMilestones.Count(m => epoch >= m);
                    return peak * Math.Pow(options.StepGamma, passed);
                case LearningRateScheduleKind.OneCycle:
                    double start = peak / 25, end = peak / 1e4;
                    long rise = Math.Max(1, (long)Math.Round(0.3 * totalSteps));
                    if (step < rise) return Anneal(start, peak, (double)step / rise);
                    return Anneal(peak, end, (double)(step - rise) / Math.Max(1, totalSteps - 1 - rise));
                default:
                    throw new InvalidOperationException($"Unknown schedule {options.Schedule}.");
            }
        }

        // Cosine interpolation from a (t = 0) to b (t = 1).
        private static double Anneal(double a, double b, double t) => b + (a - b) * 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(t, 0, 1)));
    }

    /// <summary>
    /// The schedule of a run with a frozen-backbone phase: the configured schedule over the frozen epochs, then
    /// the same schedule again over the remaining epochs (each phase with its own warm-up, at most half the phase).
    /// Without a frozen phase it is exactly <see cref="LearningRateSchedule"/>.
    /// </summary>
    internal sealed class PhasedSchedule
    {
        private readonly LearningRateSchedule? frozen;
        private readonly LearningRateSchedule main;
        private readonly long frozenSteps;

        public PhasedSchedule(TrainingOptions options, long stepsPerEpoch)
        {
            int frozenEpochs = options.FreezeBackboneEpochs;
            if (frozenEpochs == 0)
            {
                main = new LearningRateSchedule(options, stepsPerEpoch);
                return;
            }

            frozen = new LearningRateSchedule(Phase(options, 0, frozenEpochs), stepsPerEpoch);
            main = new LearningRateSchedule(Phase(options, frozenEpochs, options.Epochs), stepsPerEpoch);
            frozenSteps = frozenEpochs * stepsPerEpoch;
        }

        public double At(long step) => frozen != null && step < frozenSteps ? frozen.At(step) : main.At(step - frozenSteps);

        // The options of epochs (start, end]: the same schedule over the phase, milestones moved into it.
        private static TrainingOptions Phase(TrainingOptions options, int start, int end)
        {
            TrainingOptions phase = options.Clone();
            int length = end - start;
            phase.Epochs = length;
            phase.WarmupEpochs = Math.Min(options.WarmupEpochs, length / 2.0);
            phase.StepMilestones = options.StepMilestones.Where(m => m > start && m < end).Select(m => m - start).ToArray();
            return phase;
        }
    }
}
