using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Classification
{
    /// <summary>
    /// Trains a residual image classifier on TorchSharp and returns ordinary ML.NET transformers that score it
    /// through ONNX Runtime: [ResizeImages → ExtractPixels] → OnnxTransformer (pixel normalisation and the network,
    /// giving logits) → ML.NET's multiclass prediction transformer, which turns the logits into <c>Score</c>
    /// (softmax probabilities, slot names = class names) and <c>PredictedLabel</c> (a key with the label's key values).
    /// Every part is ML.NET's own, so <c>Model.Save</c>/<c>Load</c>, <c>Evaluate</c>, <c>CrossValidate</c> and
    /// <c>PredictionEngine</c> work, and a saved model needs neither this library nor libtorch to score.
    /// </summary>
    public sealed class ImageClassifierEstimator : ImageTrainerEstimator<ImageClassifierOptions>
    {
        private const string LogitsColumn = ImageInput.Prefix + "Logits";

        internal ImageClassifierEstimator(IHostEnvironment environment, ImageClassifierOptions options, string? requiredFamily)
            : base(environment, options, ModelTask.Classifier)
        {
            if (requiredFamily != null && Card.Family != requiredFamily)
                throw new ArgumentException($"Architecture '{options.Architecture}' is a {Card.Family}; this catalog method trains {requiredFamily} models.", nameof(options));
            void Check(bool valid, string name, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"ImageClassifierOptions.{name} = {value}: {rule}.", nameof(options));
            }

            Check(Enum.IsDefined(options.Loss), nameof(options.Loss), options.Loss, "CrossEntropy or Focal");
            Check(Enum.IsDefined(options.ClassBalance), nameof(options.ClassBalance), options.ClassBalance, "None, Weights or Sampling");
            Check(options.LabelSmoothing == 0 || options.Loss == ClassificationLoss.CrossEntropy, nameof(options.LabelSmoothing), options.LabelSmoothing,
                "smoothing applies to the cross-entropy; use Loss = CrossEntropy, or leave it 0 with the focal loss");
            Check(options.ClassBalance != ClassBalance.Weights || options.ClassWeights is null, nameof(options.ClassBalance), options.ClassBalance,
                "ClassWeights are set as well; give your own weights or have them computed from the counts, not both");
            Check(options.ClassBalance != ClassBalance.Sampling || options.CacheInMemory, nameof(options.ClassBalance), options.ClassBalance,
                "balanced sampling draws rows at random from memory; set CacheInMemory = true");
        }

        /// <inheritdoc />
        public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            if (!inputSchema.Any(c => c.Name == Options.LabelColumnName && c.IsKey))
                throw new ArgumentException($"The label column '{Options.LabelColumnName}' must exist and be a key type; use ml.Transforms.Conversion.MapValueToKey(\"{Options.LabelColumnName}\").", nameof(inputSchema));
            // Score: a float vector; PredictedLabel: a key like the label.
            return ImageInput.DeclareOutputs(Ml, inputSchema, Options.ImageColumnName, Options.ScoreColumnName,
                (Options.PredictedLabelColumnName, Options.LabelColumnName));
        }

        /// <summary>
        /// Runs the learning-rate finder (fastai's <c>lr_find</c>, see <see cref="TrainingLoop.FindLearningRate"/>) on
        /// <paramref name="input"/> with this estimator's network, data pipeline, augmentation and optimiser: a short sweep of
        /// geometrically growing learning rates that records the training loss of each. Nothing is fitted; the network is made
        /// for the sweep and discarded. The validation options are not used.
        /// </summary>
        /// <param name="input">The training data, as for <c>Fit</c>.</param>
        /// <param name="finder">The sweep's range and length (null: 1e-7 to 10 over 100 steps).</param>
        /// <returns>The loss curve and the suggested rates; set <see cref="Estimators.ImageTrainerOptions.LearningRate"/> to <see cref="LearningRateFinderResult.Suggested"/>.</returns>
        public LearningRateFinderResult FindLearningRate(IDataView input, LearningRateFinderOptions? finder = null)
        {
            (finder ??= new LearningRateFinderOptions()).Validate();
            LearningRateFinderResult result = null!;
            if (input is null) throw new ArgumentNullException(nameof(input));
            using IChannel channel = Environment.Register(nameof(ImageClassifierEstimator)).Start("Finding the learning rate");
            Prepare(input, channel, withValidation: false, setup =>
            {
                ImageInput.NamingUnreadableImages(
                    () => result = setup.Trainer.FindLearningRate(epoch => setup.Reader.ReadEpoch(epoch).Select(b => (b.Images, b.Labels!)), finder, Options.CancellationToken),
                    setup.DecodesImages, input, Options.ImageColumnName, validation: null);
                channel.Info(MessageSensitivity.None, result.Suggested is double rate
                    ? $"learning-rate finder: {result.Points.Count} steps, suggested rate {rate:G3} (steepest {result.Steepest:G3}, minimum / 10 {result.MinimumOverTen:G3})"
                    : $"learning-rate finder: {result.Points.Count} steps; the loss did not fall, so no rate is suggested");
            });
            return result;
        }

        /// <summary>What a fit learns of its input: the label's classes, and the stem the network got.</summary>
        private sealed class LabelledFit : FitState
        {
            internal LabelledFit(LabelKeyInfo labels) => Labels = labels;

            internal LabelKeyInfo Labels { get; }

            internal string[] ClassNames => Labels.ClassNames?.ToArray()
                ?? Enumerable.Range(1, Labels.ClassCount).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

            internal StemKind? Stem { get; set; }
        }

        private protected override FitState CheckInput(IDataView input)
        {
            LabelKeyInfo labels = LabelKeyInfo.FromSchema(input.Schema, Options.LabelColumnName);
            if (labels.ClassCount < 2 && EstimatorRuntime.CountRows(input) == 0) throw new ArgumentException("The training data is empty: it has no rows.", nameof(input));
            if (labels.ClassCount < 2)
                throw new ArgumentException(
                    $"The label column '{Options.LabelColumnName}' has {labels.ClassCount} class; a classifier needs at least two. Check that the data holds "
                    + "more than one label value (MapValueToKey makes one key per distinct value).", nameof(input));
            if (Options.ClassWeights is { } weights && weights.Count != labels.ClassCount)
                throw new ArgumentException(
                    $"ImageClassifierOptions.ClassWeights has {weights.Count} weights, but the label column '{Options.LabelColumnName}' has {labels.ClassCount} classes; "
                    + "give one weight per class, in key order.", nameof(input));
            return new LabelledFit(labels);
        }

        private protected override ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, bool training, bool pinMemory) =>
            new(data, new ImageBatchOptions
            {
                ImageColumnName = imageColumn, LabelColumnName = Options.LabelColumnName, Width = Options.ImageWidth, Height = Options.ImageHeight,
                BatchSize = Options.BatchSize, Shuffle = training, Seed = Options.Seed, CacheInMemory = Options.CacheInMemory,
                BalanceClasses = training && Options.ClassBalance == ClassBalance.Sampling,
                Workers = Options.Workers, PinMemory = pinMemory, Augmentation = training ? Options.Augmentation ?? DefaultAugmentation() : null,
            });

        private protected override nn.Module<Tensor, Tensor> CreateModel(FitState state, int channels, IChannel channel)
        {
            var fit = (LabelledFit)state;
            using TensorDictionary? initial = Options.ResumeFromModelPath is string saved ? SavedModelWeights.Read(saved, nameof(Options.ResumeFromModelPath))
                : Options.PretrainedWeightsPath is string pretrained ? ReadPretrained(pretrained, channels) : null;
            fit.Stem = ChooseStem(initial);
            ModelOptions modelOptions = ResidualModels.NewOptions(Card);
            modelOptions.Seed = Options.Seed;
            if (modelOptions is IStemOptions stems) stems.Stem = fit.Stem;
            if (modelOptions is ResNetOptions resnet) resnet.ZeroInitResidual = true; // every block starts as its shortcut (Goyal et al. 2017)
            var model = ResidualModels.Create(Options.Architecture, fit.Labels.ClassCount, channels, modelOptions);
            try
            {
                if (initial != null) LoadInitialWeights(model, initial, Card.HeadPrefix!, fit.ClassNames, channels, fit.Stem, channel);
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        private protected override TrainingLoop CreateTrainer(nn.Module<Tensor, Tensor> model, TrainingOptions training, IDataView trainingRows)
        {
            var trainer = new TrainingLoop(model, training, Card.HeadPrefix!);
            IReadOnlyList<float>? weights = Options.ClassWeights
                ?? (Options.ClassBalance == ClassBalance.Weights ? BalancedWeights(LabelKeyInfo.CountKeys(trainingRows, Options.LabelColumnName)) : null);
            if (weights != null || Options.Loss == ClassificationLoss.Focal)
                trainer.Loss = ClassificationLosses.Create(Options.Loss == ClassificationLoss.Focal, weights, Options.FocalGamma);
            return trainer;
        }

        /// <summary>
        /// scikit-learn's "balanced" class weights: n / (K·n_k) for class k with n_k of the n labelled rows, K the classes that
        /// have rows; a class without training rows gets 1 (it adds nothing to the training loss).
        /// </summary>
        internal static float[] BalancedWeights(IReadOnlyList<long> counts)
        {
            long total = counts.Sum();
            int present = counts.Count(c => c > 0);
            return counts.Select(c => c > 0 ? (float)((double)total / (present * (double)c)) : 1f).ToArray();
        }

        private protected override OnnxExportOptions ExportOptions(FitState state, string pixelColumn, PixelNormalization normalization, nn.Module<Tensor, Tensor> network) => new()
        {
            InputName = pixelColumn, OutputName = LogitsColumn, Normalization = normalization,
            Metadata = new Dictionary<string, string>
            {
                [SavedModelWeights.ArchitectureKey] = Options.Architecture,
                [SavedModelWeights.ClassesKey] = string.Join("\n", ((LabelledFit)state).ClassNames),
                [SavedModelWeights.StemKey] = ((LabelledFit)state).Stem?.ToString() ?? "default",
            },
        };

        // Pretrained weights, their first convolution adapted from RGB to the images' channel count.
        private TensorDictionary ReadPretrained(string path, int channels)
        {
            try
            {
                return EstimatorRuntime.ReadPretrained(path, Card, channels);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or WeightsFormatException or IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"ImageClassifierOptions.PretrainedWeightsPath = '{path}': {e.Message}", "options", e);
            }
        }

        // The stem: the user's choice; else the one the saved model had; else the architecture's own for pretrained
        // weights (they were trained with it); else the default.
        private StemKind? ChooseStem(TensorDictionary? initial)
        {
            if (!typeof(IStemOptions).IsAssignableFrom(Card.OptionsType))
            {
                if (Options.Stem is not null)
                    throw new ArgumentException($"ImageClassifierOptions.Stem = {Options.Stem}: '{Options.Architecture}' has no stem to choose; leave Stem null.", "options");
                return null;
            }

            if (Options.Stem is StemKind chosen) return chosen;
            if (Options.ResumeFromModelPath != null && initial != null && initial.Metadata.TryGetValue(SavedModelWeights.StemKey, out string? saved))
                return Enum.TryParse(saved, out StemKind parsed) ? parsed : null;
            if (initial != null) return null;
            return DefaultStem();
        }

        // The defaults below were chosen by measurement (issue 23; the recipes benchmark, docs/training.md): on every
        // dataset of the benchmark the default recipe comes within a stated distance of the best of a random search.

        /// <summary>The stem when none is set: the CIFAR stem (3×3, no pooling) for images of at most 32 pixels a side, the architecture's own otherwise.</summary>
        internal StemKind? DefaultStem() => Math.Max(Options.ImageWidth, Options.ImageHeight) <= 32 ? StemKind.Cifar : null;

        /// <summary>
        /// The augmentation when none is set: none. A flip changes the class of some images (text, digits, diagonal
        /// patterns); on the benchmark's textures every augmentation measured (all of them flip) cost 30 points.
        /// </summary>
        internal static ImageAugmentation DefaultAugmentation() => new();

        /// <summary>The recipe these options resolve to, defaults filled in, as text: the recipes benchmark keys its default runs by it, so a changed default is measured anew.</summary>
        internal string DescribeRecipe()
        {
            TrainingOptions training = CheckTrainingOptions();
            ImageAugmentation augmentation = Options.Augmentation ?? DefaultAugmentation();
            return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{training.Optimizer} {training.LearningRate:G2} {training.Schedule}, warm-up {training.WarmupEpochs:G3}, decay {training.WeightDecay:G2}, "
                + $"smoothing {training.LabelSmoothing}, flip {augmentation.HorizontalFlipProbability}, crop padding {augmentation.CropPadding}, "
                + $"resized crop {augmentation.RandomResizedCropScale}, policy {augmentation.Policy}, {(Options.Stem ?? DefaultStem())?.ToString() ?? "architecture's"} stem");
        }

        // Loads everything but the head strictly (a file for another architecture is an error naming the keys), then
        // the head when the file's fits: as it is for the same class count, rows reordered when a saved model knew the
        // same classes under another key order; otherwise the head keeps its fresh initialisation.
        private void LoadInitialWeights(nn.Module model, TensorDictionary initial, string head, string[] classNames, int channels, StemKind? stem, IChannel channel)
        {
            string option = Options.ResumeFromModelPath != null ? nameof(Options.ResumeFromModelPath) : nameof(Options.PretrainedWeightsPath);
            if (Options.ResumeFromModelPath != null && initial.Metadata.TryGetValue(SavedModelWeights.ArchitectureKey, out string? architecture)
                && !string.Equals(architecture, Options.Architecture, StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException(
                    $"ImageClassifierOptions.ResumeFromModelPath = '{initial.FilePath}' holds a {architecture}, but Architecture is {Options.Architecture}. "
                    + $"Set Architecture = \"{architecture}\" to continue training it.", "options");
            }

            try
            {
                StateDict.Load(model, initial, strict: true, new StateDictLoadOptions { SkipPrefixes = { head } });
            }
            catch (StateDictMismatchException e)
            {
                throw new ArgumentException(
                    $"ImageClassifierOptions.{option} = '{initial.FilePath}' does not hold weights for {Options.Architecture} with {channels} input channel(s) "
                    + $"and the {stem?.ToString() ?? "architecture's own"} stem: {e.Message} Choose the Architecture the weights were made for"
                    + (channels != 3 && (Options.ResumeFromModelPath != null || Card.FirstConvolution is null) ? ", or give RGB images (3 channels) for weights trained on them." : "."),
                    "options", e);
            }

            var parameters = model.named_parameters().Where(p => p.name.StartsWith(head, StringComparison.Ordinal)).ToList();
            string[]? savedClasses = Options.ResumeFromModelPath != null ? SavedModelWeights.ClassNames(initial) : null;
            int[]? order = savedClasses != null && savedClasses.Length == classNames.Length && classNames.All(savedClasses.Contains)
                ? classNames.Select(n => Array.IndexOf(savedClasses, n)).ToArray()
                : null;
            bool fits = parameters.All(p => initial.TryGetValue(p.name, out Tensor? t) && t.shape.SequenceEqual(p.parameter.shape));
            if (!fits || (savedClasses != null && order == null))
            {
                channel.Info(MessageSensitivity.None, $"The classifier head ({head}*) is new: {classNames.Length} classes, the weights' head does not fit them.");
                return;
            }

            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            foreach (var (name, parameter) in parameters)
            {
                Tensor source = initial[name];
                if (order != null) source = source.index_select(0, torch.tensor(order.Select(i => (long)i).ToArray()));
                parameter.copy_(source);
            }
        }

        private protected override string[] GraphOutputs => new[] { LogitsColumn };

        // The logits become Score (softmax) and PredictedLabel (the label's keys), as ML.NET's multiclass trainers give them.
        private protected override void AddScoringColumns(ChainBuilder chain, FitState state) =>
            chain.Add(LogitsPredictionStep.Create(Environment, Ml, chain.Current.Schema[LogitsColumn].Type, LogitsColumn, ((LabelledFit)state).ClassNames,
                Options.ScoreColumnName, Options.PredictedLabelColumnName));

    }
}
