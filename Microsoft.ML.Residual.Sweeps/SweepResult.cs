using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.IO;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>How a trial ended.</summary>
    public enum TrialStatus
    {
        /// <summary>Trained for the sweep's epochs per trial (or until early stopping ended it) and scored.</summary>
        Completed,

        /// <summary>
        /// Stopped by successive halving at a rung: it trained fewer epochs because others scored better there. Its metrics
        /// are those at that rung. While the sweep runs, a pruned trial may still be promoted and continue.
        /// </summary>
        Pruned,

        /// <summary>Training or scoring failed (e.g. the loss diverged); <see cref="TrialResult.Error"/> says why.</summary>
        Failed,

        /// <summary>
        /// The time budget or the caller's cancellation interrupted it. Its metrics (if any) are those of the last rung it
        /// finished before.
        /// </summary>
        Cancelled,
    }

    /// <summary>Why a sweep ended.</summary>
    public enum SweepStopReason
    {
        /// <summary>The tuner had nothing left to try: the trial count or the grid was exhausted, or successive halving finished.</summary>
        SearchFinished,

        /// <summary>The time budget (<c>SetTrainingTimeInSeconds</c>) ran out, or what was left of it was kept for the refit.</summary>
        TimeBudget,

        /// <summary>The caller's cancellation token was cancelled.</summary>
        Cancelled,
    }

    /// <summary>One trial of a sweep: a configuration, what it trained and how it scored on the validation data.</summary>
    public sealed class TrialResult
    {
        internal TrialResult(
            int id, IReadOnlyDictionary<string, object> parameters, IReadOnlyDictionary<string, double> metrics, double? metric, int epochs,
            double seconds, TrialStatus status, string? error, IReadOnlyList<EpochReport> history)
        {
            Id = id;
            Parameters = parameters;
            Metrics = metrics;
            Metric = metric;
            Epochs = epochs;
            Seconds = seconds;
            Status = status;
            Error = error;
            History = history;
        }

        /// <summary>The trial's number (1-based, in the order trials started).</summary>
        public int Id { get; }

        /// <summary>The search-space values of this trial, by option name, converted to the option's type (e.g. "LearningRate" → double).</summary>
        public IReadOnlyDictionary<string, object> Parameters { get; }

        /// <summary>
        /// The validation metrics of the trial's model, by name: MacroAccuracy, MicroAccuracy, LogLoss and LogLossReduction from
        /// ML.NET's multiclass evaluator, or MeanIoU, MeanDice and PixelAccuracy from <c>ml.Segmentation().Evaluate</c>. Empty
        /// when the trial ended before its first evaluation.
        /// </summary>
        public IReadOnlyDictionary<string, double> Metrics { get; }

        /// <summary>The sweep's optimising metric, or null when the trial has no metrics.</summary>
        public double? Metric { get; }

        /// <summary>The epochs the scored model was trained for.</summary>
        public int Epochs { get; }

        /// <summary>Wall-clock seconds spent on the trial (training, export and evaluation).</summary>
        public double Seconds { get; }

        /// <summary>How the trial ended.</summary>
        public TrialStatus Status { get; }

        /// <summary>Why the trial failed, or null.</summary>
        public string? Error { get; }

        /// <summary>Every epoch it trained, with the training loop's own per-epoch validation figures.</summary>
        public IReadOnlyList<EpochReport> History { get; }

        /// <inheritdoc />
        public override string ToString() =>
            $"trial {Id}: {Status}, {Epochs} epoch(s), {Seconds:F1} s"
            + (Metric is double m ? string.Create(CultureInfo.InvariantCulture, $", metric {m:F4}") : string.Empty)
            + $" ({Describe(Parameters)})"
            + (Error is null ? string.Empty : $": {Error}");

        internal static string Describe(IReadOnlyDictionary<string, object> parameters) =>
            string.Join(", ", parameters.Select(p => $"{p.Key} = {Format(p.Value)}"));

        internal static string Format(object value) => value switch
        {
            double d => d.ToString("G4", CultureInfo.InvariantCulture),
            float f => f.ToString("G4", CultureInfo.InvariantCulture),
            _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty,
        };
    }

    /// <summary>What a sweep found: every trial, the best one and its model.</summary>
    public sealed class SweepResult
    {
        internal SweepResult(
            IReadOnlyList<TrialResult> trials, TrialResult? bestTrial, ITransformer? bestModel, string optimizingMetric, bool higherIsBetter,
            SweepStopReason stopReason, TimeSpan elapsed, TimeSpan? refitTime = null)
        {
            RefitTime = refitTime;
            Trials = trials;
            BestTrial = bestTrial;
            BestModel = bestModel;
            OptimizingMetric = optimizingMetric;
            HigherIsBetter = higherIsBetter;
            StopReason = stopReason;
            Elapsed = elapsed;
        }

        /// <summary>Every trial started, in order, as it ended.</summary>
        public IReadOnlyList<TrialResult> Trials { get; }

        /// <summary>
        /// The trial whose model scored best on the validation data, as it was when it produced <see cref="BestModel"/>; null
        /// when no trial was scored (all failed, or the sweep was cancelled before the first evaluation).
        /// </summary>
        public TrialResult? BestTrial { get; }

        /// <summary>
        /// The best trial's fitted model, or its configuration trained again on all the data when the sweep refits
        /// (<see cref="RefitTime"/> is then set): ML.NET transformers that add the score columns, ready for <c>Transform</c>,
        /// <c>Model.Save</c> and <c>PredictionEngine</c>. Null when no trial was scored.
        /// </summary>
        public ITransformer? BestModel { get; }

        /// <summary>How long the refit of the best configuration on all the data took; null when <see cref="BestModel"/> is the trial's own model.</summary>
        public TimeSpan? RefitTime { get; }

        /// <summary>The metric that ranked the trials.</summary>
        public string OptimizingMetric { get; }

        /// <summary>Whether a higher <see cref="OptimizingMetric"/> is better (false for LogLoss).</summary>
        public bool HigherIsBetter { get; }

        /// <summary>Why the sweep ended.</summary>
        public SweepStopReason StopReason { get; }

        /// <summary>The sweep's wall-clock time.</summary>
        public TimeSpan Elapsed { get; }

        /// <summary>Epochs trained by all trials together (the sweep's cost).</summary>
        public int TotalEpochs => Trials.Sum(t => t.History.Count);

        /// <summary>The same result with <paramref name="model"/>, the best configuration trained on all the data, as the best model.</summary>
        internal SweepResult Refitted(ITransformer model, TimeSpan time) =>
            new(Trials, BestTrial, model, OptimizingMetric, HigherIsBetter, StopReason, Elapsed, time);

        /// <summary>The scored trials, best first (ties: the earlier trial first).</summary>
        public IReadOnlyList<TrialResult> Leaderboard =>
            Trials.Where(t => t.Metric is not null)
                .OrderBy(t => HigherIsBetter ? -t.Metric!.Value : t.Metric!.Value).ThenBy(t => t.Id).ToList();

        /// <summary>
        /// Writes one row per trial (id, status, every parameter, every metric, epochs, seconds, error) as comma-separated
        /// values with invariant-culture numbers. The file is written whole or not at all.
        /// </summary>
        public void SaveTrialsCsv(string path)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("Give the path of the CSV file to write.", nameof(path));
            string[] parameters = Trials.SelectMany(t => t.Parameters.Keys).Distinct().ToArray();
            string[] metrics = Trials.SelectMany(t => t.Metrics.Keys).Distinct().ToArray();
            var text = new StringBuilder();
            AppendRow(text, new[] { "Trial", "Status" }.Concat(parameters).Concat(metrics).Concat(new[] { "Epochs", "Seconds", "Error" }));
            foreach (TrialResult trial in Trials)
            {
                AppendRow(text, new[] { trial.Id.ToString(CultureInfo.InvariantCulture), trial.Status.ToString() }
                    .Concat(parameters.Select(p => trial.Parameters.TryGetValue(p, out object? v) ? Convert.ToString(v, CultureInfo.InvariantCulture) ?? string.Empty : string.Empty))
                    .Concat(metrics.Select(m => trial.Metrics.TryGetValue(m, out double v) ? v.ToString("R", CultureInfo.InvariantCulture) : string.Empty))
                    .Concat(new[]
                    {
                        trial.Epochs.ToString(CultureInfo.InvariantCulture), trial.Seconds.ToString("F3", CultureInfo.InvariantCulture), trial.Error ?? string.Empty,
                    }));
            }

            try
            {
                AtomicFile.Write(path, temporary => File.WriteAllText(temporary, text.ToString(), new UTF8Encoding(false)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Cannot write the trials to '{Path.GetFullPath(path)}': {e.Message}", e);
            }
        }

        private static void AppendRow(StringBuilder text, IEnumerable<string> fields)
        {
            text.AppendJoin(',', fields.Select(Quote)).Append('\n');
        }

        // RFC 4180: quote fields with a comma, quote or line break, doubling the quotes inside.
        private static string Quote(string field) =>
            field.IndexOfAny(new[] { ',', '"', '\n', '\r' }) < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }
}
