using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>One entry of the model registry.</summary>
    /// <param name="Name">The name <see cref="ResidualModels.Create"/> accepts.</param>
    /// <param name="Family">The family, e.g. "resnet".</param>
    /// <param name="Description">One line for tables and error messages.</param>
    public sealed record ModelInfo(string Name, string Family, string Description);

    /// <summary>
    /// Creates every network of the library by name (torchvision's names where torchvision has the model).
    /// </summary>
    /// <example>
    /// <code>
    /// var model = ResidualModels.Create("resnet50", numClasses: 10);
    /// var cifar = ResidualModels.Create("resnet20", numClasses: 10, options: new ResNetOptions { ZeroInitResidual = true });
    /// </code>
    /// </example>
    public static class ResidualModels
    {
        private sealed record Entry(ModelInfo Info, Func<int, int, ModelOptions?, nn.Module<Tensor, Tensor>> Factory);

        // Declared before the registry: BuildRegistry fills it (static initialisers run in textual order).
        private static readonly Dictionary<string, ResNetDefinition> ResNetPresets = new(StringComparer.OrdinalIgnoreCase);

        private static readonly List<Entry> Entries = BuildRegistry();

        private static readonly Dictionary<string, Entry> Registry =
            Entries.ToDictionary(e => e.Info.Name, StringComparer.OrdinalIgnoreCase);

        /// <summary>Every name <see cref="Create"/> accepts, in registry order.</summary>
        public static IReadOnlyList<string> Names { get; } = Entries.Select(e => e.Info.Name).ToList();

        /// <summary>Name, family and description of every registered model.</summary>
        public static IReadOnlyList<ModelInfo> All { get; } = Entries.Select(e => e.Info).ToList();

        /// <summary>Creates the named network with freshly initialised weights.</summary>
        /// <param name="name">One of <see cref="Names"/> (case-insensitive).</param>
        /// <param name="numClasses">Classifier outputs.</param>
        /// <param name="inChannels">Input channels (3 for RGB, 1 for grayscale).</param>
        /// <param name="options">Variant options; null keeps the name's defaults. For the ResNet family pass <see cref="ResNetOptions"/>.</param>
        /// <exception cref="ArgumentException">Unknown name, or options that do not fit the family.</exception>
        public static nn.Module<Tensor, Tensor> Create(string name, int numClasses = 1000, int inChannels = 3, ModelOptions? options = null)
        {
            if (name is null) throw new ArgumentNullException(nameof(name));
            if (!Registry.TryGetValue(name, out Entry? entry))
            {
                string stem = name.TrimEnd('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '_', 'x', 'd');
                string near = stem.Length < 3 ? string.Empty : string.Join(", ", Names.Where(n => n.StartsWith(stem, StringComparison.OrdinalIgnoreCase)).Take(12));
                throw new ArgumentException(
                    $"Unknown model name '{name}'. " + (near.Length > 0 ? $"Similar names: {near}. " : string.Empty) +
                    "ResidualModels.Names lists every name.", nameof(name));
            }

            return entry.Factory(numClasses, inChannels, options);
        }

        /// <summary>The definition a ResNet-family name stands for (before options), or null for other families.</summary>
        public static ResNetDefinition? GetResNetDefinition(string name) =>
            ResNetPresets.TryGetValue(name, out ResNetDefinition? definition) ? definition : null;

        private static List<Entry> BuildRegistry()
        {
            var registry = new List<Entry>();

            void AddResNet(string name, string description, ResNetDefinition definition)
            {
                ResNetPresets[name] = definition;
                registry.Add(new Entry(new ModelInfo(name, "resnet", description), (classes, channels, options) =>
                {
                    if (options != null && options.GetType() != typeof(ResNetOptions) && options.GetType() != typeof(ModelOptions))
                        throw new ArgumentException($"'{name}' is a ResNet-family model: pass ResNetOptions, not {options.GetType().Name}.", nameof(options));
                    return new ResNet(definition.With(options) with { NumClasses = classes, InChannels = channels });
                }));
            }

            var basic = new ResNetDefinition { Block = ResidualBlockKind.Basic };
            var bottleneck = new ResNetDefinition { Block = ResidualBlockKind.Bottleneck };
            var imageNetDepths = new (int Depth, ResNetDefinition Block, int[] Layers)[]
            {
                (18, basic, new[] { 2, 2, 2, 2 }),
                (34, basic, new[] { 3, 4, 6, 3 }),
                (50, bottleneck, new[] { 3, 4, 6, 3 }),
                (101, bottleneck, new[] { 3, 4, 23, 3 }),
                (152, bottleneck, new[] { 3, 8, 36, 3 }),
            };
            foreach (var (depth, block, layers) in imageNetDepths)
                AddResNet($"resnet{depth}", $"ResNet-{depth} (torchvision, v1.5)", block with { Layers = layers });

            AddResNet("wide_resnet50_2", "Wide ResNet-50-2 (bottleneck width ×2)", bottleneck with { Layers = new[] { 3, 4, 6, 3 }, WidthPerGroup = 128 });
            AddResNet("wide_resnet101_2", "Wide ResNet-101-2 (bottleneck width ×2)", bottleneck with { Layers = new[] { 3, 4, 23, 3 }, WidthPerGroup = 128 });
            AddResNet("resnext50_32x4d", "ResNeXt-50 32×4d", bottleneck with { Layers = new[] { 3, 4, 6, 3 }, Groups = 32, WidthPerGroup = 4 });
            AddResNet("resnext101_32x8d", "ResNeXt-101 32×8d", bottleneck with { Layers = new[] { 3, 4, 23, 3 }, Groups = 32, WidthPerGroup = 8 });
            AddResNet("resnext101_64x4d", "ResNeXt-101 64×4d", bottleneck with { Layers = new[] { 3, 4, 23, 3 }, Groups = 64, WidthPerGroup = 4 });

            foreach (var (depth, block, layers) in imageNetDepths)
                AddResNet($"preact_resnet{depth}", $"Pre-activation ResNet-{depth} (v2)", block with { Layers = layers, PreActivation = true });

            // CIFAR networks of He et al. 2015 (section 4.2): 6n+2 layers, widths 16/32/64, option A shortcuts.
            var cifar = basic with { Stem = StemKind.Cifar, StemWidth = 16, StageWidths = new[] { 16, 32, 64 }, Shortcut = ShortcutOption.A };
            foreach (int depth in new[] { 20, 32, 44, 56, 110, 1202 })
            {
                int n = (depth - 2) / 6;
                AddResNet($"resnet{depth}", $"CIFAR ResNet-{depth} (6n+2, n={n}, option A)", cifar with { Layers = new[] { n, n, n } });
            }

            foreach (int depth in new[] { 20, 32, 44, 56, 110 })
            {
                int n = (depth - 2) / 6;
                AddResNet($"plain{depth}", $"CIFAR plain network, {depth} layers, no shortcuts", cifar with { Layers = new[] { n, n, n }, Skip = SkipConnection.None });
            }

            // Pre-activation CIFAR networks of He et al. 2016: ResNet-110 (basic) and ResNet-164 (bottleneck, 9n+2).
            AddResNet("preact_resnet110", "Pre-activation CIFAR ResNet-110", cifar with { Layers = new[] { 18, 18, 18 }, PreActivation = true, Shortcut = ShortcutOption.B });
            AddResNet("preact_resnet164", "Pre-activation CIFAR ResNet-164 (bottleneck)", cifar with
            {
                Block = ResidualBlockKind.Bottleneck, Layers = new[] { 18, 18, 18 }, PreActivation = true, Shortcut = ShortcutOption.B,
            });
            return registry;
        }
    }
}
