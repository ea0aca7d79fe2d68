using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterConvNeXts(List<Entry> registry)
        {
            // Base and large are built from ConvNeXtDefinition.Base and .Large (88 and 198 million parameters).
            foreach (var (name, definition) in new[] { ("tiny", ConvNeXtDefinition.Tiny), ("small", ConvNeXtDefinition.Small) })
            {
                registry.Add(new Entry(new ModelInfo($"convnext_{name}", "convnext", $"ConvNeXt-{char.ToUpperInvariant(name[0])} (depthwise 7×7, LayerNorm, GELU, layer scale, stochastic depth)")
                {
                    HeadPrefix = "classifier.2.", OptionsType = typeof(ConvNeXtOptions), FirstConvolution = "features.0.0", Stages = definition.Stages,
                    MinimumInputSize = 32,
                },
                    (classes, channels, options) => new ConvNeXt(definition.With(options) with { NumClasses = classes, InChannels = channels })));
            }
        }
    }
}
