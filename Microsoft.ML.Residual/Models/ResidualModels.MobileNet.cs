using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterMobileNets(List<Entry> registry)
        {
            var v2 = new MobileNetV2Definition();
            registry.Add(new Entry(new ModelInfo("mobilenet_v2", "mobilenet", "MobileNetV2 (inverted residuals, width 1.0)")
            {
                HeadPrefix = "classifier.1.", OptionsType = typeof(MobileNetOptions), FirstConvolution = "features.0.0", Stages = v2.Stages,
            },
                (classes, channels, options) => new MobileNetV2(v2.With(options) with { NumClasses = classes, InChannels = channels })));
            foreach (var (size, name) in new[] { (MobileNetV3Size.Large, "large"), (MobileNetV3Size.Small, "small") })
            {
                var v3 = new MobileNetV3Definition { Size = size };
                registry.Add(new Entry(new ModelInfo($"mobilenet_v3_{name}", "mobilenet", $"MobileNetV3-{size} (hard-swish, squeeze-and-excitation)")
                {
                    HeadPrefix = "classifier.3.", OptionsType = typeof(MobileNetOptions), FirstConvolution = "features.0.0", Stages = v3.Stages,
                },
                    (classes, channels, options) => new MobileNetV3(v3.With(options) with { NumClasses = classes, InChannels = channels })));
            }

            // EfficientNet B0–B4 (Tan and Le 2019): width, depth and dropout per size, as torchvision builds them.
            foreach (var (size, width, depth, dropout) in new[] { (0, 1.0, 1.0, 0.2), (1, 1.0, 1.1, 0.2), (2, 1.1, 1.2, 0.3), (3, 1.2, 1.4, 0.3), (4, 1.4, 1.8, 0.4) })
            {
                var definition = new EfficientNetDefinition { WidthMultiplier = width, DepthMultiplier = depth, DropRate = dropout };
                registry.Add(new Entry(new ModelInfo($"efficientnet_b{size}", "efficientnet", $"EfficientNet-B{size} (SiLU, squeeze-and-excitation, stochastic depth)")
                {
                    HeadPrefix = "classifier.1.", OptionsType = typeof(MobileNetOptions), FirstConvolution = "features.0.0", Stages = definition.Stages,
                },
                    (classes, channels, options) => new EfficientNet(definition.With(options) with { NumClasses = classes, InChannels = channels })));
            }

            var v2s = new EfficientNetDefinition { Version = EfficientNetVersion.V2Small };
            registry.Add(new Entry(new ModelInfo("efficientnet_v2_s", "efficientnet", "EfficientNetV2-S (fused blocks, SiLU, squeeze-and-excitation)")
            {
                HeadPrefix = "classifier.1.", OptionsType = typeof(MobileNetOptions), FirstConvolution = "features.0.0", Stages = v2s.Stages,
            },
                (classes, channels, options) => new EfficientNet(v2s.With(options) with { NumClasses = classes, InChannels = channels })));
        }
    }
}
