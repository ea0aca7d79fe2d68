using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>What one trial segment asks of the task's estimator.</summary>
    internal sealed record TrialSettings(
        int Epochs, int? StopAfterEpoch, string? CheckpointDirectory, IDataView? Validation, string Metric, int Seed,
        IProgress<EpochReport> Progress, CancellationToken CancellationToken);

    /// <summary>The task-specific part of a sweep: its options, estimator and evaluator.</summary>
    internal abstract class SweepTask
    {
        /// <summary>The options class the search space's names refer to.</summary>
        public abstract Type OptionsType { get; }

        /// <summary>The metrics <see cref="Evaluate"/> gives; the first is the default optimising metric.</summary>
        public abstract IReadOnlyList<string> MetricNames { get; }

        /// <summary>The epochs per trial unless the experiment sets them: the base options' epochs.</summary>
        public abstract int DefaultEpochs { get; }

        /// <summary>The seed unless the experiment sets one: the base options' seed.</summary>
        public abstract int DefaultSeed { get; }

        public abstract bool HigherIsBetter(string metric);

        /// <summary>A copy of the base options with the sweep's settings; the caller then applies the trial's parameters.</summary>
        public abstract object TrialOptions(TrialSettings settings);

        /// <summary>
        /// Checks that the training and validation data have the columns the base options name, so that a missing or
        /// mistyped column fails before any trial rather than in every one.
        /// </summary>
        public void CheckSchemas(IDataView train, IDataView validation)
        {
            CheckSchema(train.Schema, "training data", "train");
            CheckSchema(validation.Schema, "validation data", "validation");
        }

        /// <summary>Throws an <see cref="ArgumentException"/> naming the column and the data (<paramref name="data"/>) that lack it.</summary>
        protected abstract void CheckSchema(DataViewSchema schema, string data, string parameterName);

        protected static DataViewSchema.Column RequireColumn(DataViewSchema schema, string column, string role, string data, string parameterName) =>
            schema.GetColumnOrNull(column) ?? throw new ArgumentException(
                $"The {data} has no {role} column '{column}'. Its columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.", parameterName);

        /// <summary>Throws an <see cref="ArgumentException"/> when the estimator refuses the options (an unknown architecture, a negative rate, …).</summary>
        public abstract void CheckOptions(object options);

        /// <summary>
        /// The search space of a sweep that sets none: the learning rate from a third to three times the rate the base
        /// options resolve to, the weight decay from a fifth to five times its resolved value (when there is one), and the
        /// task's own additions. Everything else, the architecture included, stays as the base options say.
        /// </summary>
        public SearchSpace DefaultSearchSpace()
        {
            TrainingOptions resolved = ResolvedBaseOptions();
            var space = new SearchSpace().LogUniform("LearningRate", resolved.LearningRate / 3, resolved.LearningRate * 3);
            if (resolved.WeightDecay > 0) space.LogUniform("WeightDecay", resolved.WeightDecay / 5, resolved.WeightDecay * 5);
            AddToDefaultSearchSpace(space);
            return space;
        }

        /// <summary>The base options' training-loop settings with every default resolved, as the estimator resolves them.</summary>
        protected abstract TrainingOptions ResolvedBaseOptions();

        /// <summary>Parameters the task adds to <see cref="DefaultSearchSpace"/>.</summary>
        protected virtual void AddToDefaultSearchSpace(SearchSpace space)
        {
        }

        public abstract ITransformer Fit(object options, IDataView train);

        /// <summary>Every metric of the fitted model on the validation data, by name.</summary>
        public abstract IReadOnlyDictionary<string, double> Evaluate(ITransformer model, IDataView validation, object options);

        protected static IProgress<EpochReport> Both(IProgress<EpochReport>? user, IProgress<EpochReport> sweep) =>
            user is null ? sweep : new CallbackProgress<EpochReport>(report =>
            {
                sweep.Report(report);
                user.Report(report);
            });
    }

    /// <summary>The part of a task that depends only on its options type: the base options and the sweep's settings on a copy.</summary>
    internal abstract class SweepTask<TOptions> : SweepTask
        where TOptions : ImageTrainerOptions
    {
        private readonly Func<TOptions, TOptions> copy;

        protected SweepTask(IHostEnvironment environment, MLContext ml, TOptions baseOptions, Func<TOptions, TOptions> copy)
        {
            Environment = environment;
            Ml = ml;
            this.copy = copy;
            BaseOptions = copy(baseOptions);
        }

        public override Type OptionsType => typeof(TOptions);

        public override int DefaultEpochs => BaseOptions.Epochs;

        public override int DefaultSeed => BaseOptions.Seed;

        protected IHostEnvironment Environment { get; }

        protected MLContext Ml { get; }

        protected TOptions BaseOptions { get; }

        public override object TrialOptions(TrialSettings settings)
        {
            TOptions options = copy(BaseOptions);
            options.Epochs = settings.Epochs;
            options.StopAfterEpoch = settings.StopAfterEpoch;
            options.CheckpointDirectory = settings.CheckpointDirectory;
            options.ValidationSet = settings.Validation;
            options.ValidationFraction = 0;
            options.Seed = settings.Seed;
            options.Progress = Both(BaseOptions.Progress, settings.Progress);
            options.CancellationToken = settings.CancellationToken;
            Customize(options, settings);
            return options;
        }

        /// <summary>Task-specific settings of a trial's options.</summary>
        protected virtual void Customize(TOptions options, TrialSettings settings)
        {
        }
    }

    /// <summary>Image classification: <see cref="ImageClassifierEstimator"/>, scored with ML.NET's multiclass evaluator.</summary>
    internal sealed class ClassificationSweepTask : SweepTask<ImageClassifierOptions>
    {
        public ClassificationSweepTask(IHostEnvironment environment, MLContext ml, ImageClassifierOptions baseOptions)
            : base(environment, ml, baseOptions, o => o.Clone())
        {
        }

        public override IReadOnlyList<string> MetricNames { get; } = new[] { "MacroAccuracy", "MicroAccuracy", "LogLoss", "LogLossReduction" };

        public override bool HigherIsBetter(string metric) => metric != "LogLoss";

        protected override void Customize(ImageClassifierOptions options, TrialSettings settings) =>
            options.EarlyStoppingMetric = settings.Metric == "LogLoss" ? ClassifierMetric.ValidationLoss : ClassifierMetric.ValidationAccuracy;

        protected override void CheckSchema(DataViewSchema schema, string data, string parameterName)
        {
            RequireColumn(schema, BaseOptions.ImageColumnName, "image", data, parameterName);
            DataViewSchema.Column label = RequireColumn(schema, BaseOptions.LabelColumnName, "label", data, parameterName);
            if (label.Type is not KeyDataViewType)
                throw new ArgumentException(
                    $"The {data}'s label column '{label.Name}' is a {label.Type}, not a key: apply ml.Transforms.Conversion.MapValueToKey(\"{label.Name}\"), fitted once, to both the training and validation data.",
                    parameterName);
        }

        public override void CheckOptions(object options) =>
            new ImageClassifierEstimator(Environment, (ImageClassifierOptions)options, requiredFamily: null).CheckTrainingOptions();

        protected override TrainingOptions ResolvedBaseOptions() =>
            new ImageClassifierEstimator(Environment, BaseOptions, requiredFamily: null).CheckTrainingOptions();

        // Label smoothing 0.1 was among the best recipes on some datasets of the recipes benchmark and not on others.
        protected override void AddToDefaultSearchSpace(SearchSpace space) => space.Choice("LabelSmoothing", 0.0, 0.1);

        public override ITransformer Fit(object options, IDataView train) =>
            new ImageClassifierEstimator(Environment, (ImageClassifierOptions)options, requiredFamily: null).Fit(train);

        public override IReadOnlyDictionary<string, double> Evaluate(ITransformer model, IDataView validation, object options)
        {
            var o = (ImageClassifierOptions)options;
            MulticlassClassificationMetrics metrics = Ml.MulticlassClassification.Evaluate(
                model.Transform(validation), o.LabelColumnName, o.ScoreColumnName, o.PredictedLabelColumnName);
            return new Dictionary<string, double>
            {
                ["MacroAccuracy"] = metrics.MacroAccuracy,
                ["MicroAccuracy"] = metrics.MicroAccuracy,
                ["LogLoss"] = metrics.LogLoss,
                ["LogLossReduction"] = metrics.LogLossReduction,
            };
        }
    }

    /// <summary>Segmentation: <see cref="UNetSegmenterEstimator"/>, scored with <see cref="SegmentationCatalog.Evaluate"/>.</summary>
    internal sealed class SegmentationSweepTask : SweepTask<SegmenterOptions>
    {
        public SegmentationSweepTask(IHostEnvironment environment, MLContext ml, SegmenterOptions baseOptions)
            : base(environment, ml, baseOptions, o => o.Clone())
        {
        }

        public override IReadOnlyList<string> MetricNames { get; } = new[] { "MeanIoU", "MeanDice", "PixelAccuracy" };

        public override bool HigherIsBetter(string metric) => true;

        protected override void CheckSchema(DataViewSchema schema, string data, string parameterName)
        {
            RequireColumn(schema, BaseOptions.ImageColumnName, "image", data, parameterName);
            RequireColumn(schema, BaseOptions.MaskColumnName, "mask", data, parameterName);
        }

        public override void CheckOptions(object options) => new UNetSegmenterEstimator(Environment, (SegmenterOptions)options).CheckTrainingOptions();

        protected override TrainingOptions ResolvedBaseOptions() => new UNetSegmenterEstimator(Environment, BaseOptions).CheckTrainingOptions();

        public override ITransformer Fit(object options, IDataView train) => new UNetSegmenterEstimator(Environment, (SegmenterOptions)options).Fit(train);

        public override IReadOnlyDictionary<string, double> Evaluate(ITransformer model, IDataView validation, object options)
        {
            var o = (SegmenterOptions)options;
            SegmentationMetrics metrics = Ml.Segmentation().Evaluate(model.Transform(validation), o.MaskColumnName, o.PredictedMaskColumnName, o.NumClasses, o.IgnoreIndex);
            return new Dictionary<string, double>
            {
                ["MeanIoU"] = metrics.MeanIoU,
                ["MeanDice"] = metrics.MeanDice,
                ["PixelAccuracy"] = metrics.PixelAccuracy,
            };
        }
    }
}
