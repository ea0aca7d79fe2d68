using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>A trial while the sweep runs: its configuration, what it has trained so far and how it scored at each rung.</summary>
    internal sealed class SweepTrial
    {
        private readonly List<(int Epochs, double Objective)> rungs = new();
        private readonly List<EpochReport> history = new();

        public SweepTrial(int id, double[] coordinates, IReadOnlyDictionary<string, object> parameters)
        {
            Id = id;
            Coordinates = coordinates;
            Parameters = parameters;
        }

        public int Id { get; }

        /// <summary>The tuner's coordinates of the configuration (one per search-space parameter).</summary>
        public double[] Coordinates { get; }

        /// <summary>The option values, converted to the options' property types.</summary>
        public IReadOnlyDictionary<string, object> Parameters { get; }

        public TrialStatus Status { get; set; } = TrialStatus.Cancelled;

        public string? Error { get; set; }

        public double Seconds { get; set; }

        /// <summary>The validation metrics of the trial's current model (empty before its first segment ends).</summary>
        public IReadOnlyDictionary<string, double> Metrics { get; set; } = new Dictionary<string, double>();

        /// <summary>Epochs trained and scored (a cancelled segment's epochs are not counted).</summary>
        public int Epochs => rungs.Count == 0 ? 0 : rungs[^1].Epochs;

        /// <summary>Epochs run, including those of a segment cut short by cancellation.</summary>
        public int EpochsRun => history.Count == 0 ? 0 : history[^1].Epoch;

        /// <summary>The optimised metric as a loss (lower is better) after every finished segment.</summary>
        public IReadOnlyList<(int Epochs, double Objective)> Rungs => rungs;

        /// <summary>The current model's objective (lower is better), or null before the first segment ends.</summary>
        public double? Objective => rungs.Count == 0 ? null : rungs[^1].Objective;

        /// <summary>No more training can help: the last epoch was reached, early stopping ended it, or it failed or was cancelled.</summary>
        public bool Settled => Status != TrialStatus.Pruned;

        public IReadOnlyList<EpochReport> History => history;

        public void AddEpoch(EpochReport report) => history.Add(report);

        public void AddRung(int epochs, double objective) => rungs.Add((epochs, double.IsNaN(objective) ? double.PositiveInfinity : objective));

        /// <summary>
        /// The validation loss after epoch <paramref name="epochs"/> (+∞ without one): what separates trials whose objective ties
        /// at a rung, as accuracies do when several trials are still at chance.
        /// </summary>
        public double ValidationLossAt(int epochs) =>
            history.LastOrDefault(r => r.Epoch == epochs)?.ValidationLoss is double loss && !double.IsNaN(loss) ? loss : double.PositiveInfinity;

        /// <summary>The objective at the rung of <paramref name="epochs"/> epochs, if the trial finished it.</summary>
        public double? ObjectiveAt(int epochs) => rungs.Where(r => r.Epochs == epochs).Select(r => (double?)r.Objective).FirstOrDefault();

        public TrialResult Snapshot(string metric) => new(
            Id, Parameters, new Dictionary<string, double>(Metrics),
            Metrics.TryGetValue(metric, out double value) ? value : null, Epochs, Seconds, Status, Error, history.ToArray());

        /// <summary>How much longer than <see cref="SecondsPerEpoch"/> says a sweep expects epochs still to come to take.</summary>
        public const double TimeMargin = 1.25;

        /// <summary>The seconds per epoch of every training run so far, their start-up and scoring included (null before any).</summary>
        public static double? SecondsPerEpoch(IReadOnlyList<SweepTrial> trials)
        {
            int epochs = trials.Sum(t => t.EpochsRun);
            return epochs == 0 ? null : trials.Sum(t => t.Seconds) / epochs;
        }

        /// <summary>Turns a metric into a loss: lower is better.</summary>
        public static double ToObjective(double metric, bool higherIsBetter) => double.IsNaN(metric) ? double.PositiveInfinity : higherIsBetter ? -metric : metric;

        public override string ToString() => $"trial {Id} ({TrialResult.Describe(Parameters)})";
    }
}
