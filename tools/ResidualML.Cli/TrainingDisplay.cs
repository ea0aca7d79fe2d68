using System;
using System.Collections.Generic;
using System.Globalization;
using Microsoft.ML.Residual.Training;
using Spectre.Console;

namespace ResidualML.Cli
{
    /// <summary>
    /// Live progress bars while a model trains: one over the whole run and one over the current epoch, with the batch, the
    /// running loss, images per second and the estimated time left; a line per finished epoch. Feed it through
    /// <see cref="Batches"/> and <see cref="Epochs"/> (the options' BatchProgress and Progress).
    /// </summary>
    internal sealed class TrainingDisplay
    {
        private readonly IAnsiConsole console;
        private readonly bool lossOnly;
        private readonly List<EpochReport> history = new();
        private ProgressTask? run;
        private ProgressTask? epoch;

        /// <param name="console">Where the bars and lines go.</param>
        /// <param name="lossOnly">Whether the model reports losses only (a detector): its epoch lines then show no accuracy.</param>
        public TrainingDisplay(IAnsiConsole console, bool lossOnly = false)
        {
            this.console = console;
            this.lossOnly = lossOnly;
            Batches = new Handler<BatchReport>(OnBatch);
            Epochs = new Handler<EpochReport>(OnEpoch);
        }

        public IProgress<BatchReport> Batches { get; }

        public IProgress<EpochReport> Epochs { get; }

        /// <summary>The epochs reported so far, in order.</summary>
        public IReadOnlyList<EpochReport> History => history;

        /// <summary>Runs <paramref name="train"/> with the bars on screen and returns what it returns.</summary>
        public T Show<T>(string title, Func<T> train)
        {
            T result = default!;
            console.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(context =>
                {
                    run = context.AddTask(Markup.Escape(title), maxValue: 1);
                    epoch = context.AddTask("loading the images", maxValue: 1);
                    result = train();
                    run.Value = run.MaxValue;
                    epoch.Value = epoch.MaxValue;
                });
            return result;
        }

        private void OnBatch(BatchReport r)
        {
            if (run is null || epoch is null) return;
            run.MaxValue = Math.Max(1, r.Epochs * r.BatchesPerEpoch);
            run.Value = Math.Min(run.MaxValue, (r.Epoch - 1) * r.BatchesPerEpoch + r.Batch);
            run.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"epoch {r.Epoch}/{r.Epochs}  loss {r.Loss:F4}  {r.ImagesPerSecond:F0} img/s  ETA {Duration(r.EstimatedRemaining)}"));
            epoch.MaxValue = Math.Max(1, r.BatchesPerEpoch);
            epoch.Value = Math.Min(epoch.MaxValue, r.Batch);
            epoch.Description = string.Create(CultureInfo.InvariantCulture, $"batch {r.Batch}/{r.BatchesPerEpoch}");
        }

        private void OnEpoch(EpochReport r)
        {
            history.Add(r);
            if (lossOnly)
            {
                string loss = r.ValidationLoss is double v ? string.Create(CultureInfo.InvariantCulture, $"  validation loss {v:F4}") : string.Empty;
                console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                    $"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}{loss}  {r.ImagesPerSecond:F1} img/s{(r.GpuMemoryMegabytes is double gpu ? $"  GPU {gpu:F0} MB" : string.Empty)}{(r.IsBest ? "  best so far" : string.Empty)}")));
                return;
            }

            string validation = r.ValidationMeanIoU is double iou ? string.Create(CultureInfo.InvariantCulture, $"  validation mean IoU {iou:F3}")
                : r.ValidationAccuracy is double accuracy ? string.Create(CultureInfo.InvariantCulture, $"  validation loss {r.ValidationLoss:F4}  accuracy {accuracy:P1}")
                : string.Empty;
            console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"epoch {r.Epoch}/{r.Epochs}  loss {r.TrainingLoss:F4}  accuracy {r.TrainingAccuracy:P1}{validation}  {r.ImagesPerSecond:F0} img/s{(r.GpuMemoryMegabytes is double memory ? $"  GPU {memory:F0} MB" : string.Empty)}{(r.IsBest ? "  best so far" : string.Empty)}")));
        }

        internal static string Duration(TimeSpan span) =>
            span.TotalHours >= 1 ? $"{(int)span.TotalHours}:{span:mm\\:ss}" : span.ToString("m\\:ss", CultureInfo.InvariantCulture);

        // Calls the handler at once on the training thread (System.Progress would post to a thread-pool thread, out of order).
        private sealed class Handler<T> : IProgress<T>
        {
            private readonly Action<T> action;

            public Handler(Action<T> action) => this.action = action;

            public void Report(T value) => action(value);
        }
    }
}
