using System.Collections.Generic;
using Microsoft.ML;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Training;

namespace ResidualML.Cli.Commands
{
    /// <summary>The options every training command has, and the ML.NET context they set up.</summary>
    internal static class CommonOptions
    {
        public static readonly OptionSpec Seed = new("seed", "N", "random seed (default 1)");

        public static readonly OptionSpec Gpu = new("gpu", null, "train on GPU 0 when TorchSharp's CUDA backend is installed (falls back to the CPU)");

        public static readonly OptionSpec Precision = new("precision", "TYPE", "float32 (default), bfloat16 or float16: mixed precision for convolutions in training; the saved model is float32");

        private static readonly IReadOnlyDictionary<string, TrainingPrecision> Precisions = new Dictionary<string, TrainingPrecision>
        {
            ["float32"] = TrainingPrecision.Float32,
            ["bfloat16"] = TrainingPrecision.BFloat16,
            ["float16"] = TrainingPrecision.Float16,
        };

        public static TrainingPrecision PrecisionOf(CommandLine line) => line.Choice(Precision.Name, TrainingPrecision.Float32, Precisions);

        public static readonly OptionSpec Accumulate = new("accumulate", "N", "sum the gradients of N batches before each step: a batch N times larger in the memory of one (default 1)");

        public static readonly OptionSpec Ema = new("ema", "DECAY", "validate and save an exponential moving average of the weights with this decay, e.g. 0.999 (default: off)");

        /// <summary>The training-loop settings every training command takes: --accumulate and --ema.</summary>
        public static void ReadLoopSettings(CommandLine line, ImageTrainerOptions options)
        {
            options.GradientAccumulationSteps = line.Integer(Accumulate.Name, 1, 1, 65_536);
            options.ModelEmaDecay = line.Number(Ema.Name, 1e-9, 0.999999999);
        }

        public static readonly OptionSpec Output = new("output", "FOLDER", "where to write the files (default: the current directory)");

        public static int SeedOf(CommandLine line) => line.Integer(Seed.Name, 1, 0, int.MaxValue);

        /// <summary>An MLContext with the seed and, with --gpu, GPU 0 and CPU fallback (as ML.NET's own trainers choose a device).</summary>
        public static MLContext Context(CommandLine line, int seed)
        {
            var ml = new MLContext(seed);
            if (line.Has(Gpu.Name))
            {
                ml.GpuDeviceId = 0;
                ml.FallbackToCpu = true;
            }

            return ml;
        }
    }
}
