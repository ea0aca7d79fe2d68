using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// torchvision's <c>features</c> → average pooling → <c>classifier</c> layout, which MobileNetV2/V3, EfficientNet and ConvNeXt
    /// share: <c>features</c> is a <c>Sequential</c> of layers, each with its stride; the stages are its outputs before each
    /// stride-2 layer after the first, and at the end; dropout and a linear head follow the pooled features.
    /// </summary>
    public abstract class SequentialFeaturesNetwork : ClassifierNetwork
    {
        private readonly Sequential features;
        private readonly int[] stageEnds;

        /// <summary>Registers <paramref name="layers"/> (each with its stride) as <c>features.0</c>, <c>features.1</c>, ….</summary>
        private protected SequentialFeaturesNetwork(string name, IReadOnlyList<(nn.Module<Tensor, Tensor> Layer, int Stride)> layers, IReadOnlyList<StageInfo> stages, long featureDimension)
            : base(name, stages, featureDimension)
        {
            features = nn.Sequential(layers.Select((layer, i) => (i.ToString(), layer.Layer)).ToArray());
            register_module("features", features);
            // A stage ends before each block that halves the resolution (smp's and timm's encoder outputs), and at the end.
            stageEnds = Enumerable.Range(1, layers.Count - 1).Where(i => layers[i].Stride == 2).Append(layers.Count).ToArray();
        }

        /// <inheritdoc />
        public override IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
        {
            if (ops is null) throw new ArgumentNullException(nameof(ops));
            var outputs = new List<T>(stageEnds.Length);
            T x = input;
            int index = 0;
            foreach (var child in features.children())
            {
                x = ops.Call(child, x);
                if (stageEnds.Contains(++index)) outputs.Add(x);
            }

            return outputs;
        }

        /// <summary>The output of <c>features</c> (the last stage's), called as one module.</summary>
        internal override T LastStageMap<T>(IOperations<T> ops, T input) => ops.Call(features, input);

        /// <summary>
        /// torchvision's initialisation: He normal (fan-out) convolutions with zero biases, unit BatchNorm, linear layers N(0, 0.01)
        /// (MobileNets) or, with <paramref name="uniformLinear"/>, uniform in ±1/√outputs (EfficientNets), with zero biases.
        /// </summary>
        private protected void InitialiseWeights(bool uniformLinear = false)
        {
            using var noGrad = torch.no_grad();
            foreach (var (_, module) in named_modules())
            {
                switch (module)
                {
                    case Conv2d conv:
                        nn.init.kaiming_normal_(conv.weight!, mode: nn.init.FanInOut.FanOut);
                        conv.bias?.zero_();
                        break;
                    case BatchNorm norm:
                        norm.weight!.Fill(1.0);
                        norm.bias!.zero_();
                        break;
                    case Linear linear when uniformLinear:
                        double range = 1 / Math.Sqrt(linear.weight!.shape[0]);
                        nn.init.uniform_(linear.weight!, -range, range);
                        linear.bias?.zero_();
                        break;
                    case Linear linear:
                        nn.init.normal_(linear.weight!, 0, 0.01);
                        linear.bias?.zero_();
                        break;
                }
            }
        }
    }
}
