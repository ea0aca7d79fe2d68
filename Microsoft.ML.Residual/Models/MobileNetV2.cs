using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// MobileNetV2 (Sandler et al. 2018): a stack of inverted residual blocks — a 1×1 expansion, a depthwise 3×3 convolution and
    /// a linear 1×1 projection, with the shortcut between the narrow ends. torchvision's structure and state-dict names
    /// (<c>features.0.0</c>, <c>features.1.conv.0.0</c>, <c>features.2.conv.0.0</c> … <c>features.18.1</c>,
    /// <c>classifier.1</c>), so its weights load unchanged.
    /// </summary>
    public sealed class MobileNetV2 : SequentialFeaturesNetwork
    {
        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public MobileNetV2(MobileNetV2Definition definition)
            : base(nameof(MobileNetV2), Layers(definition), definition.Stages, definition.LastChannels)
        {
            Definition = definition;
            HeadDropRate = definition.DropRate;
            if (definition.NumClasses > 0)
            {
                Head = nn.Linear(definition.LastChannels, definition.NumClasses);
                register_module("classifier", nn.Sequential(("0", nn.Dropout(HeadDropRate)), ("1", Head)));
            }

            InitialiseWeights();
        }

        /// <summary>The definition this network was built from.</summary>
        public MobileNetV2Definition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "classifier.1.";

        // The stem, the blocks of the paper's table and the last convolution, each with its stride.
        private static List<(nn.Module<Tensor, Tensor>, int)> Layers(MobileNetV2Definition definition)
        {
            Prepared(definition);
            int channels = definition.StemChannels;
            var layers = new List<(nn.Module<Tensor, Tensor>, int)> { (new ConvNormActivation(definition.InChannels, channels, 3, 2, Activation.Relu6), 2) };
            foreach (var (expansion, width, repeats, stride) in MobileNetV2Definition.Settings)
            {
                int output = definition.Channels(width);
                for (int i = 0; i < repeats; i++)
                {
                    int blockStride = i == 0 ? stride : 1;
                    layers.Add((Block(channels, output, blockStride, expansion), blockStride));
                    channels = output;
                }
            }

            layers.Add((new ConvNormActivation(channels, definition.LastChannels, 1, 1, Activation.Relu6), 1));
            return layers;
        }

        // An optional 1×1 expansion to t·C channels, the depthwise 3×3 convolution, both with BatchNorm and ReLU6, then the
        // linear 1×1 projection and its BatchNorm (conv.0 … conv.3; without expansion conv.0 … conv.2).
        private static InvertedResidual Block(int inChannels, int outChannels, int stride, int expansion)
        {
            int hidden = inChannels * expansion;
            var layers = new List<nn.Module<Tensor, Tensor>>();
            if (expansion != 1) layers.Add(new ConvNormActivation(inChannels, hidden, 1, 1, Activation.Relu6));
            layers.Add(new ConvNormActivation(hidden, hidden, 3, stride, Activation.Relu6, groups: hidden));
            layers.Add(nn.Conv2d(hidden, outChannels, 1, bias: false));
            layers.Add(new BatchNormalization2d(outChannels));
            return new InvertedResidual("conv", layers, residual: stride == 1 && inChannels == outChannels);
        }
    }
}
