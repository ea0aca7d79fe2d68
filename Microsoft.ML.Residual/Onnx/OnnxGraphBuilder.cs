using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx.Proto;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>
    /// Builds an ONNX graph by tracing: every operator is emitted as a node and also run by TorchSharp on the
    /// example values. A <see cref="ResidualModule"/> emits itself by running its one forward pass over these
    /// operations; TorchSharp's layers (convolutions, BatchNorm, linear, pooling, dropout, Sequential) are handled
    /// here. Parameters become initializers named by their state-dict keys.
    /// </summary>
    internal sealed class OnnxGraphBuilder : IOperations<GraphValue>
    {
        private readonly GraphProto graph = new();
        private readonly Dictionary<string, TensorProto> initializers = new(StringComparer.Ordinal);
        private readonly Stack<(nn.Module Module, string Path)> scopes = new();
        private readonly Dictionary<nn.Module, Dictionary<nn.Module, string>> descendantNames = new(ReferenceEqualityComparer.Instance);
        private int counter;

        public OnnxGraphBuilder(nn.Module root)
        {
            scopes.Push((root, string.Empty));
        }

        public GraphProto Graph => graph;

        /// <summary>Names of the state-dict initializers emitted so far.</summary>
        public IEnumerable<string> ParameterNames => initializers.Keys.Where(k => !k.StartsWith(ConstantPrefix, StringComparison.Ordinal));

        internal const string ConstantPrefix = "const::";

        private string CurrentPath => scopes.Peek().Path;

        // ---- modules ----

        public GraphValue Call(nn.Module module, GraphValue input)
        {
            string path = PathOf(module);
            if (module is ResidualModule residual) return InScope(module, path, () => residual.Forward(this, input));
            return EmitLayer(module, path, input);
        }

        public IReadOnlyList<GraphValue> CallStages(nn.Module encoder, GraphValue input)
        {
            string path = PathOf(encoder);
            IStageEncoder stages = TensorOperations.StageEncoder(encoder);
            return InScope(encoder, path, () => stages.ForwardStages(this, input));
        }

        /// <summary>Emits the root module (the graph's whole computation) on <paramref name="input"/>.</summary>
        public GraphValue CallRoot(nn.Module root, GraphValue input)
        {
            if (root is ResidualModule residual) return residual.Forward(this, input);
            return EmitLayer(root, string.Empty, input);
        }

        private T InScope<T>(nn.Module module, string path, Func<T> emit)
        {
            scopes.Push((module, path));
            try
            {
                return emit();
            }
            finally
            {
                scopes.Pop();
            }
        }

        private string PathOf(nn.Module module)
        {
            var (owner, ownerPath) = scopes.Peek();
            if (!descendantNames.TryGetValue(owner, out var names))
            {
                names = new Dictionary<nn.Module, string>(ReferenceEqualityComparer.Instance);
                foreach (var (name, descendant) in owner.named_modules())
                {
                    if (name.Length > 0) names.TryAdd(descendant, name);
                }

                descendantNames[owner] = names;
            }

            if (!names.TryGetValue(module, out string? relative))
            {
                throw new InvalidOperationException(
                    $"Module '{ownerPath}' ({owner.GetType().Name}) emitted a {module.GetType().Name} that is not one of its registered submodules; "
                    + "register it so that its parameters have state-dict names.");
            }

            return ownerPath.Length == 0 ? relative : ownerPath + "." + relative;
        }

        private GraphValue EmitLayer(nn.Module module, string path, GraphValue input)
        {
            switch (module)
            {
                case Sequential sequential:
                    return InScope(module, path, () =>
                    {
                        GraphValue x = input;
                        foreach (var (_, child) in sequential.named_children()) x = Call(child, x);
                        return x;
                    });
                case Conv2d conv when !conv.transposed:
                    return EmitConvolution("Conv", conv.weight!, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups, null, conv.padding_mode, module, path, input);
                case ConvTranspose2d deconv:
                    return EmitConvolution("ConvTranspose", deconv.weight!, deconv.bias, deconv.stride, deconv.padding, deconv.dilation, deconv.groups, deconv.output_padding, deconv.padding_mode, module, path, input);
                case BatchNorm norm:
                    return EmitBatchNorm(norm, path, input);
                case GroupNorm norm:
                    return EmitGroupNorm(norm, path, input);
                case Linear linear:
                    return EmitLinear(linear, path, input);
                case MaxPool2d pool:
                    return Node("MaxPool", path, Run(module, input), new[] { input.Name },
                        Ints("kernel_shape", pool.kernel_size), Ints("strides", pool.stride ?? pool.kernel_size),
                        Ints("pads", Pads2d(pool.padding)), Ints("dilations", pool.dilation ?? new long[] { 1, 1 }), Int("ceil_mode", pool.ceil_mode ? 1 : 0));
                case AvgPool2d pool when pool.divisor_override is null:
                    return Node("AveragePool", path, Run(module, input), new[] { input.Name },
                        Ints("kernel_shape", pool.kernel_size), Ints("strides", pool.stride ?? pool.kernel_size),
                        Ints("pads", Pads2d(pool.padding)), Int("ceil_mode", pool.ceil_mode ? 1 : 0), Int("count_include_pad", pool.count_include_pad ? 1 : 0));
                case AdaptiveAvgPool2d pool when pool.output_size.All(s => s == 1):
                    return Node("GlobalAveragePool", path, Run(module, input), new[] { input.Name });
                case Flatten flatten when flatten.end_dim == -1 || flatten.end_dim == input.Shape.Length - 1:
                    return Node("Flatten", path, Run(module, input), new[] { input.Name }, Int("axis", flatten.start_dim < 0 ? flatten.start_dim + input.Shape.Length : flatten.start_dim));
                case TorchSharp.Modules.Dropout:
                case Identity:
                    return input;
                case ReLU:
                    return Node("Relu", path, Run(module, input), new[] { input.Name });
                default:
                    throw new NotSupportedException(
                        $"Cannot export module '{(path.Length == 0 ? "<root>" : path)}' ({module.GetType().Name}): the ONNX exporter knows TorchSharp's "
                        + "Conv2d, ConvTranspose2d, BatchNorm2d, GroupNorm, Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), ReLU, Flatten, Dropout, Identity and Sequential, "
                        + "and ResidualModule subclasses. Derive the module from ResidualModule, its forward written once over IOperations.");
            }
        }

        private static Tensor Run(nn.Module module, GraphValue input) => ((nn.Module<Tensor, Tensor>)module).call(input.Example);

        private GraphValue EmitConvolution(
            string op, Tensor weight, Tensor? bias, long[]? stride, long[]? padding, long[]? dilation, long groups, long[]? outputPadding,
            PaddingModes paddingMode, nn.Module module, string path, GraphValue input)
        {
            if (paddingMode != PaddingModes.Zeros)
                throw new NotSupportedException($"Cannot export module '{path}': padding mode {paddingMode} (only zero padding).");
            var inputs = new List<string> { input.Name, Parameter(path + ".weight", weight) };
            if (bias is not null) inputs.Add(Parameter(path + ".bias", bias));
            var attributes = new List<AttributeProto>
            {
                Ints("kernel_shape", weight.shape.Skip(2).ToArray()),
                Ints("strides", stride ?? new long[] { 1, 1 }),
                Ints("pads", Pads2d(padding)),
                Ints("dilations", dilation ?? new long[] { 1, 1 }),
                Int("group", groups),
            };
            if (outputPadding is not null && outputPadding.Any(p => p != 0)) attributes.Add(Ints("output_padding", outputPadding));
            // The trace computes a convolution the way the models' forward passes do (ConvolutionPaths), so the two agree bit for bit.
            Tensor example = module is Conv2d conv ? conv.Convolve(input.Example) : Run(module, input);
            return Node(op, path, example, inputs.ToArray(), attributes.ToArray());
        }

        private GraphValue EmitBatchNorm(BatchNorm norm, string path, GraphValue input)
        {
            if (norm.running_mean is null || norm.running_var is null)
                throw new NotSupportedException($"Cannot export module '{path}': BatchNorm without running statistics (track_running_stats = false).");
            long features = norm.num_features;
            string scale = norm.weight is null ? Constant(torch.ones(features)) : Parameter(path + ".weight", norm.weight);
            string shift = norm.bias is null ? Constant(torch.zeros(features)) : Parameter(path + ".bias", norm.bias);
            var inputs = new[] { input.Name, scale, shift, Parameter(path + ".running_mean", norm.running_mean), Parameter(path + ".running_var", norm.running_var) };
            return Node("BatchNormalization", path, Run(norm, input), inputs, Float("epsilon", norm.eps));
        }

        // Opset 17 has no GroupNormalization: N×C×… → N×G×(rest) → InstanceNormalization (unit scale, zero shift: each
        // group normalised over its channels and positions) → N×C×… → · weight + bias per channel.
        private GraphValue EmitGroupNorm(GroupNorm norm, string path, GraphValue input)
        {
            long[] shape = input.Shape;
            if (shape.Length < 3) throw new NotSupportedException($"Cannot export module '{path}': GroupNorm of a {shape.Length}-D value (N×C×… with spatial dimensions only).");
            long groups = norm.num_groups;
            string grouped = NewName("Reshape", path);
            AddNode("Reshape", new[] { input.Name, Constant(torch.tensor(new[] { 0L, groups, -1L })) }, grouped);
            string normalised = NewName("InstanceNormalization", path);
            AddNode("InstanceNormalization", new[] { grouped, Constant(torch.ones(groups)), Constant(torch.zeros(groups)) }, normalised, Float("epsilon", norm.eps));
            var back = new long[shape.Length];
            Array.Copy(shape, back, shape.Length);
            back[0] = 0;
            Tensor example = Run(norm, input);
            if (!norm.affine) return Node("Reshape", path, example, new[] { normalised, Constant(torch.tensor(back)) });
            string restored = NewName("Reshape", path);
            AddNode("Reshape", new[] { normalised, Constant(torch.tensor(back)) }, restored);
            var perChannel = new long[shape.Length - 1];
            perChannel[0] = shape[1];
            for (int i = 1; i < perChannel.Length; i++) perChannel[i] = 1;
            string PerChannel(string name, Tensor value)
            {
                string reshaped = NewName("Reshape", path);
                AddNode("Reshape", new[] { Parameter(path + "." + name, value), Constant(torch.tensor(perChannel)) }, reshaped);
                return reshaped;
            }

            string scaled = NewName("Mul", path);
            AddNode("Mul", new[] { restored, PerChannel("weight", norm.weight!) }, scaled);
            return Node("Add", path, example, new[] { scaled, PerChannel("bias", norm.bias!) });
        }

        private GraphValue EmitLinear(Linear linear, string path, GraphValue input)
        {
            string weight = Parameter(path + ".weight", linear.weight!);
            if (input.Shape.Length != 2)
            {
                // Over the last dimension of an N-D value (ConvNeXt's channels-last blocks): x · Wᵀ (+ b).
                string transposed = NewName("Transpose", path);
                AddNode("Transpose", new[] { weight }, transposed, Ints("perm", new long[] { 1, 0 }));
                if (linear.bias is null) return Node("MatMul", path, Run(linear, input), new[] { input.Name, transposed });
                string product = NewName("MatMul", path);
                AddNode("MatMul", new[] { input.Name, transposed }, product);
                return Node("Add", path, Run(linear, input), new[] { product, Parameter(path + ".bias", linear.bias) });
            }

            var inputs = new List<string> { input.Name, weight };
            if (linear.bias is not null) inputs.Add(Parameter(path + ".bias", linear.bias));
            return Node("Gemm", path, Run(linear, input), inputs.ToArray(), Int("transB", 1));
        }

        // ---- operators ----

        public long[] Shape(GraphValue x) => x.Shape;

        // One graph value feeds both paths; stochastic depth and dropout keep every value at inference.
        public (GraphValue Branch, GraphValue Shortcut) Fork(GraphValue x) => (x, x);

        public GraphValue Residual(GraphValue branch, GraphValue shortcut, double branchScale = 1.0, double shortcutScale = 1.0) =>
            Add(Affine(shortcut, shortcutScale, 0.0), Affine(branch, branchScale, 0.0));

        public GraphValue Dropout(GraphValue x, double probability, bool training) => x;

        public GraphValue DropPath(GraphValue x, double probability, bool training) => x;

        public GraphValue Permute(GraphValue x, params int[] order) =>
            Node("Transpose", CurrentPath, x.Example.permute(order.Select(d => (long)d).ToArray()), new[] { x.Name }, Ints("perm", order.Select(d => (long)d).ToArray()));

        // Opset 17 has no Gelu: x · (1 + erf(x / √2)) / 2.
        public GraphValue Gelu(GraphValue x)
        {
            string scaled = NewName("Div");
            AddNode("Div", new[] { x.Name, Constant(torch.tensor((float)Math.Sqrt(2))) }, scaled);
            string erf = NewName("Erf");
            AddNode("Erf", new[] { scaled }, erf);
            string shifted = NewName("Add");
            AddNode("Add", new[] { erf, Constant(torch.tensor(1f)) }, shifted);
            string product = NewName("Mul");
            AddNode("Mul", new[] { x.Name, shifted }, product);
            return Node("Mul", CurrentPath, nn.functional.gelu(x.Example), new[] { product, Constant(torch.tensor(0.5f)) });
        }

        public GraphValue LayerNorm(GraphValue x, Parameter weight, Parameter bias, double eps) =>
            Node("LayerNormalization", CurrentPath, TensorOperations.Instance.LayerNorm(x.Example, weight, bias, eps),
                new[] { x.Name, OwnParameter(weight), OwnParameter(bias) }, Int("axis", -1), Float("epsilon", eps));

        public GraphValue Scale(GraphValue x, Parameter scale) => Node("Mul", CurrentPath, x.Example.mul(scale), new[] { x.Name, OwnParameter(scale) });

        /// <summary>The initializer of a parameter registered on the module being emitted, named by its state-dict key.</summary>
        private string OwnParameter(Parameter parameter)
        {
            var (module, path) = scopes.Peek();
            foreach (var (name, candidate) in module.named_parameters(recurse: false))
            {
                if (ReferenceEquals(candidate, parameter)) return Parameter(path.Length == 0 ? name : path + "." + name, parameter);
            }

            throw new InvalidOperationException(
                $"Module '{path}' ({module.GetType().Name}) used a parameter that is not registered on it; register it so that it has a state-dict name.");
        }

        public GraphValue Relu(GraphValue x) => Node("Relu", CurrentPath, nn.functional.relu(x.Example), new[] { x.Name });

        public GraphValue Clip(GraphValue x, double minimum, double maximum) =>
            Node("Clip", CurrentPath, x.Example.Clamp(minimum, maximum), new[] { x.Name, Constant(torch.tensor((float)minimum)), Constant(torch.tensor((float)maximum)) });

        public GraphValue Sigmoid(GraphValue x) => Node("Sigmoid", CurrentPath, torch.sigmoid(x.Example), new[] { x.Name });

        // The trace adds with ScalarSafe (TorchSharp 0.107's a + b hands libtorch a Scalar the finalizer may free mid-call).
        public GraphValue Add(GraphValue a, GraphValue b) => Node("Add", CurrentPath, a.Example.Plus(b.Example), new[] { a.Name, b.Name });

        public GraphValue Mul(GraphValue a, GraphValue b) => Node("Mul", CurrentPath, a.Example.mul(b.Example), new[] { a.Name, b.Name });

        public GraphValue Affine(GraphValue x, double scale, double shift)
        {
            GraphValue result = x;
            if (scale != 1.0)
            {
                Tensor factor = torch.tensor((float)scale);
                result = Node("Mul", CurrentPath, result.Example.mul(factor), new[] { result.Name, Constant(factor) });
            }

            if (shift != 0.0)
            {
                Tensor offset = torch.tensor((float)shift);
                result = Node("Add", CurrentPath, result.Example.Plus(offset), new[] { result.Name, Constant(offset) });
            }

            return result;
        }

        public GraphValue Concat(IReadOnlyList<GraphValue> values, int axis) => values.Count == 1 ? values[0] :
            Node("Concat", CurrentPath, torch.cat(values.Select(v => v.Example).ToArray(), axis), values.Select(v => v.Name).ToArray(), Int("axis", axis));

        public GraphValue MaxPool(GraphValue x, long kernel, long stride, long padding = 0) =>
            Node("MaxPool", CurrentPath, nn.functional.max_pool2d(x.Example, kernel, stride, padding), new[] { x.Name },
                Ints("kernel_shape", new[] { kernel, kernel }), Ints("strides", new[] { stride, stride }), Ints("pads", new[] { padding, padding, padding, padding }));

        public GraphValue Pad(GraphValue x, long[] pads, PaddingModes mode)
        {
            int rank = x.Shape.Length;
            if (pads.Length % 2 != 0 || pads.Length / 2 > rank) throw new ArgumentException($"Padding needs pairs for at most {rank} dimensions.", nameof(pads));
            // PyTorch lists (begin, end) pairs from the last dimension backwards; ONNX all begins, then all ends.
            var onnxPads = new long[2 * rank];
            for (int pair = 0; pair < pads.Length / 2; pair++)
            {
                int axis = rank - 1 - pair;
                onnxPads[axis] = pads[2 * pair];
                onnxPads[rank + axis] = pads[2 * pair + 1];
            }

            string onnxMode = mode switch
            {
                PaddingModes.Constant or PaddingModes.Zeros => "constant",
                PaddingModes.Reflect => "reflect",
                PaddingModes.Replicate => "edge",
                _ => throw new NotSupportedException($"Cannot export padding mode {mode} at '{CurrentPath}'."),
            };
            Tensor example = mode is PaddingModes.Constant or PaddingModes.Zeros
                ? nn.functional.pad(x.Example, pads)
                : nn.functional.pad(x.Example, pads, mode);
            return Node("Pad", CurrentPath, example, new[] { x.Name, Constant(torch.tensor(onnxPads)) }, String("mode", onnxMode));
        }

        public GraphValue Slice(GraphValue x, int axis, long start, long end, long step = 1)
        {
            Tensor example = x.Example.slice(axis, start, end, step);
            var inputs = new[]
            {
                x.Name, Constant(torch.tensor(new[] { start })), Constant(torch.tensor(new[] { end })),
                Constant(torch.tensor(new long[] { axis })), Constant(torch.tensor(new[] { step })),
            };
            return Node("Slice", CurrentPath, example, inputs);
        }

        public GraphValue Upsample(GraphValue x, long factorHeight, long factorWidth, InterpolationMode mode)
        {
            var factors = new[] { (double)factorHeight, (double)factorWidth };
            Tensor example;
            AttributeProto[] attributes;
            switch (mode)
            {
                case InterpolationMode.Nearest:
                    example = nn.functional.interpolate(x.Example, scale_factor: factors, mode: mode);
                    attributes = new[] { String("mode", "nearest"), String("coordinate_transformation_mode", "asymmetric"), String("nearest_mode", "floor") };
                    break;
                case InterpolationMode.Bilinear:
                    example = nn.functional.interpolate(x.Example, scale_factor: factors, mode: mode, align_corners: false);
                    attributes = new[] { String("mode", "linear"), String("coordinate_transformation_mode", "pytorch_half_pixel") };
                    break;
                default:
                    throw new NotSupportedException($"Cannot export interpolation mode {mode} at '{CurrentPath}' (nearest and bilinear only).");
            }

            string scales = Constant(torch.tensor(new[] { 1f, 1f, factorHeight, factorWidth }));
            return Node("Resize", CurrentPath, example, new[] { x.Name, string.Empty, scales }, attributes);
        }

        public GraphValue GlobalAveragePool(GraphValue x) =>
            Node("GlobalAveragePool", CurrentPath, nn.functional.adaptive_avg_pool2d(x.Example, 1), new[] { x.Name });

        public GraphValue Flatten(GraphValue x) => Node("Flatten", CurrentPath, x.Example.flatten(1), new[] { x.Name }, Int("axis", 1));

        // ONNX Reshape's own 0 (keep) and −1 (infer): the batch stays open.
        public GraphValue Reshape(GraphValue x, params long[] shape) =>
            Node("Reshape", CurrentPath, TensorOperations.Instance.Reshape(x.Example, shape), new[] { x.Name, Constant(torch.tensor(shape)) });

        // ---- exporter-level operators (pre- and post-processing) ----

        public GraphValue Softmax(GraphValue x, int axis) =>
            Node("Softmax", CurrentPath, torch.nn.functional.softmax(x.Example, axis), new[] { x.Name }, Int("axis", axis));

        public GraphValue ArgMax(GraphValue x, int axis) =>
            Node("ArgMax", CurrentPath, x.Example.argmax(axis), new[] { x.Name }, Int("axis", axis), Int("keepdims", 0));

        /// <summary>N×K → N×K float: 1 at the arg-max over axis 1, 0 elsewhere.</summary>
        public GraphValue OneHotArgMax(GraphValue x)
        {
            long classes = x.Shape[1];
            Tensor index = x.Example.argmax(1, keepdim: true);
            Tensor example = torch.zeros_like(x.Example).scatter_(1, index, torch.ones_like(x.Example));
            string argMax = NewName("ArgMax");
            AddNode("ArgMax", new[] { x.Name }, argMax, Int("axis", 1), Int("keepdims", 1));
            string equal = NewName("Equal");
            AddNode("Equal", new[] { argMax, Constant(ScalarSafe.Range(classes).reshape(1, classes)) }, equal);
            return Node("Cast", CurrentPath, example, new[] { equal }, Int("to", (long)TensorProto.Types.DataType.Float));
        }

        /// <summary>Looks each index of <paramref name="indices"/> up in a constant string table; the example keeps the indices.</summary>
        public string GatherStrings(GraphValue indices, IReadOnlyList<string> table)
        {
            var constant = new TensorProto { Name = $"{ConstantPrefix}{counter++}", DataType = (int)TensorProto.Types.DataType.String };
            constant.Dims.Add(table.Count);
            foreach (string entry in table) constant.StringData.Add(ByteString.CopyFromUtf8(entry));
            initializers[constant.Name] = constant;
            graph.Initializer.Add(constant);
            string output = NewName("Gather");
            AddNode("Gather", new[] { constant.Name, indices.Name }, output, Int("axis", 0));
            return output;
        }

        /// <summary>Renames <paramref name="value"/> to <paramref name="name"/> with an Identity node (graph outputs get fixed names).</summary>
        public GraphValue Rename(GraphValue value, string name)
        {
            AddNode("Identity", new[] { value.Name }, name);
            return new GraphValue(name, value.Example);
        }

        public void AddRawNode(string op, string[] inputs, string output) => AddNode(op, inputs, output);

        /// <summary>An integer tensor cast to UInt32 (the example keeps its shape).</summary>
        public GraphValue CastToUInt32(GraphValue x) =>
            Node("Cast", CurrentPath, x.Example, new[] { x.Name }, Int("to", (long)TensorProto.Types.DataType.Uint32));

        /// <summary>A constant initializer as a value.</summary>
        public GraphValue ConstantValue(Tensor value) => new(Constant(value), value);

        /// <summary>A constant initializer, by name (post-processing builds on names alone: its values depend on the image).</summary>
        public string ConstantName(Tensor value) => Constant(value);

        /// <summary>
        /// An operator of the exporter's post-processing (a detector's box decoding and NMS), by name: its values depend on what the
        /// network finds in an image, so no example runs through it.
        /// </summary>
        public string Op(string op, string[] inputs, params AttributeProto[] attributes) => Ops(op, inputs, 1, attributes)[0];

        /// <summary>As <see cref="Op"/>, for an operator with several outputs (TopK).</summary>
        public string[] Ops(string op, string[] inputs, int outputs, params AttributeProto[] attributes)
        {
            var names = Enumerable.Range(0, outputs).Select(_ => NewName(op)).ToArray();
            var node = new NodeProto { OpType = op, Name = names[0] };
            node.Input.AddRange(inputs);
            node.Output.AddRange(names);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            return names;
        }

        // ---- plumbing ----

        private GraphValue Node(string op, string path, Tensor example, string[] inputs, params AttributeProto[] attributes)
        {
            string output = NewName(op, path);
            AddNode(op, inputs, output, attributes);
            return new GraphValue(output, example);
        }

        private void AddNode(string op, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = output };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
        }

        private string NewName(string op, string? path = null)
        {
            path ??= CurrentPath;
            return $"{(path.Length == 0 ? string.Empty : path + "/")}{op}_{counter++}";
        }

        private string Parameter(string name, Tensor value)
        {
            if (!initializers.ContainsKey(name))
            {
                TensorProto proto = ToProto(name, value);
                initializers[name] = proto;
                graph.Initializer.Add(proto);
            }

            return name;
        }

        private string Constant(Tensor value)
        {
            string name = $"{ConstantPrefix}{counter++}";
            TensorProto proto = ToProto(name, value);
            initializers[name] = proto;
            graph.Initializer.Add(proto);
            return name;
        }

        internal static TensorProto ToProto(string name, Tensor value)
        {
            using var scope = NewDisposeScope();
            Tensor data = value.detach().cpu().contiguous();
            var proto = new TensorProto { Name = name, DataType = (int)OnnxTypes.FromScalarType(data.dtype) };
            proto.Dims.AddRange(data.shape);
            proto.RawData = ByteString.CopyFrom(data.bytes);
            return proto;
        }

        private static long[] Pads2d(long[]? padding)
        {
            long top = padding is { Length: > 0 } ? padding[0] : 0;
            long left = padding is { Length: > 1 } ? padding[1] : top;
            return new[] { top, left, top, left };
        }

        internal static AttributeProto Int(string name, long value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        internal static AttributeProto Float(string name, double value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

        private static AttributeProto String(string name, string value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

        internal static AttributeProto Ints(string name, long[] values)
        {
            var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            attribute.Ints.AddRange(values);
            return attribute;
        }
    }
}
