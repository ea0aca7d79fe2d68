using System;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>What every training estimator needs from its surroundings: devices from the MLContext, ONNX Runtime, row counts.</summary>
    internal static class EstimatorRuntime
    {
        // The GPU for ONNX Runtime scoring, and MLContext.FallbackToCpu for ApplyOnnxModel: MLContext.GpuDeviceId when ONNX
        // Runtime has its CUDA provider. ML.NET's OnnxTransformer does not fall back by itself when the provider is missing
        // (the CPU package throws EntryPointNotFoundException even with FallbackToCpu), so the check is made here.
        public static (int? Gpu, bool FallbackToCpu) ScoringDevice(IHostEnvironment environment, IChannel channel)
        {
            var (gpu, fallback) = Interop.MlNetInternals.DeviceSettings(environment);
            if (gpu is not int id) return (null, fallback);
            try
            {
                using var probe = Microsoft.ML.OnnxRuntime.SessionOptions.MakeSessionOptionWithCudaProvider(id);
                return (id, fallback);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
            {
                if (!fallback)
                {
                    throw new InvalidOperationException(
                        $"MLContext.GpuDeviceId = {id}, but ONNX Runtime cannot use that CUDA device ({e.Message}). Reference Microsoft.ML.OnnxRuntime.Gpu "
                        + "instead of Microsoft.ML.OnnxRuntime, or set MLContext.FallbackToCpu = true.", e);
                }

                channel.Info(MessageSensitivity.None, $"Warning: ONNX Runtime cannot use CUDA device {id}; the model scores on the CPU (FallbackToCpu).");
                return (null, fallback);
            }
        }

        public static Device ChooseDevice(IHostEnvironment environment, IChannel channel)
        {
            var (gpu, fallback) = Interop.MlNetInternals.DeviceSettings(environment);
            if (gpu is not int id) return CPU;
            if (torch.cuda.is_available() && id < torch.cuda.device_count()) return torch.device($"cuda:{id}");
            if (fallback)
            {
                channel.Info(MessageSensitivity.None, $"Warning: MLContext.GpuDeviceId = {id}, but no such CUDA device is available; training on the CPU (FallbackToCpu).");
                return CPU;
            }

            throw new InvalidOperationException(
                $"MLContext.GpuDeviceId = {id}, but TorchSharp sees {(torch.cuda.is_available() ? torch.cuda.device_count() : 0)} CUDA device(s). "
                + "Reference a CUDA backend (TorchSharp-cuda-linux or -windows), choose another device, or set MLContext.FallbackToCpu = true.");
        }

        // Scoring needs ONNX Runtime's native library; find out before training, not after it.
        public static void EnsureOnnxRuntime()
        {
            try
            {
                using var probe = new Microsoft.ML.OnnxRuntime.SessionOptions();
            }
            catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException)
            {
                throw new InvalidOperationException(
                    "ONNX Runtime's native library is not available, and the fitted model scores through it. Add the package "
                    + "Microsoft.ML.OnnxRuntime (CPU) or Microsoft.ML.OnnxRuntime.Gpu to your application.", e);
            }
        }

        /// <summary>
        /// A state dict of <paramref name="card"/>'s network, its first convolution's RGB weights adapted to
        /// <paramref name="channels"/> input channels (see <see cref="AdaptInputConvolution"/>).
        /// </summary>
        public static Weights.TensorDictionary ReadPretrained(string path, Models.ModelInfo card, int channels)
        {
            Weights.TensorDictionary weights = Weights.StateDict.Read(path);
            try
            {
                if (card.FirstConvolution is string first) AdaptInputConvolution(weights, first + ".weight", channels);
                return weights;
            }
            catch
            {
                weights.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Loads a torchvision classifier state dict of <paramref name="backbone"/> (its first convolution adapted to <paramref name="channels"/>)
        /// into the part of <paramref name="model"/> under <paramref name="prefix"/> (a U-Net's <c>encoder.</c>, a detector's <c>backbone.body.</c>):
        /// every other key of the file but the classifier's head must fit there; the rest of the model keeps its initial weights.
        /// </summary>
        /// <param name="model">The task's network.</param>
        /// <param name="path">The state dict (.safetensors or .pth).</param>
        /// <param name="backbone">The card of the classifier whose weights the file holds.</param>
        /// <param name="channels">The images' channels.</param>
        /// <param name="prefix">Where the backbone sits in <paramref name="model"/>'s state dict.</param>
        /// <param name="option">The option that names the file, for the error (e.g. <c>SegmenterOptions.PretrainedEncoderWeightsPath</c>).</param>
        /// <param name="architecture">The task's architecture, for the error.</param>
        /// <exception cref="ArgumentException">The file cannot be read, or its keys or shapes do not fit; the message names <paramref name="option"/>.</exception>
        public static void LoadBackboneWeights(nn.Module model, string path, Models.ModelInfo backbone, int channels, string prefix, string option, string architecture)
        {
            string head = backbone.HeadPrefix
                ?? throw new InvalidOperationException($"The registry gives no classifier head prefix for the backbone {backbone.Name} of '{architecture}'.");
            try
            {
                using Weights.TensorDictionary file = ReadPretrained(path, backbone, channels);
                Weights.StateDict.Load(model, file, strict: true, new Weights.StateDictLoadOptions
                {
                    MapKey = key => key.StartsWith(head, StringComparison.Ordinal) ? null : prefix + key,
                    SkipPrefixes = model.state_dict().Keys.Where(key => !key.StartsWith(prefix, StringComparison.Ordinal)).ToList(),
                });
            }
            catch (Exception e) when (e is Weights.StateDictMismatchException or System.IO.FileNotFoundException or System.IO.DirectoryNotFoundException
                or Weights.WeightsFormatException or System.IO.IOException)
            {
                throw new ArgumentException(
                    $"{option} = '{path}': {e.Message} The file must be a state dict of the backbone's classifier with torchvision's names "
                    + $"(for {architecture}: {backbone.Name}).", "options", e);
            }
        }

        /// <summary>
        /// Adapts RGB weights of the convolution <paramref name="key"/> (O×3×kH×kW) to <paramref name="channels"/> input channels,
        /// in place, as timm does for pretrained weights on other inputs: one channel gets the sum over R, G and B (the
        /// convolution then gives a grey plane what it gave the same plane in R, G and B); more channels get R, G, B repeated
        /// and scaled by 3 / <paramref name="channels"/>. Returns false, changing nothing, when the key is absent or its
        /// weight does not have 3 input channels, or <paramref name="channels"/> is 3.
        /// </summary>
        public static bool AdaptInputConvolution(Weights.TensorDictionary weights, string key, int channels)
        {
            if (channels == 3 || !weights.TryGetValue(key, out Tensor? rgb) || rgb.dim() != 4 || rgb.shape[1] != 3) return false;
            using var scope = torch.NewDisposeScope();
            Tensor adapted = channels == 1
                ? rgb.sum(1, keepdim: true)
                : rgb.repeat(1, (channels + 2) / 3, 1, 1).narrow(1, 0, channels).Times(3.0 / channels);
            weights.Replace(key, adapted.contiguous().DetachFromDisposeScope());
            return true;
        }

        public static long CountRows(IDataView data)
        {
            if (data.GetRowCount() is long known) return known;
            long count = 0;
            using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
            while (cursor.MoveNext()) count++;
            return count;
        }

        /// <summary>Validates training options built from an estimator's options; a message names the estimator's options class.</summary>
        public static TrainingOptions Validated(TrainingOptions training, string optionsClass)
        {
            try
            {
                training.Validate();
                return training;
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException(e.Message.Replace("TrainingOptions.", optionsClass + ".", StringComparison.Ordinal), "options", e);
            }
        }
    }
}
