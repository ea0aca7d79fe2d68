using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterDenseNets(List<Entry> registry)
        {
            void AddDenseNet(string name, string description, DenseNetDefinition definition)
            {
                registry.Add(new Entry(new ModelInfo(name, "densenet", description)
                {
                    HeadPrefix = "classifier.", OptionsType = typeof(DenseNetOptions), FirstConvolution = "features.conv0", Stages = definition.Stages,
                },
                    (classes, channels, options) => new DenseNet(definition.With(options) with { NumClasses = classes, InChannels = channels })));
            }

            // torchvision's ImageNet DenseNet-BC models (θ = 0.5, bottleneck 4k).
            AddDenseNet("densenet121", "DenseNet-121 (k=32, blocks 6-12-24-16)", new DenseNetDefinition { GrowthRate = 32, BlockConfig = new[] { 6, 12, 24, 16 }, InitFeatures = 64 });
            AddDenseNet("densenet161", "DenseNet-161 (k=48, blocks 6-12-36-24)", new DenseNetDefinition { GrowthRate = 48, BlockConfig = new[] { 6, 12, 36, 24 }, InitFeatures = 96 });
            AddDenseNet("densenet169", "DenseNet-169 (k=32, blocks 6-12-32-32)", new DenseNetDefinition { GrowthRate = 32, BlockConfig = new[] { 6, 12, 32, 32 }, InitFeatures = 64 });
            AddDenseNet("densenet201", "DenseNet-201 (k=32, blocks 6-12-48-32)", new DenseNetDefinition { GrowthRate = 32, BlockConfig = new[] { 6, 12, 48, 32 }, InitFeatures = 64 });

            // CIFAR DenseNet-BC of Huang et al.: three blocks of (L−4)/6 bottleneck layers, 2k stem channels, 3×3 stem.
            foreach (var (depth, growth) in new[] { (100, 12), (190, 40) })
            {
                int layers = (depth - 4) / 6;
                AddDenseNet($"densenet_bc_{depth}_{growth}", $"CIFAR DenseNet-BC (L={depth}, k={growth})", new DenseNetDefinition
                {
                    GrowthRate = growth, BlockConfig = new[] { layers, layers, layers }, InitFeatures = 2 * growth, Stem = StemKind.Cifar,
                });
            }
        }
    }
}
