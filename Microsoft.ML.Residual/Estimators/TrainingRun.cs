using System;
using System.Collections.Generic;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// The training run every image estimator's <c>Fit</c> shares once its task has made the readers, the network and the
    /// trainer: the epochs (with the gradient-flow probe when asked, naming an unreadable image's row and file), then the
    /// trained network exported to ONNX from the CPU in inference mode.
    /// </summary>
    internal static class TrainingRun
    {
        /// <summary>
        /// Trains <paramref name="model"/> with <paramref name="trainer"/> as <paramref name="options"/> say, on
        /// <paramref name="batches"/> (an epoch's, shuffled and augmented) and <paramref name="validation"/> (or none); the
        /// first of <paramref name="probe"/>'s batches is the gradient-flow probe. <paramref name="decodesImages"/>: the image
        /// column holds images to decode, so a failure names the row and file of <paramref name="input"/>.
        /// </summary>
        public static void Train(
            ImageTrainerOptions options, IChannel channel, nn.Module<Tensor, Tensor> model, TrainingLoop trainer, Device device, IDataView input,
            long rows, Func<int, IEnumerable<(Tensor Images, Tensor Targets)>> batches, Func<IEnumerable<(Tensor Images, Tensor Targets)>>? validation,
            Func<IEnumerable<(Tensor Images, Tensor Targets)>> probe, bool decodesImages)
        {
            IProgress<EpochReport> epochs = new EpochLog(channel, options.Progress);
            using TrainingGradientFlow? flow = options.GradientFlowProgress is { } flowProgress
                ? TrainingGradientFlow.OnFirstBatch(model, probe(), trainer.Preprocess!, device, flowProgress)
                : null;
            flow?.MeasureNow(0);
            ImageInput.NamingUnreadableImages(
                () => trainer.Train(batches, (rows + options.BatchSize - 1) / options.BatchSize, validation,
                    flow?.AfterEachEpoch(epochs) ?? epochs, options.CancellationToken, options.BatchProgress),
                decodesImages, input, options.ImageColumnName, options.ValidationSet);
        }

        /// <summary>The trained network in inference mode, moved to the CPU, as an ONNX graph for <paramref name="channels"/>-channel images.</summary>
        public static byte[] Export(nn.Module<Tensor, Tensor> model, int channels, ImageTrainerOptions options, OnnxExportOptions export)
        {
            model.eval();
            model.to(CPU);
            return OnnxExporter.ExportToBytes(model, new long[] { 1, channels, options.ImageHeight, options.ImageWidth }, export);
        }
    }
}
