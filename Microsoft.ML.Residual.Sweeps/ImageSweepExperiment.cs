using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML.Residual.Sweeps;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;
using Microsoft.ML.Residual.IO;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>
    /// A sweep over architectures and hyperparameters of an image task, shaped like ML.NET AutoML's experiments: a search
    /// space, a tuner, a budget (time, trials, epochs per trial), the metric to optimise; <see cref="Run(IDataView, IDataView, IProgress{TrialResult}, CancellationToken)"/>
    /// returns every trial and the best model. Created by <c>mlContext.ResidualSweep().ImageClassification(...)</c> or
    /// <c>.Segmentation(...)</c>.
    /// </summary>
    public sealed class ImageSweepExperiment
    {
        private readonly MLContext ml;
        private readonly SweepTask task;
        private SearchSpace? space;
        private OptionBinder? binder;
        private SweepTuner tuner = SweepTuner.SuccessiveHalving;
        private int maxEpochsPerTrial;
        private uint? trainingTimeInSeconds;
        private int? maxTrials;
        private string metric;
        private int seed;
        private bool? refit;

        internal ImageSweepExperiment(MLContext ml, SweepTask task)
        {
            this.ml = ml;
            this.task = task;
            maxEpochsPerTrial = task.DefaultEpochs;
            metric = task.MetricNames[0];
            seed = task.DefaultSeed;
        }

        /// <summary>
        /// The hyperparameters to search: names of the task's options (e.g. "Architecture", "LearningRate") and their values.
        /// Without this call the sweep searches around the base options' defaults: the learning rate from a third to three
        /// times its default, the weight decay from a fifth to five times, and (classification) label smoothing 0 or 0.1.
        /// </summary>
        public ImageSweepExperiment SetSearchSpace(Action<SearchSpace> define)
        {
            if (define is null) throw new ArgumentNullException(nameof(define));
            var defined = new SearchSpace();
            define(defined);
            return SetSearchSpace(defined);
        }

        /// <summary>
        /// A new copy of the search space a sweep uses when none is set, built from the base options' resolved defaults (see
        /// <see cref="SetSearchSpace(Action{SearchSpace})"/>). Add parameters to it and pass it to
        /// <see cref="SetSearchSpace(SearchSpace)"/>: <c>experiment.SetSearchSpace(experiment.DefaultSearchSpace().Choice("Architecture", "resnet18", "resnet34"))</c>.
        /// </summary>
        public SearchSpace DefaultSearchSpace() => task.DefaultSearchSpace();

        /// <summary>The hyperparameters to search.</summary>
        public ImageSweepExperiment SetSearchSpace(SearchSpace searchSpace)
        {
            if (searchSpace is null) throw new ArgumentNullException(nameof(searchSpace));
            binder = new OptionBinder(task.OptionsType, searchSpace); // names and values checked now
            space = searchSpace;
            return this;
        }

        /// <summary>The tuner (default <see cref="SweepTuner.SuccessiveHalving"/>).</summary>
        public ImageSweepExperiment SetTuner(SweepTuner sweepTuner)
        {
            tuner = sweepTuner ?? throw new ArgumentNullException(nameof(sweepTuner));
            return this;
        }

        /// <summary>The epochs a trial trains at most (default: the base options' <c>Epochs</c>); its learning-rate schedule spans them.</summary>
        public ImageSweepExperiment SetMaxEpochsPerTrial(int epochs)
        {
            if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "A trial trains at least one epoch.");
            maxEpochsPerTrial = epochs;
            return this;
        }

        /// <summary>
        /// The time budget. When it runs out the trial in progress stops between two batches and the sweep returns the trials
        /// so far and the best model among them.
        /// </summary>
        public ImageSweepExperiment SetTrainingTimeInSeconds(uint seconds)
        {
            if (seconds == 0) throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "The time budget must be at least one second.");
            trainingTimeInSeconds = seconds;
            return this;
        }

        /// <summary>The most configurations to try (successive halving: the most configurations to start).</summary>
        public ImageSweepExperiment SetMaxTrials(int trials)
        {
            if (trials < 1) throw new ArgumentOutOfRangeException(nameof(trials), trials, "A sweep needs at least one trial.");
            maxTrials = trials;
            return this;
        }

        /// <summary>
        /// The validation metric that ranks trials: "MacroAccuracy" (default), "MicroAccuracy", "LogLoss" or
        /// "LogLossReduction" for classification; "MeanIoU" (default), "MeanDice" or "PixelAccuracy" for segmentation. For
        /// classification it also chooses each trial's best epoch: validation loss for LogLoss, validation accuracy otherwise.
        /// </summary>
        public ImageSweepExperiment SetOptimizingMetric(string metricName)
        {
            string? known = task.MetricNames.FirstOrDefault(m => string.Equals(m, metricName, StringComparison.OrdinalIgnoreCase));
            metric = known ?? throw new ArgumentException($"'{metricName}' is not a metric of this task; use one of: {string.Join(", ", task.MetricNames)}.", nameof(metricName));
            return this;
        }

        /// <summary>
        /// The seed of the tuner and of every trial's training (weights, data order, augmentation); default: the base options'
        /// seed. On CPU a sweep with a trial count (and no time budget) repeats exactly.
        /// </summary>
        public ImageSweepExperiment SetSeed(int value)
        {
            seed = value;
            return this;
        }

        /// <summary>
        /// After the search, trains the best trial's configuration once more, on all the data given to
        /// <see cref="Run(IDataView, double, IProgress{TrialResult}, CancellationToken)"/> (the validation share included),
        /// for the full epochs per trial. <see cref="SweepResult.BestModel"/> is then that model, and
        /// <see cref="SweepResult.BestTrial"/> keeps the validation scores of the trial it came from: no held-out data is left
        /// to score the refitted model. The time budget includes the refit: the search starts no training run that would
        /// leave less time than the refit's estimate (the full epochs on all the rows, at the seconds per epoch seen so far,
        /// with a margin); the refit itself is not cut by the budget (<see cref="SweepResult.RefitTime"/>). Default: on when the
        /// sweep holds its own validation share out (<c>Run(data, validationFraction)</c>), off for <c>Run(train, validation)</c>,
        /// which cannot refit (true there is refused).
        /// </summary>
        public ImageSweepExperiment SetRefitOnAllData(bool refitOnAllData = true)
        {
            refit = refitOnAllData;
            return this;
        }

        /// <summary>
        /// Runs the sweep with a held-out fraction of <paramref name="data"/> (a seeded random split) as validation data, and
        /// then (unless <c>SetRefitOnAllData(false)</c>) trains the best configuration again on all of <paramref name="data"/>.
        /// A refit that fails or is cancelled leaves the best trial's own model as the result (the log says why).
        /// </summary>
        public SweepResult Run(IDataView data, double validationFraction, IProgress<TrialResult>? progress = null, CancellationToken cancellationToken = default)
        {
            if (data is null) throw new ArgumentNullException(nameof(data));
            if (!(validationFraction > 0 && validationFraction < 1))
                throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be between 0 and 1 (e.g. 0.2).");
            DataOperationsCatalog.TrainTestData split = ml.Data.TrainTestSplit(data, validationFraction, seed: seed);
            bool refitting = refit ?? true;
            SweepResult searched = Search(split.TrainSet, split.TestSet, progress, cancellationToken, refitting ? 1 / (1 - validationFraction) : null);
            return refitting ? Refit(searched, data, cancellationToken) : searched;
        }

        /// <summary>
        /// Runs the sweep: trains trials on <paramref name="train"/>, scores each on <paramref name="validation"/> (with the
        /// same columns, after the same transforms, e.g. the label's <c>MapValueToKey</c> fitted once for both) and keeps the
        /// best. A failing trial is recorded with its error and the sweep goes on. Cancellation, like the time budget, stops
        /// the trial in progress and returns the trials so far and the best model so far.
        /// </summary>
        /// <param name="train">Training data.</param>
        /// <param name="validation">Data for per-epoch validation and for ranking the trials.</param>
        /// <param name="progress">Receives each trial's state after each of its training runs (successive halving continues a trial in several).</param>
        /// <param name="cancellationToken">Stops the sweep.</param>
        /// <exception cref="ArgumentException">A column is missing or mistyped, or the search space names an unknown option.</exception>
        /// <exception cref="InvalidOperationException">
        /// Nothing bounds the sweep (set a time budget or a trial count), or <see cref="SetRefitOnAllData"/> is set (it needs
        /// the data in one view: <see cref="Run(IDataView, double, IProgress{TrialResult}, CancellationToken)"/>).
        /// </exception>
        public SweepResult Run(IDataView train, IDataView validation, IProgress<TrialResult>? progress = null, CancellationToken cancellationToken = default)
        {
            if (refit == true)
                throw new InvalidOperationException("SetRefitOnAllData trains the best configuration on the training and validation data together: call Run(data, validationFraction) with all of it.");
            return Search(train, validation, progress, cancellationToken, refitScale: null);
        }

        // refitScale: with a refit to come, how many times the training rows it trains on; the search then leaves it time.
        private SweepResult Search(IDataView train, IDataView validation, IProgress<TrialResult>? progress, CancellationToken cancellationToken, double? refitScale)
        {
            if (train is null) throw new ArgumentNullException(nameof(train));
            if (validation is null) throw new ArgumentNullException(nameof(validation), "Give validation data, or call Run(data, validationFraction) to hold part of the training data out.");
            var (searchSpace, binder) = Binding();
            TrialPlanner planner = tuner.CreatePlanner(searchSpace, maxEpochsPerTrial, maxTrials, seed);
            if (trainingTimeInSeconds is null && maxTrials is null && !planner.IsBounded)
                throw new InvalidOperationException($"Nothing ends this sweep: the {tuner.Name} tuner can try configurations forever. Set SetTrainingTimeInSeconds(...) or SetMaxTrials(...).");
            task.CheckSchemas(train, validation);
            CheckEdgeValues(binder, validation);

            var environment = (IHostEnvironment)ml;
            using IChannel channel = environment.Register("ResidualSweep").Start("Sweep");
            channel.Info(MessageSensitivity.None,
                $"Sweep: tuner {tuner.Name}, up to {maxEpochsPerTrial} epoch(s) per trial"
                + (maxTrials is int n ? $", {n} trial(s)" : string.Empty) + (trainingTimeInSeconds is uint s ? $", {s} s" : string.Empty)
                + $", optimising validation {metric}; search space: {string.Join("; ", searchSpace.Parameters)}");

            bool higherIsBetter = task.HigherIsBetter(metric);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (trainingTimeInSeconds is uint budget) stop.CancelAfter(TimeSpan.FromSeconds(budget));
            string? workspace = planner.ResumesTrials ? Directory.CreateTempSubdirectory("residualml-sweep-").FullName : null;
            var clock = Stopwatch.StartNew();
            var trials = new List<SweepTrial>();
            var best = new BestModel();
            bool leftForRefit = false;
            try
            {
                // The time left to the search: the budget less what has run and, with a refit to come, its estimate (the
                // full epochs on all the rows at the seconds per epoch seen so far).
                double? SecondsLeft() => trainingTimeInSeconds is uint limit
                    ? limit - clock.Elapsed.TotalSeconds - (refitScale is double scale && SweepTrial.SecondsPerEpoch(trials) is double perEpoch
                        ? perEpoch * maxEpochsPerTrial * scale * SweepTrial.TimeMargin : 0)
                    : null;
                while (!stop.IsCancellationRequested && planner.Next(trials, SecondsLeft()) is TrialJob job)
                {
                    // With a refit to come, a job that would eat into its time is not started.
                    if (refitScale != null && SecondsLeft() is double left && SweepTrial.SecondsPerEpoch(trials) is double seconds
                        && (job.TargetEpochs - (job.Continue?.Epochs ?? 0)) * seconds > left)
                    {
                        leftForRefit = true;
                        break;
                    }

                    SweepTrial trial = job.Continue ?? AddTrial(trials, binder, job.Coordinates!);
                    int from = trial.Epochs;
                    RunSegment(trial, job.TargetEpochs, binder, train, validation, workspace, higherIsBetter, best, stop.Token);
                    TrialResult snapshot = trial.Snapshot(metric);
                    channel.Info(MessageSensitivity.None, $"{trial}: {from}→{trial.EpochsRun} epoch(s), "
                        + (snapshot.Metric is double value ? string.Create(CultureInfo.InvariantCulture, $"{metric} {value:F4}, ") : string.Empty)
                        + $"{trial.Status}{(trial.Error is null ? string.Empty : ": " + trial.Error)} ({trial.Seconds:F1} s; sweep {clock.Elapsed.TotalSeconds:F0} s)");
                    progress?.Report(snapshot);
                }
            }
            catch
            {
                best.Dispose();
                throw;
            }
            finally
            {
                if (workspace != null) AtomicFile.TryDeleteDirectory(workspace);
            }

            SweepStopReason reason = cancellationToken.IsCancellationRequested ? SweepStopReason.Cancelled
                : stop.IsCancellationRequested || leftForRefit ? SweepStopReason.TimeBudget : SweepStopReason.SearchFinished;
            channel.Info(MessageSensitivity.None, $"Sweep ended ({reason}) after {clock.Elapsed.TotalSeconds:F0} s and {trials.Count} trial(s)"
                + (best.Trial is { } top ? $"; best: trial {top.Id}, {metric} {top.Metric?.ToString("F4", CultureInfo.InvariantCulture)}" : "; no trial was scored"));
            return new SweepResult(trials.Select(t => t.Snapshot(metric)).ToArray(), best.Trial, best.Model, metric, higherIsBetter, reason, clock.Elapsed);
        }

        // The search space set, or the default one, and its binding to the options' properties.
        private (SearchSpace Space, OptionBinder Binder) Binding()
        {
            SearchSpace searchSpace = space ?? task.DefaultSearchSpace();
            return (searchSpace, binder ?? new OptionBinder(task.OptionsType, searchSpace));
        }

        // Trains the best trial's configuration on all the data for the full epochs; on failure or cancellation the search's
        // result stands.
        private SweepResult Refit(SweepResult searched, IDataView data, CancellationToken cancellationToken)
        {
            if (searched.BestTrial is not TrialResult winner || cancellationToken.IsCancellationRequested) return searched;
            using IChannel channel = ((IHostEnvironment)ml).Register("ResidualSweep").Start("Refit");
            channel.Info(MessageSensitivity.None, $"Refit: trial {winner.Id}'s configuration on all the data for {maxEpochsPerTrial} epoch(s)");
            object options = task.TrialOptions(new TrialSettings(maxEpochsPerTrial, null, null, null, metric, seed, new Progress<EpochReport>(), cancellationToken));
            Binding().Binder.Apply(options, winner.Parameters);
            var clock = Stopwatch.StartNew();
            try
            {
                ITransformer model = task.Fit(options, data);
                (searched.BestModel as IDisposable)?.Dispose();
                channel.Info(MessageSensitivity.None, $"Refit done in {clock.Elapsed.TotalSeconds:F1} s");
                return searched.Refitted(model, clock.Elapsed);
            }
            catch (Exception e) when (e is not OperationCanceledException || cancellationToken.IsCancellationRequested)
            {
                // The search's best model is a good result already; a refit that fails keeps it.
                channel.Warning(MessageSensitivity.None, $"Refit stopped ({e.Message}); the best model is trial {winner.Id}'s own.");
                return searched;
            }
        }

        // Each choice and each range end, on its own, must give options the estimator accepts: a misspelt architecture
        // fails here, naming the parameter, instead of failing every trial that draws it.
        private void CheckEdgeValues(OptionBinder binder, IDataView validation)
        {
            foreach (var (parameter, value) in binder.EdgeValues())
            {
                object options = task.TrialOptions(new TrialSettings(maxEpochsPerTrial, null, null, validation, metric, seed, new Progress<EpochReport>(), CancellationToken.None));
                binder.Apply(options, parameter, value);
                try
                {
                    task.CheckOptions(options);
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"The search space's '{parameter}' = {TrialResult.Format(value)} is refused: {e.Message}", e);
                }
            }
        }

        private static SweepTrial AddTrial(List<SweepTrial> trials, OptionBinder binder, double[] coordinates)
        {
            var trial = new SweepTrial(trials.Count + 1, coordinates, binder.Decode(coordinates));
            trials.Add(trial);
            return trial;
        }

        // Trains the trial up to targetEpochs (resuming from its checkpoint when the planner continues trials), scores it and
        // keeps the model if it is the best so far. Failures and cancellation are recorded on the trial, never thrown.
        private void RunSegment(
            SweepTrial trial, int targetEpochs, OptionBinder binder, IDataView train, IDataView validation, string? workspace, bool higherIsBetter,
            BestModel best, CancellationToken token)
        {
            string? checkpoints = workspace is null ? null : Path.Combine(workspace, "trial-" + trial.Id.ToString(CultureInfo.InvariantCulture));
            object options = task.TrialOptions(new TrialSettings(
                maxEpochsPerTrial, workspace is null ? null : targetEpochs, checkpoints, validation, metric, seed,
                new CallbackProgress<EpochReport>(trial.AddEpoch), token));
            binder.Apply(options, trial.Parameters);
            var clock = Stopwatch.StartNew();
            ITransformer? model = null;
            try
            {
                model = task.Fit(options, train);
                IReadOnlyDictionary<string, double> metrics = task.Evaluate(model, validation, options);
                int epochs = trial.EpochsRun;
                trial.Metrics = metrics;
                trial.AddRung(epochs, SweepTrial.ToObjective(metrics[metric], higherIsBetter));
                bool finished = epochs >= maxEpochsPerTrial || epochs < targetEpochs; // the last epoch, or early stopping
                trial.Status = finished ? TrialStatus.Completed : TrialStatus.Pruned;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                trial.Status = TrialStatus.Cancelled;
            }
            catch (Exception e)
            {
                // Any failure of one configuration (divergence, a combination of options the estimator refuses, a native
                // error) is the trial's result, not the sweep's end.
                trial.Status = TrialStatus.Failed;
                trial.Error = e.Message;
            }
            finally
            {
                trial.Seconds += clock.Elapsed.TotalSeconds;
                if (trial.Settled && checkpoints != null) AtomicFile.TryDeleteDirectory(checkpoints);
            }

            if (model != null && (trial.Status is TrialStatus.Failed or TrialStatus.Cancelled || !best.Offer(model, trial, metric)))
                (model as IDisposable)?.Dispose();
        }

        /// <summary>The best model so far and its trial as it was then; a better one replaces (and disposes) it.</summary>
        private sealed class BestModel : IDisposable
        {
            private double objective = double.PositiveInfinity;

            public ITransformer? Model { get; private set; }

            public TrialResult? Trial { get; private set; }

            /// <summary>Takes the model if it beats the best so far (ties keep the earlier one).</summary>
            public bool Offer(ITransformer model, SweepTrial trial, string metric)
            {
                double candidate = trial.Objective ?? double.PositiveInfinity;
                if (Model != null && !(candidate < objective)) return false;
                (Model as IDisposable)?.Dispose();
                Model = model;
                Trial = trial.Snapshot(metric);
                objective = candidate;
                return true;
            }

            public void Dispose()
            {
                (Model as IDisposable)?.Dispose();
                Model = null;
            }
        }
    }
}
