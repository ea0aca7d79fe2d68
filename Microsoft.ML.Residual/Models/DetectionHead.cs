using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// The heads of a one-stage detector, shared by every pyramid level: torchvision's <c>RetinaNetHead</c> (v1) or
    /// <c>FCOSHead</c>, the modules under <c>head</c>. <c>classification_head</c> is a tower of 3×3 convolutions and
    /// <c>cls_logits</c>; <c>regression_head</c> a tower and <c>bbox_reg</c> (and for FCOS <c>bbox_ctrness</c>). Its
    /// forward pass runs inside the detector's, through the detector's operations, so its layers keep their state-dict names.
    /// </summary>
    internal sealed class DetectionHead : nn.Module
    {
        private readonly HeadBranch classification;
        private readonly HeadBranch regression;

        public DetectionHead(DetectorKind kind, int channels, int anchors, int numClasses, int convolutions) : base(kind == DetectorKind.Fcos ? "FCOSHead" : "RetinaNetHead")
        {
            // torchvision: a prior probability of 0.01 for every class at the start (Lin et al. 2017, section 4.1).
            double priorBias = -Math.Log((1 - 0.01) / 0.01);
            classification = new HeadBranch(kind, channels, convolutions, new[] { new HeadOutput("cls_logits", anchors, numClasses, priorBias, Relu: false) });
            var outputs = new List<HeadOutput> { new("bbox_reg", anchors, 4, 0.0, Relu: kind == DetectorKind.Fcos) };
            if (kind == DetectorKind.Fcos) outputs.Add(new HeadOutput("bbox_ctrness", anchors, 1, 0.0, Relu: false));
            regression = new HeadBranch(kind, channels, convolutions, outputs);
            register_module("classification_head", classification);
            register_module("regression_head", regression);
        }

        /// <summary>N × A × (K + 4 [+ 1]): every level's outputs in torchvision's order, then [classes | boxes | centerness].</summary>
        public T Forward<T>(IOperations<T> ops, IReadOnlyList<T> levels)
            where T : class
        {
            var parts = new List<T>(classification.Forward(ops, levels));
            parts.AddRange(regression.Forward(ops, levels));
            return ops.Concat(parts, 2);
        }

        protected override void RegisterComponents()
        {
        }

        /// <summary>One output convolution: its name, anchors per location, values per anchor, initial bias, and whether a ReLU follows.</summary>
        private sealed record HeadOutput(string Name, int Anchors, int PerAnchor, double Bias, bool Relu);

        /// <summary>A tower (<c>conv</c>) and its output convolutions.</summary>
        private sealed class HeadBranch : nn.Module
        {
            private readonly Sequential? tower;
            private readonly (HeadOutput Output, Conv2d Layer)[] outputs;

            public HeadBranch(DetectorKind kind, int channels, int convolutions, IReadOnlyList<HeadOutput> outputs) : base("HeadBranch")
            {
                var layers = new List<nn.Module<Tensor, Tensor>>();
                for (int i = 0; i < convolutions; i++)
                {
                    // RetinaNet: conv.{i} = Conv2dNormActivation without norm (conv.{i}.0 and a ReLU). FCOS: conv.{3i} a
                    // convolution, conv.{3i+1} GroupNorm, conv.{3i+2} ReLU.
                    Conv2d convolution = nn.Conv2d(channels, channels, 3, padding: 1);
                    if (kind == DetectorKind.Fcos)
                    {
                        layers.Add(convolution);
                        layers.Add(nn.GroupNorm(DetectorOptions.GroupNormGroups(channels), channels));
                        layers.Add(nn.ReLU());
                    }
                    else
                    {
                        layers.Add(nn.Sequential(convolution, nn.ReLU()));
                    }
                }

                if (layers.Count > 0)
                {
                    tower = nn.Sequential(layers);
                    register_module("conv", tower);
                }

                this.outputs = outputs.Select(o => (o, nn.Conv2d(channels, o.Anchors * o.PerAnchor, 3, padding: 1))).ToArray();
                foreach (var (output, layer) in this.outputs) register_module(output.Name, layer);

                // torchvision: every convolution of the heads N(0, 0.01²), biases 0 but the classification prior; GroupNorm 1, 0.
                using var noGrad = torch.no_grad();
                foreach (Conv2d convolution in modules().OfType<Conv2d>())
                {
                    nn.init.normal_(convolution.weight!, 0.0, 0.01);
                    convolution.bias!.zero_();
                }

                foreach (GroupNorm norm in modules().OfType<GroupNorm>())
                {
                    norm.weight!.Fill(1.0); // TorchSharp's GroupNorm leaves them uninitialised
                    norm.bias!.zero_();
                }

                foreach (var (output, layer) in this.outputs)
                {
                    if (output.Bias != 0) layer.bias!.Fill(output.Bias);
                }
            }

            /// <summary>Per output convolution, N × A × PerAnchor over all levels.</summary>
            public IReadOnlyList<T> Forward<T>(IOperations<T> ops, IReadOnlyList<T> levels)
                where T : class
            {
                var perOutput = outputs.Select(_ => new List<T>(levels.Count)).ToArray();
                foreach (T level in levels)
                {
                    T features = tower is null ? level : ops.Call(tower, level);
                    for (int o = 0; o < outputs.Length; o++)
                    {
                        var (output, layer) = outputs[o];
                        T y = ops.Call(layer, features);
                        if (output.Relu) y = ops.Relu(y);
                        perOutput[o].Add(AnchorsLast(ops, y, output.Anchors, output.PerAnchor));
                    }
                }

                return perOutput.Select(values => ops.Concat(values, 1)).ToList();
            }

            // N × (A·P) × H × W → N × A × P × H × W → N × H × W × A × P → N × (H·W·A) × P, as torchvision's heads.
            private static T AnchorsLast<T>(IOperations<T> ops, T y, int anchors, int perAnchor)
                where T : class
            {
                long[] shape = ops.Shape(y);
                T split = ops.Reshape(y, 0, anchors, perAnchor, shape[2], shape[3]);
                return ops.Reshape(ops.Permute(split, 0, 3, 4, 1, 2), 0, -1, perAnchor);
            }

            protected override void RegisterComponents()
            {
            }
        }
    }
}
