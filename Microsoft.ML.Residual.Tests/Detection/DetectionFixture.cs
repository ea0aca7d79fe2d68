using System;
using System.IO;
using Microsoft.ML.Residual.Weights;
using TorchSharp;

namespace Microsoft.ML.Residual.Tests.Detection;

/// <summary>The C# side of Fixtures/make_detection_loss_fixtures.py: where its files are and how to open them.</summary>
internal static class DetectionFixture
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Fixtures", "detection");

    /// <summary>Opens Fixtures/detection/<paramref name="name"/>.safetensors (CPU tensors; dispose the dictionary).</summary>
    public static TensorDictionary Read(string name) => StateDict.Read(Path.Combine(Directory, name + ".safetensors"));
}
