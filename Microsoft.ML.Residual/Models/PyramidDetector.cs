using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A one-stage detector over a feature pyramid: a backbone with a pyramid (<c>backbone</c>, a
    /// <see cref="FeaturePyramidBackbone"/>: <c>backbone.body.*</c> the classifier's own keys, <c>backbone.fpn.*</c>) and the
    /// heads (<c>head.*</c>) shared by the five levels P3–P7, in torchvision 0.14's layout and state-dict names. The forward
    /// pass returns the heads' raw outputs, <c>N × A × (K + 4)</c> (RetinaNet) or <c>N × A × (K + 5)</c> (FCOS), as
    /// <see cref="IDetectionModel"/> describes; anchors, box decoding and post-processing are not part of the network.
    /// </summary>
    public abstract class PyramidDetector : ResidualModule, IDetectionModel, Weights.IStateDictKeyUpgrade
    {
        private readonly FeaturePyramidBackbone backbone;
        private readonly DetectionHead head;

        /// <summary>Builds the pyramid and the heads over <paramref name="body"/>.</summary>
        /// <param name="name">The module's name.</param>
        /// <param name="kind">RetinaNet or FCOS.</param>
        /// <param name="body">The backbone classifier, built without its head (see <see cref="FeaturePyramidBackbone"/>).</param>
        /// <param name="numClasses">K, object classes without background.</param>
        /// <param name="options">
        /// <see cref="DetectorOptions.FpnChannels"/>, <see cref="DetectorOptions.HeadConvolutions"/> and
        /// <see cref="ModelOptions.Seed"/> (seeds the pyramid's and heads' initialisation; the body is already built).
        /// <see cref="DetectorOptions.Backbone"/> and <see cref="DetectorOptions.BackboneOptions"/> must be null here.
        /// </param>
        /// <exception cref="ArgumentException">The body has no usable stages, or an option is out of range or does not apply.</exception>
        private protected PyramidDetector(string name, DetectorKind kind, nn.Module<Tensor, Tensor> body, int numClasses, DetectorOptions? options)
            : base(name)
        {
            if (body is null) throw new ArgumentNullException(nameof(body));
            options ??= new DetectorOptions();
            if (options.Backbone != null || options.BackboneOptions != null)
            {
                throw new ArgumentException(
                    "DetectorOptions.Backbone and BackboneOptions choose and configure the backbone when ResidualModels.Create builds it; this constructor receives "
                    + "a backbone that is already built. Leave them null and configure the backbone you pass in.",
                    nameof(options));
            }

            DetectorOptions.Check(options, kind, numClasses);
            if (options.Seed is long seed) torch.manual_seed(seed);
            Kind = kind;
            NumClasses = numClasses;
            AnchorsPerLocation = kind == DetectorKind.RetinaNet ? 9 : 1;
            FpnChannels = options.FpnChannels ?? DetectorOptions.DefaultFpnChannels;
            HeadConvolutions = options.HeadConvolutions ?? DetectorOptions.DefaultHeadConvolutions;
            backbone = new FeaturePyramidBackbone(body, FpnChannels);
            head = new DetectionHead(kind, FpnChannels, AnchorsPerLocation, numClasses, HeadConvolutions);
            register_module("backbone", backbone);
            register_module("head", head);
        }

        /// <inheritdoc />
        public DetectorKind Kind { get; }

        /// <inheritdoc />
        public int NumClasses { get; }

        /// <inheritdoc />
        public int AnchorsPerLocation { get; }

        /// <summary>Channels of the pyramid levels and the head towers.</summary>
        public int FpnChannels { get; }

        /// <summary>3×3 convolutions in each head tower.</summary>
        public int HeadConvolutions { get; }

        /// <summary>The backbone with its pyramid (registered as <c>backbone</c>).</summary>
        public FeaturePyramidBackbone Backbone => backbone;

        /// <summary>Reductions of P3–P7 relative to the input (8, 16, 32, 64, 128 for a ResNet backbone).</summary>
        public IReadOnlyList<int> LevelReductions => backbone.StageReductions;

        /// <inheritdoc />
        public string HeadPrefix => "head.";

        /// <inheritdoc />
        public string BackbonePrefix => "backbone.body.";

        /// <summary>Values per anchor in the output: K + 4 (RetinaNet) or K + 5 (FCOS).</summary>
        public int OutputsPerAnchor => NumClasses + (Kind == DetectorKind.Fcos ? 5 : 4);

        /// <summary>
        /// Reads the keys of torchvision's checkpoints written before its version 0.13 (its COCO weights among them), as torchvision's
        /// own loaders upgrade them: the pyramid's <c>inner_blocks.{i}</c> and <c>layer_blocks.{i}</c> convolutions become
        /// <c>….{i}.0</c>, and RetinaNet's head towers <c>conv.{2i}</c> (convolutions between ReLUs) become <c>conv.{i}.0</c>.
        /// </summary>
        public string UpgradeKey(string key)
        {
            key = LegacyPyramidKey.Replace(key, "$1.0.$2");
            return Kind == DetectorKind.RetinaNet
                ? LegacyTowerKey.Replace(key, match => $"{match.Groups[1].Value}.{int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) / 2}.0.{match.Groups[3].Value}")
                : key;
        }

        private static readonly System.Text.RegularExpressions.Regex LegacyPyramidKey =
            new(@"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$", System.Text.RegularExpressions.RegexOptions.Compiled);

        private static readonly System.Text.RegularExpressions.Regex LegacyTowerKey =
            new(@"^(head\.(?:classification|regression)_head\.conv)\.(\d*[02468])\.(weight|bias)$", System.Text.RegularExpressions.RegexOptions.Compiled);

        /// <inheritdoc cref="FeaturePyramidBackbone.LevelSizes"/>
        public IReadOnlyList<(int Height, int Width)> LevelSizes(int height, int width) => backbone.LevelSizes(height, width);

        /// <summary>A (the anchors of an input of <paramref name="height"/> × <paramref name="width"/>): the locations of every level × <see cref="AnchorsPerLocation"/>.</summary>
        public int AnchorCount(int height, int width)
        {
            int locations = 0;
            foreach (var (h, w) in LevelSizes(height, width)) locations += h * w;
            return locations * AnchorsPerLocation;
        }

        /// <summary>
        /// Maps the keys of a plain classifier checkpoint of the backbone's architecture (e.g. a torchvision <c>resnet50</c>
        /// state dict) to this model's keys, <c>k → "backbone.body." + k</c>, and drops the classifier's keys (returns null).
        /// Use it as <c>StateDictLoadOptions.MapKey</c>, with <c>"backbone.fpn."</c> and <c>"head."</c> as skipped prefixes.
        /// </summary>
        /// <param name="classifierPrefix">State-dict prefix of the checkpoint's classifier (<c>"fc."</c> for ResNets); null keeps every key.</param>
        /// <exception cref="ArgumentException"><paramref name="classifierPrefix"/> is empty.</exception>
        public static Func<string, string?> BackboneKeyMap(string? classifierPrefix = "fc.")
        {
            if (classifierPrefix is { Length: 0 })
                throw new ArgumentException("classifierPrefix is empty, which would drop every key; pass the classifier's prefix (\"fc.\") or null.", nameof(classifierPrefix));
            return key => classifierPrefix != null && key.StartsWith(classifierPrefix, StringComparison.Ordinal) ? null : "backbone.body." + key;
        }

        /// <summary>The heads' outputs, N × A × (K + 4 [+ 1]), for an N × C × H × W input of any size (see <see cref="FeaturePyramidBackbone"/>).</summary>
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            if (ops is null) throw new ArgumentNullException(nameof(ops));
            IReadOnlyList<T> levels = ops.CallStages(backbone, input);
            return head.Forward(ops, levels);
        }
    }

    /// <summary>
    /// RetinaNet (Lin et al. 2017) as torchvision's <c>retinanet_resnet50_fpn</c> (v1): 9 anchors per location; two towers of
    /// 3×3 convolution + ReLU; per anchor K class logits (<c>cls_logits</c>, bias initialised to the prior −log(99)) and 4
    /// box deltas (<c>bbox_reg</c>): outputs N × A × (K + 4).
    /// </summary>
    public sealed class RetinaNet : PyramidDetector
    {
        /// <summary>Builds RetinaNet over a backbone classifier built without its head (numClasses 0).</summary>
        /// <param name="body">A classifier that implements <see cref="IStageEncoder"/>, e.g. a <see cref="ResNet"/>; registered as <c>backbone.body</c>.</param>
        /// <param name="numClasses">K, object classes without background.</param>
        /// <param name="options">Pyramid and head options (see <see cref="PyramidDetector"/>); null keeps torchvision's.</param>
        public RetinaNet(nn.Module<Tensor, Tensor> body, int numClasses, DetectorOptions? options = null)
            : base(nameof(RetinaNet), DetectorKind.RetinaNet, body, numClasses, options)
        {
        }
    }

    /// <summary>
    /// FCOS (Tian et al. 2019) as torchvision's <c>fcos_resnet50_fpn</c>: one anchor point per location; two towers of 3×3
    /// convolution + GroupNorm (min(32, channels) groups) + ReLU; per location K class logits, 4 distances (left, top, right,
    /// bottom, through a ReLU as torchvision's regression head) and 1 centerness logit: outputs N × A × (K + 5).
    /// </summary>
    public sealed class Fcos : PyramidDetector
    {
        /// <summary>Builds FCOS over a backbone classifier built without its head (numClasses 0).</summary>
        /// <param name="body">A classifier that implements <see cref="IStageEncoder"/>, e.g. a <see cref="ResNet"/>; registered as <c>backbone.body</c>.</param>
        /// <param name="numClasses">K, object classes without background.</param>
        /// <param name="options">Pyramid and head options (see <see cref="PyramidDetector"/>); null keeps torchvision's.</param>
        public Fcos(nn.Module<Tensor, Tensor> body, int numClasses, DetectorOptions? options = null)
            : base(nameof(Fcos), DetectorKind.Fcos, body, numClasses, options)
        {
        }
    }
}
