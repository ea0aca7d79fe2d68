// Exports every registered model (and a classifier with pre- and post-processing) to a folder, for
// checking with ONNX's own checker outside the tests:
//
//   dotnet run --project tools/OnnxConformance -c Release -- /tmp/onnx-check
//   /usr/bin/python3 tools/OnnxConformance/check_onnx.py /tmp/onnx-check
using System;
using System.IO;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using TorchSharp;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: OnnxConformance OUTPUT_FOLDER");
    return 2;
}

Directory.CreateDirectory(args[0]);
foreach (ModelInfo info in ResidualModels.All)
{
    bool segmentation = info.Task == ModelTask.Segmenter;
    using var model = ResidualModels.Create(info.Name, numClasses: segmentation ? 3 : 10);
    model.eval();
    long[] shape = segmentation ? new long[] { 1, 3, 35, 29 } : new long[] { 1, 3, 32, 32 };
    string path = Path.Combine(args[0], info.Name + ".onnx");
    OnnxExporter.Export(model, shape, path);
    Console.WriteLine($"{info.Name,-20} {new FileInfo(path).Length / 1e6,8:F1} MB");
}

using (var classifier = ResidualModels.Create("resnet18", numClasses: 3))
{
    classifier.eval();
    OnnxExporter.Export(classifier, new long[] { 1, 3, 64, 64 }, Path.Combine(args[0], "resnet18_with_processing.onnx"), new OnnxExportOptions
    {
        InputName = "Image", Normalization = PixelNormalization.ImageNet(), Softmax = true, ClassNames = new[] { "a", "b", "c" },
    });
}

using (var segmenter = ResidualModels.Create("unet_resnet18", numClasses: 3))
{
    segmenter.eval();
    OnnxExporter.Export(segmenter, new long[] { 1, 3, 64, 48 }, Path.Combine(args[0], "unet_resnet18_with_processing.onnx"), new OnnxExportOptions
    {
        Normalization = PixelNormalization.ImageNet(), Softmax = true, ArgMax = true,
    });
}

return 0;
