using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.ML.Residual.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// DenseNet (Huang et al. 2017): every layer of a dense block reads the concatenation of all earlier
    /// feature maps of the block. torchvision's structure and state-dict names (<c>features.conv0</c>,
    /// <c>features.denseblock1.denselayer1.norm1|conv1|norm2|conv2</c>, <c>features.transition1.norm|conv</c>,
    /// <c>features.norm5</c>, <c>classifier</c>); checkpoints with the old names (<c>norm.1</c>, <c>conv.2</c>, …)
    /// load too. Growth rate, block configuration, bottleneck width (B), compression (C), dropout, stem and a
    /// memory-efficient mode are arguments of a <see cref="DenseNetDefinition"/>.
    /// </summary>
    public sealed class DenseNet : ClassifierNetwork, IStateDictKeyUpgrade
    {
        private readonly Conv2d conv0;
        private readonly BatchNormalization2d? norm0;
        private readonly MaxPool2d? pool0;
        private readonly DenseBlock[] blocks;
        private readonly DenseTransition[] transitions;
        private readonly BatchNormalization2d norm5;

        /// <summary>Builds the network described by <paramref name="definition"/>.</summary>
        public DenseNet(DenseNetDefinition definition) : base(nameof(DenseNet), definition)
        {
            Definition = definition;

            var features = new List<(string, nn.Module<Tensor, Tensor>)>();
            bool imageNet = definition.Stem == StemKind.ImageNet;
            conv0 = imageNet
                ? nn.Conv2d(definition.InChannels, definition.InitFeatures, 7, stride: 2, padding: 3, bias: false)
                : nn.Conv2d(definition.InChannels, definition.InitFeatures, 3, stride: 1, padding: 1, bias: false);
            features.Add(("conv0", conv0));
            if (imageNet)
            {
                norm0 = new BatchNormalization2d(definition.InitFeatures);
                pool0 = nn.MaxPool2d(3, stride: 2, padding: 1);
                features.Add(("norm0", norm0));
                features.Add(("pool0", pool0));
            }

            int channels = definition.InitFeatures;
            blocks = new DenseBlock[definition.BlockConfig.Count];
            transitions = new DenseTransition[definition.BlockConfig.Count - 1];
            for (int i = 0; i < blocks.Length; i++)
            {
                blocks[i] = new DenseBlock(definition.BlockConfig[i], channels, definition);
                features.Add(($"denseblock{i + 1}", blocks[i]));
                channels += definition.BlockConfig[i] * definition.GrowthRate;
                if (i < transitions.Length)
                {
                    int kept = definition.TransitionOutput(channels);
                    transitions[i] = new DenseTransition(channels, kept);
                    features.Add(($"transition{i + 1}", transitions[i]));
                    channels = kept;
                }
            }

            norm5 = new BatchNormalization2d(channels);
            features.Add(("norm5", norm5));
            register_module("features", nn.Sequential(features.ToArray()));
            RegisterHead("classifier", definition.NumClasses, dropRate: 0); // DenseNet's DropRate is the dense layers'

            InitialiseWeights();
        }

        /// <summary>The definition this network was built from.</summary>
        public DenseNetDefinition Definition { get; }

        /// <inheritdoc />
        public override string ClassifierPrefix => "classifier.";

        /// <summary>
        /// The stem's output (after BN → ReLU, before pooling; the convolution alone for the CIFAR stem) and each
        /// dense block's output: normalised and activated by its transition's BN → ReLU (by <c>norm5</c> → ReLU for
        /// the last block), before the transition's convolution and pooling.
        /// </summary>
        public override IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
        {
            var outputs = new List<T>(blocks.Length + 1);
            T x = ops.Call(conv0, input);
            if (norm0 != null) x = ops.Relu(ops.Call(norm0, x));
            outputs.Add(x);
            if (pool0 != null) x = ops.Call(pool0, x);
            for (int i = 0; i < blocks.Length; i++)
            {
                x = ops.Call(blocks[i], x);
                if (i < transitions.Length)
                {
                    T activated = transitions[i].Activate(ops, x);
                    outputs.Add(activated);
                    x = transitions[i].Reduce(ops, activated);
                }
                else
                {
                    outputs.Add(ops.Relu(ops.Call(norm5, x)));
                }
            }

            return outputs;
        }

        /// <summary>
        /// Maps torchvision's old DenseNet names (<c>denselayer1.norm.1.weight</c>, <c>conv.2</c>, …, used by
        /// checkpoints from before PyTorch 0.4) to the current ones (<c>denselayer1.norm1.weight</c>).
        /// </summary>
        public string UpgradeKey(string key) => LegacyLayerKey.Replace(key, "$1$2.");

        private static readonly Regex LegacyLayerKey =
            new(@"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.(?=(?:weight|bias|running_mean|running_var|num_batches_tracked)$)", RegexOptions.Compiled);

        private void InitialiseWeights()
        {
            using var noGrad = torch.no_grad();
            foreach (var (_, module) in named_modules())
            {
                switch (module)
                {
                    case Conv2d conv:
                        nn.init.kaiming_normal_(conv.weight!);
                        break;
                    case BatchNorm norm:
                        norm.weight!.Fill(1.0);
                        norm.bias!.zero_();
                        break;
                    case Linear linear:
                        linear.bias?.zero_();
                        break;
                }
            }
        }
    }

    /// <summary>
    /// One dense block: <c>denselayer1 … denselayerN</c>; layer i reads the concatenation of the block input
    /// and the outputs of layers 1 … i−1, and the block returns the concatenation of all of them.
    /// </summary>
    public sealed class DenseBlock : ResidualBlock
    {
        private readonly DenseLayer[] layers;

        /// <summary>Creates a block of <paramref name="layerCount"/> layers reading <paramref name="inChannels"/> channels.</summary>
        public DenseBlock(int layerCount, int inChannels, DenseNetDefinition definition) : base(nameof(DenseBlock))
        {
            layers = new DenseLayer[layerCount];
            for (int i = 0; i < layerCount; i++)
            {
                layers[i] = new DenseLayer(inChannels + i * definition.GrowthRate, definition);
                register_module($"denselayer{i + 1}", layers[i]);
            }
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            var features = new List<T>(layers.Length + 1) { input };
            foreach (DenseLayer layer in layers) features.Add(layer.Forward(ops, features));
            return ops.Concat(features, 1);
        }
    }

    /// <summary>
    /// One dense layer: BN → ReLU → 1×1 conv to <c>BottleneckSize·k</c> (<c>norm1</c>, <c>conv1</c>), then
    /// BN → ReLU → 3×3 conv to k (<c>norm2</c>, <c>conv2</c>), then dropout. Without a bottleneck
    /// (<c>BottleneckSize = 0</c>) only <c>norm1</c> and a 3×3 <c>conv1</c>.
    /// </summary>
    public sealed class DenseLayer : ResidualModule
    {
        private readonly BatchNormalization2d norm1;
        private readonly Conv2d conv1;
        private readonly BatchNormalization2d? norm2;
        private readonly Conv2d? conv2;
        private readonly double dropRate;
        private readonly bool memoryEfficient;

        /// <summary>Creates a layer reading <paramref name="inChannels"/> channels.</summary>
        public DenseLayer(int inChannels, DenseNetDefinition definition) : base(nameof(DenseLayer))
        {
            dropRate = definition.DropRate;
            memoryEfficient = definition.MemoryEfficient;
            int growth = definition.GrowthRate;
            norm1 = new BatchNormalization2d(inChannels);
            register_module("norm1", norm1);
            if (definition.BottleneckSize > 0)
            {
                int width = definition.BottleneckSize * growth;
                conv1 = nn.Conv2d(inChannels, width, 1, bias: false);
                norm2 = new BatchNormalization2d(width);
                conv2 = nn.Conv2d(width, growth, 3, padding: 1, bias: false);
                register_module("conv1", conv1);
                register_module("norm2", norm2);
                register_module("conv2", conv2);
            }
            else
            {
                conv1 = nn.Conv2d(inChannels, growth, 3, padding: 1, bias: false);
                register_module("conv1", conv1);
            }
        }

        /// <summary>
        /// The layer applied to the concatenation of <paramref name="features"/> (along channels). On tensors in training with
        /// <see cref="DenseNetDefinition.MemoryEfficient"/>, the first unit is recomputed in the backward pass instead of kept.
        /// </summary>
        public T Forward<T>(IOperations<T> ops, IReadOnlyList<T> features)
            where T : class
        {
            if (ops is null) throw new ArgumentNullException(nameof(ops));
            bool recompute = memoryEfficient && training && torch.is_grad_enabled() && features is IReadOnlyList<Tensor> tensors && tensors.Any(f => f.requires_grad);
            T first = recompute
                ? (T)(object)RecomputedFirstUnit.apply(new object[] { this }.Concat(features).ToArray())
                : ops.Call(conv1, ops.Relu(ops.Call(norm1, ops.Concat(features, 1))));
            T output = conv2 == null ? first : ops.Call(conv2, ops.Relu(ops.Call(norm2!, first)));
            return ops.Dropout(output, dropRate, training);
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input) => Forward(ops, new[] { input });

        // BN → ReLU → conv1 on the concatenated input. When recomputing in backward, BatchNorm uses the batch's
        // statistics without touching the running averages (the forward pass already updated them once).
        private Tensor FirstUnit(Tensor concatenated, bool updateStatistics)
        {
            Tensor normalised = updateStatistics || !training
                ? norm1.call(concatenated)
                : nn.functional.batch_norm(Autocast.ToFloat32(concatenated), null, null, norm1.weight, norm1.bias, training: true, eps: norm1.eps);
            return conv1.Convolve(nn.functional.relu(normalised, inplace: true));
        }

        /// <summary>
        /// Activation checkpointing of the first unit: the forward pass keeps only the (shared) input features;
        /// backward recomputes concatenation, BN, ReLU and conv1 with gradients enabled and back-propagates
        /// through them, which accumulates the parameters' gradients and yields the inputs' gradients.
        /// </summary>
        internal sealed class RecomputedFirstUnit : autograd.SingleTensorFunction<RecomputedFirstUnit>
        {
            public override string Name => nameof(RecomputedFirstUnit);

            public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
            {
                var layer = (DenseLayer)vars[0];
                var inputs = vars.Skip(1).Cast<Tensor>().ToList();
                ctx.save_data("layer", layer);
                // The backward pass recomputes in the forward's precision: it runs after the forward's autocast scope has
                // closed, and on CUDA on another thread.
                ctx.save_data("computeType", Autocast.ComputeType);
                ctx.save_for_backward(inputs);
                return layer.FirstUnit(torch.cat(inputs, 1), updateStatistics: true);
            }

            /// <summary>Backward passes run so far (a test hook that proves the recompute path was taken).</summary>
            internal static long BackwardCount;

            public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
            {
                System.Threading.Interlocked.Increment(ref BackwardCount);
                var layer = (DenseLayer)ctx.get_data("layer");
                List<Tensor> saved = ctx.get_saved_variables();
                var gradients = new List<Tensor> { null! };
                using (var scope = torch.NewDisposeScope())
                using (torch.enable_grad())
                using (Autocast.Enter((ScalarType?)ctx.get_data("computeType")))
                {
                    var detached = saved.Select(t => t.detach().requires_grad_(true)).ToList();
                    Tensor recomputed = layer.FirstUnit(torch.cat(detached, 1), updateStatistics: false);
                    autograd.backward(recomputed, gradOutput);
                    foreach (Tensor input in detached) gradients.Add(input.grad!.MoveToOuterDisposeScope());
                }

                return gradients;
            }
        }
    }

    /// <summary>A transition between dense blocks: <c>norm</c> → ReLU → 1×1 <c>conv</c> (compression) → 2×2 average pooling.</summary>
    public sealed class DenseTransition : ResidualModule
    {
        private readonly BatchNormalization2d norm;
        private readonly Conv2d conv;
        private readonly AvgPool2d pool;

        /// <summary>Creates a transition from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
        public DenseTransition(int inChannels, int outChannels) : base(nameof(DenseTransition))
        {
            norm = new BatchNormalization2d(inChannels);
            conv = nn.Conv2d(inChannels, outChannels, 1, bias: false);
            pool = nn.AvgPool2d(2, stride: 2);
            register_module("norm", norm);
            register_module("conv", conv);
            register_module("pool", pool);
        }

        // The DenseNet's stages end between the two halves: the activated block output is a stage output.
        internal T Activate<T>(IOperations<T> ops, T input)
            where T : class => ops.Relu(ops.Call(norm, input));

        internal T Reduce<T>(IOperations<T> ops, T activated)
            where T : class => ops.Call(pool, ops.Call(conv, activated));

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input) => Reduce(ops, Activate(ops, input));
    }
}
