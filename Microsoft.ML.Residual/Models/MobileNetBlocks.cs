using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// The inverted residual block of MobileNetV2 and V3: its layers (expansion, depthwise convolution, squeeze-and-excitation,
    /// projection) in one <c>Sequential</c> under torchvision's name (<c>conv</c> in V2, <c>block</c> in V3), and the input
    /// added when the block keeps the resolution and the width.
    /// </summary>
    public sealed class InvertedResidual : ResidualBlock
    {
        private readonly Sequential layers;
        private readonly bool residual;
        private readonly double dropPath;

        /// <summary>
        /// Creates a block of <paramref name="layers"/>, registered as <paramref name="container"/>.0, .1, …; with a shortcut,
        /// the branch is dropped per sample with probability <paramref name="dropPath"/> in training (stochastic depth).
        /// </summary>
        public InvertedResidual(string container, IEnumerable<nn.Module<Tensor, Tensor>> layers, bool residual, double dropPath = 0)
            : base(nameof(InvertedResidual))
        {
            this.layers = nn.Sequential(layers.Select((layer, i) => (i.ToString(), layer)).ToArray());
            register_module(container, this.layers);
            this.residual = residual;
            this.dropPath = dropPath;
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            if (!residual) return ops.Call(layers, input);
            var (branch, shortcut) = ops.Fork(input);
            return ops.Residual(ops.DropPath(ops.Call(layers, branch), dropPath, training), shortcut);
        }
    }

    /// <summary>The activation after a <see cref="ConvNormActivation"/>.</summary>
    public enum Activation
    {
        /// <summary>None: convolution and BatchNorm only.</summary>
        None,

        /// <summary>max(x, 0).</summary>
        Relu,

        /// <summary>min(max(x, 0), 6) (MobileNetV2).</summary>
        Relu6,

        /// <summary>x · min(max(x + 3, 0), 6) / 6 (MobileNetV3).</summary>
        HardSwish,

        /// <summary>x · sigmoid(x) (EfficientNet).</summary>
        Silu,
    }

    /// <summary>
    /// A convolution without bias (<c>0</c>) with "same" padding, BatchNorm (<c>1</c>) and an activation that holds no weights:
    /// torchvision's <c>Conv2dNormActivation</c>, with its state-dict names.
    /// </summary>
    public sealed class ConvNormActivation : ResidualModule
    {
        private readonly Conv2d convolution;
        private readonly BatchNormalization2d norm;
        private readonly Activation activation;

        /// <summary>
        /// Creates the unit; <paramref name="groups"/> = the channels makes the convolution depthwise; <paramref name="eps"/> and
        /// <paramref name="momentum"/> are BatchNorm's.
        /// </summary>
        public ConvNormActivation(int inChannels, int outChannels, int kernel, int stride, Activation activation, int groups = 1, double eps = 1e-5, double momentum = 0.1)
            : base(nameof(ConvNormActivation))
        {
            convolution = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups, bias: false);
            norm = new BatchNormalization2d(outChannels, eps, momentum);
            this.activation = activation;
            register_module("0", convolution);
            register_module("1", norm);
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input) => Activations.Apply(ops, ops.Call(norm, ops.Call(convolution, input)), activation);
    }

    /// <summary>The activations of the mobile networks, written with <see cref="IOperations{T}"/>.</summary>
    public static class Activations
    {
        /// <summary><paramref name="x"/> through <paramref name="activation"/> (may overwrite <paramref name="x"/>).</summary>
        public static T Apply<T>(IOperations<T> ops, T x, Activation activation)
            where T : class
        {
            if (ops is null) throw new ArgumentNullException(nameof(ops));
            return activation switch
            {
                Activation.Relu => ops.Relu(x),
                Activation.Relu6 => ops.Clip(x, 0, 6),
                Activation.HardSwish => HardSwish(ops, x),
                Activation.Silu => ops.Mul(x, ops.Sigmoid(x)),
                _ => x,
            };
        }

        /// <summary>min(max(x / 6 + 1/2, 0), 1).</summary>
        public static T HardSigmoid<T>(IOperations<T> ops, T x)
            where T : class => ops.Clip(ops.Affine(x, 1.0 / 6, 0.5), 0, 1);

        /// <summary>x · <see cref="HardSigmoid{T}"/>(x).</summary>
        public static T HardSwish<T>(IOperations<T> ops, T x)
            where T : class => ops.Mul(x, HardSigmoid(ops, x));
    }

    /// <summary>
    /// Squeeze-and-excitation (Hu et al. 2018): each channel scaled by a gate computed from the channel means,
    /// <c>gate(fc2(activation(fc1(mean))))</c>, with 1×1 convolutions <c>fc1</c> and <c>fc2</c> (torchvision's names); MobileNetV3's
    /// has ReLU and a hard-sigmoid gate, EfficientNet's SiLU and a sigmoid gate.
    /// </summary>
    public sealed class SqueezeExcitation : ResidualModule
    {
        private readonly Conv2d fc1;
        private readonly Conv2d fc2;
        private readonly Activation activation;
        private readonly bool hardGate;

        /// <summary>Creates the gate of <paramref name="channels"/> channels through <paramref name="squeezeChannels"/>.</summary>
        public SqueezeExcitation(int channels, int squeezeChannels, Activation activation = Activation.Relu, bool hardGate = true) : base(nameof(SqueezeExcitation))
        {
            fc1 = nn.Conv2d(channels, squeezeChannels, 1);
            fc2 = nn.Conv2d(squeezeChannels, channels, 1);
            register_module("fc1", fc1);
            register_module("fc2", fc2);
            this.activation = activation;
            this.hardGate = hardGate;
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            T scale = ops.Call(fc2, Activations.Apply(ops, ops.Call(fc1, ops.GlobalAveragePool(input)), activation));
            return ops.Mul(input, hardGate ? Activations.HardSigmoid(ops, scale) : ops.Sigmoid(scale));
        }
    }
}
