using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// One residual block of the ResNet family. Basic (two 3×3) or bottleneck (1×1, 3×3, 1×1) branch,
    /// post-activation (v1) or pre-activation (v2), shortcut option A/B/C, residual scaling, plain or
    /// Highway combination and stochastic depth are all arguments of this one class.
    /// State-dict names follow torchvision: <c>conv1, bn1, conv2, bn2[, conv3, bn3], downsample.0, downsample.1</c>;
    /// Highway blocks add <c>gate</c>.
    /// </summary>
    public sealed class ResNetBlock : ResidualBlock
    {
        private readonly Conv2d[] convolutions;
        private readonly BatchNormalization2d[] norms;
        private readonly nn.Module<Tensor, Tensor>? shortcut;
        private readonly Conv2d? gate;
        private readonly bool preActivation;
        private readonly SkipConnection skip;
        private readonly double residualScale;
        private readonly double identityDecay;
        private readonly double dropPathProbability;
        private readonly bool shortcutTakesPreActivation;

        /// <summary>Creates a block.</summary>
        /// <param name="inChannels">Channels entering the block.</param>
        /// <param name="planes">Base width; the block outputs <c>planes × expansion</c> channels.</param>
        /// <param name="stride">Stride of the block (on the 3×3 convolution: "ResNet v1.5").</param>
        /// <param name="definition">The network's variant choices.</param>
        /// <param name="dropPathProbability">Stochastic-depth drop probability of this block's branch.</param>
        public ResNetBlock(int inChannels, int planes, int stride, ResNetDefinition definition, double dropPathProbability)
            : base(nameof(ResNetBlock))
        {
            if (definition is null) throw new ArgumentNullException(nameof(definition));
            preActivation = definition.PreActivation;
            skip = definition.Skip;
            residualScale = definition.ResidualScale;
            identityDecay = definition.IdentityDecay;
            this.dropPathProbability = dropPathProbability;
            OutChannels = planes * definition.Expansion;

            if (definition.Block == ResidualBlockKind.Basic)
            {
                convolutions = new[]
                {
                    nn.Conv2d(inChannels, planes, 3, stride: stride, padding: 1, bias: false),
                    nn.Conv2d(planes, planes, 3, padding: 1, bias: false),
                };
            }
            else
            {
                int width = (int)(planes * (definition.WidthPerGroup / 64.0)) * definition.Groups;
                convolutions = new[]
                {
                    nn.Conv2d(inChannels, width, 1, bias: false),
                    nn.Conv2d(width, width, 3, stride: stride, padding: 1, groups: definition.Groups, bias: false),
                    nn.Conv2d(width, OutChannels, 1, bias: false),
                };
            }

            // Post-activation normalises each convolution's output; pre-activation each convolution's input.
            norms = new BatchNormalization2d[convolutions.Length];
            for (int i = 0; i < convolutions.Length; i++)
            {
                long features = preActivation ? convolutions[i].in_channels : convolutions[i].out_channels;
                norms[i] = new BatchNormalization2d(features);
            }

            for (int i = 0; i < convolutions.Length; i++)
            {
                if (preActivation) register_module($"bn{i + 1}", norms[i]);
                register_module($"conv{i + 1}", convolutions[i]);
                if (!preActivation) register_module($"bn{i + 1}", norms[i]);
            }

            bool shapeChanges = stride != 1 || inChannels != OutChannels;
            if (skip != SkipConnection.None)
            {
                if (definition.Shortcut == ShortcutOption.A)
                {
                    if (shapeChanges) shortcut = new ZeroPadShortcut(inChannels, OutChannels, stride);
                }
                else if (shapeChanges || definition.Shortcut == ShortcutOption.C)
                {
                    // Pre-activation shortcuts project the already normalised input and carry no BatchNorm. Option D averages
                    // first (timm's keys: downsample.0 the pool, or an identity at stride 1; .1 the convolution; .2 BatchNorm).
                    var layers = new List<nn.Module<Tensor, Tensor>>();
                    if (definition.Shortcut == ShortcutOption.D)
                    {
                        layers.Add(stride == 1 ? nn.Identity() : nn.AvgPool2d(2, stride, ceil_mode: true, count_include_pad: false));
                        layers.Add(nn.Conv2d(inChannels, OutChannels, 1, bias: false));
                    }
                    else
                    {
                        layers.Add(nn.Conv2d(inChannels, OutChannels, 1, stride: stride, bias: false));
                    }

                    if (!preActivation) layers.Add(new BatchNormalization2d(OutChannels));
                    shortcut = nn.Sequential(layers);
                    shortcutTakesPreActivation = preActivation;
                }

                if (shortcut != null) register_module("downsample", shortcut);
            }

            if (skip == SkipConnection.Highway)
            {
                gate = nn.Conv2d(inChannels, OutChannels, 1, stride: stride, bias: true);
                register_module("gate", gate);
            }
        }

        /// <summary>Channels the block outputs.</summary>
        public int OutChannels { get; }

        /// <summary>True when the block adds its input back (any skip other than <see cref="SkipConnection.None"/>).</summary>
        public bool HasSkip => skip != SkipConnection.None;

        /// <summary>
        /// Sets what the network's weight initialisation leaves to the block: the Highway gate's bias, and with
        /// <see cref="ResNetDefinition.ZeroInitResidual"/> a branch whose output is exactly zero (the block starts as its shortcut).
        /// </summary>
        internal void InitialiseEnd(ResNetDefinition definition)
        {
            using var noGrad = torch.no_grad();
            gate?.bias!.Fill(definition.HighwayGateBias);
            if (!definition.ZeroInitResidual || !HasSkip) return;
            // Pre-activation branches end in a convolution: zero its weights (a zero BN γ would still pass ReLU(β) on).
            if (preActivation) convolutions[convolutions.Length - 1].weight!.zero_();
            else norms[norms.Length - 1].weight!.zero_();
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            var (branchInput, shortcutInput) = ops.Fork(input);
            T branch;
            T gateInput = branchInput;
            T identity = shortcutInput;
            if (preActivation)
            {
                T activated = ops.Relu(ops.Call(norms[0], branchInput));
                gateInput = activated;
                branch = ops.Call(convolutions[0], activated);
                for (int i = 1; i < convolutions.Length; i++)
                    branch = ops.Call(convolutions[i], ops.Relu(ops.Call(norms[i], branch)));
                if (shortcut != null)
                {
                    // The projection reads the pre-activation; a probe's separate shortcut view gets its own.
                    T projected = !shortcutTakesPreActivation ? shortcutInput
                        : ReferenceEquals(shortcutInput, branchInput) ? activated
                        : ops.Relu(ops.Call(norms[0], shortcutInput));
                    identity = ops.Call(shortcut, projected);
                }
            }
            else
            {
                branch = branchInput;
                for (int i = 0; i < convolutions.Length; i++)
                {
                    branch = ops.Call(norms[i], ops.Call(convolutions[i], branch));
                    if (i < convolutions.Length - 1) branch = ops.Relu(branch);
                }

                if (shortcut != null) identity = ops.Call(shortcut, shortcutInput);
            }

            branch = ops.DropPath(branch, dropPathProbability, training);
            T output;
            switch (skip)
            {
                case SkipConnection.None:
                    output = branch;
                    break;
                case SkipConnection.Highway:
                    T transform = ops.Sigmoid(ops.Call(gate!, gateInput));
                    output = ops.Add(ops.Mul(transform, branch), ops.Mul(ops.Affine(transform, -1.0, 1.0), identity));
                    break;
                default:
                    output = ops.Residual(branch, identity, residualScale, 1.0 - identityDecay);
                    break;
            }

            return preActivation ? output : ops.Relu(output);
        }
    }

    /// <summary>
    /// Shortcut option A: a parameter-free identity that subsamples with the block's stride and pads the
    /// extra output channels with zeros (split evenly before and after the input's channels).
    /// </summary>
    public sealed class ZeroPadShortcut : ResidualModule
    {
        private readonly long padBefore;
        private readonly long padAfter;
        private readonly int stride;

        /// <summary>Creates the shortcut.</summary>
        public ZeroPadShortcut(int inChannels, int outChannels, int stride) : base(nameof(ZeroPadShortcut))
        {
            if (outChannels < inChannels)
                throw new ArgumentException($"Option A shortcuts cannot reduce channels ({inChannels} → {outChannels}); use option B or C.");
            padBefore = (outChannels - inChannels) / 2;
            padAfter = outChannels - inChannels - padBefore;
            this.stride = stride;
        }

        /// <inheritdoc />
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            T x = input;
            if (stride != 1)
            {
                x = ops.Slice(x, 2, 0, ops.Shape(x)[2], stride);
                x = ops.Slice(x, 3, 0, ops.Shape(x)[3], stride);
            }

            if (padBefore == 0 && padAfter == 0) return x;
            return ops.Pad(x, new long[] { 0, 0, 0, 0, padBefore, padAfter }, PaddingModes.Constant);
        }
    }
}
