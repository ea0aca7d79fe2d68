using System;
using System.Collections.Generic;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterUNets(List<Entry> registry)
        {
            registry.Add(new Entry(
                new ModelInfo("unet", "unet", "U-Net (Ronneberger et al. 2015) with BatchNorm: depth 4, widths 64…1024, transposed-convolution upsampling")
                {
                    Task = ModelTask.Segmenter, OptionsType = typeof(UNetOptions),
                },
                (classes, channels, options) => new UNet(channels, classes, UNetOptions.From(options))));

            AddEncoderUNet(registry, "unet_resnet18", "resnet18");
            AddEncoderUNet(registry, "unet_resnet34", "resnet34");
            AddEncoderUNet(registry, "unet_resnet50", "resnet50");
            AddEncoderUNet(registry, "unet_densenet121", "densenet121");
        }

        /// <summary>
        /// Registers <paramref name="name"/>: a U-Net decoder over the already registered model
        /// <paramref name="encoderName"/>, created without classifier (<c>numClasses = 0</c>) with
        /// <see cref="UNetOptions.Encoder"/> as its options. Its module must implement <see cref="IStageEncoder"/>.
        /// </summary>
        private static void AddEncoderUNet(List<Entry> registry, string name, string encoderName)
        {
            Entry encoderEntry = registry.Find(e => string.Equals(e.Info.Name, encoderName, StringComparison.OrdinalIgnoreCase))
                ?? throw new InvalidOperationException($"Register '{encoderName}' before the U-Net '{name}' that uses it as encoder.");
            AddEncoderUNet(
                registry,
                name,
                $"U-Net decoder (256-128-64-32-16, smp layout) over a {encoderName} encoder",
                encoderEntry.Info,
                (inChannels, encoderOptions) =>
                {
                    CheckOptionsType(encoderEntry.Info, encoderOptions);
                    return encoderEntry.Factory(0, inChannels, encoderOptions);
                });
        }

        /// <summary>
        /// Registers <paramref name="name"/>: a U-Net decoder over the encoder <paramref name="encoder"/> describes, which
        /// <paramref name="encoderFactory"/> builds from the input channels and <see cref="UNetOptions.Encoder"/>.
        /// </summary>
        private static void AddEncoderUNet(
            List<Entry> registry, string name, string description, ModelInfo encoder, Func<int, ModelOptions?, nn.Module<Tensor, Tensor>> encoderFactory)
        {
            string encoderName = encoder.Name;
            var card = new ModelInfo(name, "unet", description)
            {
                Task = ModelTask.Segmenter, HeadPrefix = encoder.HeadPrefix, OptionsType = typeof(UNetOptions), Encoder = encoder.Name,
            };
            registry.Add(new Entry(card, (classes, channels, options) =>
            {
                UNetOptions unetOptions = UNetOptions.From(options);
                EncoderUNet.CheckOptions(unetOptions);
                UNetOptions.CheckCounts(channels, classes);
                if (unetOptions.Seed is long seed) manual_seed(seed);
                nn.Module<Tensor, Tensor> encoder;
                try
                {
                    encoder = encoderFactory(channels, unetOptions.Encoder);
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"UNetOptions.Encoder does not fit the {encoderName} encoder of '{name}': {e.Message}", nameof(options), e);
                }

                return new EncoderUNet(encoder, classes, unetOptions.WithoutEncoder());
            }));
        }
    }
}
