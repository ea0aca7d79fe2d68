using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
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
    /// Trains a residual image classifier whose images carry any number of labels (one sigmoid output per label, binary
    /// cross-entropy) and returns ordinary ML.NET transformers that score it through ONNX Runtime: [ResizeImages → ExtractPixels]
    /// → OnnxTransformer (pixel normalisation, the network, the sigmoid and the thresholds) giving <c>Score</c> (a probability per
    /// label) and <c>PredictedLabels</c> (a Boolean per label). A saved model needs neither this library nor libtorch to score.
    /// Evaluate it with <see cref="MultiLabelClassificationCatalog.Evaluate"/>.
    /// </summary>
    public sealed class MultiLabelClassifierEstimator : ImageTrainerEstimator<MultiLabelClassifierOptions>
    {
        private const string FlagsColumn = ImageInput.Prefix + "PredictedFlags";

        internal MultiLabelClassifierEstimator(IHostEnvironment environment, MultiLabelClassifierOptions options)
            : base(environment, options, ModelTask.Classifier)
        {
            void Check(bool valid, string name, object? value, string rule)
            {
                if (!valid) throw new ArgumentException($"MultiLabelClassifierOptions.{name} = {value}: {rule}.", nameof(options));
            }

            Check(options.Threshold > 0 && options.Threshold < 1, nameof(options.Threshold), options.Threshold, "must be a probability in (0, 1)");
            Check(options.Thresholds is null || options.Thresholds.All(t => t > 0 && t < 1), nameof(options.Thresholds),
                options.Thresholds is null ? null : string.Join(", ", options.Thresholds), "every threshold must be a probability in (0, 1)");
            Check(options.Thresholds is null || !options.TuneThresholds, nameof(options.Thresholds), "given", "give thresholds or have them tuned (TuneThresholds), not both");
            Check(!options.TuneThresholds || options.ValidationSet != null || options.ValidationFraction > 0, nameof(options.TuneThresholds), options.TuneThresholds,
                "thresholds are tuned on validation data; set ValidationSet or ValidationFraction");
            Check(Enum.IsDefined(options.Loss), nameof(options.Loss), options.Loss, "CrossEntropy or Focal");
            Check(options.LabelSmoothing == 0 || options.Loss == ClassificationLoss.CrossEntropy, nameof(options.LabelSmoothing), options.LabelSmoothing,
                "smoothing applies to the cross-entropy; use Loss = CrossEntropy, or leave it 0 with the focal loss");
            Check(options.Stem is null || typeof(IStemOptions).IsAssignableFrom(Card.OptionsType), nameof(options.Stem), options.Stem,
                $"'{options.Architecture}' has no stem to choose; leave Stem null");
        }

        /// <inheritdoc />
        public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
        {
            if (!inputSchema.Any(c => c.Name == Options.LabelColumnName && c.Kind != SchemaShape.Column.VectorKind.Scalar))
                throw new ArgumentException(
                    $"The label column '{Options.LabelColumnName}' must exist and hold each image's labels as a vector (of keys, or Booleans).", nameof(inputSchema));
            // Score: a float vector; PredictedLabels: a Boolean vector of the same length.
            SchemaShape scored = ImageInput.DeclareOutputs(Ml, inputSchema, Options.ImageColumnName, Options.ScoreColumnName);
            return Ml.Transforms.Conversion.ConvertType(Options.PredictedLabelsColumnName, Options.ScoreColumnName, DataKind.Boolean).GetOutputSchema(scored);
        }

        /// <summary>What a fit learns: the labels, the stem the network got and the thresholds it exports.</summary>
        private sealed class MultiLabelFit : FitState
        {
            internal MultiLabelFit(LabelKeyInfo labels) => Labels = labels;

            internal LabelKeyInfo Labels { get; }

            internal string[] LabelNames => Labels.ClassNames?.ToArray()
                ?? Enumerable.Range(1, Labels.ClassCount).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

            internal StemKind? Stem { get; set; }

            internal float[] Thresholds { get; set; } = Array.Empty<float>();
        }

        private protected override FitState CheckInput(IDataView input)
        {
            LabelKeyInfo labels = LabelKeyInfo.FromMultiLabelSchema(input.Schema, Options.LabelColumnName);
            if (Options.ClassWeights is { } weights && weights.Count != labels.ClassCount)
                throw new ArgumentException(
                    $"MultiLabelClassifierOptions.ClassWeights has {weights.Count} weights, but the label column '{Options.LabelColumnName}' has {labels.ClassCount} labels; "
                    + "give one weight per label, in key order.", nameof(input));
            if (Options.Thresholds is { } given && given.Count != labels.ClassCount)
                throw new ArgumentException(
                    $"MultiLabelClassifierOptions.Thresholds has {given.Count} thresholds, but the label column '{Options.LabelColumnName}' has {labels.ClassCount} labels; "
                    + "give one per label, in key order.", nameof(input));
            return new MultiLabelFit(labels) { Thresholds = Options.Thresholds?.ToArray() ?? Enumerable.Repeat(Options.Threshold, labels.ClassCount).ToArray() };
        }

        private protected override ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, bool training, bool pinMemory) =>
            new(data, new ImageBatchOptions
            {
                ImageColumnName = imageColumn, LabelColumnName = Options.LabelColumnName, Width = Options.ImageWidth, Height = Options.ImageHeight,
                BatchSize = Options.BatchSize, Shuffle = training, Seed = Options.Seed, CacheInMemory = Options.CacheInMemory,
                Workers = Options.Workers, PinMemory = pinMemory, Augmentation = training ? Options.Augmentation : null,
            });

        private protected override nn.Module<Tensor, Tensor> CreateModel(FitState state, int channels, IChannel channel)
        {
            var fit = (MultiLabelFit)state;
            using TensorDictionary? pretrained = Options.PretrainedWeightsPath is string path ? ReadPretrained(path, channels) : null;
            ModelOptions modelOptions = ResidualModels.NewOptions(Card);
            modelOptions.Seed = Options.Seed;
            if (modelOptions is IStemOptions stems)
                stems.Stem = fit.Stem = Options.Stem ?? (pretrained is null && Math.Max(Options.ImageWidth, Options.ImageHeight) <= 32 ? StemKind.Cifar : null);
            if (modelOptions is ResNetOptions resnet) resnet.ZeroInitResidual = true;
            var model = ResidualModels.Create(Options.Architecture, fit.Labels.ClassCount, channels, modelOptions);
            try
            {
                if (pretrained != null) StateDict.Load(model, pretrained, strict: true, new StateDictLoadOptions { SkipPrefixes = { Card.HeadPrefix! } });
                return model;
            }
            catch (StateDictMismatchException e)
            {
                model.Dispose();
                throw new ArgumentException($"MultiLabelClassifierOptions.PretrainedWeightsPath = '{Options.PretrainedWeightsPath}' does not hold weights for "
                    + $"{Options.Architecture} with {channels} input channel(s): {e.Message} Choose the Architecture the weights were made for.", "options", e);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        private TensorDictionary ReadPretrained(string path, int channels)
        {
            try
            {
                return EstimatorRuntime.ReadPretrained(path, Card, channels);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or WeightsFormatException or IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"MultiLabelClassifierOptions.PretrainedWeightsPath = '{path}': {e.Message}", "options", e);
            }
        }

        private protected override TrainingLoop CreateTrainer(nn.Module<Tensor, Tensor> model, TrainingOptions training, IDataView trainingRows) =>
            new(model, training, Card.HeadPrefix!)
            {
                MultiLabel = true,
                Loss = ClassificationLosses.CreateMultiLabel(Options.Loss == ClassificationLoss.Focal, Options.ClassWeights, Options.FocalGamma),
            };

        // With TuneThresholds, each label's threshold that maximises its F1 on the validation images.
        private protected override void AfterTraining(Prepared setup)
        {
            if (!Options.TuneThresholds || setup.Validation is null) return;
            var fit = (MultiLabelFit)setup.Task;
            var probabilities = new List<float[]>();
            var truth = new List<float[]>();
            using (no_grad())
            {
                foreach (ImageBatch batch in setup.Validation.ReadAll())
                {
                    using var scope = NewDisposeScope();
                    using (batch)
                    {
                        Tensor images = batch.Images.to(setup.Device);
                        Tensor scores = torch.sigmoid(setup.Model.call(setup.Trainer.Preprocess!(images))).cpu();
                        long n = scores.shape[0], k = scores.shape[1];
                        float[] values = scores.data<float>().ToArray(), targets = batch.Labels!.data<float>().ToArray();
                        for (long row = 0; row < n; row++)
                        {
                            probabilities.Add(values[(int)(row * k)..(int)((row + 1) * k)]);
                            truth.Add(targets[(int)(row * k)..(int)((row + 1) * k)]);
                        }
                    }
                }
            }

            fit.Thresholds = MultiLabelThresholds.MaximiseF1(probabilities, truth, Options.Threshold);
        }

        private protected override OnnxExportOptions ExportOptions(FitState state, string pixelColumn, PixelNormalization normalization, nn.Module<Tensor, Tensor> network)
        {
            var fit = (MultiLabelFit)state;
            return new OnnxExportOptions
            {
                InputName = pixelColumn, Normalization = normalization, Sigmoid = true, ScoreName = Options.ScoreColumnName,
                Thresholds = fit.Thresholds, PredictedFlagsName = FlagsColumn,
                Metadata = new Dictionary<string, string>
                {
                    [SavedModelWeights.ArchitectureKey] = Options.Architecture,
                    [SavedModelWeights.ClassesKey] = string.Join("\n", fit.LabelNames),
                    [SavedModelWeights.StemKey] = fit.Stem?.ToString() ?? "default",
                    ["thresholds"] = string.Join("\n", fit.Thresholds.Select(t => t.ToString("R", System.Globalization.CultureInfo.InvariantCulture))),
                },
            };
        }

        private protected override string[] GraphOutputs => new[] { Options.ScoreColumnName, FlagsColumn };

        private protected override string[] KeptOutputs => new[] { Options.ScoreColumnName };

        // The graph's thresholded flags become PredictedLabels.
        private protected override void AddScoringColumns(ChainBuilder chain, FitState state) =>
            chain.Fit(Ml.Transforms.Concatenate(Options.PredictedLabelsColumnName, FlagsColumn));
    }

    /// <summary>Per-label decision thresholds.</summary>
    internal static class MultiLabelThresholds
    {
        /// <summary>
        /// For each label, the threshold t (predict where probability ≥ t) with the highest F1 over the rows: t lies midway between
        /// the lowest probability predicted positive and the next lower one (or 0), the highest such t when several tie. A label with
        /// no positive row keeps <paramref name="fallback"/>.
        /// </summary>
        public static float[] MaximiseF1(IReadOnlyList<float[]> probabilities, IReadOnlyList<float[]> truth, float fallback)
        {
            int labels = probabilities.Count == 0 ? 0 : probabilities[0].Length;
            var thresholds = new float[labels];
            for (int k = 0; k < labels; k++)
            {
                var rows = Enumerable.Range(0, probabilities.Count).Select(r => (P: probabilities[r][k], Y: truth[r][k] > 0.5f)).OrderByDescending(r => r.P).ToArray();
                int positives = rows.Count(r => r.Y);
                if (positives == 0)
                {
                    thresholds[k] = fallback;
                    continue;
                }

                // Predicting the top j rows: F1 = 2·TP / (j + positives); evaluated where the probability changes (ties move together).
                double best = -1;
                int truePositives = 0;
                for (int j = 0; j < rows.Length; j++)
                {
                    if (rows[j].Y) truePositives++;
                    if (j + 1 < rows.Length && rows[j + 1].P == rows[j].P) continue;
                    double f1 = 2.0 * truePositives / (j + 1 + positives);
                    if (f1 > best)
                    {
                        best = f1;
                        // Midway to the next lower probability (or to 0), so that rounding in another runtime moves no row across.
                        thresholds[k] = (rows[j].P + (j + 1 < rows.Length ? rows[j + 1].P : 0f)) / 2;
                    }
                }
            }

            return thresholds;
        }
    }
}
