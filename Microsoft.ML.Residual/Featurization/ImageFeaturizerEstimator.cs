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
using TorchSharp;

namespace Microsoft.ML.Residual.Featurization
{
    /// <summary>
    /// Turns images into the pooled penultimate features of a residual network (e.g. 2048 numbers for resnet50),
    /// for ML.NET trainers such as <c>LbfgsMaximumEntropy</c>. The network, its weights and ImageNet normalisation
    /// become an ONNX graph scored by ML.NET's <c>OnnxTransformer</c>; the fitted transformer is ML.NET's own chain
    /// ([ResizeImages → ExtractPixels] → OnnxTransformer → Concatenate → DropColumns), saved and loaded by ML.NET.
    /// </summary>
    public sealed class ImageFeaturizerEstimator : IEstimator<ITransformer>
    {
        private const string Prefix = ImageInput.Prefix;

        private readonly IHostEnvironment environment;
        private readonly MLContext ml;
        private readonly string outputColumnName;
        private readonly string imageColumnName;
        private readonly string architecture;
        private readonly string? weightsPath;
        private readonly int imageWidth;
        private readonly int imageHeight;

        internal ImageFeaturizerEstimator(
            IHostEnvironment environment, string outputColumnName, string imageColumnName, string architecture, string? weightsPath, int imageWidth, int imageHeight)
        {
            this.environment = environment ?? throw new ArgumentNullException(nameof(environment));
            ml = ImageInput.TransformContext(seed: null);
            if (string.IsNullOrWhiteSpace(outputColumnName)) throw new ArgumentException("Name the output column.", nameof(outputColumnName));
            ModelInfo? info = ResidualModels.Find(architecture);
            if (info is null || info.Task != ModelTask.Classifier)
                throw new ArgumentException($"Architecture '{architecture}' is not a classifier backbone; use one of the classifier names in ResidualModels.Names.", nameof(architecture));
            if (weightsPath != null && !File.Exists(weightsPath))
                throw new FileNotFoundException($"The weights file '{weightsPath}' does not exist (weightsPath of the featurizer).", weightsPath);
            if (imageWidth < 1 || imageHeight < 1) throw new ArgumentException("imageWidth and imageHeight must be positive.");
            this.outputColumnName = outputColumnName;
            this.imageColumnName = imageColumnName;
            this.architecture = architecture;
            this.weightsPath = weightsPath;
            this.imageWidth = imageWidth;
            this.imageHeight = imageHeight;
        }

        /// <inheritdoc />
        public SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            return ImageInput.DeclareOutputs(ml, inputSchema, imageColumnName, outputColumnName);
        }

        /// <inheritdoc />
        public ITransformer Fit(IDataView input)
        {
            if (input is null) throw new ArgumentNullException(nameof(input));
            DataViewType imageType = ImageInput.RequireColumn(input.Schema, imageColumnName).Type;
            (ITransformer? pixelTransform, string pixels) = ImageInput.PixelPipeline(ml, input, imageColumnName, imageWidth, imageHeight);
            int channels;
            if (pixelTransform != null)
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
                    + "pixels (ExtractPixels).", nameof(input));
            }

            byte[] onnx;
            using (var model = ResidualModels.Create(architecture, numClasses: 0, inChannels: channels))
            {
                if (weightsPath != null)
                {
                    // A classifier checkpoint: everything but its head.
                    string head = ResidualModels.Find(architecture)!.HeadPrefix!;
                    using TensorDictionary weights = StateDict.Read(weightsPath);
                    if (ResidualModels.Find(architecture)!.FirstConvolution is string first) weights.AdaptInputConvolution(first + ".weight", channels);
                    StateDict.Load(model, weights, strict: true, new StateDictLoadOptions { SkipPrefixes = { head } });
                }

                model.eval();
                onnx = OnnxExporter.ExportToBytes(model, new long[] { 1, channels, imageHeight, imageWidth }, new OnnxExportOptions
                {
                    InputName = pixels, OutputName = Prefix + "Features",
                    // The normalisation the classifier estimators train with, so their weights featurise the images they saw:
                    // the card's statistics for RGB (ImageNet's for torchvision weights), their channel average otherwise.
                    Normalization = PixelNormalization.For(ResidualModels.Find(architecture)!, channels),
                });
            }

            // Scored on MLContext.GpuDeviceId when ONNX Runtime has its CUDA provider, as the estimators' models are.
            (int? Gpu, bool FallbackToCpu) scoring;
            using (IChannel channel = environment.Register(nameof(ImageFeaturizerEstimator)).Start("Featurizing")) scoring = EstimatorRuntime.ScoringDevice(environment, channel);
            var temporary = pixels == imageColumnName ? new[] { Prefix + "Features" } : new[] { Prefix + "Features", pixels };
            return new ChainBuilder(input).Add(pixelTransform)
                .Fit(ml.Transforms.ApplyOnnxModel(new[] { Prefix + "Features" }, new[] { pixels }, new MemoryStream(onnx), scoring.Gpu, scoring.FallbackToCpu))
                .Fit(ml.Transforms.Concatenate(outputColumnName, Prefix + "Features"))
                .Fit(ml.Transforms.DropColumns(temporary))
                .Build();
        }
    }
}
