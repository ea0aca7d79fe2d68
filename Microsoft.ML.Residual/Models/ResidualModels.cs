using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>What a registered network computes.</summary>
    public enum ModelTask
    {
        /// <summary>Class logits per image (N×K).</summary>
        Classifier,

        /// <summary>Class logits per pixel at the input resolution (N×K×H×W).</summary>
        Segmenter,

        /// <summary>
        /// One-stage detector head outputs per anchor (N×A×(K+4) for RetinaNet, N×A×(K+5) for FCOS: class logits, box
        /// regression, centerness), before box decoding and post-processing; the network implements <see cref="IDetectionModel"/>.
        /// </summary>
        Detector,
    }

    /// <summary>One entry of the model registry.</summary>
    /// <param name="Name">The name <see cref="ResidualModels.Create"/> accepts.</param>
    /// <param name="Family">The family, e.g. "resnet".</param>
    /// <param name="Description">One line for tables and error messages.</param>
    public sealed record ModelInfo(string Name, string Family, string Description)
    {
        /// <summary>What the network computes: per-image or per-pixel class logits.</summary>
        public ModelTask Task { get; init; } = ModelTask.Classifier;

        /// <summary>
        /// The state-dict prefix of the classification head ("fc." for ResNets, "classifier." for DenseNets, as in
        /// torchvision). For an encoder U-Net, that of its encoder's classifier, whose weights load into the encoder; null for
        /// the classic U-Net, which has no classifier to come from.
        /// </summary>
        public string? HeadPrefix { get; init; }

        /// <summary>
        /// The options class the network takes (<see cref="ResNetOptions"/>, <see cref="DenseNetOptions"/>,
        /// <see cref="UNetOptions"/>, or a user's own <see cref="ModelOptions"/> subclass with a parameterless constructor).
        /// <see cref="ResidualModels.Create"/> accepts it or plain <see cref="ModelOptions"/>.
        /// </summary>
        public Type OptionsType { get; init; } = typeof(ModelOptions);

        /// <summary>For a segmenter built over a registered backbone, that backbone's name; null otherwise (the classic U-Net).</summary>
        public string? Encoder { get; init; }

        /// <summary>
        /// The module path of the convolution that sees the image (timm's <c>first_conv</c>): "conv1" for ResNets, "conv1.0" for
        /// the deep stem of ResNet-D, "features.conv0" for DenseNets, "encoder." and the encoder's for encoder U-Nets; its
        /// weight is <c>FirstConvolution + ".weight"</c>. Pretrained RGB weights are adapted there to other channel counts.
        /// </summary>
        public string? FirstConvolution { get; init; }

        /// <summary>The per-channel mean of RGB pixels in 0–1 the network is trained to expect (ImageNet's by default).</summary>
        public IReadOnlyList<double> Mean { get; init; } = ImageNetMean;

        /// <summary>The per-channel standard deviation of RGB pixels in 0–1 the network expects (ImageNet's by default).</summary>
        public IReadOnlyList<double> Std { get; init; } = ImageNetStd;

        /// <summary>ImageNet's per-channel mean of RGB pixels in 0–1 (what torchvision's weights expect).</summary>
        internal static readonly double[] ImageNetMean = { 0.485, 0.456, 0.406 };

        /// <summary>ImageNet's per-channel standard deviation of RGB pixels in 0–1.</summary>
        internal static readonly double[] ImageNetStd = { 0.229, 0.224, 0.225 };

        /// <summary>
        /// A stage encoder's stages with the default options (<see cref="IStageEncoder.StageChannels"/> and
        /// <see cref="IStageEncoder.StageReductions"/> of the network <see cref="ResidualModels.Create"/> builds); null for
        /// networks without stages.
        /// </summary>
        public IReadOnlyList<StageInfo>? Stages { get; init; }

        /// <summary>
        /// The smallest image side the network accepts (ConvNeXt: 32, one pixel left for its last 2×2 stride-2 convolution);
        /// the estimators and the featurizer refuse smaller images with a clear error.
        /// </summary>
        public int MinimumInputSize { get; init; } = 1;
    }

    /// <summary>One stage of a backbone: the channels of its output and its downsampling factor relative to the input.</summary>
    /// <param name="Channels">Output channels.</param>
    /// <param name="Reduction">Input size ÷ output size, e.g. 4 for the first ResNet stage.</param>
    public sealed record StageInfo(int Channels, int Reduction);

    /// <summary>
    /// Creates every network of the library by name (torchvision's names where torchvision has the model).
    /// </summary>
    /// <example>
    /// <code>
    /// var model = ResidualModels.Create("resnet50", numClasses: 10);
    /// var cifar = ResidualModels.Create("resnet20", numClasses: 10, options: new ResNetOptions { ZeroInitResidual = true });
    /// </code>
    /// </example>
    public static partial class ResidualModels
    {
        private sealed record Entry(ModelInfo Info, Func<int, int, ModelOptions?, nn.Module<Tensor, Tensor>> Factory);

        // Declared before the registry: BuildRegistry fills it (static initialisers run in textual order).
        private static readonly Dictionary<string, ResNetDefinition> ResNetPresets = new(StringComparer.OrdinalIgnoreCase);

        private static readonly List<Entry> Entries = BuildRegistry();

        private static readonly Dictionary<string, Entry> Registry =
            Entries.ToDictionary(e => e.Info.Name, StringComparer.OrdinalIgnoreCase);

        /// <summary>Every name <see cref="Create"/> accepts, in registry order (the library's, then those registered since).</summary>
        public static IReadOnlyList<string> Names
        {
            get
            {
                lock (Entries) return Entries.Select(e => e.Info.Name).ToList();
            }
        }

        /// <summary>The card of every registered model.</summary>
        public static IReadOnlyList<ModelInfo> All
        {
            get
            {
                lock (Entries) return Entries.Select(e => e.Info).ToList();
            }
        }

        /// <summary>The registry's card for <paramref name="name"/> (case-insensitive), or null when no model has that name.</summary>
        public static ModelInfo? Find(string? name) => Lookup(name)?.Info;

        /// <summary>
        /// Registers a network under a new name, from any assembly: it is then created by <see cref="Create"/> and trained,
        /// exported, featurised and diagnosed like the library's own. Derive the network from <see cref="ResidualModule"/> (its
        /// forward written once) so that it also exports to ONNX; a classifier implements <see cref="IClassifierModel"/>, and
        /// one that implements <see cref="IStageEncoder"/> can serve as a U-Net encoder.
        /// </summary>
        /// <param name="card">
        /// The model's card: its <see cref="ModelInfo.Name"/> (not yet registered), family and description; a classifier's
        /// <see cref="ModelInfo.HeadPrefix"/> (the state-dict prefix of its last linear layer) is required.
        /// </param>
        /// <param name="factory">
        /// Builds the network from the number of classes (0: a classifier without its head, returning pooled features), the
        /// input channels and the options (null, or an instance of the card's <see cref="ModelInfo.OptionsType"/> or of
        /// <see cref="ModelOptions"/>). It throws <see cref="ArgumentException"/> for
        /// options it cannot honour.
        /// </param>
        /// <exception cref="ArgumentException">The name is empty or taken, or the card is incomplete.</exception>
        public static void Register(ModelInfo card, Func<int, int, ModelOptions?, nn.Module<Tensor, Tensor>> factory)
        {
            if (card is null) throw new ArgumentNullException(nameof(card));
            if (factory is null) throw new ArgumentNullException(nameof(factory));
            if (string.IsNullOrWhiteSpace(card.Name)) throw new ArgumentException("Give the model a name.", nameof(card));
            if (card.Task == ModelTask.Classifier && string.IsNullOrEmpty(card.HeadPrefix))
                throw new ArgumentException($"The classifier '{card.Name}' needs ModelInfo.HeadPrefix: the state-dict prefix of its last linear layer (e.g. \"fc.\"), which fine-tuning replaces.", nameof(card));
            if (!typeof(ModelOptions).IsAssignableFrom(card.OptionsType) || card.OptionsType.GetConstructor(Type.EmptyTypes) is null)
                throw new ArgumentException($"ModelInfo.OptionsType of '{card.Name}' must be ModelOptions or a subclass with a parameterless constructor; got {card.OptionsType.Name}.", nameof(card));
            if (card.Mean is null || card.Std is null || card.Mean.Count == 0 || card.Mean.Count != card.Std.Count || card.Std.Any(s => !(s > 0 && double.IsFinite(s))))
                throw new ArgumentException($"ModelInfo.Mean and Std of '{card.Name}' must have one value per channel each (as many means as deviations), the deviations positive.", nameof(card));
            lock (Entries)
            {
                if (Registry.ContainsKey(card.Name))
                    throw new ArgumentException($"A model named '{card.Name}' is already registered; choose another name.", nameof(card));
                var entry = new Entry(card, factory);
                Entries.Add(entry);
                Registry[card.Name] = entry;
            }
        }

        /// <summary>New options of the class the card names (the estimators fill them in).</summary>
        internal static ModelOptions NewOptions(ModelInfo card) => (ModelOptions)Activator.CreateInstance(card.OptionsType)!;

        private static void CheckOptionsType(ModelInfo card, ModelOptions? options)
        {
            if (options != null && options.GetType() != card.OptionsType && options.GetType() != typeof(ModelOptions))
                throw new ArgumentException($"'{card.Name}' takes {card.OptionsType.Name} (or ModelOptions), not {options.GetType().Name}.", nameof(options));
        }

        private static Entry? Lookup(string? name)
        {
            if (name is null) return null;
            lock (Entries) return Registry.TryGetValue(name, out Entry? entry) ? entry : null;
        }

        /// <summary>Creates the named network with freshly initialised weights.</summary>
        /// <param name="name">One of <see cref="Names"/> (case-insensitive).</param>
        /// <param name="numClasses">Classifier outputs (default 1000; 0 = a classifier without its head). For the U-Net
        /// family the classes per pixel, for the detectors the object classes (without background): both must be given, there is no sensible default.</param>
        /// <param name="inChannels">Input channels (3 for RGB, 1 for grayscale).</param>
        /// <param name="options">Variant options; null keeps the name's defaults. For the ResNet family pass <see cref="ResNetOptions"/>, for the U-Net family <see cref="UNetOptions"/>, for the detectors <see cref="DetectorOptions"/>.</param>
        /// <exception cref="ArgumentException">Unknown name, or options that do not fit the family.</exception>
        public static nn.Module<Tensor, Tensor> Create(string name, int? numClasses = null, int inChannels = 3, ModelOptions? options = null)
        {
            if (name is null) throw new ArgumentNullException(nameof(name));
            if (Lookup(name) is not Entry entry)
            {
                string stem = name.TrimEnd('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '_', 'x', 'd');
                string near = stem.Length < 3 ? string.Empty : string.Join(", ", Names.Where(n => n.StartsWith(stem, StringComparison.OrdinalIgnoreCase)).Take(12));
                throw new ArgumentException(
                    $"Unknown model name '{name}'. " + (near.Length > 0 ? $"Similar names: {near}. " : string.Empty) +
                    "ResidualModels.Names lists every name.", nameof(name));
            }

            CheckOptionsType(entry.Info, options);
            if (numClasses is null && entry.Info.Task == ModelTask.Segmenter)
                throw new ArgumentException($"'{name}' is a segmentation model: pass numClasses, the number of classes per pixel (e.g. 2 for foreground/background).", nameof(numClasses));
            if (numClasses is null && entry.Info.Task == ModelTask.Detector)
                throw new ArgumentException($"'{name}' is a detector: pass numClasses, the number of object classes (without a background class, e.g. 1 for one kind of object).", nameof(numClasses));
            return entry.Factory(numClasses ?? 1000, inChannels, options);
        }

        /// <summary>The definition a ResNet-family name stands for (before options), or null for other families.</summary>
        public static ResNetDefinition? GetResNetDefinition(string name) =>
            ResNetPresets.TryGetValue(name, out ResNetDefinition? definition) ? definition : null;

        private static List<Entry> BuildRegistry()
        {
            var registry = new List<Entry>();
            RegisterResNets(registry);
            RegisterDenseNets(registry);
            RegisterMobileNets(registry);
            RegisterConvNeXts(registry);
            RegisterRegNets(registry);
            RegisterUNets(registry);
            RegisterDetectors(registry);
            return registry;
        }
    }
}
