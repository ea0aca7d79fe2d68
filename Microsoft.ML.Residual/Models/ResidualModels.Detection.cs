using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterDetectors(List<Entry> registry)
        {
            foreach (DetectorKind kind in new[] { DetectorKind.RetinaNet, DetectorKind.Fcos })
            {
                foreach (string backbone in new[] { "resnet50", "resnet18", "resnet34" })
                {
                    Entry entry = registry.Find(e => e.Info.Name == backbone) ?? throw new InvalidOperationException($"Register '{backbone}' before the detectors over it.");
                    string family = kind == DetectorKind.RetinaNet ? "retinanet" : "fcos";
                    string name = $"{family}_{backbone}_fpn";
                    string what = kind == DetectorKind.RetinaNet
                        ? "RetinaNet (Lin et al. 2017, torchvision v1): 9 anchors per location, N×A×(K+4) head outputs"
                        : "FCOS (Tian et al. 2019): one point per location, N×A×(K+5) head outputs (classes, distances, centerness)";
                    var card = new ModelInfo(name, family, $"{what}, over a {backbone} backbone with a 256-channel feature pyramid P3–P7")
                    {
                        Task = ModelTask.Detector, HeadPrefix = "head.", OptionsType = typeof(DetectorOptions), Encoder = backbone,
                        FirstConvolution = "backbone.body." + entry.Info.FirstConvolution, Mean = entry.Info.Mean, Std = entry.Info.Std,
                        Stages = Enumerable.Range(0, 5).Select(level => new StageInfo(DetectorOptions.DefaultFpnChannels, 8 << level)).ToArray(),
                    };
                    registry.Add(new Entry(card, (classes, channels, options) => DetectorOver(kind, backbone, name, classes, channels, options)));
                }
            }
        }

        // The detector `name` over its default backbone or DetectorOptions.Backbone, built without its classifier
        // (numClasses = 0) from DetectorOptions.BackboneOptions; its module must implement IStageEncoder.
        private static PyramidDetector DetectorOver(DetectorKind kind, string defaultBackbone, string name, int classes, int channels, ModelOptions? options)
        {
            DetectorOptions detector = DetectorOptions.From(options);
            string backboneName = detector.Backbone ?? defaultBackbone;
            Entry backbone = Lookup(backboneName) is { Info.Task: ModelTask.Classifier } found
                ? found
                : throw new ArgumentException(
                    $"DetectorOptions.Backbone = '{backboneName}' is not a registered classifier backbone. Use one of: "
                    + string.Join(", ", All.Where(m => m.Task == ModelTask.Classifier && m.Stages is { Count: >= 3 }).Select(m => m.Name)) + ".", nameof(options));
            if (channels < 1)
                throw new ArgumentException($"inChannels must be at least 1 (got {channels}); use 3 for RGB, 1 for grayscale.", nameof(channels));
            DetectorOptions.Check(detector, kind, classes);
            if (detector.Seed is long seed) manual_seed(seed);
            nn.Module<Tensor, Tensor> body;
            try
            {
                CheckOptionsType(backbone.Info, detector.BackboneOptions);
                body = backbone.Factory(0, channels, detector.BackboneOptions);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"DetectorOptions.BackboneOptions does not fit the {backbone.Info.Name} backbone of '{name}': {e.Message}", nameof(options), e);
            }

            try
            {
                DetectorOptions rest = detector.WithoutBackbone();
                return kind == DetectorKind.RetinaNet ? new RetinaNet(body, classes, rest) : new Fcos(body, classes, rest);
            }
            catch (ArgumentException e) when (e.ParamName == "body")
            {
                body.Dispose();
                throw new ArgumentException($"DetectorOptions.Backbone = '{backbone.Info.Name}' cannot carry the feature pyramid of '{name}': {e.Message}", nameof(options), e);
            }
        }
    }
}
