using System.IO;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual;

namespace ResidualML.Cli.Commands
{
    /// <summary>The classifier options that train, lr-find and sweep share: the network, its square input size, the batch and the starting weights.</summary>
    internal static class ClassifierCommandOptions
    {
        public static readonly OptionSpec Arch = new("arch", "NAME", "architecture: resnet18 (default), resnet34, resnet50, preact_resnet18, resnet20 (CIFAR), densenet121, ...");

        public static readonly OptionSpec ImageSize = new("image-size", "PIXELS", "images are resized to this square size (default 224)");

        public static readonly OptionSpec BatchSize = new("batch-size", "N", "images per batch (default 32)");

        public static readonly OptionSpec Weights = new("weights", "FILE", "start from pretrained weights: .safetensors or a PyTorch .pth state dict with torchvision key names");

        public static int ImageSizeOf(CommandLine line) => line.Integer(ImageSize.Name, 224, 8, 4096);

        /// <summary>The estimator's options from --arch, --image-size, --batch-size, --weights (which must exist), --seed and --precision.</summary>
        public static ImageClassifierOptions Read(CommandLine line, int seed, CliContext context)
        {
            int size = ImageSizeOf(line);
            var options = new ImageClassifierOptions
            {
                Architecture = line.Text(Arch.Name) ?? "resnet18",
                ImageWidth = size, ImageHeight = size,
                BatchSize = line.Integer(BatchSize.Name, 32, 1, 65_536),
                PretrainedWeightsPath = line.PathOf(Weights.Name),
                Seed = seed, Precision = CommonOptions.PrecisionOf(line),
                CancellationToken = context.Cancellation,
            };
            if (options.PretrainedWeightsPath is string weights && !File.Exists(weights))
                throw new FileNotFoundException($"--weights {weights}: no such file.");
            return options;
        }
    }
}
