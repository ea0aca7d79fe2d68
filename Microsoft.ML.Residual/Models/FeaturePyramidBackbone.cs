using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A backbone with a feature pyramid (Lin et al. 2017), in the layout of torchvision's <c>BackboneWithFPN</c> as
    /// <c>retinanet_resnet50_fpn</c> and <c>fcos_resnet50_fpn</c> build it: the classifier <c>body</c>'s last three stages
    /// (C3, C4, C5: reductions 8, 16, 32 for a ResNet) enter the pyramid <c>fpn</c>, which outputs P3–P7, all with the same
    /// channels. Its stages (<see cref="IStageEncoder"/>) are those five levels, finest first.
    /// </summary>
    /// <remarks>
    /// <para><b>The pyramid.</b> Each Ci goes through a 1×1 convolution (<c>fpn.inner_blocks.{i}.0</c>); from the coarsest
    /// down, the running sum is upsampled ×2 by nearest neighbour and added to the next finer lateral; each sum goes through a
    /// 3×3 convolution (<c>fpn.layer_blocks.{i}.0</c>) to give Pi. P6 is a 3×3 stride-2 convolution of P5
    /// (<c>fpn.extra_blocks.p6</c>), P7 one of ReLU(P6) (<c>fpn.extra_blocks.p7</c>), as torchvision's <c>LastLevelP6P7</c>
    /// with equal input and output channels. Convolutions have biases; weights are initialised as torchvision's (Kaiming uniform
    /// with a = 1, zero bias).</para>
    /// <para><b>Sizes.</b> torchvision resizes the coarser sum to the lateral's exact size. Where the backbone halves with
    /// rounding up (every ResNet: a side s becomes ⌈s/2⌉), upsampling ×2 and dropping the last row or column when the lateral's side
    /// is odd is that same nearest-neighbour resize, so any input size is accepted. A backbone whose coarser stage is not
    /// ⌈s/2⌉ of the finer one's side s (rounding down, as DenseNet's average pooling does on odd sides) is refused at that
    /// input size with an error that says so.</para>
    /// </remarks>
    public sealed class FeaturePyramidBackbone : nn.Module, IStageEncoder
    {
        /// <summary>How many backbone stages enter the pyramid (C3, C4, C5).</summary>
        public const int PyramidInputs = 3;

        private readonly nn.Module<Tensor, Tensor> body;
        private readonly IStageEncoder bodyStages;
        private readonly FeaturePyramidNetwork fpn;

        /// <summary>Builds the pyramid over <paramref name="body"/>.</summary>
        /// <param name="body">
        /// A classifier built without its head (numClasses 0) that implements <see cref="IStageEncoder"/> with at least three
        /// stages, the last three at reductions r, 2r, 4r; registered as <c>body</c>.
        /// </param>
        /// <param name="channels">Channels of every pyramid level (torchvision: 256).</param>
        /// <exception cref="ArgumentException">The body has no usable stages, or <paramref name="channels"/> is below 1.</exception>
        public FeaturePyramidBackbone(nn.Module<Tensor, Tensor> body, int channels) : base(nameof(FeaturePyramidBackbone))
        {
            if (body is null) throw new ArgumentNullException(nameof(body));
            if (body is not IStageEncoder stages)
            {
                throw new ArgumentException(
                    $"The backbone ({body.GetType().Name}) does not implement IStageEncoder, so its stage feature maps cannot feed a feature pyramid. "
                    + "Use a backbone that implements it (ResNet does) or implement IStageEncoder on yours.", nameof(body));
            }

            if (channels < 1) throw new ArgumentException($"The pyramid needs at least 1 channel (got {channels}).", nameof(channels));
            IReadOnlyList<int> reductions = stages.StageReductions;
            IReadOnlyList<int> stageChannels = stages.StageChannels;
            if (reductions.Count < PyramidInputs || stageChannels.Count != reductions.Count)
            {
                throw new ArgumentException(
                    $"The backbone {body.GetType().Name} declares {reductions.Count} stages; the feature pyramid reads its last {PyramidInputs}.", nameof(body));
            }

            int first = reductions.Count - PyramidInputs;
            for (int i = first + 1; i < reductions.Count; i++)
            {
                if (reductions[i] != 2 * reductions[i - 1])
                {
                    throw new ArgumentException(
                        $"The backbone {body.GetType().Name}'s last {PyramidInputs} stages have reductions {string.Join(", ", reductions.Skip(first))}; "
                        + "the feature pyramid needs each to halve the resolution of the one before (e.g. 8, 16, 32).", nameof(body));
                }
            }

            this.body = body;
            bodyStages = stages;
            Channels = channels;
            InputChannels = stageChannels.Skip(first).ToArray();
            int finest = reductions[first];
            StageReductions = Enumerable.Range(0, PyramidInputs + 2).Select(level => finest << level).ToArray();
            StageChannels = Enumerable.Repeat(channels, PyramidInputs + 2).ToArray();
            fpn = new FeaturePyramidNetwork(InputChannels, channels);
            register_module("body", body);
            register_module("fpn", fpn);
        }

        /// <summary>The backbone (registered as <c>body</c>; its weights are <c>backbone.body.*</c> in a detector).</summary>
        public nn.Module<Tensor, Tensor> Body => body;

        /// <summary>Channels of every pyramid level.</summary>
        public int Channels { get; }

        /// <summary>Channels of the backbone stages the pyramid reads (C3, C4, C5).</summary>
        public IReadOnlyList<int> InputChannels { get; }

        /// <inheritdoc />
        public IReadOnlyList<int> StageChannels { get; }

        /// <summary>Reductions of P3–P7 relative to the input (8, 16, 32, 64, 128 for a ResNet).</summary>
        public IReadOnlyList<int> StageReductions { get; }

        /// <summary>P3, P4, P5, P6, P7 for an N×C×H×W input.</summary>
        public IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
            where T : class
        {
            if (ops is null) throw new ArgumentNullException(nameof(ops));
            IReadOnlyList<T> stages = ops.CallStages(body, input);
            if (stages.Count != bodyStages.StageChannels.Count)
            {
                throw new InvalidOperationException(
                    $"The backbone {body.GetType().Name} returned {stages.Count} stage outputs but declares {bodyStages.StageChannels.Count} (StageChannels).");
            }

            return fpn.Forward(ops, stages.Skip(stages.Count - PyramidInputs).ToList());
        }

        /// <summary>
        /// The (height, width) of P3–P7 for an input of <paramref name="height"/> × <paramref name="width"/>. For a
        /// <see cref="ResNet"/> body, analytic: every stride-2 layer of a ResNet (7×7 or 3×3 convolutions with padding 3 or 1,
        /// 3×3 max pooling with padding 1, 1×1 stride-2 projections, ceil-mode average pooling) maps a side s to ⌈s/2⌉, so the
        /// stage at reduction r has side ⌈s/r⌉; P6 and P7 (3×3, stride 2, padding 1) halve P5 and P6 the same way. For other
        /// bodies the stage sizes are measured by running the body once on zeros of that size (in evaluation mode, without
        /// gradients; the body's mode is restored).
        /// </summary>
        public IReadOnlyList<(int Height, int Width)> LevelSizes(int height, int width)
        {
            if (height < 1 || width < 1) throw new ArgumentException($"The input must be at least 1×1 (got {height}×{width}).");
            var sizes = new List<(int Height, int Width)>(PyramidInputs + 2);
            if (body is ResNet)
            {
                foreach (int reduction in StageReductions.Take(PyramidInputs)) sizes.Add((CeilDiv(height, reduction), CeilDiv(width, reduction)));
            }
            else
            {
                sizes.AddRange(MeasuredStageSizes(height, width));
            }

            for (int extra = 0; extra < 2; extra++)
            {
                var (h, w) = sizes[sizes.Count - 1];
                sizes.Add((CeilDiv(h, 2), CeilDiv(w, 2)));
            }

            return sizes;
        }

        private static int CeilDiv(int size, int divisor) => (size + divisor - 1) / divisor;

        private IEnumerable<(int Height, int Width)> MeasuredStageSizes(int height, int width)
        {
            // Each module's own mode, restored afterwards (a frozen backbone's BatchNorm layers stay in eval mode during training).
            var modes = body.modules().Select(module => (Module: module, Training: module.training)).ToList();
            body.eval();
            try
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                Parameter? parameter = body.parameters().FirstOrDefault();
                long inputChannels = FirstConvolutionChannels(body);
                Tensor zeros = torch.zeros(new long[] { 1, inputChannels, height, width }, parameter?.dtype ?? ScalarType.Float32, parameter?.device);
                IReadOnlyList<Tensor> stages = bodyStages.ForwardStages(TensorOperations.Instance, zeros);
                return stages.Skip(stages.Count - PyramidInputs).Select(s => ((int)s.shape[2], (int)s.shape[3])).ToList();
            }
            finally
            {
                foreach (var (module, training) in modes) module.train(training);
            }
        }

        // The input channels of the first convolution the body registers (the one that sees the image).
        private static long FirstConvolutionChannels(nn.Module module) =>
            module.modules().OfType<Conv2d>().Select(c => c.weight!.shape[1] * c.groups).FirstOrDefault(3);

        /// <summary>Does nothing: every child is registered explicitly by the constructor.</summary>
        protected override void RegisterComponents()
        {
        }
    }

    /// <summary>
    /// torchvision's <c>FeaturePyramidNetwork</c> with <c>LastLevelP6P7</c> (equal channels, so P6 reads P5): the modules
    /// under <c>backbone.fpn</c>. Its forward pass runs inside its owner's (<see cref="FeaturePyramidBackbone"/>), through
    /// the owner's operations, so its layers keep their state-dict names.
    /// </summary>
    internal sealed class FeaturePyramidNetwork : nn.Module
    {
        private readonly ModuleList<Sequential> innerBlocks;
        private readonly ModuleList<Sequential> layerBlocks;
        private readonly LastLevels extraBlocks;

        public FeaturePyramidNetwork(IReadOnlyList<int> inputChannels, int channels) : base(nameof(FeaturePyramidNetwork))
        {
            innerBlocks = nn.ModuleList(inputChannels.Select(c => nn.Sequential(nn.Conv2d(c, channels, 1))).ToArray());
            layerBlocks = nn.ModuleList(inputChannels.Select(_ => nn.Sequential(nn.Conv2d(channels, channels, 3, padding: 1))).ToArray());
            extraBlocks = new LastLevels(channels);
            register_module("inner_blocks", innerBlocks);
            register_module("layer_blocks", layerBlocks);
            register_module("extra_blocks", extraBlocks);
            using var noGrad = torch.no_grad();
            foreach (Conv2d conv in modules().OfType<Conv2d>())
            {
                nn.init.kaiming_uniform_(conv.weight!, a: 1);
                conv.bias!.zero_();
            }
        }

        /// <summary>P3–P7 from C3–C5 (finest first).</summary>
        public IReadOnlyList<T> Forward<T>(IOperations<T> ops, IReadOnlyList<T> features)
            where T : class
        {
            int last = features.Count - 1;
            T inner = ops.Call(innerBlocks[last], features[last]);
            var results = new T[features.Count];
            results[last] = ops.Call(layerBlocks[last], inner);
            for (int i = last - 1; i >= 0; i--)
            {
                T lateral = ops.Call(innerBlocks[i], features[i]);
                inner = ops.Add(lateral, UpsampleTo(ops, inner, ops.Shape(lateral)));
                results[i] = ops.Call(layerBlocks[i], inner);
            }

            var levels = new List<T>(results);
            levels.AddRange(extraBlocks.Forward(ops, results[last]));
            return levels;
        }

        // torchvision's nearest resize to the lateral's size: where the lateral's side s is 2·c or 2·c − 1 for the coarser side
        // c, that is ×2 nearest upsampling, cropped by one row or column when s is odd (source index ⌊d·c/s⌋ = ⌊d/2⌋ for
        // every d < s).
        private static T UpsampleTo<T>(IOperations<T> ops, T coarse, long[] target)
            where T : class
        {
            long[] shape = ops.Shape(coarse);
            for (int axis = 2; axis < 4; axis++)
            {
                if (2 * shape[axis] != target[axis] && 2 * shape[axis] - 1 != target[axis])
                {
                    throw new InvalidOperationException(
                        $"The feature pyramid cannot resize a {shape[2]}×{shape[3]} level to the finer level's {target[2]}×{target[3]}: the backbone's coarser stage "
                        + "must have ⌈s/2⌉ of the finer stage's side s (as every ResNet does). Use an input whose sides are multiples of the backbone's largest "
                        + "reduction (32 for an ImageNet backbone).");
                }
            }

            T upsampled = ops.Upsample(coarse, 2, 2, InterpolationMode.Nearest);
            if (2 * shape[2] != target[2]) upsampled = ops.Slice(upsampled, 2, 0, target[2]);
            if (2 * shape[3] != target[3]) upsampled = ops.Slice(upsampled, 3, 0, target[3]);
            return upsampled;
        }

        protected override void RegisterComponents()
        {
        }

        /// <summary>torchvision's <c>LastLevelP6P7</c> with equal channels: P6 = conv(P5), P7 = conv(ReLU(P6)).</summary>
        private sealed class LastLevels : nn.Module
        {
            private readonly Conv2d p6;
            private readonly Conv2d p7;
            private readonly ReLU relu;

            public LastLevels(int channels) : base("LastLevelP6P7")
            {
                p6 = nn.Conv2d(channels, channels, 3, stride: 2, padding: 1);
                p7 = nn.Conv2d(channels, channels, 3, stride: 2, padding: 1);
                relu = nn.ReLU(); // a module, not the in-place operation: P6 is an output too
                register_module("p6", p6);
                register_module("p7", p7);
                register_module("relu", relu);
            }

            public T[] Forward<T>(IOperations<T> ops, T p5)
                where T : class
            {
                T level6 = ops.Call(p6, p5);
                T level7 = ops.Call(p7, ops.Call(relu, level6));
                return new[] { level6, level7 };
            }

            protected override void RegisterComponents()
            {
            }
        }
    }
}
