using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Detection;

[TestClass]
public sealed class DetectionAnchorsTests
{
    // The fixture's inputs with the level sizes a ResNet FPN gives them (stride-2 layers round up).
    private static readonly Dictionary<string, (int Height, int Width)[]> Levels = new()
    {
        ["96x128"] = new[] { (12, 16), (6, 8), (3, 4), (2, 2), (1, 1) },
        ["100x75"] = new[] { (13, 10), (7, 5), (4, 3), (2, 2), (1, 1) },
        ["64x96"] = new[] { (8, 12), (4, 6), (2, 3), (1, 2), (1, 1) },
        ["128x160"] = new[] { (16, 20), (8, 10), (4, 5), (2, 3), (1, 2) },
    };

    /// <summary>Anchors are small integers in float32 (rounded half-sizes plus integer shifts): torchvision's, bit for bit.</summary>
    [TestMethod]
    [DataRow(DetectorKind.RetinaNet, "96x128")]
    [DataRow(DetectorKind.RetinaNet, "100x75")]
    [DataRow(DetectorKind.RetinaNet, "64x96")]
    [DataRow(DetectorKind.RetinaNet, "128x160")]
    [DataRow(DetectorKind.Fcos, "96x128")]
    [DataRow(DetectorKind.Fcos, "100x75")]
    [DataRow(DetectorKind.Fcos, "64x96")]
    [DataRow(DetectorKind.Fcos, "128x160")]
    public void Create_GivesTorchvisionsAnchorsExactly(DetectorKind kind, string size)
    {
        using var fixture = DetectionFixture.Read("anchors");
        using var scope = NewDisposeScope();
        int[] hw = size.Split('x').Select(int.Parse).ToArray();
        Tensor expected = fixture[(kind == DetectorKind.RetinaNet ? "retinanet." : "fcos.") + size];
        Tensor actual = DetectionAnchors.Create(kind, hw[0], hw[1], Levels[size]);
        Assert.AreEqual(ScalarType.Float32, actual.dtype);
        Assert.IsTrue(actual.IsEqualTo(expected), $"{kind} {size}: anchors differ from torchvision's");
        Assert.AreEqual(actual.shape[0], DetectionAnchors.CountsPerLevel(kind, Levels[size]).Sum());
    }

    [TestMethod]
    public void PerLocation_IsNineForRetinaNetAndOneForFcos()
    {
        Assert.AreEqual(9, DetectionAnchors.PerLocation(DetectorKind.RetinaNet));
        Assert.AreEqual(1, DetectionAnchors.PerLocation(DetectorKind.Fcos));
    }

    /// <summary>
    /// The first location of P3 (stride 8): ratio outer, size inner; sizes 32, int(32·2^⅓) = 40, int(32·2^⅔) = 50; for ratio
    /// 0.5, w = size/√0.5 and h = size·√0.5, half-sizes rounded half to even (32·√2/2 = 22.63 → 23, 32/√2/2 = 11.31 → 11).
    /// </summary>
    [TestMethod]
    public void Create_OrdersALocationsAnchorsByRatioThenSize()
    {
        using var scope = NewDisposeScope();
        Tensor anchors = DetectionAnchors.Create(DetectorKind.RetinaNet, 64, 64, new[] { (8, 8) });
        float[] first = anchors.narrow(0, 0, 9).data<float>().ToArray();
        float[] expected =
        {
            -23, -11, 23, 11, -28, -14, 28, 14, -35, -18, 35, 18,   // ratio 0.5: sizes 32, 40, 50 (50/√2/2 = 17.68 → 18, 50·√2/2 = 35.36 → 35)
            -16, -16, 16, 16, -20, -20, 20, 20, -25, -25, 25, 25,   // ratio 1
            -11, -23, 11, 23, -14, -28, 14, 28, -18, -35, 18, 35,   // ratio 2
        };
        CollectionAssert.AreEqual(expected, first);
        // The next location is one stride (64 / 8 = 8) to the right.
        CollectionAssert.AreEqual(new float[] { -15, -11, 31, 11 }, anchors.narrow(0, 9, 1).data<float>().ToArray());
    }
}
