using System;
using System.Linq;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// The training part of every image trainer's <c>Fit</c> (<see cref="ImageModelEstimator"/> holds the rest): check the input,
    /// split off validation data, read batches, build the network on the training device, train it and export it to ONNX. A
    /// task (classification, segmentation) supplies only its parts: the input check, the batch target, the network with its
    /// initial weights, the trainer's loss and phases, the export's outputs and the scoring columns.
    /// </summary>
    /// <typeparam name="TOptions">The task's options.</typeparam>
    public abstract class ImageTrainerEstimator<TOptions> : ImageModelEstimator where TOptions : ImageTrainerOptions
    {
        private protected ImageTrainerEstimator(IHostEnvironment environment, TOptions options, ModelTask task)
            : base(environment, (options ?? throw new ArgumentNullException(nameof(options))).Seed)
        {
            Options = options;
            Card = options.CheckShared(task);
        }

        private protected TOptions Options { get; }

        /// <inheritdoc />
        private protected override ScoringOptions Scoring => Options.Scoring;

        /// <summary>The registry card of <see cref="ImageTrainerOptions.Architecture"/>.</summary>
        private protected ModelInfo Card { get; }

        private protected override string ImageColumnName => Options.ImageColumnName;

        private protected override int ImageWidth => Options.ImageWidth;

        private protected override int ImageHeight => Options.ImageHeight;

        private protected override string Activity => "Training";

        // The training options, then the task's columns, as before any data is read.
        private protected override void CheckBeforeFit(IDataView input)
        {
            CheckTrainingOptions();
            CheckInput(input);
        }

        /// <summary>The card whose pixel statistics the network is trained and exported with (the architecture's own).</summary>
        private protected virtual ModelInfo NormalizationCard => Card;

        private protected override (byte[] Onnx, FitState State) CreateGraph(IDataView input, string pixelColumn, IChannel channel)
        {
            byte[] onnx = null!;
            FitState state = null!;
            Prepare(input, channel, withValidation: true, setup =>
            {
                state = setup.Task;
                // The epochs, with the gradient-flow probe on the first validation (or training) batch when asked; a failure to
                // read an image names its row and file.
                IProgress<EpochReport> epochs = new EpochLog(channel, Options.Progress, setup.Trainer.LossOnly);
                using (TrainingGradientFlow? flow = Options.GradientFlowProgress is { } flowProgress
                    ? TrainingGradientFlow.OnFirstBatch(setup.Model, Pairs((setup.Validation ?? setup.Reader).ReadAll()), setup.Trainer.Preprocess!, setup.Device, flowProgress)
                    : null)
                {
                    if (flow is not null) setup.Trainer.Hooks.Add(flow);
                    ImageInput.NamingUnreadableImages(
                        () => setup.Trainer.Train(epoch => Pairs(setup.Reader.ReadEpoch(epoch)), (setup.Rows + Options.BatchSize - 1) / Options.BatchSize,
                            setup.Validation == null ? null : () => Pairs(setup.Validation.ReadAll()), epochs,
                            Options.CancellationToken, Options.BatchProgress),
                        setup.DecodesImages, input, Options.ImageColumnName, Options.ValidationSet);
                }

                // Exported from the CPU in inference mode, after the task has looked at the trained network.
                setup.Model.eval();
                AfterTraining(setup);
                setup.Model.to(CPU);
                // Tensors the task's export options hold (a detector's anchors) are freed with the export.
                using (NewDisposeScope())
                {
                    onnx = OnnxExporter.ExportToBytes(setup.Model, new long[] { 1, setup.Reader.Channels, Options.ImageHeight, Options.ImageWidth },
                        ExportOptions(setup.Task, pixelColumn, setup.Normalization, setup.Model));
                }
            });
            return (onnx, state);
        }

        /// <summary>
        /// Checks the options the constructor does not (those of the training loop), as <c>Fit</c> would, and returns
        /// them with every default resolved.
        /// </summary>
        internal TrainingOptions CheckTrainingOptions() => Options.ToTrainingOptions();

        /// <summary>Checks the input's task columns (labels, masks) and returns what the fit needs to know of them.</summary>
        private protected abstract FitState CheckInput(IDataView input);

        /// <summary>
        /// The task's batch reader over <paramref name="data"/>'s image column <paramref name="imageColumn"/> (training: shuffled
        /// and augmented). <paramref name="sourceImageColumn"/>: the original MLImage column, when the images were resized.
        /// </summary>
        private protected abstract ImageBatchReader CreateReader(IDataView data, string imageColumn, string? sourceImageColumn, bool training, bool pinMemory);

        /// <summary>The network for <paramref name="channels"/>-channel images, with its initial weights, on the CPU.</summary>
        private protected abstract nn.Module<Tensor, Tensor> CreateModel(FitState fit, int channels, IChannel channel);

        /// <summary>The training loop over <paramref name="model"/>: the task's loss (which may depend on the training rows' labels), metrics and backbone phases.</summary>
        private protected abstract TrainingLoop CreateTrainer(nn.Module<Tensor, Tensor> model, TrainingOptions training, IDataView trainingRows);

        /// <summary>After training, before the export: the task may measure the trained network (in eval mode, on its device), e.g. on the validation data.</summary>
        private protected virtual void AfterTraining(Prepared setup)
        {
        }

        /// <summary>The export's input, outputs and metadata for the trained <paramref name="network"/>.</summary>
        private protected abstract OnnxExportOptions ExportOptions(FitState fit, string pixelColumn, PixelNormalization normalization, nn.Module<Tensor, Tensor> network);

        /// <summary>What a fit (or the learning-rate finder) works with: the readers, the network on its device and its trainer.</summary>
        private protected sealed record Prepared(
            FitState Task, TrainingLoop Trainer, nn.Module<Tensor, Tensor> Model, ImageBatchReader Reader, ImageBatchReader? Validation, long Rows, Device Device,
            bool DecodesImages, PixelNormalization Normalization);

        /// <summary>
        /// Checks the input, builds the readers and the network (with its initial weights, on the training device) and runs
        /// <paramref name="body"/> with them; the network is disposed afterwards. Without <paramref name="withValidation"/> no
        /// validation data is read (the training rows stay those <c>Fit</c> would train on).
        /// </summary>
        private protected void Prepare(IDataView input, IChannel channel, bool withValidation, Action<Prepared> body)
        {
            TrainingOptions training = Options.ToTrainingOptions();
            FitState fit = CheckInput(input);
            (ITransformer? readTransform, string readColumn) = ImageInput.TrainingImages(Ml, input, Options.ImageColumnName, Options.ImageWidth, Options.ImageHeight, Resizing);
            (IDataView pixels, IDataView? validationPixels) = ImageInput.SplitValidation(
                Ml, input, readTransform, Options.ValidationSet, Options.ValidationFraction, Options.Seed);
            if (!withValidation) validationPixels = null;
            bool heldOut = Options.ValidationSet == null && Options.ValidationFraction > 0;
            long rows = EstimatorRuntime.CountRows(pixels);
            if (rows == 0)
                throw new ArgumentException(heldOut
                    ? $"The training data is empty once ValidationFraction = {Options.ValidationFraction} is held out; lower it or add rows."
                    : "The training data is empty: it has no rows.", nameof(input));

            Device device = EstimatorRuntime.ChooseDevice(Environment, channel);
            bool pinMemory = device.type == DeviceType.CUDA;
            string? sourceImage = readTransform != null ? Options.ImageColumnName : null;
            ImageBatchReader reader = CreateReader(pixels, readColumn, sourceImage, training: true, pinMemory);
            ImageBatchReader? validation = validationPixels == null ? null : ValidationReader(validationPixels, readColumn, sourceImage, heldOut, pinMemory);
            PixelNormalization normalization = PixelNormalization.For(NormalizationCard, reader.Channels);
            nn.Module<Tensor, Tensor> model = CreateModel(fit, reader.Channels, channel);
            try
            {
                model.to(device);
                using var normalizer = new PixelNormalizer(normalization, reader.Channels, device);
                TrainingLoop trainer = CreateTrainer(model, training, pixels);
                trainer.Preprocess = normalizer.Apply;
                body(new Prepared(fit, trainer, model, reader, validation, rows, device, readTransform != null, normalization));
            }
            finally
            {
                model.Dispose();
            }
        }

        private ImageBatchReader ValidationReader(IDataView validationPixels, string readColumn, string? sourceImage, bool heldOut, bool pinMemory)
        {
            string name = Options.GetType().Name;
            try
            {
                return CreateReader(validationPixels, readColumn, sourceImage, training: false, pinMemory);
            }
            catch (ArgumentException e) when (!heldOut)
            {
                throw new ArgumentException(
                    $"{name}.ValidationSet: {e.Message} The validation data needs the same columns as the training data (images, and labels or masks), after the same transforms.",
                    "options", e);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{name}.ValidationFraction = {Options.ValidationFraction} holds out no rows ({e.Message}); raise it or add rows.", "options", e);
            }
        }

        private static System.Collections.Generic.IEnumerable<(Tensor Images, Tensor Targets)> Pairs(System.Collections.Generic.IEnumerable<ImageBatch> batches) =>
            batches.Select(b => (b.Images, b.Labels!));
    }
}
