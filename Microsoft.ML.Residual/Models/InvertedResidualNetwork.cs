using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// What the inverted residual networks (MobileNetV2, V3) share: <c>features</c>, a <c>Sequential</c> of a stem, inverted residual blocks and a last 1×1
    /// convolution, whose outputs before each stride-2 block and at the end are the stages; dropout and a linear head after
    /// the features; torchvision's initialisation.
    /// </summary>
    public abstract class InvertedResidualNetwork : ResidualModule, IClassifierModel, IStageEncoder
    {
        private readonly Sequential features;
        private readonly int[] stageEnds;

        /// <summary>Registers <paramref name="layers"/> (each with its stride) as <c>features.0</c>, <c>features.1</c>, ….</summary>
        private protected InvertedResidualNetwork(string name, IReadOnlyList<(nn.Module<Tensor, Tensor> Layer, int Stride)> layers, IReadOnlyList<StageInfo> stages, long featureDimension)
            : base(name)
        {
            features = nn.Sequential(layers.Select((layer, i) => (i.ToString(), layer.Layer)).ToArray());
            register_module("features", features);
            // A stage ends before each block that halves the resolution (smp's and timm's encoder outputs), and at the end.
            stageEnds = Enumerable.Range(1, layers.Count - 1).Where(i => layers[i].Stride == 2).Append(layers.Count).ToArray();
            StageChannels = stages.Select(s => s.Channels).ToList();
            StageReductions = stages.Select(s => s.Reduction).ToList();
            FeatureDimension = featureDimension;
        }

        /// <inheritdoc />
        public abstract string ClassifierPrefix { get; }

        /// <inheritdoc />
        public long FeatureDimension { get; }

        /// <summary>The outputs at reductions 2, 4, 8, 16 and 32 (the last after the final 1×1 convolution).</summary>
        public IReadOnlyList<int> StageChannels { get; }

        /// <inheritdoc />
        public IReadOnlyList<int> StageReductions { get; }

        /// <inheritdoc />
        public IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
            where T : class
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

        /// <inheritdoc />
        public Tensor ForwardFeatures(Tensor input) => Features(TensorOperations.Instance, input);

        /// <summary>Logits, or the features the head reads when built with <c>NumClasses = 0</c>.</summary>
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            T x = Features(ops, input);
            return Head == null ? x : ops.Call(Head, ops.Dropout(x, HeadDropRate, training));
        }

        /// <summary>The head (the last linear layer, registered by the network), or null without classes.</summary>
        private protected Linear? Head { get; init; }

        /// <summary>The dropout before the head.</summary>
        private protected double HeadDropRate { get; init; }

        /// <summary>The vector the head reads, or the network's output without a head.</summary>
        private protected abstract T Features<T>(IOperations<T> ops, T input)
            where T : class;

        /// <summary>The pooled output of <c>features</c>.</summary>
        private protected T Pooled<T>(IOperations<T> ops, T input)
            where T : class => ops.Flatten(ops.GlobalAveragePool(ops.Call(features, input)));

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
