using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using Google.Protobuf;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Onnx.Proto;
using Microsoft.ML.Residual.Weights;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Interpretation
{
    /// <summary>
    /// A classifier rebuilt from a saved model (a model.zip from <c>ml.Model.Save</c> or an exported .onnx file): the network
    /// from its card with the saved weights (<see cref="SavedModelWeights.Read"/>), its class names, and the pixels it scores
    /// (channels, height and width of the graph's input).
    /// </summary>
    internal sealed class SavedClassifier
    {
        private const string ThresholdsKey = "thresholds";

        private SavedClassifier(ClassifierNetwork network, ModelInfo card, string[] classes, long[] input, bool multiLabel)
        {
            Network = network;
            Card = card;
            Classes = classes;
            Channels = (int)input[1];
            Height = (int)input[2];
            Width = (int)input[3];
            MultiLabel = multiLabel;
        }

        public ClassifierNetwork Network { get; }

        public ModelInfo Card { get; }

        public string[] Classes { get; }

        public int Channels { get; }

        public int Height { get; }

        public int Width { get; }

        /// <summary>Whether the model is a multi-label classifier (a sigmoid per class rather than a softmax over them).</summary>
        public bool MultiLabel { get; }

        /// <exception cref="ArgumentException">The file is missing or unreadable, or holds no classifier this library saved.</exception>
        public static SavedClassifier Read(string path, string parameterName)
        {
            string Problem(string what) => $"{parameterName} = '{path}': {what}";
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException($"{parameterName} is empty; give the path of a model.zip saved from a ResidualML classifier.", parameterName);
            if (!File.Exists(path)) throw new ArgumentException(Problem("there is no such file; give the model.zip saved from a ResidualML classifier (ml.Model.Save)."), parameterName);
            ModelProto graph;
            try
            {
                graph = FindGraph(path) ?? throw new ArgumentException(
                    Problem("the file holds no ONNX graph exported by a ResidualML classifier; give a model.zip saved from ImageClassifier/ResNetClassifier or an .onnx file from its export."),
                    parameterName);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or InvalidProtocolBufferException)
            {
                throw new ArgumentException(Problem($"the file cannot be read as a saved model ({e.Message})."), parameterName, e);
            }

            string architecture = graph.MetadataProps.First(p => p.Key == SavedModelWeights.ArchitectureKey).Value;
            ModelInfo card = ResidualModels.Find(architecture)
                ?? throw new ArgumentException(Problem($"it holds a '{architecture}', which is not registered in this process; register it (ResidualModels.Register) before loading."), parameterName);
            if (card.Task != ModelTask.Classifier)
                throw new ArgumentException(Problem($"it holds a {architecture}, a {card.Task.ToString().ToLowerInvariant()}; Grad-CAM explains classifiers."), parameterName);
            long[] input = InputShape(graph);
            if (input.Length != 4 || input.Skip(1).Any(d => d <= 0))
                throw new ArgumentException(Problem($"its graph input has the shape [{string.Join(", ", input)}], not N×C×H×W pixels; give a model.zip saved from an image classifier."), parameterName);

            using TensorDictionary weights = SavedModelWeights.Read(path, parameterName);
            string[] classes = SavedModelWeights.ClassNames(weights) ?? throw new ArgumentException(Problem("the graph records no class names."), parameterName);
            ModelOptions options = ResidualModels.NewOptions(card);
            if (options is IStemOptions stems && weights.Metadata.TryGetValue(SavedModelWeights.StemKey, out string? stem) && Enum.TryParse(stem, out StemKind kind))
                stems.Stem = kind;
            nn.Module<Tensor, Tensor> model = ResidualModels.Create(architecture, classes.Length, (int)input[1], options);
            try
            {
                if (model is not ClassifierNetwork network)
                    throw new ArgumentException(Problem($"its architecture '{architecture}' builds a {model.GetType().Name}, not one of the library's classifier networks; Grad-CAM needs a ClassifierNetwork."), parameterName);
                StateDict.Load(model, weights, strict: true);
                model.eval();
                return new SavedClassifier(network, card, classes, input, graph.MetadataProps.Any(p => p.Key == ThresholdsKey));
            }
            catch (StateDictMismatchException e)
            {
                model.Dispose();
                throw new ArgumentException(Problem($"its weights do not fit a {architecture} ({e.Message})."), parameterName, e);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        // The graph a ResidualML estimator exported: an .onnx file, or the model.zip's OnnxModel entry whose metadata names the architecture.
        private static ModelProto? FindGraph(string path)
        {
            ZipArchive zip;
            try
            {
                zip = ZipFile.OpenRead(path);
            }
            catch (InvalidDataException)
            {
                using FileStream stream = File.OpenRead(path); // not a zip: an .onnx file
                ModelProto proto = ModelProto.Parser.ParseFrom(stream);
                return IsOurs(proto) ? proto : null;
            }

            using var opened = zip;
            long length = new FileInfo(path).Length;
            foreach (ZipArchiveEntry entry in MlNetInternals.OnnxModelEntries(zip))
            {
                ModelProto proto = ModelProto.Parser.ParseFrom(MlNetInternals.ReadOnnxModel(entry, length));
                if (IsOurs(proto)) return proto;
            }

            return null;
        }

        private static bool IsOurs(ModelProto proto) => proto.Graph != null && proto.MetadataProps.Any(p => p.Key == SavedModelWeights.ArchitectureKey);

        private static long[] InputShape(ModelProto proto) =>
            proto.Graph.Input.FirstOrDefault()?.Type?.TensorType?.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray() ?? Array.Empty<long>();
    }
}
