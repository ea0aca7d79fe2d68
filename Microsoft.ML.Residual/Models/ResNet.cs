using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// The ResNet family: torchvision's ResNet / Wide ResNet / ResNeXt, pre-activation ResNet v2, the CIFAR
    /// ResNets and plain networks of He et al., scaled residuals and Highway blocks — one class, driven by a
    /// <see cref="ResNetDefinition"/>. State-dict names match torchvision's (<c>conv1, bn1, layer1.0.conv1,
    /// layer2.0.downsample.0, fc</c>), so torchvision weights load unchanged. Pre-activation networks have no
    /// <c>bn1</c> after the stem convolution and a final <c>norm</c> (BN → ReLU) before pooling.
    /// </summary>
    public sealed class ResNet : ClassifierNetwork
    {
        private readonly nn.Module<Tensor, Tensor> conv1;
        private readonly BatchNormalization2d? bn1;
        private readonly MaxPool2d? maxpool;
        private readonly Sequential[] stages;
        private readonly BatchNormalization2d? finalNorm;

        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public ResNet(ResNetDefinition definition) : base(nameof(ResNet), definition)
        {
            Definition = definition;

            int stemWidth = definition.StemWidth;
            conv1 = definition.Stem switch
            {
                StemKind.ImageNet => nn.Conv2d(definition.InChannels, stemWidth, 7, stride: 2, padding: 3, bias: false),
                // timm's deep stem: conv1.0, conv1.1 (BN), conv1.3, conv1.4 (BN), conv1.6; the ReLUs at 2 and 5 hold no weights.
                StemKind.Deep => nn.Sequential(
                    nn.Conv2d(definition.InChannels, stemWidth / 2, 3, stride: 2, padding: 1, bias: false), new BatchNormalization2d(stemWidth / 2), nn.ReLU(),
                    nn.Conv2d(stemWidth / 2, stemWidth / 2, 3, padding: 1, bias: false), new BatchNormalization2d(stemWidth / 2), nn.ReLU(),
                    nn.Conv2d(stemWidth / 2, stemWidth, 3, padding: 1, bias: false)),
                _ => nn.Conv2d(definition.InChannels, stemWidth, 3, stride: 1, padding: 1, bias: false),
            };
            register_module("conv1", conv1);
            if (!definition.PreActivation)
            {
                bn1 = new BatchNormalization2d(stemWidth);
                register_module("bn1", bn1);
            }

            bool downsamplingStem = definition.Stem != StemKind.Cifar;
            if (downsamplingStem)
            {
                maxpool = nn.MaxPool2d(3, stride: 2, padding: 1);
                register_module("maxpool", maxpool);
            }

            int totalBlocks = definition.Layers.Sum();
            int blockIndex = 0;
            int channels = definition.StemWidth;
            stages = new Sequential[definition.Layers.Count];
            for (int stage = 0; stage < stages.Length; stage++)
            {
                var blocks = new List<nn.Module<Tensor, Tensor>>();
                for (int b = 0; b < definition.Layers[stage]; b++)
                {
                    int stride = stage > 0 && b == 0 ? 2 : 1;
                    double dropPath = totalBlocks > 1 ? definition.DropPathRate * blockIndex / (totalBlocks - 1) : definition.DropPathRate;
                    var block = new ResNetBlock(channels, definition.StageWidths[stage], stride, definition, dropPath);
                    channels = block.OutChannels;
                    blocks.Add(block);
                    blockIndex++;
                }

                stages[stage] = nn.Sequential(blocks);
                register_module($"layer{stage + 1}", stages[stage]);
            }

            if (definition.PreActivation)
            {
                finalNorm = new BatchNormalization2d(channels);
                register_module("norm", finalNorm);
            }

            RegisterHead("fc", definition.NumClasses, definition.DropRate);

            InitialiseWeights();
        }

        /// <summary>The definition this network was built from.</summary>
        public ResNetDefinition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "fc.";

        /// <summary>The residual blocks from the first to the last.</summary>
        public IReadOnlyList<ResNetBlock> Blocks => stages.SelectMany(s => s.children().Cast<ResNetBlock>()).ToList();

        /// <summary>
        /// The stem's output (after BN → ReLU; before max pooling) and each stage's output. For
        /// pre-activation networks the last stage's output passes the final BN → ReLU.
        /// </summary>
        public override IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
        {
            var outputs = new List<T>(stages.Length + 1);
            T x = ops.Call(conv1, input);
            if (bn1 != null) x = ops.Relu(ops.Call(bn1, x));
            outputs.Add(x);
            if (maxpool != null) x = ops.Call(maxpool, x);
            foreach (Sequential stage in stages)
            {
                x = ops.Call(stage, x);
                outputs.Add(x);
            }

            if (finalNorm != null) outputs[outputs.Count - 1] = ops.Relu(ops.Call(finalNorm, x));
            return outputs;
        }

        private void InitialiseWeights()
        {
            using var noGrad = torch.no_grad();
            foreach (var (_, module) in named_modules())
            {
                switch (module)
                {
                    case Conv2d conv:
                        nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                        break;
                    case BatchNorm norm:
                        norm.weight!.Fill(1.0);
                        norm.bias!.zero_();
                        break;
                }
            }

            foreach (ResNetBlock block in Blocks) block.InitialiseEnd(Definition);
        }
    }
}
