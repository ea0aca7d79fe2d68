using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Training;
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
    public sealed class UNetSegmenterEstimator : ImageTrainerEstimator<SegmenterOptions>
    {
        private const string IndexColumn = ImageInput.Prefix + "MaskIndex";

        internal UNetSegmenterEstimator(IHostEnvironment environment, SegmenterOptions options)
            : base(environment, options, ModelTask.Segmenter)
        {
            void Check(bool valid, string name, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"SegmenterOptions.{name} = {value}: {rule}.", nameof(options));
            }

            Check(options.NumClasses >= 2, nameof(options.NumClasses), options.NumClasses, "at least 2 (background and one class; 2 for a binary task)");
            Check(options.ClassWeights is null || options.ClassWeights.Count == options.NumClasses,
                nameof(options.ClassWeights), options.ClassWeights?.Count, $"one non-negative weight per class ({options.NumClasses})");
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
        public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            SchemaShape.Column image = inputSchema.FirstOrDefault(c => c.Name == Options.ImageColumnName);
            if (image.Name is null)
                throw new ArgumentException($"The input has no image column '{Options.ImageColumnName}'. Columns: {string.Join(", ", inputSchema.Select(c => c.Name))}.", nameof(inputSchema));
            IEstimator<ITransformer> shape = new EstimatorChain<ITransformer>();
            string source = Options.ImageColumnName;
            if (image.ItemType is ImageDataViewType)
            {
                shape = shape.Append(Ml.Transforms.ExtractPixels(ImageInput.PixelColumn, Options.ImageColumnName));
                source = ImageInput.PixelColumn;
            }

            // PredictedMask is a UInt32 vector: declared as a key vector converted to its raw type, which ML.NET allows.
            string keys = ImageInput.Prefix + "MaskKeys";
            shape = shape.Append(Ml.Transforms.Concatenate(Options.MaskScoreColumnName, source))
                .Append(Ml.Transforms.Conversion.MapValueToKey(keys, source))
                .Append(Ml.Transforms.Conversion.ConvertType(Options.PredictedMaskColumnName, keys, DataKind.UInt32))
                .Append(Ml.Transforms.DropColumns(keys));
            if (source != Options.ImageColumnName) shape = shape.Append(Ml.Transforms.DropColumns(source));
            return shape.GetOutputSchema(inputSchema);
        }

        private protected override FitState CheckInput(IDataView input)
        {
            if (input.Schema.GetColumnOrNull(Options.MaskColumnName) is not DataViewSchema.Column maskColumn)
                throw new ArgumentException($"The input has no mask column '{Options.MaskColumnName}'. Columns: {string.Join(", ", input.Schema.Select(c => c.Name))}.", nameof(input));
            MaskColumn.CheckType(maskColumn, Options.ImageHeight, Options.ImageWidth);
            return new FitState();
        }

        private protected override ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, bool training, bool pinMemory) =>
            CreateReader(data, imageColumn, sourceImageColumn, Options, training, pinMemory);

        private protected override nn.Module<Tensor, Tensor> CreateModel(FitState fit, int channels, IChannel channel)
        {
            UNetOptions modelOptions = Options.ModelOptions?.Clone() ?? new UNetOptions();
            modelOptions.Seed ??= Options.Seed;
            nn.Module<Tensor, Tensor> model;
            try
            {
                model = ResidualModels.Create(Options.Architecture, Options.NumClasses, channels, modelOptions);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"SegmenterOptions.ModelOptions: {e.Message}", "options", e);
            }

            try
            {
                if (Options.PretrainedEncoderWeightsPath is string weights) LoadEncoder(model, weights, channels);
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
            bool encoderPhases = Options.FreezeBackboneEpochs > 0 || Options.BackboneLearningRateFactor is not null || Options.PretrainedEncoderWeightsPath is not null;
            return new TrainingLoop(model, training, backbonePrefix: encoderPhases ? "encoder." : null)
            {
                Loss = SegmentationLosses.Create(Options.Loss, Options.ClassWeights, Options.FocalGamma),
                ComputeMeanIoU = true,
            };
        }

        private protected override OnnxExportOptions ExportOptions(FitState fit, string pixelColumn, PixelNormalization normalization, nn.Module<Tensor, Tensor> network) => new()
        {
            InputName = pixelColumn, Normalization = normalization, Softmax = true, ScoreName = Options.MaskScoreColumnName,
            ArgMax = true, PredictedIndexName = IndexColumn, PredictedIndexAsUInt32 = true,
            Metadata = new Dictionary<string, string>
            {
                ["architecture"] = Options.Architecture,
                ["classes"] = Options.NumClasses.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };

        // A U-Net over a backbone expects the backbone's pixel statistics (those its pretrained weights were trained with).
        private protected override ModelInfo NormalizationCard => ResidualModels.EncoderOf(Options.Architecture, Options.ModelOptions) ?? Card;

        private protected override string[] GraphOutputs => new[] { Options.MaskScoreColumnName, IndexColumn };

        private protected override string[] KeptOutputs => new[] { Options.MaskScoreColumnName };

        // The arg-max (UInt32, from the graph) becomes PredictedMask.
        private protected override void AddScoringColumns(ChainBuilder chain, FitState state) =>
            chain.Fit(Ml.Transforms.Concatenate(Options.PredictedMaskColumnName, IndexColumn));

        /// <summary>
        /// The reader of images (<paramref name="imageColumn"/>) and masks for <paramref name="options"/>: its batches' labels are the
        /// N×H×W masks; training epochs are shuffled and augmented (a horizontal flip with probability 0.5 unless the options say otherwise).
        /// </summary>
        internal static ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, SegmenterOptions options, bool training = true, bool pinMemory = false) =>
            new(data, new ImageBatchOptions
            {
                ImageColumnName = imageColumn, LabelColumnName = null, Width = options.ImageWidth, Height = options.ImageHeight, BatchSize = options.BatchSize,
                Shuffle = training, Seed = options.Seed, CacheInMemory = options.CacheInMemory, Workers = options.Workers, PinMemory = pinMemory,
                Augmentation = training ? options.Augmentation ?? new ImageAugmentation { HorizontalFlipProbability = 0.5 } : null,
            }, new ImageBatchReader.MaskTarget(options.MaskColumnName, options.NumClasses, options.IgnoreIndex, sourceImageColumn));

        // A torchvision classifier state dict of the encoder's architecture, into "encoder.*"; the decoder starts fresh.
        private void LoadEncoder(nn.Module model, string path, int channels)
        {
            ModelInfo encoder = ResidualModels.EncoderOf(Options.Architecture, Options.ModelOptions)
                ?? throw new ArgumentException($"SegmenterOptions.PretrainedEncoderWeightsPath: '{Options.Architecture}' has no pretrained encoder; use an encoder U-Net such as unet_resnet18.", "options");
            EstimatorRuntime.LoadBackboneWeights(model, path, encoder, channels, "encoder.", "SegmenterOptions.PretrainedEncoderWeightsPath", Options.Architecture);
        }
    }
}
