using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Google.Protobuf;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx.Proto;
using TorchSharp;
using Microsoft.ML.Residual.IO;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Onnx
{
    /// <summary>Mean/std normalisation of pixel input inside the graph: <c>(x · InputScale − Mean) / Std</c> per channel.</summary>
    public sealed class PixelNormalization
    {
        /// <summary>Multiplies the raw input first (1/255 turns ML.NET's 0–255 <c>ExtractPixels</c> output into 0–1).</summary>
        public double InputScale { get; set; } = 1.0 / 255.0;

        /// <summary>Per-channel mean, after <see cref="InputScale"/>.</summary>
        public IReadOnlyList<double> Mean { get; set; } = ModelInfo.ImageNetMean;

        /// <summary>Per-channel standard deviation, after <see cref="InputScale"/>.</summary>
        public IReadOnlyList<double> Std { get; set; } = ModelInfo.ImageNetStd;

        /// <summary>ImageNet statistics on 0–255 input (torchvision's pretrained models).</summary>
        public static PixelNormalization ImageNet() => new();

        /// <summary>
        /// ImageNet statistics for <paramref name="channels"/> = 3; for other channel counts their channel average, repeated
        /// (as for pretrained weights adapted to grayscale input).
        /// </summary>
        public static PixelNormalization ImageNet(int channels) => Of(ModelInfo.ImageNetMean, ModelInfo.ImageNetStd, channels);

        /// <summary>
        /// The statistics the model card gives (<see cref="ModelInfo.Mean"/>, <see cref="ModelInfo.Std"/>) when
        /// <paramref name="channels"/> is the card's channel count (3 for RGB); for other channel counts their channel average, repeated.
        /// </summary>
        public static PixelNormalization For(ModelInfo card, int channels) =>
            Of((card ?? throw new ArgumentNullException(nameof(card))).Mean, card.Std, channels);

        private static PixelNormalization Of(IReadOnlyList<double> mean, IReadOnlyList<double> std, int channels)
        {
            if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "At least one channel.");
            if (channels == mean.Count) return new PixelNormalization { Mean = mean.ToArray(), Std = std.ToArray() };
            return new PixelNormalization
            {
                Mean = Enumerable.Repeat(mean.Average(), channels).ToArray(),
                Std = Enumerable.Repeat(std.Average(), channels).ToArray(),
            };
        }
    }

    /// <summary>Options of <see cref="OnnxExporter.Export(nn.Module{Tensor, Tensor}, long[], string, OnnxExportOptions?)"/>.</summary>
    public sealed class OnnxExportOptions
    {
        /// <summary>Name of the graph input.</summary>
        public string InputName { get; set; } = "input";

        /// <summary>Name of the module's output (logits) when it is the graph's output.</summary>
        public string OutputName { get; set; } = "output";

        /// <summary>Normalise raw pixels inside the graph before the network (null: the input goes to the network as is).</summary>
        public PixelNormalization? Normalization { get; set; }

        /// <summary>
        /// Emit softmax probabilities over axis 1 (classes for a classifier, channels for a segmenter) as
        /// <see cref="ScoreName"/>, instead of the raw logits.
        /// </summary>
        public bool Softmax { get; set; }

        /// <summary>Name of the softmax (or sigmoid) output.</summary>
        public string ScoreName { get; set; } = "Score";

        /// <summary>
        /// Emit the sigmoid of each logit as <see cref="ScoreName"/> (independent probabilities, for several labels per image) instead
        /// of the raw logits; not with <see cref="Softmax"/>.
        /// </summary>
        public bool Sigmoid { get; set; }

        /// <summary>
        /// With <see cref="Sigmoid"/>: one threshold per output (or one for all); adds the Boolean output <see cref="PredictedFlagsName"/>,
        /// true where the probability is at least the threshold.
        /// </summary>
        public IReadOnlyList<float>? Thresholds { get; set; }

        /// <summary>Name of the thresholded output.</summary>
        public string PredictedFlagsName { get; set; } = "PredictedLabels";

        /// <summary>Also emit the index of the largest value over axis 1 (int64) as <see cref="PredictedIndexName"/>.</summary>
        public bool ArgMax { get; set; }

        /// <summary>Name of the arg-max output.</summary>
        public string PredictedIndexName { get; set; } = "PredictedIndex";

        /// <summary>
        /// Class names, one per output channel: adds a string output <see cref="PredictedLabelName"/> with the name of
        /// the arg-max class (implies <see cref="ArgMax"/>).
        /// </summary>
        public IReadOnlyList<string>? ClassNames { get; set; }

        /// <summary>Name of the class-name output.</summary>
        public string PredictedLabelName { get; set; } = "PredictedLabel";

        /// <summary>
        /// Also emit <see cref="OneHotName"/>: a float vector per row with 1 at the arg-max class and 0 elsewhere
        /// (for ML.NET, where it feeds the step that turns the prediction into a key column).
        /// </summary>
        public bool OneHot { get; set; }

        /// <summary>Name of the one-hot output.</summary>
        public string OneHotName { get; set; } = "PredictedOneHot";

        /// <summary>Make the first (batch) dimension of inputs and outputs symbolic. Default true.</summary>
        public bool DynamicBatch { get; set; } = true;

        /// <summary>The arg-max output as UInt32 rather than Int64 (ML.NET's type for class indices; not with <see cref="ClassNames"/>).</summary>
        internal bool PredictedIndexAsUInt32 { get; set; }

        /// <summary>Written into the model's metadata.</summary>
        public IReadOnlyDictionary<string, string>? Metadata { get; set; }

        /// <summary>
        /// Fold each BatchNorm into the convolution before it (equal within float rounding; fewer nodes). Reading the weights back
        /// (<see cref="OnnxWeights"/>) still gives the network's weights: the metadata keeps what folding changed. Default false here;
        /// the estimators fold by default.
        /// </summary>
        public bool FoldBatchNorm { get; set; }

        /// <summary>What the network computes in (float16 and INT8 fold BatchNorm first; INT8 needs <see cref="CalibrationImages"/>). Default float32.</summary>
        public OnnxPrecision Precision { get; set; } = OnnxPrecision.Float32;

        /// <summary>With <see cref="OnnxPrecision.Int8"/>: example images N×C×H×W as the graph's input reads them (0–255 with <see cref="Normalization"/>).</summary>
        public Tensor? CalibrationImages { get; set; }

        /// <summary>With <see cref="OnnxPrecision.Int8"/>: how activation ranges are chosen.</summary>
        public OnnxCalibration Calibration { get; set; } = new();

        /// <summary>Average the network's output over views of each image (mirror image, crops) inside the graph. Default none.</summary>
        public TestTimeAugmentation TestTimeAugmentation { get; set; }

        /// <summary>
        /// For a detector: box decoding, score threshold, top-k and NonMaxSuppression after the network, whose three outputs replace
        /// the raw output (one image per run: the input's batch dimension is 1).
        /// </summary>
        internal DetectionPostprocessing? Detection { get; set; }
    }

    /// <summary>
    /// Exports a TorchSharp module to ONNX (opset 17). By default BatchNorm stays a <c>BatchNormalization</c> node so that
    /// every initializer keeps its state-dict name and an exported model can be read back with <see cref="OnnxWeights"/> and
    /// trained further (ONNX Runtime fuses the pair at load time); <see cref="OnnxExportOptions.FoldBatchNorm"/> and
    /// <see cref="OnnxExportOptions.Precision"/> make a smaller graph for scoring (see <see cref="OnnxModelConverter"/>).
    /// Stochastic depth and dropout are inference-time identities and are not emitted.
    /// </summary>
    public static class OnnxExporter
    {
        /// <summary>The ONNX operator set the exporter targets.</summary>
        public const int OpsetVersion = 17;

        private const int IrVersion = 8;

        /// <summary>Exports <paramref name="module"/> (in eval mode) for inputs of <paramref name="inputShape"/> to <paramref name="path"/> (written atomically).</summary>
        /// <param name="module">The network; every submodule must be in eval mode.</param>
        /// <param name="inputShape">N×C×H×W of the example input; the batch dimension N is dynamic unless <see cref="OnnxExportOptions.DynamicBatch"/> is false.</param>
        /// <param name="path">The .onnx file to create or replace.</param>
        /// <param name="options">Input/output names and optional pre- and post-processing.</param>
        /// <exception cref="InvalidOperationException">A submodule is in training mode.</exception>
        /// <exception cref="NotSupportedException">A submodule cannot be exported; the message names its path.</exception>
        public static void Export(nn.Module<Tensor, Tensor> module, long[] inputShape, string path, OnnxExportOptions? options = null)
        {
            if (path is null) throw new ArgumentNullException(nameof(path));
            byte[] bytes = ExportToBytes(module, inputShape, options);
            AtomicFile.Write(path, temporary => File.WriteAllBytes(temporary, bytes));
        }

        /// <summary>Exports to an in-memory ONNX model (what ML.NET's <c>ApplyOnnxModel(Stream)</c> takes).</summary>
        public static byte[] ExportToBytes(nn.Module<Tensor, Tensor> module, long[] inputShape, OnnxExportOptions? options = null) =>
            BuildModel(module, inputShape, options ?? new OnnxExportOptions()).ToByteArray();

        internal static ModelProto BuildModel(nn.Module<Tensor, Tensor> module, long[] inputShape, OnnxExportOptions options)
        {
            if (module is null) throw new ArgumentNullException(nameof(module));
            if (inputShape is null || inputShape.Length == 0 || inputShape.Any(d => d < 1))
                throw new ArgumentException("inputShape must list positive dimensions, e.g. { 1, 3, 224, 224 }.", nameof(inputShape));
            CheckEvalMode(module);
            CheckOptions(options);

            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            Device device = module.parameters().FirstOrDefault()?.device ?? CPU;
            Tensor example = torch.rand(inputShape, generator: new Generator(seed: 0)).to(device);
            if (options.Normalization != null) example = example.Times(255.0);

            var builder = new OnnxGraphBuilder(module);
            GraphValue input = new(options.InputName, example);
            GraphValue networkInput = options.Normalization is { } normalization ? Normalize(builder, input, normalization) : input;
            GraphValue logits = builder.CallRoot(module, networkInput);
            CheckTrace(module, networkInput.Example, logits.Example);
            string networkOutput = logits.Name;
            int logitsRank = logits.Shape.Length;

            var outputs = new List<(string Name, Tensor Example, TensorProto.Types.DataType Type)>();
            bool argMax = options.ArgMax || options.ClassNames != null;
            if (options.Detection is { } detection)
            {
                var (boxes, scores, labels) = DetectionGraph.Emit(builder, logits, detection, (int)inputShape[2], (int)inputShape[3]);
                // One value per detection: a length the graph knows only when it runs.
                using Tensor variable = torch.zeros(0);
                outputs.Add((boxes, variable, TensorProto.Types.DataType.Float));
                outputs.Add((scores, variable, TensorProto.Types.DataType.Float));
                outputs.Add((labels, variable, TensorProto.Types.DataType.String));
            }
            else if (options.Softmax)
            {
                GraphValue score = builder.Rename(builder.Softmax(logits, 1), options.ScoreName);
                outputs.Add((score.Name, score.Example, TensorProto.Types.DataType.Float));
            }
            else if (options.Sigmoid)
            {
                GraphValue score = builder.Rename(builder.Sigmoid(logits), options.ScoreName);
                outputs.Add((score.Name, score.Example, TensorProto.Types.DataType.Float));
                if (options.Thresholds is { } thresholds)
                {
                    long labels = logits.Shape[1];
                    if (thresholds.Count != 1 && thresholds.Count != labels)
                        throw new ArgumentException($"Thresholds has {thresholds.Count} values; give one, or one per output ({labels}).", nameof(options));
                    float[] each = thresholds.Count == 1 ? Enumerable.Repeat(thresholds[0], (int)labels).ToArray() : thresholds.ToArray();
                    GraphValue limits = builder.ConstantValue(torch.tensor(each, new long[] { 1, labels }));
                    builder.AddRawNode("GreaterOrEqual", new[] { score.Name, limits.Name }, options.PredictedFlagsName);
                    outputs.Add((options.PredictedFlagsName, score.Example, TensorProto.Types.DataType.Bool));
                }
            }
            else
            {
                GraphValue raw = logits.Name == options.OutputName ? logits : builder.Rename(logits, options.OutputName);
                outputs.Add((raw.Name, raw.Example, TensorProto.Types.DataType.Float));
            }

            if (argMax)
            {
                GraphValue argMaxValue = builder.ArgMax(logits, 1);
                bool unsigned = options.PredictedIndexAsUInt32 && options.ClassNames is null;
                GraphValue index = builder.Rename(unsigned ? builder.CastToUInt32(argMaxValue) : argMaxValue, options.PredictedIndexName);
                outputs.Add((index.Name, index.Example, unsigned ? TensorProto.Types.DataType.Uint32 : TensorProto.Types.DataType.Int64));
                if (options.ClassNames != null)
                {
                    if (options.ClassNames.Count != logits.Shape[1])
                        throw new ArgumentException($"ClassNames has {options.ClassNames.Count} names but the model outputs {logits.Shape[1]} classes.", nameof(options));
                    string label = builder.GatherStrings(index, options.ClassNames);
                    builder.AddRawNode("Identity", new[] { label }, options.PredictedLabelName);
                    outputs.Add((options.PredictedLabelName, index.Example, TensorProto.Types.DataType.String));
                }
            }

            if (options.OneHot)
            {
                GraphValue oneHot = builder.Rename(builder.OneHotArgMax(logits), options.OneHotName);
                outputs.Add((oneHot.Name, oneHot.Example, TensorProto.Types.DataType.Float));
            }

            GraphProto graph = builder.Graph;
            graph.Name = module.GetType().Name;
            graph.Input.Add(ValueInfo(options.InputName, inputShape, TensorProto.Types.DataType.Float, options.DynamicBatch));
            if (options.Detection?.ImageSizeInputName is string sizeInput) graph.Input.Add(ValueInfo(sizeInput, new long[] { 1, 2 }, TensorProto.Types.DataType.Float, false));
            foreach (var (name, value, type) in outputs)
            {
                graph.Output.Add(options.Detection is null ? ValueInfo(name, value.shape, type, options.DynamicBatch)
                    : new ValueInfoProto
                    {
                        Name = name,
                        Type = new TypeProto
                        {
                            TensorType = new TypeProto.Types.Tensor
                            {
                                ElemType = (int)type,
                                Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimParam = name == options.Detection.BoxesName ? "box_values" : "detections" } } },
                            },
                        },
                    });
            }
            CheckParameterNames(module, builder);

            var model = new ModelProto
            {
                IrVersion = IrVersion,
                ProducerName = "ResidualML",
                ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
                Graph = graph,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = OpsetVersion });
            if (options.Metadata != null)
            {
                foreach (var (key, value) in options.Metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            }

            model.MetadataProps.Add(new StringStringEntryProto { Key = OnnxModelConverter.NetworkOutputKey, Value = networkOutput });
            model.MetadataProps.Add(new StringStringEntryProto { Key = TestTimeAugmentationGraph.RankKey, Value = logitsRank.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            OnnxModelConverter.ForScoring(model, options.FoldBatchNorm, options.TestTimeAugmentation, options.Precision,
                options.CalibrationImages is { } images ? OnnxModelConverter.Rows(images) : null, options.Calibration);
            return model;
        }

        private static GraphValue Normalize(OnnxGraphBuilder builder, GraphValue input, PixelNormalization normalization)
        {
            long channels = input.Shape.Length > 1 ? input.Shape[1] : 0;
            if (normalization.Mean.Count != channels || normalization.Std.Count != channels)
                throw new ArgumentException($"PixelNormalization has {normalization.Mean.Count} means and {normalization.Std.Count} standard deviations for {channels} input channels.");
            if (normalization.Std.Any(s => !(s > 0))) throw new ArgumentException("PixelNormalization.Std must be positive.");
            // (x·s − m)/σ = x·(s/σ) + (−m/σ), per channel.
            var shape = new long[input.Shape.Length];
            Array.Fill(shape, 1L);
            shape[1] = channels;
            float[] scale = normalization.Std.Select(s => (float)(normalization.InputScale / s)).ToArray();
            float[] shift = normalization.Mean.Zip(normalization.Std, (m, s) => (float)(-m / s)).ToArray();
            GraphValue scaleValue = builder.ConstantValue(torch.tensor(scale, shape));
            GraphValue shiftValue = builder.ConstantValue(torch.tensor(shift, shape));
            return builder.Add(builder.Mul(input, scaleValue), shiftValue);
        }

        private static void CheckEvalMode(nn.Module module)
        {
            foreach (var (name, child) in module.named_modules())
            {
                if (child.training)
                {
                    string where = name.Length == 0 ? "The module" : $"Module '{name}' ({child.GetType().Name})";
                    throw new InvalidOperationException($"{where} is in training mode. Call eval() on the model before exporting: ONNX graphs compute inference (BatchNorm running statistics, no dropout).");
                }
            }
        }

        private static void CheckOptions(OnnxExportOptions options)
        {
            var names = new List<string> { options.InputName, options.Softmax || options.Sigmoid ? options.ScoreName : options.OutputName };
            if (options.ArgMax || options.ClassNames != null) names.Add(options.PredictedIndexName);
            if (options.ClassNames != null) names.Add(options.PredictedLabelName);
            if (options.OneHot) names.Add(options.OneHotName);
            if (options.Sigmoid && options.Thresholds != null) names.Add(options.PredictedFlagsName);
            if (options.Detection is { } detection)
            {
                if (options.Softmax || options.Sigmoid || options.ArgMax || options.ClassNames != null || options.OneHot)
                    throw new ArgumentException("A detector's graph ends in its detections: Softmax, Sigmoid, ArgMax, ClassNames and OneHot do not apply.", nameof(options));
                if (options.DynamicBatch) throw new ArgumentException("A detector's graph scores one image per run: set DynamicBatch to false.", nameof(options));
                names = new List<string> { options.InputName, detection.BoxesName, detection.ScoresName, detection.LabelsName };
                if (detection.ImageSizeInputName is string size) names.Add(size);
            }

            if (options.Sigmoid && options.Softmax) throw new ArgumentException("Choose Softmax or Sigmoid, not both.", nameof(options));
            if (options.Thresholds != null && !options.Sigmoid) throw new ArgumentException("Thresholds apply to Sigmoid probabilities; set Sigmoid.", nameof(options));
            if (names.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException("Input and output names must not be empty.", nameof(options));
            if (names.Distinct(StringComparer.Ordinal).Count() != names.Count)
                throw new ArgumentException($"Input and output names must differ: {string.Join(", ", names)}.", nameof(options));
        }

        // The trace runs every emitted operator on TorchSharp too; a difference means an operator's graph form does
        // not compute what its tensor form does (or a layer the exporter does not know computes differently).
        private static void CheckTrace(nn.Module<Tensor, Tensor> module, Tensor input, Tensor traced)
        {
            Tensor expected = module.call(input);
            if (!expected.shape.SequenceEqual(traced.shape) || !expected.allclose(traced, rtol: 1e-4, atol: 1e-5, equal_nan: true))
            {
                throw new InvalidOperationException(
                    $"The graph emitted for {module.GetType().Name} does not compute its forward pass (shapes [{string.Join(", ", expected.shape)}] and "
                    + $"[{string.Join(", ", traced.shape)}]). A module that is not a ResidualModule must compute its forward() with layers the exporter knows.");
            }
        }

        private static void CheckParameterNames(nn.Module module, OnnxGraphBuilder builder)
        {
            var keys = new HashSet<string>(module.state_dict().Keys, StringComparer.Ordinal);
            string? stray = builder.ParameterNames.FirstOrDefault(name => !keys.Contains(name));
            if (stray != null)
                throw new InvalidOperationException($"The graph names an initializer '{stray}' that is not a state-dict key of {module.GetType().Name}.");
        }

        private static ValueInfoProto ValueInfo(string name, long[] shape, TensorProto.Types.DataType type, bool dynamicBatch)
        {
            var tensorShape = new TensorShapeProto();
            for (int i = 0; i < shape.Length; i++)
            {
                tensorShape.Dim.Add(i == 0 && dynamicBatch
                    ? new TensorShapeProto.Types.Dimension { DimParam = "N" }
                    : new TensorShapeProto.Types.Dimension { DimValue = shape[i] });
            }

            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = tensorShape } },
            };
        }
    }
}
