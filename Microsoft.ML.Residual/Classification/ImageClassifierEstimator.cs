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
    public sealed class ImageClassifierEstimator : IEstimator<ITransformer>
    {
        private const string LogitsColumn = ImageInput.Prefix + "Logits";

        private readonly IHostEnvironment environment;
        private readonly MLContext ml;
        private readonly ImageClassifierOptions options;
        private readonly ModelInfo card;

        internal ImageClassifierEstimator(IHostEnvironment environment, ImageClassifierOptions options, string? requiredFamily)
        {
            this.environment = environment ?? throw new ArgumentNullException(nameof(environment));
            ml = ImageInput.TransformContext(options?.Seed);
            this.options = options ?? throw new ArgumentNullException(nameof(options));
            card = options.CheckShared(ModelTask.Classifier);
            if (requiredFamily != null && card.Family != requiredFamily)
                throw new ArgumentException($"Architecture '{options.Architecture}' is a {card.Family}; this catalog method trains {requiredFamily} models.", nameof(options));
        }

        /// <inheritdoc />
        public SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            if (!inputSchema.Any(c => c.Name == options.LabelColumnName && c.IsKey))
                throw new ArgumentException($"The label column '{options.LabelColumnName}' must exist and be a key type; use ml.Transforms.Conversion.MapValueToKey(\"{options.LabelColumnName}\").", nameof(inputSchema));
            // Score: a float vector; PredictedLabel: a key like the label.
            return ImageInput.DeclareOutputs(ml, inputSchema, options.ImageColumnName, options.ScoreColumnName,
                (options.PredictedLabelColumnName, options.LabelColumnName));
        }

        /// <inheritdoc />
        public ITransformer Fit(IDataView input)
        {
            byte[] onnx = null!;
            Prepared? prepared = null;
            (int? Gpu, bool FallbackToCpu) scoring = default;
            Prepare(input, "Training", withValidation: true, setup =>
            {
                prepared = setup;
                TrainingRun.Train(options, setup.Channel, setup.Model, setup.Trainer, setup.Device, input, setup.Rows,
                    epoch => setup.Reader.ReadEpoch(epoch).Select(b => (b.Images, b.Labels!)),
                    setup.Validation == null ? null : () => setup.Validation.ReadAll().Select(b => (b.Images, b.Labels!)),
                    () => (setup.Validation ?? setup.Reader).ReadAll().Select(b => (b.Images, b.Labels!)), setup.PixelTransform != null);
                onnx = TrainingRun.Export(setup.Model, setup.Reader.Channels, options, new OnnxExportOptions
                {
                    InputName = setup.PixelColumn, OutputName = LogitsColumn, Normalization = setup.Normalization,
                    Metadata = new Dictionary<string, string>
                    {
                        [SavedModelWeights.ArchitectureKey] = options.Architecture,
                        [SavedModelWeights.ClassesKey] = string.Join("\n", setup.ClassNames),
                        [SavedModelWeights.StemKey] = setup.Stem?.ToString() ?? "default",
                    },
                });
                scoring = EstimatorRuntime.ScoringDevice(environment, setup.Channel);
            });

            return BuildChain(input, prepared!.PixelTransform, prepared.PixelColumn, onnx, prepared.Labels, scoring);
        }

        /// <summary>
        /// Runs the learning-rate finder (fastai's <c>lr_find</c>, see <see cref="TrainingLoop.FindLearningRate"/>) on
        /// <paramref name="input"/> with this estimator's network, data pipeline, augmentation and optimiser: a short sweep of
        /// geometrically growing learning rates that records the training loss of each. Nothing is fitted; the network is made
        /// for the sweep and discarded. The validation options are not used.
        /// </summary>
        /// <param name="input">The training data, as for <see cref="Fit"/>.</param>
        /// <param name="finder">The sweep's range and length (null: 1e-7 to 10 over 100 steps).</param>
        /// <returns>The loss curve and the suggested rates; set <see cref="Estimators.ImageTrainerOptions.LearningRate"/> to <see cref="LearningRateFinderResult.Suggested"/>.</returns>
        public LearningRateFinderResult FindLearningRate(IDataView input, LearningRateFinderOptions? finder = null)
        {
            (finder ??= new LearningRateFinderOptions()).Validate();
            LearningRateFinderResult result = null!;
            Prepare(input, "Finding the learning rate", withValidation: false, setup =>
            {
                ImageInput.NamingUnreadableImages(
                    () => result = setup.Trainer.FindLearningRate(epoch => setup.Reader.ReadEpoch(epoch).Select(b => (b.Images, b.Labels!)), finder, options.CancellationToken),
                    setup.PixelTransform != null, input, options.ImageColumnName, validation: null);
                setup.Channel.Info(MessageSensitivity.None, result.Suggested is double rate
                    ? $"learning-rate finder: {result.Points.Count} steps, suggested rate {rate:G3} (steepest {result.Steepest:G3}, minimum / 10 {result.MinimumOverTen:G3})"
                    : $"learning-rate finder: {result.Points.Count} steps; the loss did not fall, so no rate is suggested");
            });
            return result;
        }

        /// <summary>What <see cref="Fit"/> and <see cref="FindLearningRate"/> share: the data readers, the network on its device and its trainer.</summary>
        private sealed record Prepared(
            TrainingLoop Trainer, nn.Module<Tensor, Tensor> Model, ImageBatchReader Reader, ImageBatchReader? Validation, long Rows, Device Device,
            IChannel Channel, ITransformer? PixelTransform, string PixelColumn, LabelKeyInfo Labels, string[] ClassNames, StemKind? Stem,
            PixelNormalization Normalization);

        // Checks the input, builds the readers and the network (with its initial weights, on the training device) and runs
        // `body` with them; the network is disposed afterwards.
        private void Prepare(IDataView input, string channelName, bool withValidation, Action<Prepared> body)
        {
            if (input is null) throw new ArgumentNullException(nameof(input));
            EstimatorRuntime.EnsureOnnxRuntime();
            TrainingOptions training = TrainingOptions();
            LabelKeyInfo labels = LabelKeyInfo.FromSchema(input.Schema, options.LabelColumnName);
            if (labels.ClassCount < 2 && EstimatorRuntime.CountRows(input) == 0) throw new ArgumentException("The training data is empty: it has no rows.", nameof(input));
            if (labels.ClassCount < 2)
                throw new ArgumentException(
                    $"The label column '{options.LabelColumnName}' has {labels.ClassCount} class; a classifier needs at least two. Check that the data holds "
                    + "more than one label value (MapValueToKey makes one key per distinct value).", nameof(input));
            int classes = labels.ClassCount;
            string[] classNames = ClassNames(labels);

            (ITransformer? pixelTransform, string pixelColumn) = ImageInput.PixelPipeline(ml, input, options.ImageColumnName, options.ImageWidth, options.ImageHeight);
            (ITransformer? readTransform, string readColumn) = ImageInput.TrainingImages(ml, input, options.ImageColumnName, options.ImageWidth, options.ImageHeight);
            // The finder sweeps the rows Fit would train on (without ValidationFraction's held-out share), and reads no validation data.
            (IDataView pixels, IDataView? validationPixels) = ImageInput.SplitValidation(
                ml, input, readTransform, options.ValidationSet, options.ValidationFraction, options.Seed);
            if (!withValidation) validationPixels = null;
            string validationSource = options.ValidationSet != null || options.ValidationFraction <= 0 ? nameof(options.ValidationSet) : nameof(options.ValidationFraction);

            using IChannel channel = environment.Register(nameof(ImageClassifierEstimator)).Start(channelName);
            Device device = EstimatorRuntime.ChooseDevice(environment, channel);
            var readerOptions = new ImageBatchOptions
            {
                ImageColumnName = readColumn, LabelColumnName = options.LabelColumnName, Width = options.ImageWidth, Height = options.ImageHeight,
                BatchSize = options.BatchSize, Shuffle = true, Seed = options.Seed, CacheInMemory = options.CacheInMemory,
                Workers = options.Workers, PinMemory = device.type == DeviceType.CUDA,
                Augmentation = options.Augmentation ?? DefaultAugmentation(),
            };
            var reader = new ImageBatchReader(pixels, readerOptions);
            long rows = EstimatorRuntime.CountRows(pixels);
            if (rows == 0)
                throw new ArgumentException(validationSource == nameof(options.ValidationFraction)
                    ? $"The training data is empty once ValidationFraction = {options.ValidationFraction} is held out; lower it or add rows."
                    : "The training data is empty.", nameof(input));
            ImageBatchReader? validation = validationPixels == null ? null : ValidationReader(validationPixels, readColumn, validationSource, readerOptions.PinMemory);
            TensorDictionary? initial = options.ResumeFromModelPath is string saved ? SavedModelWeights.Read(saved, nameof(options.ResumeFromModelPath))
                : options.PretrainedWeightsPath is string pretrained ? ReadPretrained(pretrained) : null;
            PixelNormalization normalization = PixelNormalization.ImageNet(reader.Channels);
            StemKind? stem = ChooseStem(initial);
            var model = CreateModel(classes, reader.Channels, stem);
            try
            {
                string head = card.HeadPrefix!;
                if (initial != null) LoadInitialWeights(model, initial, head, classNames, reader.Channels, stem, channel);
                model.to(device);
                using var normalizer = new PixelNormalizer(normalization, reader.Channels, device);
                var trainer = new TrainingLoop(model, training, head) { Preprocess = normalizer.Apply };
                body(new Prepared(trainer, model, reader, validation, rows, device, channel, pixelTransform, pixelColumn, labels, classNames, stem, normalization));
            }
            finally
            {
                model.Dispose();
                initial?.Dispose();
            }
        }

        private ImageBatchReader ValidationReader(IDataView validationPixels, string readColumn, string source, bool pinMemory)
        {
            try
            {
                return new ImageBatchReader(validationPixels, new ImageBatchOptions
                {
                    ImageColumnName = readColumn, LabelColumnName = options.LabelColumnName, Width = options.ImageWidth, Height = options.ImageHeight,
                    BatchSize = options.BatchSize, Shuffle = false, CacheInMemory = options.CacheInMemory, Workers = options.Workers, PinMemory = pinMemory,
                });
            }
            catch (ArgumentException e) when (source == nameof(options.ValidationSet))
            {
                throw new ArgumentException(
                    $"ImageClassifierOptions.ValidationSet: {e.Message} The validation data needs the same columns as the training data, after the same transforms (e.g. the label's MapValueToKey).",
                    nameof(options), e);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"ImageClassifierOptions.ValidationFraction = {options.ValidationFraction} holds out no rows ({e.Message}); raise it or add rows.", nameof(options), e);
            }
        }

        private TensorDictionary ReadPretrained(string path)
        {
            try
            {
                return StateDict.Read(path);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or WeightsFormatException or IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"ImageClassifierOptions.PretrainedWeightsPath = '{path}': {e.Message}", nameof(options), e);
            }
        }

        // The stem: the user's choice; else the one the saved model had; else the architecture's own for pretrained
        // weights (they were trained with it); else the default.
        private StemKind? ChooseStem(TensorDictionary? initial)
        {
            if (!typeof(IStemOptions).IsAssignableFrom(card.OptionsType))
            {
                if (options.Stem is not null)
                    throw new ArgumentException($"ImageClassifierOptions.Stem = {options.Stem}: '{options.Architecture}' has no stem to choose; leave Stem null.", nameof(options));
                return null;
            }

            if (options.Stem is StemKind chosen) return chosen;
            if (options.ResumeFromModelPath != null && initial != null && initial.Metadata.TryGetValue(SavedModelWeights.StemKey, out string? saved))
                return Enum.TryParse(saved, out StemKind parsed) ? parsed : null;
            if (initial != null) return null;
            return DefaultStem();
        }

        // The defaults below were chosen by measurement (issue 23; the recipes benchmark, docs/training.md): on every
        // dataset of the benchmark the default recipe comes within a stated distance of the best of a random search.

        /// <summary>The stem when none is set: the CIFAR stem (3×3, no pooling) for images of at most 32 pixels a side, the architecture's own otherwise.</summary>
        internal StemKind? DefaultStem() => Math.Max(options.ImageWidth, options.ImageHeight) <= 32 ? StemKind.Cifar : null;

        /// <summary>
        /// The augmentation when none is set: none. A flip changes the class of some images (text, digits, diagonal
        /// patterns); on the benchmark's textures every augmentation measured (all of them flip) cost 30 points.
        /// </summary>
        internal static ImageAugmentation DefaultAugmentation() => new();

        /// <summary>The recipe these options resolve to, defaults filled in, as text: the recipes benchmark keys its default runs by it, so a changed default is measured anew.</summary>
        internal string DescribeRecipe()
        {
            TrainingOptions training = TrainingOptions();
            ImageAugmentation augmentation = options.Augmentation ?? DefaultAugmentation();
            return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{training.Optimizer} {training.LearningRate:G2} {training.Schedule}, warm-up {training.WarmupEpochs:G3}, decay {training.WeightDecay:G2}, "
                + $"smoothing {training.LabelSmoothing}, flip {augmentation.HorizontalFlipProbability}, crop padding {augmentation.CropPadding}, "
                + $"resized crop {augmentation.RandomResizedCropScale}, policy {augmentation.Policy}, {(options.Stem ?? DefaultStem())?.ToString() ?? "architecture's"} stem");
        }

        // Loads everything but the head strictly (a file for another architecture is an error naming the keys), then
        // the head when the file's fits: as it is for the same class count, rows reordered when a saved model knew the
        // same classes under another key order; otherwise the head keeps its fresh initialisation.
        private void LoadInitialWeights(nn.Module model, TensorDictionary initial, string head, string[] classNames, int channels, StemKind? stem, IChannel channel)
        {
            string option = options.ResumeFromModelPath != null ? nameof(options.ResumeFromModelPath) : nameof(options.PretrainedWeightsPath);
            if (options.ResumeFromModelPath != null && initial.Metadata.TryGetValue(SavedModelWeights.ArchitectureKey, out string? architecture)
                && !string.Equals(architecture, options.Architecture, StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException(
                    $"ImageClassifierOptions.ResumeFromModelPath = '{initial.FilePath}' holds a {architecture}, but Architecture is {options.Architecture}. "
                    + $"Set Architecture = \"{architecture}\" to continue training it.", nameof(options));
            }

            try
            {
                StateDict.Load(model, initial, strict: true, new StateDictLoadOptions { SkipPrefixes = { head } });
            }
            catch (StateDictMismatchException e)
            {
                throw new ArgumentException(
                    $"ImageClassifierOptions.{option} = '{initial.FilePath}' does not hold weights for {options.Architecture} with {channels} input channel(s) "
                    + $"and the {stem?.ToString() ?? "architecture's own"} stem: {e.Message} Choose the Architecture the weights were made for"
                    + (channels != 3 ? ", or give RGB images (3 channels) for weights trained on them." : "."), nameof(options), e);
            }

            var parameters = model.named_parameters().Where(p => p.name.StartsWith(head, StringComparison.Ordinal)).ToList();
            string[]? savedClasses = options.ResumeFromModelPath != null ? SavedModelWeights.ClassNames(initial) : null;
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

        private ITransformer BuildChain(IDataView input, ITransformer? pixelTransform, string pixelColumn, byte[] onnx, LabelKeyInfo labels, (int? Gpu, bool FallbackToCpu) scoring)
        {
            var chain = new ChainBuilder(input).Add(pixelTransform)
                .Fit(ml.Transforms.ApplyOnnxModel(new[] { LogitsColumn }, new[] { pixelColumn }, new MemoryStream(onnx), scoring.Gpu, scoring.FallbackToCpu));
            chain.Add(LogitsPredictionStep.Create(environment, ml, chain.Current.Schema[LogitsColumn].Type, LogitsColumn, ClassNames(labels),
                options.ScoreColumnName, options.PredictedLabelColumnName));
            string[] temporary = pixelTransform != null ? new[] { LogitsColumn, pixelColumn } : new[] { LogitsColumn };
            return chain.Fit(ml.Transforms.DropColumns(temporary)).Build();
        }

        // The loop's options from the estimator's, checked before any data is read.
        /// <summary>
        /// Checks the options the constructor does not (those of the training loop), as <see cref="Fit"/> would, and returns
        /// them with every default resolved.
        /// </summary>
        internal TrainingOptions CheckTrainingOptions() => TrainingOptions();

        private TrainingOptions TrainingOptions() => options.ToTrainingOptions();

        private static string[] ClassNames(LabelKeyInfo labels) =>
            labels.ClassNames?.ToArray() ?? Enumerable.Range(1, labels.ClassCount).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

        private nn.Module<Tensor, Tensor> CreateModel(int classes, int channels, StemKind? stem)
        {
            ModelOptions modelOptions = ResidualModels.NewOptions(card);
            modelOptions.Seed = options.Seed;
            if (modelOptions is IStemOptions stems) stems.Stem = stem;
            if (modelOptions is ResNetOptions resnet) resnet.ZeroInitResidual = true; // every block starts as its shortcut (Goyal et al. 2017)
            return ResidualModels.Create(options.Architecture, classes, channels, modelOptions);
        }

    }
}
