using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Microsoft.ML.Residual.Tests.Onnx;

[TestClass]
public sealed class DetectionGraphTests
{
    private const int Height = 64, Width = 96;

    private static readonly string[] Names = { "cat", "dog", "bird" };

    // A small detector with random BatchNorm statistics, in eval mode.
    private static nn.Module<Tensor, Tensor> Detector(string architecture)
    {
        var model = ResidualModels.Create(architecture, Names.Length, options: new DetectorOptions { FpnChannels = 32, HeadConvolutions = 1, Seed = 3 });
        OnnxTestSupport.RandomizeBatchNorm(model, seed: 4);
        model.eval();
        return model;
    }

    private static DetectionPostprocessing Postprocessing(IDetectionModel detector, double scoreThreshold, string? sizeInput = null) => new()
    {
        Kind = detector.Kind,
        Anchors = DetectionAnchors.Create(detector.Kind, Height, Width, detector.LevelSizes(Height, Width)),
        AnchorsPerLevel = detector.LevelSizes(Height, Width).Select(l => l.Height * l.Width * detector.AnchorsPerLocation).ToArray(),
        ClassNames = Names, ScoreThreshold = scoreThreshold, NmsThreshold = DetectionPostprocessOptions.For(detector.Kind).NmsThreshold,
        CandidatesPerLevel = 1000, MaxDetections = 50, ImageSizeInputName = sizeInput,
    };

    private static (float[] Boxes, float[] Scores, string[] Labels) RunGraph(byte[] model, Tensor image, float[]? size = null) =>
        RunGraph(model, image, size, out _);

