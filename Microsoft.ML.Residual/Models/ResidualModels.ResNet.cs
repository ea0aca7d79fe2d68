using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterResNets(List<Entry> registry)
        {
            void AddResNet(string name, string description, ResNetDefinition definition)
            {
                ResNetPresets[name] = definition;
                registry.Add(new Entry(new ModelInfo(name, "resnet", description)
                {
                    HeadPrefix = "fc.", OptionsType = typeof(ResNetOptions), FirstConvolution = definition.FirstConvolution, Stages = definition.Stages,
                },
                    (classes, channels, options) => new ResNet(definition.With(options) with { NumClasses = classes, InChannels = channels })));
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

            // ResNet-D (He et al. 2019, "Bag of Tricks"; timm's resnet*d): deep stem 32-32-64, average-pool projections.
            foreach (var (depth, block, layers) in imageNetDepths)
                AddResNet($"resnet{depth}d", $"ResNet-{depth}-D (timm: deep stem, average-pool shortcut)", block with { Layers = layers, Stem = StemKind.Deep, Shortcut = ShortcutOption.D });

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

            // Wide ResNets of Zagoruyko and Komodakis 2016 (WRN-d-k, CIFAR): pre-activation basic blocks, (d-4)/6 per stage,
            // widths 16k/32k/64k after a 16-channel stem, 1×1 projection shortcuts where the width changes; no dropout.
            foreach (var (depth, k) in new[] { (16, 4), (16, 8), (28, 10), (40, 4) })
            {
                int n = (depth - 4) / 6;
                AddResNet($"wide_resnet{depth}_{k}", $"Wide ResNet-{depth}-{k} (CIFAR, pre-activation)", cifar with
                {
                    Layers = new[] { n, n, n }, StageWidths = new[] { 16 * k, 32 * k, 64 * k }, PreActivation = true, Shortcut = ShortcutOption.B,
                });
            }
        }
    }
}
