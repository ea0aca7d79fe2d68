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
    public sealed class ResNetBlock : ExplicitModule, IGraphExportable
    {
        private readonly Conv2d[] convolutions;
        private readonly BatchNormalization2d[] norms;
        private readonly nn.Module<Tensor, Tensor>? shortcut;
        private readonly Conv2d? projection;
        private readonly BatchNormalization2d? projectionNorm;
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
                    projection = nn.Conv2d(inChannels, OutChannels, 1, stride: stride, bias: false);
                    // Pre-activation shortcuts project the already normalised input and carry no BatchNorm.
                    if (!preActivation) projectionNorm = new BatchNormalization2d(OutChannels);
                    shortcut = projectionNorm is null
                        ? nn.Sequential(projection)
                        : nn.Sequential(projection, projectionNorm);
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

        internal Conv2d LastConvolution => convolutions[convolutions.Length - 1];

        // For the diagnostics' Lipschitz bounds: the branch's layers and the shortcut's, and how they are combined.
        internal IReadOnlyList<Conv2d> Convolutions => convolutions;

        internal IReadOnlyList<BatchNormalization2d> Norms => norms;

        internal bool IsPreActivation => preActivation;

        internal SkipConnection Skip => skip;

        internal double ResidualScale => residualScale;

        internal double IdentityDecay => identityDecay;

        internal Conv2d? Projection => projection;

        internal BatchNormalization2d? ProjectionNorm => projectionNorm;

        internal bool ShortcutTakesPreActivation => shortcutTakesPreActivation;

        internal BatchNormalization2d LastNorm => norms[norms.Length - 1];

        internal Conv2d? Gate => gate;

        /// <summary>Makes the residual branch output exactly zero at initialisation (the block starts as its shortcut).</summary>
        internal void ZeroInitialiseBranch()
        {
            using var noGrad = torch.no_grad();
            if (preActivation)
            {
                // The branch ends in a convolution: zero its weights (a zero BN γ would still pass ReLU(β) on).
                LastConvolution.weight!.zero_();
            }
            else
            {
                LastNorm.weight!.zero_();
            }
        }

        /// <summary>
        /// Set by the diagnostics: the branch and the shortcut then read two views of the input, which are passed to this
        /// callback (branch view, shortcut view) so that the gradient each path sends back to the input can be told apart.
        /// </summary>
        internal Action<Tensor, Tensor>? PathProbe { get; set; }

        /// <summary>
        /// The inputs of a residual block's branch and shortcut: <paramref name="input"/> itself for both, or, when the
        /// diagnostics set a <paramref name="probe"/>, two views of it that are passed to the probe (branch, shortcut).
        /// </summary>
        internal static (Tensor Branch, Tensor Identity) SplitForProbe(Tensor input, Action<Tensor, Tensor>? probe)
        {
            if (probe is null) return (input, input);
            Tensor branch = input.view_as(input), identity = input.view_as(input);
            probe(branch, identity);
            return (branch, identity);
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor input)
        {
            var (branchInput, identityInput) = SplitForProbe(input, PathProbe);

            Tensor branch;
            Tensor gateInput = branchInput;
            Tensor identity = identityInput;
            if (preActivation)
            {
                Tensor activated = nn.functional.relu(norms[0].call(branchInput), inplace: true);
                gateInput = activated;
                branch = convolutions[0].Convolve(activated);
                for (int i = 1; i < convolutions.Length; i++)
                    branch = convolutions[i].Convolve(nn.functional.relu(norms[i].call(branch), inplace: true));
                if (shortcut != null)
                {
                    Tensor shortcutInput = !shortcutTakesPreActivation ? identityInput
                        : ReferenceEquals(identityInput, branchInput) ? activated
                        : nn.functional.relu(norms[0].call(identityInput), inplace: true);
                    identity = Shortcut(shortcutInput);
                }
            }
            else
            {
                branch = branchInput;
                for (int i = 0; i < convolutions.Length; i++)
                {
                    branch = norms[i].call(convolutions[i].Convolve(branch));
                    if (i < convolutions.Length - 1) branch = nn.functional.relu(branch, inplace: true);
                }

                if (shortcut != null) identity = Shortcut(identityInput);
            }

            if (training && dropPathProbability > 0) branch = DropPath(branch, dropPathProbability);
            Tensor output = Combine(branch, identity, gateInput);
            return preActivation ? output : nn.functional.relu(output, inplace: true);
        }

        /// <inheritdoc />
        public GraphValue ExportGraph(IGraphBuilder graph, GraphValue input)
        {
            GraphValue branch;
            GraphValue gateInput = input;
            GraphValue identity = input;
            if (preActivation)
            {
                GraphValue activated = graph.Relu(graph.Call(norms[0], input));
                gateInput = activated;
                branch = graph.Call(convolutions[0], activated);
                for (int i = 1; i < convolutions.Length; i++)
                    branch = graph.Call(convolutions[i], graph.Relu(graph.Call(norms[i], branch)));
                if (shortcut != null) identity = graph.Call(shortcut, shortcutTakesPreActivation ? activated : input);
            }
            else
            {
                branch = input;
                for (int i = 0; i < convolutions.Length; i++)
                {
                    branch = graph.Call(norms[i], graph.Call(convolutions[i], branch));
                    if (i < convolutions.Length - 1) branch = graph.Relu(branch);
                }

                if (shortcut != null) identity = graph.Call(shortcut, input);
            }

            // Stochastic depth keeps every branch at inference: nothing to emit.
            GraphValue output;
            switch (skip)
            {
                case SkipConnection.None:
                    output = branch;
                    break;
                case SkipConnection.Highway:
                    GraphValue transform = graph.Sigmoid(graph.Call(gate!, gateInput));
                    output = graph.Add(graph.Mul(transform, branch), graph.Mul(graph.Affine(transform, -1.0, 1.0), identity));
                    break;
                default:
                    output = graph.Add(graph.Affine(identity, 1.0 - identityDecay, 0.0), graph.Affine(branch, residualScale, 0.0));
                    break;
            }

            return preActivation ? output : graph.Relu(output);
        }

        // The shortcut's modules one by one, so that a projection to a single pixel takes the matrix-product path.
        private Tensor Shortcut(Tensor input)
        {
            if (projection is null) return shortcut!.call(input);
            Tensor projected = projection.Convolve(input);
            return projectionNorm is null ? projected : projectionNorm.call(projected);
        }

        private Tensor Combine(Tensor branch, Tensor identity, Tensor gateInput)
        {
            switch (skip)
            {
                case SkipConnection.None:
                    return branch;
                case SkipConnection.Highway:
                    Tensor transform = torch.sigmoid(gate!.Convolve(gateInput));
                    return transform.mul(branch).Plus(transform.SubtractedFrom(1.0).mul(identity));
                default:
                    Tensor scaledBranch = residualScale == 1.0 ? branch : branch.Times(residualScale);
                    Tensor scaledIdentity = identityDecay == 0.0 ? identity : identity.Times(1.0 - identityDecay);
                    return scaledBranch.PlusInPlace(scaledIdentity);
            }
        }

        // Stochastic depth (Huang et al. 2016): drop the whole branch per sample, rescale the survivors.
        private static Tensor DropPath(Tensor branch, double probability)
        {
            double keep = 1.0 - probability;
            var maskShape = new long[branch.dim()];
            maskShape[0] = branch.shape[0];
            for (int i = 1; i < maskShape.Length; i++) maskShape[i] = 1;
            Tensor mask = torch.empty(maskShape, branch.dtype, branch.device).bernoulli_(keep);
            return branch.mul(mask).DividedBy(keep);
        }
    }

    /// <summary>
    /// Shortcut option A: a parameter-free identity that subsamples with the block's stride and pads the
    /// extra output channels with zeros (split evenly before and after the input's channels).
    /// </summary>
    public sealed class ZeroPadShortcut : ExplicitModule, IGraphExportable
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
        public override Tensor forward(Tensor input)
        {
            Tensor subsampled = stride == 1
                ? input
                : input[.., .., TensorIndex.Slice(null, null, stride), TensorIndex.Slice(null, null, stride)];
            if (padBefore == 0 && padAfter == 0) return subsampled;
            return nn.functional.pad(subsampled, new long[] { 0, 0, 0, 0, padBefore, padAfter });
        }

        /// <inheritdoc />
        public GraphValue ExportGraph(IGraphBuilder graph, GraphValue input)
        {
            GraphValue x = input;
            if (stride != 1)
            {
                x = graph.Slice(x, 2, 0, x.Shape[2], stride);
                x = graph.Slice(x, 3, 0, x.Shape[3], stride);
            }

            if (padBefore == 0 && padAfter == 0) return x;
            return graph.Pad(x, new long[] { 0, 0, 0, 0, padBefore, padAfter }, PaddingModes.Constant);
        }
    }
}
