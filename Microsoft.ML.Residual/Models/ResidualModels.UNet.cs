using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterUNets(List<Entry> registry)
        {
            registry.Add(new Entry(
                new ModelInfo("unet", "unet", "U-Net (Ronneberger et al. 2015) with BatchNorm: depth 4, widths 64…1024; with UNetOptions.Encoder, a decoder over that backbone")
                {
                    Task = ModelTask.Segmenter, OptionsType = typeof(UNetOptions),
                },
                (classes, channels, options) =>
                {
                    UNetOptions unet = UNetOptions.From(options);
                    if (unet.Encoder is null) return new UNet(channels, classes, unet);
                    Entry encoder = Lookup(unet.Encoder) is { Info.Task: ModelTask.Classifier } entry ? entry
                        : throw new ArgumentException(
                            $"UNetOptions.Encoder = '{unet.Encoder}' is not a registered classifier backbone. Use one of: "
                            + string.Join(", ", All.Where(m => m.Task == ModelTask.Classifier).Select(m => m.Name)) + ".", nameof(options));
                    return EncoderUNetOver(encoder, "unet", classes, channels, unet);
                }));

            foreach (string encoder in new[] { "resnet18", "resnet34", "resnet50", "densenet121" })
            {
                Entry entry = registry.Find(e => e.Info.Name == encoder) ?? throw new InvalidOperationException($"Register '{encoder}' before the U-Net over it.");
                string name = "unet_" + encoder;
                var card = new ModelInfo(name, "unet", $"U-Net decoder (256-128-64-32-16, smp layout) over a {encoder} encoder: unet with Encoder = \"{encoder}\"")
                {
                    Task = ModelTask.Segmenter, HeadPrefix = entry.Info.HeadPrefix, OptionsType = typeof(UNetOptions), Encoder = encoder,
                    FirstConvolution = "encoder." + entry.Info.FirstConvolution, Mean = entry.Info.Mean, Std = entry.Info.Std,
                };
                registry.Add(new Entry(card, (classes, channels, options) =>
                {
                    UNetOptions unet = UNetOptions.From(options);
                    if (unet.Encoder is not null && !string.Equals(unet.Encoder, encoder, StringComparison.OrdinalIgnoreCase))
                    {
                        throw new ArgumentException(
                            $"UNetOptions.Encoder = '{unet.Encoder}': '{name}' is unet over {encoder}. For another encoder create \"unet\" with that Encoder.", nameof(options));
                    }

                    return EncoderUNetOver(entry, name, classes, channels, unet);
                }));
            }
        }

        /// <summary>The card of the backbone a segmentation architecture is built over (its own, or <see cref="UNetOptions.Encoder"/>), or null.</summary>
        internal static ModelInfo? EncoderOf(string architecture, UNetOptions? options) => Find(Find(architecture)?.Encoder ?? options?.Encoder);

        // A U-Net decoder over the backbone `encoder` registers, built without its classifier (numClasses = 0) from
        // UNetOptions.EncoderOptions; its module must implement IStageEncoder.
        private static EncoderUNet EncoderUNetOver(Entry encoder, string name, int classes, int channels, UNetOptions options)
        {
            EncoderUNet.CheckOptions(options);
            UNetOptions.CheckCounts(channels, classes);
            if (options.Seed is long seed) manual_seed(seed);
            nn.Module<Tensor, Tensor> backbone;
            try
            {
                CheckOptionsType(encoder.Info, options.EncoderOptions);
                backbone = encoder.Factory(0, channels, options.EncoderOptions);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"UNetOptions.EncoderOptions does not fit the {encoder.Info.Name} encoder of '{name}': {e.Message}", nameof(options), e);
            }

            return new EncoderUNet(backbone, classes, options.WithoutEncoder());
        }
    }
}
