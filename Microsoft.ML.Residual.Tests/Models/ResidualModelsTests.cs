using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class ResidualModelsTests
{
    private static readonly string[] TorchvisionNames =
    {
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
        "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
        "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
        "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_v2_s",
        "convnext_tiny", "convnext_small", "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_x_400mf", "regnet_x_800mf",
        "regnet_x_1_6gf",
    };

    internal static long CountParameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    [TestMethod]
    public void Names_ContainEveryResNetVariantTheIssueAsksFor()
    {
        string[] expected =
        {
            "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2",
            "resnext50_32x4d", "resnext101_32x8d", "preact_resnet18", "preact_resnet34", "preact_resnet50",
            "preact_resnet101", "preact_resnet152", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
            "resnet1202", "plain20", "plain32", "plain44", "plain56", "plain110",
        };
        CollectionAssert.IsSubsetOf(expected, ResidualModels.Names.ToArray());
        Assert.AreEqual(ResidualModels.Names.Count, ResidualModels.Names.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    [TestMethod]
    public void Create_EveryName_GivesLogitsOfTheRequestedShape()
    {
        foreach (string name in ResidualModels.Names)
        {
            using var scope = NewDisposeScope();
            var model = ResidualModels.Create(name, numClasses: 7);
            // Training-mode BatchNorm: at initialisation eval-mode statistics are placeholders, and a
            // 600-block network overflows without normalisation.
            model.train();
            using var noGrad = no_grad();
            Tensor logits = model.call(randn(2, 3, 32, 32));
            // Segmentation models give per-pixel logits at the input resolution.
            // Detectors give head outputs per anchor: N × A × (K + 4) (RetinaNet) or N × A × (K + 5) (FCOS).
            long[] expected = model switch
            {
                ISegmentationModel => new long[] { 2, 7, 32, 32 },
                IDetectionModel detector => new long[] { 2, detector.LevelSizes(32, 32).Sum(s => s.Height * s.Width) * detector.AnchorsPerLocation, 7 + (detector.Kind == DetectorKind.Fcos ? 5 : 4) },
                _ => new long[] { 2, 7 },
            };
            CollectionAssert.AreEqual(expected, logits.shape, name);
            Assert.IsTrue(logits.isfinite().all().item<bool>(), $"{name} produced non-finite logits");
            model.Dispose();
        }
    }

    [TestMethod]
    public void Create_TorchvisionNames_HaveTorchvisionKeysShapesAndParameterCounts()
    {
        foreach (string name in TorchvisionNames)
        {
            var (params10, params1000, keys) = TorchvisionFixture.ReadKeys(name);
            using var model = ResidualModels.Create(name, numClasses: 10);
            var ours = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
            CollectionAssert.AreEquivalent(keys.Select(k => k.Key).ToList(), ours.Keys.ToList(), name);
            foreach (var (key, shape) in keys) CollectionAssert.AreEqual(shape, ours[key], $"{name}: {key}");
            Assert.AreEqual(params10, CountParameters(model), name);
            long fcDifference = 990L * (model as IClassifierModel)!.FeatureDimension + 990;
            Assert.AreEqual(params1000, params10 + fcDifference, name);
        }
    }

    [TestMethod]
    public void Create_AtThousandClasses_MatchesTorchvisionParameterCounts()
    {
        using var resnet18 = ResidualModels.Create("resnet18", numClasses: 1000);
        Assert.AreEqual(11_689_512L, CountParameters(resnet18));
        using var resnet50 = ResidualModels.Create("resnet50", numClasses: 1000);
        Assert.AreEqual(25_557_032L, CountParameters(resnet50));
    }

    [TestMethod]
    [DataRow("resnet20", 269_722L)]
    [DataRow("resnet32", 464_154L)]
    [DataRow("resnet44", 658_586L)]
    [DataRow("resnet56", 853_018L)]
    [DataRow("resnet110", 1_727_962L)]
    [DataRow("plain20", 269_722L)]
    [DataRow("plain110", 1_727_962L)]
    [DataRow("wide_resnet16_4", 2_748_890L)]
    [DataRow("wide_resnet16_8", 10_961_370L)]
    [DataRow("wide_resnet28_10", 36_479_194L)]
    [DataRow("wide_resnet40_4", 8_949_210L)]
    public void Create_CifarNetworks_HaveThePaperParameterCounts(string name, long expected)
    {
        // Option A shortcuts have no parameters, so a plain network counts exactly as its residual twin. Wide ResNets
        // (WRN-d-k, Zagoruyko and Komodakis 2016): 2.7M for WRN-16-4 and 36.5M for WRN-28-10 in the paper; the exact counts
        // are those of the pre-activation layout with 1×1 projections where the width changes.
        using var model = ResidualModels.Create(name, numClasses: 10);
        Assert.AreEqual(expected, CountParameters(model));
    }

    [TestMethod]
    public void Create_Resnet1202_HasNineteenPointFourMillionParameters()
    {
        using var model = ResidualModels.Create("resnet1202", numClasses: 10);
        Assert.AreEqual(19_421_274L, CountParameters(model));
        Assert.AreEqual(600, ((ResNet)model).Blocks.Count);
    }

    [TestMethod]
    public void Create_ResNet50D_HasTimmsKeysShapesAndParameterCount()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet50d");
        var state = model.state_dict();
        // timm's resnet50d: conv1 = Sequential(conv 3→32 s2, BN, ReLU, conv 32→32, BN, ReLU, conv 32→64), bn1, maxpool;
        // downsample = Sequential(AvgPool2d(2, 2, ceil_mode) or Identity, 1×1 conv, BN).
        var expectedShapes = new Dictionary<string, long[]>
        {
            ["conv1.0.weight"] = new long[] { 32, 3, 3, 3 },
            ["conv1.1.running_var"] = new long[] { 32 },
            ["conv1.3.weight"] = new long[] { 32, 32, 3, 3 },
            ["conv1.4.weight"] = new long[] { 32 },
            ["conv1.6.weight"] = new long[] { 64, 32, 3, 3 },
            ["bn1.weight"] = new long[] { 64 },
            ["layer1.0.downsample.1.weight"] = new long[] { 256, 64, 1, 1 },
            ["layer1.0.downsample.2.running_mean"] = new long[] { 256 },
            ["layer2.0.downsample.1.weight"] = new long[] { 512, 256, 1, 1 },
            ["layer4.0.downsample.2.num_batches_tracked"] = Array.Empty<long>(),
            ["layer4.2.conv3.weight"] = new long[] { 2048, 512, 1, 1 },
            ["fc.weight"] = new long[] { 1000, 2048 },
        };
        foreach (var (key, shape) in expectedShapes) CollectionAssert.AreEqual(shape, state[key].shape, key);
        Assert.IsFalse(state.Keys.Any(k => k.StartsWith("conv1.2", StringComparison.Ordinal) || k.Contains("downsample.0", StringComparison.Ordinal)),
            "ReLUs and pools hold no state");
        Assert.AreEqual(25_576_264L, CountParameters(model), "timm's resnet50d: torchvision's resnet50 + 19,232 in the deep stem");

        // The deep stem: 3·32·9 + 2·32 + 32·32·9 + 2·32 + 32·64·9 = 28,640 parameters where the 7×7 stem has 3·64·49 = 9,408.
        Assert.AreEqual(11_689_512L - 9_408L + 28_640L, CountParameters(ResidualModels.Create("resnet18d")), "resnet18d");
    }

    [TestMethod]
    public void Create_PreActivationNetworks_UseBnBeforeConvAndAFinalNorm()
    {
        using var model = ResidualModels.Create("preact_resnet18", numClasses: 10);
        var keys = model.state_dict().Keys.ToList();
        CollectionAssert.DoesNotContain(keys, "bn1.weight");
        CollectionAssert.Contains(keys, "norm.weight");
        CollectionAssert.Contains(keys, "layer2.0.downsample.0.weight");
        CollectionAssert.DoesNotContain(keys, "layer2.0.downsample.1.weight", "pre-activation projections carry no BatchNorm");
        var firstBlock = model.state_dict();
        CollectionAssert.AreEqual(new long[] { 64 }, firstBlock["layer2.0.bn1.weight"].shape, "bn1 normalises the block input");
    }

    [TestMethod]
    public void Create_PreActResNet164_HasAboutOnePointSevenMillionParameters()
    {
        using var model = ResidualModels.Create("preact_resnet164", numClasses: 10);
        long count = CountParameters(model);
        Assert.IsTrue(count > 1_650_000 && count < 1_750_000, $"{count}");
    }

    [TestMethod]
    public void Create_CifarWideResNets_ProjectOnlyWhereTheWidthChanges()
    {
        foreach (string name in new[] { "wide_resnet16_4", "wide_resnet16_8", "wide_resnet28_10", "wide_resnet40_4" })
        {
            using var model = ResidualModels.Create(name, numClasses: 10);
            var keys = model.state_dict().Keys.ToList();
            CollectionAssert.Contains(keys, "layer1.0.downsample.0.weight", $"{name}: the first block widens 16 → 16k channels with a projection");
            CollectionAssert.DoesNotContain(keys, "layer1.1.downsample.0.weight", $"{name}: blocks of unchanged width keep the identity");
        }
    }

    [TestMethod]
    public void Cards_ClassifierHeadPrefix_NamesTheHeadOfTheCreatedNetwork()
    {
        foreach (ModelInfo info in ResidualModels.All.Where(m => m.Task == ModelTask.Classifier))
        {
            Assert.IsNotNull(info.HeadPrefix, info.Name);
            // Built on the meta device would be cheaper, but the factories initialise weights; the key set is what counts.
            using var model = ResidualModels.Create(info.Name, numClasses: 10);
            var heads = model.state_dict().Keys.Where(k => k.StartsWith(info.HeadPrefix, StringComparison.Ordinal)).ToList();
            CollectionAssert.AreEquivalent(new[] { info.HeadPrefix + "weight", info.HeadPrefix + "bias" }, heads, info.Name);
        }
    }

    [TestMethod]
    public void Cards_EncoderUNets_AreSegmentersWithTheirEncodersHeadPrefix()
    {
        Assert.AreEqual(ModelTask.Segmenter, ResidualModels.Find("unet")!.Task);
        Assert.IsNull(ResidualModels.Find("unet")!.HeadPrefix, "the classic U-Net has no classifier to load from");
        Assert.AreEqual("fc.", ResidualModels.Find("UNET_RESNET34")!.HeadPrefix, "names are case-insensitive");
        Assert.AreEqual("classifier.", ResidualModels.Find("unet_densenet121")!.HeadPrefix);
        Assert.AreEqual(ModelTask.Segmenter, ResidualModels.Find("unet_densenet121")!.Task);
        Assert.IsNull(ResidualModels.Find("resnet19"));
        Assert.IsNull(ResidualModels.Find(null));
    }

    [TestMethod]
    public void Create_UnknownName_ThrowsWithSuggestions()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("resnet19"));
        StringAssert.Contains(error.Message, "resnet19");
        StringAssert.Contains(error.Message, "resnet18");
        StringAssert.Contains(error.Message, "ResidualModels.Names");
    }

    [TestMethod]
    public void Create_NamesAreCaseInsensitive()
    {
        using var model = ResidualModels.Create("ResNet20", numClasses: 10);
        Assert.AreEqual(269_722L, CountParameters(model));
    }

    [TestMethod]
    public void Create_InvalidOptions_ThrowArgumentExceptions()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ResidualModels.Create("resnet20", 10, options: new ResNetOptions { DropPathRate = 1.5 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ResidualModels.Create("resnet20", 10, options: new ResNetOptions { DropRate = -0.1 }));
        Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("resnet20", numClasses: -1));
        Assert.ThrowsExactly<ArgumentException>(() => ResidualModels.Create("resnet20", 10, options: new ResNetOptions { IdentityDecay = 2 }));
    }

    [TestMethod]
    public void Create_WithOneInputChannel_AcceptsGrayscale()
    {
        using var model = ResidualModels.Create("resnet18", numClasses: 3, inChannels: 1);
        using var scope = NewDisposeScope();
        model.eval();
        CollectionAssert.AreEqual(new long[] { 2, 3 }, model.call(randn(2, 1, 32, 32)).shape);
        CollectionAssert.AreEqual(new long[] { 64, 1, 7, 7 }, model.state_dict()["conv1.weight"].shape);
    }

    [TestMethod]
    public void Create_CifarStemOnAnImageNetName_Uses3x3ConvAndNoPooling()
    {
        using var model = ResidualModels.Create("resnet18", 10, options: new ResNetOptions { Stem = StemKind.Cifar });
        CollectionAssert.AreEqual(new long[] { 64, 3, 3, 3 }, model.state_dict()["conv1.weight"].shape);
        Assert.IsFalse(model.named_modules().Any(m => m.name == "maxpool"));
    }

    [TestMethod]
    public void Create_SameSeed_GivesIdenticalWeights()
    {
        using var a = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 42 });
        using var b = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 42 });
        using var c = ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 43 });
        var sa = a.state_dict();
        var sb = b.state_dict();
        var sc = c.state_dict();
        Assert.IsTrue(sa.All(kv => kv.Value.IsEqualTo(sb[kv.Key])));
        Assert.IsFalse(sa["conv1.weight"].IsEqualTo(sc["conv1.weight"]));
    }

    [TestMethod]
    public void Create_WithZeroClasses_GivesABackboneReturningPooledFeatures()
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet50", numClasses: 0);
        model.eval();
        Assert.IsFalse(model.state_dict().Keys.Any(k => k.StartsWith("fc.")));
        CollectionAssert.AreEqual(new long[] { 2, 2048 }, model.call(randn(2, 3, 64, 64)).shape);
    }

    [TestMethod]
    [DataRow("resnet18", new[] { 64, 64, 128, 256, 512 }, new[] { 2, 4, 8, 16, 32 })]
    [DataRow("resnet50", new[] { 64, 256, 512, 1024, 2048 }, new[] { 2, 4, 8, 16, 32 })]
    [DataRow("resnet20", new[] { 16, 16, 32, 64 }, new[] { 1, 1, 2, 4 })]
    [DataRow("preact_resnet18", new[] { 64, 64, 128, 256, 512 }, new[] { 2, 4, 8, 16, 32 })]
    [DataRow("resnet50d", new[] { 64, 256, 512, 1024, 2048 }, new[] { 2, 4, 8, 16, 32 })]
    public void ForwardStages_ReturnsEveryStageWithItsDeclaredChannelsAndReduction(string name, int[] channels, int[] reductions)
    {
        using var scope = NewDisposeScope();
        var encoder = (IStageEncoder)ResidualModels.Create(name, numClasses: 10);
        CollectionAssert.AreEqual(channels, encoder.StageChannels.ToArray());
        CollectionAssert.AreEqual(reductions, encoder.StageReductions.ToArray());
        var stages = encoder.ForwardStages(randn(2, 3, 64, 64));
        Assert.AreEqual(channels.Length, stages.Count);
        for (int i = 0; i < stages.Count; i++)
            CollectionAssert.AreEqual(new long[] { 2, channels[i], 64 / reductions[i], 64 / reductions[i] }, stages[i].shape, $"stage {i}");
    }

    [TestMethod]
    [DataRow("resnet18", null)]
    [DataRow("preact_resnet18", null)]
    [DataRow("resnet20", null)]
    [DataRow("densenet121", null)]
    [DataRow("unet", 2)]
    [DataRow("unet_resnet18", 2)]
    [DataRow("unet_densenet121", 2)]
    public void NestedInAnotherModule_KeepsExactlyItsOwnKeysUnderThePrefix(string name, int? classes)
    {
        var model = ResidualModels.Create(name, numClasses: classes ?? 10,
            options: name == "resnet20" ? new ResNetOptions { Skip = SkipConnection.Highway, DropRate = 0.1, DropPathRate = 0.1 } : null);
        var own = model.state_dict().Keys.Select(k => "inner." + k).ToList();
        using var wrapper = new ModelTestSupport.Wrapper(model);
        CollectionAssert.AreEquivalent(own, wrapper.state_dict().Keys.ToList(), name);
    }
}
