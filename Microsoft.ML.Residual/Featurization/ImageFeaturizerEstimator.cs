using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Weights;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using TorchSharp;

namespace Microsoft.ML.Residual.Featurization
{
    /// <summary>
    /// Turns images into the pooled penultimate features of a residual network (e.g. 2048 numbers for resnet50),
    /// for ML.NET trainers such as <c>LbfgsMaximumEntropy</c>. The network, its weights and ImageNet normalisation
    /// become an ONNX graph scored by ML.NET's <c>OnnxTransformer</c>; the fitted transformer is ML.NET's own chain
    /// ([ResizeImages → ExtractPixels] → OnnxTransformer → Concatenate → DropColumns), saved and loaded by ML.NET.
    /// </summary>
    public sealed class ImageFeaturizerEstimator : ImageModelEstimator
    {
        private const string FeaturesColumn = ImageInput.Prefix + "Features";

        private readonly string outputColumnName;
        private readonly string imageColumnName;
        private readonly ModelInfo card;
        private readonly string? weightsPath;
        private readonly int imageWidth;
        private readonly int imageHeight;

        internal ImageFeaturizerEstimator(
            IHostEnvironment environment, string outputColumnName, string imageColumnName, string architecture, string? weightsPath, int imageWidth, int imageHeight)
            : base(environment, seed: null)
        {
            if (string.IsNullOrWhiteSpace(outputColumnName)) throw new ArgumentException("Name the output column.", nameof(outputColumnName));
            ModelInfo? info = ResidualModels.Find(architecture);
            if (info is null || info.Task != ModelTask.Classifier)
                throw new ArgumentException($"Architecture '{architecture}' is not a classifier backbone; use one of the classifier names in ResidualModels.Names.", nameof(architecture));
            if (weightsPath != null && !File.Exists(weightsPath))
                throw new FileNotFoundException($"The weights file '{weightsPath}' does not exist (weightsPath of the featurizer).", weightsPath);
            if (imageWidth < 1 || imageHeight < 1) throw new ArgumentException("imageWidth and imageHeight must be positive.");
            if (imageWidth < info.MinimumInputSize || imageHeight < info.MinimumInputSize)
            {
                throw new ArgumentException(
                    $"imageWidth × imageHeight = {imageWidth}×{imageHeight}: {info.Name} needs images of at least {info.MinimumInputSize}×{info.MinimumInputSize}; "
                    + "set a larger size (the images are resized to it).");
            }
            this.outputColumnName = outputColumnName;
            this.imageColumnName = imageColumnName;
            card = info;
            this.weightsPath = weightsPath;
            this.imageWidth = imageWidth;
            this.imageHeight = imageHeight;
        }

        private protected override string ImageColumnName => imageColumnName;

        private protected override int ImageWidth => imageWidth;

        private protected override int ImageHeight => imageHeight;

        private protected override string[] GraphOutputs => new[] { FeaturesColumn };

        private protected override string Activity => "Featurizing";

        /// <inheritdoc />
        public override SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
            ImageInput.DeclareOutputs(Ml, inputSchema, imageColumnName, outputColumnName);

        // The backbone without its head, with the weights (a classifier checkpoint: everything but its head; RGB weights
        // adapted to the images' channels), in inference mode.
        private protected override (byte[] Onnx, FitState State) CreateGraph(IDataView input, string pixelColumn, IChannel channel)
        {
            DataViewType imageType = input.Schema[imageColumnName].Type;
            int channels;
            if (imageType is ImageDataViewType)
            {
                channels = 3;
            }
            else if (imageType is VectorDataViewType { ItemType: NumberDataViewType } vector && vector.ItemType.RawType == typeof(float) && vector.Size > 0
                     && vector.Size % (imageWidth * imageHeight) == 0)
            {
                channels = vector.Size / (imageWidth * imageHeight);
            }
            else
            {
                throw new ArgumentException(
                    $"Column '{imageColumnName}' is {imageType}: the featurizer takes an MLImage column (LoadImages) or a float vector of C×{imageHeight}×{imageWidth} "
                    + "pixels (ExtractPixels).", "input");
            }

            using var model = ResidualModels.Create(card.Name, numClasses: 0, inChannels: channels);
            if (weightsPath != null)
            {
                using TensorDictionary weights = EstimatorRuntime.ReadPretrained(weightsPath, card, channels);
                StateDict.Load(model, weights, strict: true, new StateDictLoadOptions { SkipPrefixes = { card.HeadPrefix! } });
            }

            model.eval();
            byte[] onnx = OnnxExporter.ExportToBytes(model, new long[] { 1, channels, imageHeight, imageWidth }, new OnnxExportOptions
            {
                InputName = pixelColumn, OutputName = FeaturesColumn,
                // The normalisation the classifier estimators train with, so their weights featurise the images they saw:
                // the card's statistics for RGB (ImageNet's for torchvision weights), their channel average otherwise.
                Normalization = PixelNormalization.For(card, channels),
            });
            return (onnx, new FitState());
        }

        private protected override void AddScoringColumns(ChainBuilder chain, FitState state) =>
            chain.Fit(Ml.Transforms.Concatenate(outputColumnName, FeaturesColumn));
    }
}
