using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Onnx;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

/// <summary>RegNet beyond the torchvision key, count and logit checks of ResidualModelsTests and TorchvisionParityTests.</summary>
[TestClass]
public sealed class RegNetTests
{
    private const int Size = 16;

    // A small design of our own, registered once for the whole run (the registry is global).
    private static readonly Lazy<string> TinyDesign = new(() =>
    {
        const string name = "regnet_test_tiny";
        ResidualModels.RegisterRegNet(name, new RegNetDefinition { Depth = 4, InitialWidth = 16, WidthSlope = 12, WidthMultiplier = 2, GroupWidth = 8, StemWidth = 8 });
        return name;
    });

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void StageSettings_AreTorchvisionsForEverySize()
    {
        // regnet_stages.json: torchvision's BlockParams.from_init_params for each of its 15 sizes (make_torchvision_fixtures.py).
        using JsonDocument fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(TorchvisionFixture.Directory, "regnet_stages.json")));
        int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();
        int sizes = 0;
        foreach (JsonProperty size in fixture.RootElement.EnumerateObject())
        {
            var settings = RegNetDefinition.Torchvision[size.Name].StageSettings;
            CollectionAssert.AreEqual(Ints(size.Value.GetProperty("widths")), settings.Select(s => s.Width).ToArray(), size.Name + " widths");
            CollectionAssert.AreEqual(Ints(size.Value.GetProperty("depths")), settings.Select(s => s.Depth).ToArray(), size.Name + " depths");
            CollectionAssert.AreEqual(Ints(size.Value.GetProperty("group_widths")), settings.Select(s => s.GroupWidth).ToArray(), size.Name + " group widths");
            sizes++;
        }

        Assert.AreEqual(15, sizes);
        Assert.AreEqual(15, RegNetDefinition.Torchvision.Count);
    }

    [TestMethod]
    public void RegisterRegNet_MakesADesignOfYourOwnANamedModel()
    {
        string name = TinyDesign.Value;
        ModelInfo card = ResidualModels.Find(name)!;
        Assert.AreEqual("regnet", card.Family);
        Assert.AreEqual("fc.", card.HeadPrefix);
        using var scope = NewDisposeScope();
        var model = (RegNet)ResidualModels.Create(name, 5, options: new ModelOptions { Seed = 1 });
        // Widths 16 + 12·i snap to 16, 32, 32, 64: three stages.
        CollectionAssert.AreEqual(new[] { 8, 16, 32, 64 }, model.StageChannels.ToArray());
        using (no_grad()) CollectionAssert.AreEqual(new long[] { 2, 5 }, model.call(randn(2, 3, 32, 32)).shape);
        Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.RegisterRegNet(name, RegNetDefinition.Torchvision["regnet_y_400mf"]), "the name is taken");
        var invalid = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.RegisterRegNet("regnet_test_invalid", new RegNetDefinition { WidthMultiplier = 1 }));
        StringAssert.Contains(invalid.Message, "WidthMultiplier");
    }

    [TestMethod]
    public void ServesAsAUNetEncoder_AndTheUNetExports()
    {
        using var scope = NewDisposeScope();
        var unet = ResidualModels.Create("unet", 3, options: new UNetOptions { Encoder = "regnet_y_400mf", EncoderOptions = new ModelOptions { Seed = 2 } });
        Assert.IsTrue(unet.state_dict().ContainsKey("encoder.trunk_output.block4.block4-5.f.se.fc2.weight"), "the encoder keeps torchvision's names under encoder.");
        Assert.IsFalse(unet.state_dict().Keys.Any(k => k.StartsWith("encoder.fc.", StringComparison.Ordinal)), "the encoder has no head");
        using (no_grad()) CollectionAssert.AreEqual(new long[] { 2, 3, 64, 64 }, unet.call(randn(2, 3, 64, 64)).shape);
        var (difference, bound) = OnnxTestSupport.Compare(unet, new long[] { 2, 3, 64, 64 }, seed: 3, calibrate: true, calibrationImages: 16);
        Assert.IsTrue(difference <= bound, $"ONNX Runtime against a U-Net over regnet_y_400mf in float64: {difference:E2}, {difference / bound:G3} × its rounding bound {bound:E2}");
    }

    [TestMethod]
    public void IsMeasuredByTheDiagnostics_BlockByBlock()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("regnet_x_400mf", 4, options: new ModelOptions { Seed = 8 });
        Tensor images = randn(new long[] { 4, 3, 32, 32 }, generator: new Generator(9));
        Tensor labels = tensor(new long[] { 0, 1, 2, 3 });

        GradientFlowReport flow = GradientFlow.Measure(model, images, labels);
        string[] names = model.named_modules().Where(m => m.module is RegNetBottleneck).Select(m => m.name).ToArray();
        Assert.AreEqual(22, names.Length, "1 + 2 + 7 + 12 blocks");
        CollectionAssert.AreEqual(names, flow.BlockNames);
        Assert.IsTrue(flow.IdentityGradientNorms.All(n => n > 0 && double.IsFinite(n)), "every block has a shortcut (identity or projection)");
        Assert.IsTrue(flow.BlockInputGradientNorms.All(n => n > 0 && double.IsFinite(n)));

        JacobianReport jacobian = BlockJacobian.Measure(model, images, iterations: 10);
        Assert.IsTrue(jacobian.SpectralNorms.Length == 22 && jacobian.SpectralNorms.All(n => n > 0 && double.IsFinite(n)));

        // RegNetX has no squeeze-and-excitation: every layer has a bound.
        LipschitzReport bound = LipschitzBound.Measure(model, 32, 32, iterations: 5);
        Assert.AreEqual(22, bound.BlockNames.Length);
    }
}
