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
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Segmentation
{
    /// <summary>
    /// Trains a U-Net on TorchSharp and returns ML.NET transformers that score it through ONNX Runtime:
    /// [ResizeImages → ExtractPixels] → OnnxTransformer (normalisation, network, per-pixel softmax and arg-max) →
    /// the arg-max as <c>PredictedMask</c> (UInt32 H×W), with <c>MaskScore</c> (K×H×W probabilities).
    /// Every part is ML.NET's own: the model saves and loads natively and scores without this library or libtorch.
    /// </summary>
    public sealed class UNetSegmenterEstimator : IEstimator<ITransformer>
    {
        private const string IndexColumn = ImageInput.Prefix + "MaskIndex";

        private readonly IHostEnvironment environment;
        private readonly MLContext ml;
        private readonly SegmenterOptions options;

        internal UNetSegmenterEstimator(IHostEnvironment environment, SegmenterOptions options)
        {
            this.environment = environment ?? throw new ArgumentNullException(nameof(environment));
            this.options = options ?? throw new ArgumentNullException(nameof(options));
            ml = ImageInput.TransformContext(options.Seed);
            options.CheckShared(ModelTask.Segmenter);
            void Check(bool valid, string name, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"SegmenterOptions.{name} = {value}: {rule}.", nameof(options));
            }

            Check(options.NumClasses >= 2, nameof(options.NumClasses), options.NumClasses, "at least 2 (background and one class; 2 for a binary task)");
            Check(options.ClassWeights is null || options.ClassWeights.Count == options.NumClasses && options.ClassWeights.All(w => w >= 0 && float.IsFinite(w)),
                nameof(options.ClassWeights), options.ClassWeights?.Count, $"one non-negative weight per class ({options.NumClasses})");
            Check(options.FocalGamma >= 0, nameof(options.FocalGamma), options.FocalGamma, "must be non-negative");
            Check(options.LabelSmoothing == 0 || options.Loss is SegmentationLoss.CrossEntropy or SegmentationLoss.CrossEntropyDice, nameof(options.LabelSmoothing),
                options.LabelSmoothing, $"smoothing applies to a cross-entropy; the {options.Loss} loss has none (use CrossEntropy or CrossEntropyDice, or leave it 0)");
            Check(options.Augmentation is null || options.Augmentation.Policy == AugmentationPolicy.None, nameof(options.Augmentation), options.Augmentation?.Policy,
                "augmentation policies move pixels without the mask; use flip, RandomResizedCropScale and CropPadding");
            Check(options.FreezeBackboneEpochs >= 0 && options.FreezeBackboneEpochs < options.Epochs, nameof(options.FreezeBackboneEpochs), options.FreezeBackboneEpochs,
                "must be non-negative and below Epochs");
            Check(!(options.FreezeBackboneEpochs > 0 || options.BackboneLearningRateFactor is not null) || ResidualModels.EncoderOf(options.Architecture, options.ModelOptions) is not null,
                nameof(options.FreezeBackboneEpochs), options.FreezeBackboneEpochs, $"'{options.Architecture}' has no separate encoder; use an encoder U-Net such as unet_resnet18");
        }

        /// <inheritdoc />
        public SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            SchemaShape.Column image = inputSchema.FirstOrDefault(c => c.Name == options.ImageColumnName);
            if (image.Name is null)
                throw new ArgumentException($"The input has no image column '{options.ImageColumnName}'. Columns: {string.Join(", ", inputSchema.Select(c => c.Name))}.", nameof(inputSchema));
            IEstimator<ITransformer> shape = new EstimatorChain<ITransformer>();
            string source = options.ImageColumnName;
            if (image.ItemType is ImageDataViewType)
            {
                shape = shape.Append(ml.Transforms.ExtractPixels(ImageInput.PixelColumn, options.ImageColumnName));
                source = ImageInput.PixelColumn;
            }

            // PredictedMask is a UInt32 vector: declared as a key vector converted to its raw type, which ML.NET allows.
            string keys = ImageInput.Prefix + "MaskKeys";
            shape = shape.Append(ml.Transforms.Concatenate(options.MaskScoreColumnName, source))
                .Append(ml.Transforms.Conversion.MapValueToKey(keys, source))
                .Append(ml.Transforms.Conversion.ConvertType(options.PredictedMaskColumnName, keys, DataKind.UInt32))
                .Append(ml.Transforms.DropColumns(keys));
            if (source != options.ImageColumnName) shape = shape.Append(ml.Transforms.DropColumns(source));
            return shape.GetOutputSchema(inputSchema);
        }

        /// <inheritdoc />
        public ITransformer Fit(IDataView input)
        {
            if (input is null) throw new ArgumentNullException(nameof(input));
            EstimatorRuntime.EnsureOnnxRuntime();
            TrainingOptions training = TrainingOptions();
            if (input.Schema.GetColumnOrNull(options.MaskColumnName) is not DataViewSchema.Column maskColumn)
                throw new ArgumentException($"The input has no mask column '{options.MaskColumnName}'. Columns: {string.Join(", ", input.Schema.Select(c => c.Name))}.", nameof(input));
            MaskColumn.CheckType(maskColumn, options.ImageHeight, options.ImageWidth);

            (ITransformer? pixelTransform, string pixelColumn) = ImageInput.PixelPipeline(ml, input, options.ImageColumnName, options.ImageWidth, options.ImageHeight);
            (ITransformer? readTransform, string readColumn) = ImageInput.TrainingImages(ml, input, options.ImageColumnName, options.ImageWidth, options.ImageHeight);
            (IDataView pixels, IDataView? validationPixels) = ImageInput.SplitValidation(
                ml, input, readTransform, options.ValidationSet, options.ValidationFraction, options.Seed);

            long rows = EstimatorRuntime.CountRows(pixels);
            if (rows == 0) throw new ArgumentException("The training data is empty: it has no rows.", nameof(input));
            string? sourceImage = pixelTransform != null ? options.ImageColumnName : null;
            using IChannel channel = environment.Register(nameof(UNetSegmenterEstimator)).Start("Training");
            Device device = EstimatorRuntime.ChooseDevice(environment, channel);
            bool pinMemory = device.type == DeviceType.CUDA;
            ImageBatchReader reader = CreateReader(pixels, readColumn, sourceImage, options, pinMemory);
            ImageBatchReader? validation = validationPixels == null ? null : CreateReader(validationPixels, readColumn, sourceImage, options, pinMemory);
            PixelNormalization normalization = PixelNormalization.ImageNet(reader.Channels);
            UNetOptions modelOptions = options.ModelOptions?.Clone() ?? new UNetOptions();
            modelOptions.Seed ??= options.Seed;

            nn.Module<Tensor, Tensor> model;
            try
            {
                model = ResidualModels.Create(options.Architecture, options.NumClasses, reader.Channels, modelOptions);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"SegmenterOptions.ModelOptions: {e.Message}", nameof(options), e);
            }

            byte[] onnx;
            try
            {
                if (options.PretrainedEncoderWeightsPath is string weights) LoadEncoder(model, weights);
                model.to(device);
                bool encoderPhases = options.FreezeBackboneEpochs > 0 || options.BackboneLearningRateFactor is not null || options.PretrainedEncoderWeightsPath is not null;
                using (var normalizer = new PixelNormalizer(normalization, reader.Channels, device))
                {
                    var trainer = new TrainingLoop(model, training, backbonePrefix: encoderPhases ? "encoder." : null)
                    {
                        Preprocess = normalizer.Apply,
                        Loss = SegmentationLosses.Create(options.Loss, options.ClassWeights, options.FocalGamma),
                        ComputeMeanIoU = true,
                    };
                    TrainingRun.Train(options, channel, model, trainer, device, input, rows, epoch => reader.ReadEpoch(epoch).Select(b => (b.Images, b.Labels!)),
                        validation == null ? null : () => validation.ReadAll().Select(b => (b.Images, b.Labels!)),
                        () => (validation ?? reader).ReadAll().Select(b => (b.Images, b.Labels!)), pixelTransform != null);
                }

                onnx = TrainingRun.Export(model, reader.Channels, options, new OnnxExportOptions
                {
                    InputName = pixelColumn, Normalization = normalization, Softmax = true, ScoreName = options.MaskScoreColumnName,
                    ArgMax = true, PredictedIndexName = IndexColumn, PredictedIndexAsUInt32 = true,
                    Metadata = new Dictionary<string, string>
                    {
                        ["architecture"] = options.Architecture,
                        ["classes"] = options.NumClasses.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    },
                });
            }
            finally
            {
                model.Dispose();
            }

            var (gpu, fallbackToCpu) = EstimatorRuntime.ScoringDevice(environment, channel);
            string[] temporary = pixelTransform != null ? new[] { IndexColumn, pixelColumn } : new[] { IndexColumn };
            return new ChainBuilder(input).Add(pixelTransform)
                .Fit(ml.Transforms.ApplyOnnxModel(new[] { options.MaskScoreColumnName, IndexColumn }, new[] { pixelColumn }, new MemoryStream(onnx), gpu, fallbackToCpu))
                .Fit(ml.Transforms.Concatenate(options.PredictedMaskColumnName, IndexColumn))
                .Fit(ml.Transforms.DropColumns(temporary))
                .Build();
        }

        /// <summary>
        /// The reader of images (<paramref name="imageColumn"/>) and masks for <paramref name="options"/>: its batches' labels are the
        /// N×H×W masks; training epochs are shuffled and augmented (a horizontal flip with probability 0.5 unless the options say otherwise).
        /// </summary>
        internal static ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, SegmenterOptions options, bool pinMemory = false) =>
            new(data, new ImageBatchOptions
            {
                ImageColumnName = imageColumn, LabelColumnName = null, Width = options.ImageWidth, Height = options.ImageHeight, BatchSize = options.BatchSize,
                Seed = options.Seed, CacheInMemory = options.CacheInMemory, Workers = options.Workers, PinMemory = pinMemory,
                Augmentation = options.Augmentation ?? new ImageAugmentation { HorizontalFlipProbability = 0.5 },
            }, new ImageBatchReader.MaskTarget(options.MaskColumnName, options.NumClasses, options.IgnoreIndex, sourceImageColumn));

        // The loop's options from the estimator's, checked before any data is read.
        /// <summary>
        /// Checks the options the constructor does not (those of the training loop), as <see cref="Fit"/> would, and returns
        /// them with every default resolved.
        /// </summary>
        internal TrainingOptions CheckTrainingOptions() => TrainingOptions();

        private TrainingOptions TrainingOptions() => options.ToTrainingOptions();

        // A torchvision classifier state dict of the encoder's architecture, into "encoder.*"; the decoder starts fresh.
        private void LoadEncoder(nn.Module model, string path)
        {
            ModelInfo encoder = ResidualModels.EncoderOf(options.Architecture, options.ModelOptions)
                ?? throw new ArgumentException($"SegmenterOptions.PretrainedEncoderWeightsPath: '{options.Architecture}' has no pretrained encoder; use an encoder U-Net such as unet_resnet18.", nameof(options));
            string classifierPrefix = encoder.HeadPrefix
                ?? throw new InvalidOperationException($"The registry gives no classifier head prefix for the encoder {encoder.Name} of '{options.Architecture}'.");
            try
            {
                StateDict.Load(model, path, strict: true, new StateDictLoadOptions
                {
                    MapKey = EncoderUNet.EncoderKeyMap(classifierPrefix),
                    SkipPrefixes = EncoderUNet.DecoderPrefixes.ToList(),
                });
            }
            catch (Exception e) when (e is StateDictMismatchException or FileNotFoundException or DirectoryNotFoundException or WeightsFormatException or IOException)
            {
                throw new ArgumentException(
                    $"SegmenterOptions.PretrainedEncoderWeightsPath = '{path}': {e.Message} The file must be a state dict of the encoder's classifier with torchvision's names "
                    + $"(for {options.Architecture}: {encoder.Name}).", nameof(options), e);
            }
        }
    }
}
