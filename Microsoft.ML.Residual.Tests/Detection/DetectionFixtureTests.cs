using System.IO;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Detection;

[TestClass]
public sealed class DetectionFixtureTests
{
    /// <summary>The committed fixtures stay small: each file under 300 KB, all of Fixtures/detection under 1 MB.</summary>
    [TestMethod]
    public void Fixtures_AreSmall()
    {
        var sizes = Directory.GetFiles(DetectionFixture.Directory).Select(f => (Name: Path.GetFileName(f), Size: new FileInfo(f).Length)).ToList();
        Assert.IsTrue(sizes.Count >= 3, string.Join(", ", sizes));
        foreach (var (name, size) in sizes) Assert.IsTrue(size < 300 * 1024, $"{name}: {size} bytes");
        Assert.IsTrue(sizes.Sum(s => s.Size) < 1024 * 1024, "all detection fixtures under 1 MB");
    }
}
