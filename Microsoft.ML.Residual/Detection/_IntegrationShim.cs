#pragma warning disable CS1591
// TEMPORARY (not committed): the helpers' contracts, so the integration compiles before their branches merge.
using System;
using System.Collections.Generic;
using Microsoft.ML.Residual.Models;
using static TorchSharp.torch;
namespace Microsoft.ML.Residual.Models
{
    public sealed class DetectorOptions : ModelOptions { public string? Backbone { get; set; } public DetectorOptions Clone() => (DetectorOptions)MemberwiseClone(); }
}
namespace Microsoft.ML.Residual.Detection
{
    public static class DetectionAnchors { public static Tensor Create(DetectorKind kind, int imageHeight, int imageWidth, IReadOnlyList<(int Height, int Width)> levels, Device? device = null) => throw new NotImplementedException(); }
    public sealed record DetectionLossTerms(Tensor Total, Tensor Classification, Tensor BoxRegression, Tensor? Centerness);
    public static class DetectionLoss { public static DetectionLossTerms Compute(DetectorKind kind, Tensor outputs, Tensor anchors, IReadOnlyList<int> anchorsPerLevel, Tensor targets) => throw new NotImplementedException(); }
    public sealed record DetectionPostprocessOptions(double ScoreThreshold, double NmsThreshold, int CandidatesPerLevel, int MaxDetections) { public static DetectionPostprocessOptions For(DetectorKind kind) => throw new NotImplementedException(); }
    public sealed class DetectionAugmentation { public bool IsIdentity => false; }
    internal static class BoxAugmentation { public static (float[] Boxes, int[] Labels) Apply(DetectionAugmentation options, Random random, float[] source, float[] destination, int channels, int height, int width, float[] boxes, int[] labels) => throw new NotImplementedException(); }
    public sealed class DetectionMetrics { }
    public static class DetectionEvaluator { public static DetectionMetrics Evaluate(IDataView scored, string a, string b, string c, string d, string e) => throw new NotImplementedException(); }
}