    // Also the network's raw output (N×A×(K+4|5)), made a graph output for the test.
    private static (float[] Boxes, float[] Scores, string[] Labels) RunGraph(byte[] model, Tensor image, float[]? size, out Tensor raw)
    {
        var proto = Microsoft.ML.Residual.Onnx.Proto.ModelProto.Parser.ParseFrom(model);
        string rawName = proto.MetadataProps.First(p => p.Key == OnnxModelConverter.NetworkOutputKey).Value;
        proto.Graph.Output.Add(new Microsoft.ML.Residual.Onnx.Proto.ValueInfoProto
        {
            Name = rawName,
            Type = new Microsoft.ML.Residual.Onnx.Proto.TypeProto
            {
                TensorType = new Microsoft.ML.Residual.Onnx.Proto.TypeProto.Types.Tensor { ElemType = (int)Microsoft.ML.Residual.Onnx.Proto.TensorProto.Types.DataType.Float },
            },
        });
        using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(proto));
        var feed = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(image.contiguous().data<float>().ToArray(), image.shape.Select(d => (int)d).ToArray())),
        };
        if (size != null) feed.Add(NamedOnnxValue.CreateFromTensor("size", new DenseTensor<float>(size, new[] { 1, 2 })));
        using var results = session.Run(feed);
        var outputs = results.ToDictionary(r => r.Name, r => r);
        var rawValue = outputs[rawName].AsTensor<float>();
        raw = torch.tensor(rawValue.ToArray(), rawValue.Dimensions.ToArray().Select(d => (long)d).ToArray());
        return (outputs["PredictedBoundingBoxes"].AsTensor<float>().ToArray(), outputs["Score"].AsTensor<float>().ToArray(), outputs["PredictedLabel"].AsTensor<string>().ToArray());
    }

    [TestMethod]
    [DataRow("retinanet_resnet18_fpn", 0.011)]
    [DataRow("fcos_resnet18_fpn", 0.06)]
    public void ExportedDetector_FindsTheBoxesTorchSharpFinds(string architecture, double scoreThreshold)
    {
        using var scope = NewDisposeScope();
        using var model = Detector(architecture);
        var detector = (IDetectionModel)model;
        Tensor image = torch.rand(new long[] { 1, 3, Height, Width }, generator: new Generator(7)).Times(4.0).Plus(-2.0);
        DetectionPostprocessing post = Postprocessing(detector, scoreThreshold);
        byte[] onnx = OnnxExporter.ExportToBytes(model, image.shape, new OnnxExportOptions { DynamicBatch = false, Detection = post });
        var (boxes, scores, labels) = RunGraph(onnx, image, null, out Tensor raw);

        // The network part: ONNX Runtime's raw outputs are TorchSharp's within float32 rounding (as every exporter parity test checks).
        OnnxTestSupport.AssertMatchesFloat64(model, image, raw, architecture);
        // The post-processing part, from the same raw outputs: ORT's operators and the library's TorchSharp post-processing (torchvision's,
        // tested against it) give the same detections; only their sigmoid, exp and sqrt may round differently (a few units in the last place).
        Tensor outputs = raw;
        var options = new DetectionPostprocessOptions(scoreThreshold, post.NmsThreshold, post.CandidatesPerLevel, post.MaxDetections);
        Detections expected = DetectionPostprocess.Detect(detector.Kind, outputs, post.Anchors, post.AnchorsPerLevel, Height, Width, options)[0];
        Assert.IsTrue(expected.Scores.shape[0] > 5, $"the threshold leaves candidates to suppress ({expected.Scores.shape[0]})");
        float[] expectedScores = expected.Scores.data<float>().ToArray();
        long[] expectedLabels = expected.Labels.data<long>().ToArray();
        float[] expectedBoxes = expected.Boxes.contiguous().data<float>().ToArray();

        Assert.AreEqual(expectedScores.Length, scores.Length, "as many detections");
        CollectionAssert.AreEqual(expectedLabels.Select(k => Names[k]).ToArray(), labels, "the same classes, in the same order");
        double scoreBound = 1e-6, boxBound = 1e-5 * Math.Max(Height, Width);
        for (int i = 0; i < scores.Length; i++) Assert.AreEqual(expectedScores[i], scores[i], scoreBound, $"score {i}");
        for (int i = 0; i < boxes.Length; i++) Assert.AreEqual(expectedBoxes[i], boxes[i], boxBound, $"box value {i}");
    }

    [TestMethod]
    public void ExportedDetector_ScalesItsBoxesToTheOriginalImageSizeInput()
    {
        using var scope = NewDisposeScope();
        using var model = Detector("retinanet_resnet18_fpn");
        var detector = (IDetectionModel)model;
        Tensor image = torch.rand(new long[] { 1, 3, Height, Width }, generator: new Generator(8)).Times(4.0).Plus(-2.0);
        byte[] plain = OnnxExporter.ExportToBytes(model, image.shape, new OnnxExportOptions { DynamicBatch = false, Detection = Postprocessing(detector, 0.011) });
        byte[] sized = OnnxExporter.ExportToBytes(model, image.shape, new OnnxExportOptions { DynamicBatch = false, Detection = Postprocessing(detector, 0.011, "size") });
        var (boxes, scores, _) = RunGraph(plain, image);
        var (scaledBoxes, scaledScores, _) = RunGraph(sized, image, new float[] { 2 * Height, 3 * Width });
        CollectionAssert.AreEqual(scores, scaledScores);
        Assert.IsTrue(boxes.Length > 0);
        for (int i = 0; i < boxes.Length; i++)
        {
            float factor = i % 2 == 0 ? 3 : 2;
            Assert.AreEqual(boxes[i] * factor, scaledBoxes[i], 1e-5 * Math.Abs(boxes[i] * factor) + 1e-5, $"value {i}: x by 3, y by 2");
        }
    }

    [TestMethod]
    public void ExportedDetector_WithNothingAboveTheThreshold_GivesEmptyOutputs()
    {
        using var scope = NewDisposeScope();
        using var model = Detector("retinanet_resnet18_fpn");
        Tensor image = torch.rand(new long[] { 1, 3, Height, Width }, generator: new Generator(9));
        byte[] onnx = OnnxExporter.ExportToBytes(model, image.shape, new OnnxExportOptions { DynamicBatch = false, Detection = Postprocessing((IDetectionModel)model, 0.999) });
        var (boxes, scores, labels) = RunGraph(onnx, image);
        Assert.AreEqual(0, boxes.Length);
        Assert.AreEqual(0, scores.Length);
        Assert.AreEqual(0, labels.Length);
    }
}
