using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// Trains a one-stage detector (RetinaNet or FCOS over a feature pyramid) on TorchSharp and returns ML.NET transformers that score
    /// it through ONNX Runtime: [ResizeImages (fill) → ExtractPixels] → OnnxTransformer (normalisation, network, box decoding, score
    /// threshold, top-k, per-class NonMaxSuppression) → <c>PredictedLabel</c> (a vector of keys), <c>Score</c> and
    /// <c>PredictedBoundingBoxes</c> (x1, y1, x2, y2 per detection, in pixels of the original image), best first. The input holds, per
    /// row, an image, a vector of label keys and a vector of boxes (4 values per object) — the layout of Microsoft.ML.TorchSharp's
    /// detector. Every scoring part is ML.NET's own: the model saves and loads natively and scores without this library or libtorch.
    /// </summary>
    public sealed class ObjectDetectorEstimator : ImageTrainerEstimator<ObjectDetectorOptions>
    {
        private const string ClassNameColumn = ImageInput.Prefix + "DetectedClass";
        private const string ImageSizeColumn = ImageInput.Prefix + "ImageSize";

        internal ObjectDetectorEstimator(IHostEnvironment environment, ObjectDetectorOptions options)
            : base(environment, options, ModelTask.Detector)
        {
            void Check(bool valid, string name, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"ObjectDetectorOptions.{name} = {value}: {rule}.", nameof(options));
            }

            Check(options.Augmentation is null, nameof(options.Augmentation), options.Augmentation, "image augmentation moves pixels without the boxes; use BoxAugmentation");
            Check(options.LabelSmoothing == 0, nameof(options.LabelSmoothing), options.LabelSmoothing, "the detector's focal loss has no label smoothing; leave it 0");
            Check(options.MixupAlpha == 0 && options.CutMixAlpha == 0, "MixupAlpha/CutMixAlpha", $"{options.MixupAlpha}/{options.CutMixAlpha}", "mixing images does not mix their boxes; leave them 0");
            Check(options.ClassWeights is null, nameof(options.ClassWeights), "set", "the focal loss balances classes itself; leave it null");
            Check(options.FocalGamma == 2.0, nameof(options.FocalGamma), options.FocalGamma, "the detectors use torchvision's focal loss (γ = 2); leave it 2");
            Check(options.ScoreThreshold is null or (>= 0 and < 1), nameof(options.ScoreThreshold), options.ScoreThreshold, "must be in [0, 1)");
            Check(options.NmsThreshold is null or (> 0 and <= 1), nameof(options.NmsThreshold), options.NmsThreshold, "must be in (0, 1]");
            Check(options.MaxDetections is null or >= 1, nameof(options.MaxDetections), options.MaxDetections, "must be positive");
            Check(options.GradientFlowProgress is null, nameof(options.GradientFlowProgress), "set", "the gradient-flow probe measures a classifier's or segmenter's cross-entropy, not a detector's losses; leave it null");
            Check((options.ImageWidthColumnName is null) == (options.ImageHeightColumnName is null), "ImageWidthColumnName/ImageHeightColumnName",
                $"{options.ImageWidthColumnName ?? "null"}/{options.ImageHeightColumnName ?? "null"}", "give both columns or neither");
            Check(options.Scoring.Precision == OnnxPrecision.Float32, "Scoring.Precision", options.Scoring.Precision,
                "detectors are exported in float32 (float16 and INT8 scoring graphs are not built for detectors yet)");
            Check(options.Scoring.TestTimeAugmentation == TestTimeAugmentation.None, "Scoring.TestTimeAugmentation", options.Scoring.TestTimeAugmentation,
                "averaging a detector's raw outputs over views does not average its boxes; leave it None");
            try
            {
                options.BoxAugmentation?.Validate();
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"ObjectDetectorOptions.BoxAugmentation: {e.Message}", nameof(options), e);
            }

            Check(options.FreezeBackboneEpochs >= 0 && options.FreezeBackboneEpochs < options.Epochs, nameof(options.FreezeBackboneEpochs), options.FreezeBackboneEpochs,
                "must be non-negative and below Epochs");
        }

        private sealed class DetectionFit : FitState
        {
            public DetectionFit(IReadOnlyList<string> classNames, (double Height, double Width)? fixedSize)
            {
                ClassNames = classNames;
                FixedImageSize = fixedSize;
            }

            public IReadOnlyList<string> ClassNames { get; }

            public (double Height, double Width)? FixedImageSize { get; }
        }

        // The training data's classes, once CheckInput has read them: a validation set must have the same.
        private IReadOnlyList<string>? trainingClasses;

        // The anchors of the fit being trained (disposed after training).
        private DeviceAnchors? fitAnchors;

        // The label's key values, or "1"…"K" when it has none.
        private IReadOnlyList<string> ClassNamesOf(DataViewSchema schema, int classes) =>
            LabelKeyInfo.FromMultiLabelSchema(schema, Options.LabelColumnName).ClassNames
            ?? Enumerable.Range(1, classes).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

        private protected override ImageResizingEstimator.ResizingKind Resizing => ImageResizingEstimator.ResizingKind.Fill;

        private bool SizeColumns => Options.ImageWidthColumnName is not null;

        /// <inheritdoc />
        public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            SchemaShape.Column Require(string name, string role) => inputSchema.FirstOrDefault(c => c.Name == name) is { Name: not null } column ? column
                : throw new ArgumentException($"The input has no {role} column '{name}'. Columns: {string.Join(", ", inputSchema.Select(c => c.Name))}.", nameof(inputSchema));
            Require(Options.ImageColumnName, "image");
            Require(Options.LabelColumnName, "label");
            Require(Options.BoxColumnName, "box");
            // The outputs as ML.NET declares equivalent columns: a key vector with the label's key values, and two variable float vectors.
            IEstimator<ITransformer> shape = Ml.Transforms.CopyColumns(Options.PredictedLabelColumnName, Options.LabelColumnName)
                .Append(Ml.Transforms.CopyColumns(Options.ScoreColumnName, Options.BoxColumnName))
                .Append(Ml.Transforms.CopyColumns(Options.PredictedBoundingBoxColumnName, Options.BoxColumnName));
            return shape.GetOutputSchema(inputSchema);
        }

        private protected override FitState CheckInput(IDataView input)
        {
            DataViewSchema schema = input.Schema;
            DataViewSchema.Column labels = SchemaChecks.Find(schema, Options.LabelColumnName, "label");
            DataViewSchema.Column boxes = SchemaChecks.Find(schema, Options.BoxColumnName, "box");
            int classes = BoxColumns.CheckTypes(labels, boxes);
            IReadOnlyList<string> names = ClassNamesOf(schema, classes);
            trainingClasses = names;
            DataViewType image = ImageInput.RequireColumn(schema, Options.ImageColumnName).Type;
            if (SizeColumns)
            {
                foreach (string column in new[] { Options.ImageWidthColumnName!, Options.ImageHeightColumnName! })
                {
                    if (SchemaChecks.Find(schema, column, "image size").Type is not NumberDataViewType)
                        throw new ArgumentException($"ObjectDetectorOptions: image size column '{column}' has type {schema[column].Type}; it must hold numbers (the original image's size in pixels).", "input");
                }

                return new DetectionFit(names, null);
            }

            if (image is ImageDataViewType { Height: > 0, Width: > 0 } sized) return new DetectionFit(names, (sized.Height, sized.Width));
            if (image is ImageDataViewType)
                throw new ArgumentException(
                    $"Image column '{Options.ImageColumnName}' holds images of unknown size, so the scoring graph cannot map its boxes back to each image's pixels. "
                    + "Set ObjectDetectorOptions.ImageWidthColumnName and ImageHeightColumnName to columns with each image's width and height "
                    + "(the dataset loaders write Width and Height), or give images of one size (an image type with a known size).", "input");
            return new DetectionFit(names, (Options.ImageHeight, Options.ImageWidth));
        }

        private protected override ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, bool training, bool pinMemory)
        {
            int classes = BoxColumns.CheckTypes(SchemaChecks.Find(data.Schema, Options.LabelColumnName, "label"), SchemaChecks.Find(data.Schema, Options.BoxColumnName, "box"));
            IReadOnlyList<string> names = ClassNamesOf(data.Schema, classes);
            if (trainingClasses is not null && !names.SequenceEqual(trainingClasses))
                throw new ArgumentException(
                    $"Label column '{Options.LabelColumnName}' has the classes {string.Join(", ", names)}, but the training data has {string.Join(", ", trainingClasses)}; "
                    + "map both with one MapValueToKey (fitted once, or with the same keyData), so that each key names the same class.");
            // With size columns, the boxes are scaled by them, as the scoring graph scales its boxes back: one source of each image's size.
            string? sizeSource = SizeColumns ? null : sourceImageColumn;
            return new ImageBatchReader(data, new ImageBatchOptions
            {
                ImageColumnName = imageColumn, LabelColumnName = null, Width = Options.ImageWidth, Height = Options.ImageHeight, BatchSize = Options.BatchSize,
                Shuffle = training, Seed = Options.Seed, CacheInMemory = Options.CacheInMemory, Workers = Options.Workers, PinMemory = pinMemory,
            }, new ImageBatchReader.BoxTarget(Options.LabelColumnName, Options.BoxColumnName, classes, sizeSource,
                Options.ImageWidthColumnName, Options.ImageHeightColumnName, training ? Options.BoxAugmentation ?? new DetectionAugmentation() : null));
        }

        private protected override nn.Module<Tensor, Tensor> CreateModel(FitState fit, int channels, IChannel channel)
        {
            DetectorOptions modelOptions = Options.ModelOptions?.Clone() ?? new DetectorOptions();
            modelOptions.Seed ??= Options.Seed;
            nn.Module<Tensor, Tensor> model;
            try
            {
                model = ResidualModels.Create(Options.Architecture, ((DetectionFit)fit).ClassNames.Count, channels, modelOptions);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"ObjectDetectorOptions.ModelOptions: {e.Message}", "options", e);
            }

            try
            {
                if (Options.PretrainedBackboneWeightsPath is string weights) LoadBackbone(model, weights, channels);
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
            var detector = (IDetectionModel)model;
            bool backbonePhases = Options.FreezeBackboneEpochs > 0 || Options.BackboneLearningRateFactor is not null || Options.PretrainedBackboneWeightsPath is not null;
            fitAnchors?.Dispose();
            var anchors = fitAnchors = new DeviceAnchors(detector, Options.ImageHeight, Options.ImageWidth);
            return new TrainingLoop(model, training, backbonePrefix: backbonePhases ? detector.BackbonePrefix : null)
            {
                Loss = (outputs, targets, _) =>
                    DetectionLoss.Compute(detector.Kind, outputs.to_type(ScalarType.Float32), anchors.On(outputs.device), anchors.PerLevel, targets).Total,
                LossOnly = true,
            };
        }

        // The anchors of the training size: made once on the CPU, copied once to the training device, kept outside every dispose scope
        // for the whole fit.
        private sealed class DeviceAnchors : IDisposable
        {
            private readonly Tensor cpu;
            private Tensor? onDevice;

            public DeviceAnchors(IDetectionModel detector, int height, int width)
            {
                IReadOnlyList<(int Height, int Width)> levels = detector.LevelSizes(height, width);
                PerLevel = DetectionAnchors.CountsPerLevel(detector.Kind, levels);
                using (NewDisposeScope()) cpu = DetectionAnchors.Create(detector.Kind, height, width, levels).DetachFromDisposeScope();
            }

            public IReadOnlyList<int> PerLevel { get; }

            public Tensor On(Device device)
            {
                if (device.type == DeviceType.CPU) return cpu;
                if (onDevice is null || onDevice.device_type != device.type || onDevice.device_index != device.index)
                {
                    onDevice?.Dispose();
                    using (NewDisposeScope()) onDevice = cpu.to(device).DetachFromDisposeScope();
                }

                return onDevice;
            }

            public void Dispose()
            {
                onDevice?.Dispose();
                cpu.Dispose();
            }
        }

        // Training is over: the training anchors go.
        private protected override void AfterTraining(Prepared setup)
        {
            fitAnchors?.Dispose();
            fitAnchors = null;
        }

        private protected override OnnxExportOptions ExportOptions(FitState fit, string pixelColumn, PixelNormalization normalization, nn.Module<Tensor, Tensor> model)
        {
            var state = (DetectionFit)fit;
            var detector = (IDetectionModel)model;
            DetectionPostprocessOptions defaults = DetectionPostprocessOptions.For(detector.Kind);
            return new OnnxExportOptions
            {
                InputName = pixelColumn, Normalization = normalization, DynamicBatch = false,
                Detection = new DetectionPostprocessing
                {
                    Kind = detector.Kind,
                    Anchors = DetectionAnchors.Create(detector.Kind, Options.ImageHeight, Options.ImageWidth, detector.LevelSizes(Options.ImageHeight, Options.ImageWidth)),
                    AnchorsPerLevel = DetectionAnchors.CountsPerLevel(detector.Kind, detector.LevelSizes(Options.ImageHeight, Options.ImageWidth)),
                    ClassNames = state.ClassNames,
                    ScoreThreshold = Options.ScoreThreshold ?? defaults.ScoreThreshold,
                    NmsThreshold = Options.NmsThreshold ?? defaults.NmsThreshold,
                    CandidatesPerLevel = defaults.CandidatesPerLevel,
                    MaxDetections = Options.MaxDetections ?? defaults.MaxDetections,
                    ImageSizeInputName = SizeColumns ? ImageSizeColumn : null,
                    FixedImageSize = state.FixedImageSize,
                    BoxesName = Options.PredictedBoundingBoxColumnName, ScoresName = Options.ScoreColumnName, LabelsName = ClassNameColumn,
                },
                Metadata = new Dictionary<string, string>
                {
                    ["architecture"] = Options.Architecture,
                    ["classes"] = string.Join("\t", state.ClassNames),
                },
            };
        }

        // A detector's backbone expects the backbone's pixel statistics (those its pretrained weights were trained with).
        private protected override ModelInfo NormalizationCard => ResidualModels.Find(Options.ModelOptions?.Backbone ?? Card.Encoder) ?? Card;

        private protected override string[] GraphOutputs => new[] { Options.PredictedBoundingBoxColumnName, Options.ScoreColumnName, ClassNameColumn };

        private protected override string[] KeptOutputs => new[] { Options.PredictedBoundingBoxColumnName, Options.ScoreColumnName };

        private protected override IDictionary<string, int[]>? OutputShapes => GraphOutputs.ToDictionary(name => name, _ => new[] { 0 });

        private protected override (string Column, IEstimator<ITransformer> Estimator)[] ExtraGraphInputs(FitState state)
        {
            if (!SizeColumns) return base.ExtraGraphInputs(state);
            string height = ImageInput.Prefix + "ImageHeight", width = ImageInput.Prefix + "ImageWidth";
            IEstimator<ITransformer> size = Ml.Transforms.Conversion.ConvertType(
                    new[] { new InputOutputColumnPair(height, Options.ImageHeightColumnName!), new InputOutputColumnPair(width, Options.ImageWidthColumnName!) }, DataKind.Single)
                .Append(Ml.Transforms.Concatenate(ImageSizeColumn, height, width))
                .Append(Ml.Transforms.DropColumns(height, width));
            return new[] { (ImageSizeColumn, size) };
        }

        // The detected class names (strings, from the graph) become keys with the label's key values.
        private protected override void AddScoringColumns(ChainBuilder chain, FitState state)
        {
            IDataView keyData = Ml.Data.LoadFromEnumerable(((DetectionFit)state).ClassNames.Select(name => new KeyValueRow { Value = name }));
            chain.Fit(Ml.Transforms.Conversion.MapValueToKey(Options.PredictedLabelColumnName, ClassNameColumn, keyData: keyData));
        }

        private sealed class KeyValueRow
        {
            public string Value { get; set; } = string.Empty;
        }

        // A torchvision classifier state dict of the backbone's architecture, into the detector's backbone; the pyramid and heads start fresh.
        private void LoadBackbone(nn.Module model, string path, int channels)
        {
            ModelInfo backbone = ResidualModels.Find(Options.ModelOptions?.Backbone ?? Card.Encoder)
                ?? throw new InvalidOperationException($"The registry names no backbone for '{Options.Architecture}'.");
            EstimatorRuntime.LoadBackboneWeights(model, path, backbone, channels, ((IDetectionModel)model).BackbonePrefix,
                "ObjectDetectorOptions.PretrainedBackboneWeightsPath", Options.Architecture);
        }
    }
}
