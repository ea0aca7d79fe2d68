using System;
using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        // The sizes up to 1.6 GF are registered; the larger ones (up to 644 million parameters) on request, by RegisterRegNet.
        private static void RegisterRegNets(List<Entry> registry)
        {
            foreach (string name in new[] { "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf" })
                registry.Add(RegNetEntry(name, RegNetDefinition.Torchvision[name]));
        }

        /// <summary>
        /// Registers a RegNet under <paramref name="name"/>: one of torchvision's larger sizes
        /// (<c>RegisterRegNet("regnet_y_16gf", RegNetDefinition.Torchvision["regnet_y_16gf"])</c>) or a design of your own.
        /// It then trains, exports, featurises and serves as a U-Net encoder like the registered RegNets.
        /// </summary>
        /// <exception cref="ArgumentException">The name is empty or taken, or the definition is inconsistent.</exception>
        public static void RegisterRegNet(string name, RegNetDefinition definition)
        {
            if (definition is null) throw new ArgumentNullException(nameof(definition));
            definition.Validate();
            Entry entry = RegNetEntry(name, definition);
            Register(entry.Info, entry.Factory);
        }

        private static Entry RegNetEntry(string name, RegNetDefinition definition) =>
            new(new ModelInfo(name, "regnet", $"RegNet{(definition.SqueezeRatio is null ? "X" : "Y")} (group convolutions{(definition.SqueezeRatio is null ? string.Empty : ", squeeze-and-excitation")}; depth {definition.Depth}, w0 {definition.InitialWidth}, wa {definition.WidthSlope}, wm {definition.WidthMultiplier}, g {definition.GroupWidth})")
            {
                HeadPrefix = "fc.", FirstConvolution = "stem.0", Stages = definition.Stages,
            },
                (classes, channels, options) => new RegNet(definition.With(options) with { NumClasses = classes, InChannels = channels }));
    }
}
