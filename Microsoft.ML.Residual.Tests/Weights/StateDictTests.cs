using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Weights;

[TestClass]
public sealed class StateDictTests
{
    [TestMethod]
    public void SaveThenLoad_IntoFreshModule_GivesIdenticalOutputs()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var trained = WeightsFixtures.TinyNet(seed: 1);
        trained.train();
        using (torch.no_grad()) trained.forward(torch.randn(6, 3, 3, 3)); // moves the BatchNorm running stats
        trained.eval();
        string path = folder.File("tiny.safetensors");

        StateDict.Save(trained, path);
        var fresh = WeightsFixtures.TinyNet(seed: 2);
        var report = StateDict.Load(fresh, path);
        fresh.eval();

        Assert.IsTrue(report.IsExactMatch, report.ToString());
        CollectionAssert.AreEquivalent(trained.state_dict().Keys.ToList(), report.LoadedKeys.ToList());
        Assert.AreEqual(1L, fresh.state_dict()["bn.num_batches_tracked"].item<long>());
        var input = torch.randn(4, 3, 3, 3);
        CollectionAssert.AreEqual(WeightsFixtures.Bytes(trained.forward(input)), WeightsFixtures.Bytes(fresh.forward(input)));
        using var file = StateDict.Read(path);
        Assert.AreEqual("pt", file.Metadata["format"]);
    }

    [TestMethod]
    public void Load_Strict_ReportsEveryProblemKeyInOneExceptionAndLeavesModuleUnchanged()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var tensors = WeightsFixtures.TinyNet(seed: 1).state_dict()
            .Where(kv => kv.Key != "bn.bias" && kv.Key != "conv.bias")
            .Select(kv => kv.Key == "fc.weight" ? new KeyValuePair<string, Tensor>(kv.Key, torch.zeros(3, 4)) : kv)
            .Append(new KeyValuePair<string, Tensor>("extra.weight", torch.ones(5)))
            .Append(new KeyValuePair<string, Tensor>("head.bias", torch.ones(2)));
        string path = folder.File("mismatch.safetensors");
        SafeTensors.Write(path, tensors);
        var module = WeightsFixtures.TinyNet(seed: 2);
        var before = WeightsFixtures.Snapshot(module);

        var error = Assert.ThrowsExactly<StateDictMismatchException>(() => StateDict.Load(module, path));

        foreach (string key in new[] { "bn.bias", "conv.bias", "extra.weight", "head.bias", "fc.weight" }) StringAssert.Contains(error.Message, key);
        StringAssert.Contains(error.Message, "module [2, 4], file [3, 4]");
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, "unchanged");
        CollectionAssert.AreEquivalent(new[] { "conv.bias", "bn.bias" }, error.Report.MissingKeys.ToList());
        CollectionAssert.AreEqual(new[] { "extra.weight", "head.bias" }, error.Report.UnexpectedKeys.ToList());
        Assert.AreEqual("fc.weight", error.Report.ShapeMismatches.Single().Key);
        CollectionAssert.AreEqual(new long[] { 3, 4 }, error.Report.ShapeMismatches.Single().FileShape.ToList());
        Assert.AreEqual(0, error.Report.LoadedKeys.Count);
        AssertUnchanged(before, module);
    }

    [TestMethod]
    public void Load_NonStrict_CopiesWhatMatchesAndReturnsTheReport()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var source = WeightsFixtures.TinyNet(seed: 1);
        var tensors = source.state_dict()
            .Where(kv => kv.Key != "bn.bias")
            .Select(kv => kv.Key == "fc.weight" ? new KeyValuePair<string, Tensor>(kv.Key, torch.zeros(3, 4)) : kv)
            .Append(new KeyValuePair<string, Tensor>("extra.weight", torch.ones(5)));
        string path = folder.File("partial.safetensors");
        SafeTensors.Write(path, tensors);
        var module = WeightsFixtures.TinyNet(seed: 2);
        var before = WeightsFixtures.Snapshot(module);

        var report = StateDict.Load(module, path, strict: false);

        CollectionAssert.AreEqual(new[] { "bn.bias" }, report.MissingKeys.ToList());
        CollectionAssert.AreEqual(new[] { "extra.weight" }, report.UnexpectedKeys.ToList());
        Assert.AreEqual("fc.weight", report.ShapeMismatches.Single().Key);
        Assert.IsFalse(report.IsExactMatch);
        CollectionAssert.AreEquivalent(
            new[] { "conv.weight", "conv.bias", "bn.weight", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "fc.bias" },
            report.LoadedKeys.ToList());
        var after = module.state_dict();
        var expected = source.state_dict();
        foreach (string key in report.LoadedKeys) CollectionAssert.AreEqual(WeightsFixtures.Bytes(expected[key]), WeightsFixtures.Bytes(after[key]), key);
        CollectionAssert.AreEqual(before["bn.bias"], WeightsFixtures.Bytes(after["bn.bias"]));
        CollectionAssert.AreEqual(before["fc.weight"], WeightsFixtures.Bytes(after["fc.weight"]));
        StringAssert.Contains(report.ToString(), "extra.weight");
    }

    [TestMethod]
    public void Load_SkipPrefixes_LoadsEverythingButTheHead()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var pretrained = WeightsFixtures.TinyNet(classes: 10, seed: 1);
        string path = folder.File("pretrained.safetensors");
        StateDict.Save(pretrained, path);
        var module = WeightsFixtures.TinyNet(classes: 2, seed: 2);
        var before = WeightsFixtures.Snapshot(module);

        var report = StateDict.Load(module, path, strict: true, new StateDictLoadOptions { SkipPrefixes = { "fc." } });

        Assert.IsTrue(report.IsExactMatch, report.ToString());
        CollectionAssert.AreEqual(new[] { "fc.weight", "fc.bias" }, report.SkippedKeys.ToList());
        CollectionAssert.AreEqual(before["fc.weight"], WeightsFixtures.Bytes(module.state_dict()["fc.weight"]));
        CollectionAssert.AreEqual(WeightsFixtures.Bytes(pretrained.state_dict()["conv.weight"]), WeightsFixtures.Bytes(module.state_dict()["conv.weight"]));
    }

    [TestMethod]
    public void Load_IgnoreShapeMismatches_KeepsModuleValuesAndReportsThem()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string path = folder.File("ten-classes.safetensors");
        StateDict.Save(WeightsFixtures.TinyNet(classes: 10, seed: 1), path);
        var module = WeightsFixtures.TinyNet(classes: 2, seed: 2);
        var before = WeightsFixtures.Snapshot(module);

        var report = StateDict.Load(module, path, strict: true, new StateDictLoadOptions { IgnoreShapeMismatches = true });

        CollectionAssert.AreEqual(new[] { "fc.weight", "fc.bias" }, report.ShapeMismatches.Select(m => m.Key).ToList());
        Assert.AreEqual(0, report.MissingKeys.Count + report.UnexpectedKeys.Count);
        CollectionAssert.AreEqual(before["fc.bias"], WeightsFixtures.Bytes(module.state_dict()["fc.bias"]));
        Assert.AreEqual(7, report.LoadedKeys.Count);
    }

    [TestMethod]
    public void Load_MapKey_RenamesAndDropsFileKeys()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var source = WeightsFixtures.TinyNet(seed: 1);
        var prefixed = source.state_dict().Select(kv => new KeyValuePair<string, Tensor>("module." + kv.Key, kv.Value))
            .Append(new KeyValuePair<string, Tensor>("module.aux.weight", torch.ones(3)));
        string path = folder.File("dataparallel.safetensors");
        SafeTensors.Write(path, prefixed);
        var module = WeightsFixtures.TinyNet(seed: 2);
        var options = new StateDictLoadOptions { MapKey = k => k.StartsWith("module.aux.", StringComparison.Ordinal) ? null : k["module.".Length..] };

        var report = StateDict.Load(module, path, strict: true, options);

        Assert.IsTrue(report.IsExactMatch, report.ToString());
        CollectionAssert.AreEqual(new[] { "module.aux.weight" }, report.SkippedKeys.ToList());
        CollectionAssert.AreEqual(WeightsFixtures.Bytes(source.state_dict()["fc.weight"]), WeightsFixtures.Bytes(module.state_dict()["fc.weight"]));
    }

    [TestMethod]
    public void Load_PrefixedKeysWithoutMapKey_ExceptionSuggestsTheMapping()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string path = folder.File("dataparallel.safetensors");
        SafeTensors.Write(path, WeightsFixtures.TinyNet(seed: 1).state_dict().Select(kv => new KeyValuePair<string, Tensor>("module." + kv.Key, kv.Value)));

        var error = Assert.ThrowsExactly<StateDictMismatchException>(() => StateDict.Load(WeightsFixtures.TinyNet(), path));

        StringAssert.Contains(error.Message, "prefix 'module.'");
        StringAssert.Contains(error.Message, "MapKey");
    }

    [TestMethod]
    public void Load_MapKeyMappingTwoKeysToOne_ThrowsNamingBoth()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string path = folder.File("w.safetensors");
        StateDict.Save(WeightsFixtures.TinyNet(), path);

        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            StateDict.Load(WeightsFixtures.TinyNet(), path, options: new StateDictLoadOptions { MapKey = k => k.Replace("bias", "weight") }));

        StringAssert.Contains(error.Message, "conv.weight");
        StringAssert.Contains(error.Message, "conv.bias");
    }

    [TestMethod]
    public void Load_HalfPrecisionFile_ConvertsIntoFloat32Parameters()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var source = WeightsFixtures.TinyNet(seed: 1);
        var half = source.state_dict().Select(kv => new KeyValuePair<string, Tensor>(
            kv.Key, kv.Value.is_floating_point() ? kv.Value.to(ScalarType.Float16) : kv.Value)).ToList();
        string path = folder.File("half.safetensors");
        SafeTensors.Write(path, half);
        var module = WeightsFixtures.TinyNet(seed: 2);

        StateDict.Load(module, path);

        foreach (var (key, value) in module.state_dict())
        {
            var expected = half.Single(kv => kv.Key == key).Value;
            Assert.AreEqual(expected.is_floating_point() ? ScalarType.Float32 : ScalarType.Int64, value.dtype, key);
            CollectionAssert.AreEqual(WeightsFixtures.Bytes(expected.to(value.dtype)), WeightsFixtures.Bytes(value), key);
        }
    }

    [TestMethod]
    public void Load_NumBatchesTrackedOnOneSideOnly_IsSkippedNotMissingOrUnexpected()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var tensors = WeightsFixtures.TinyNet(seed: 1).state_dict()
            .Where(kv => kv.Key != "bn.num_batches_tracked")
            .Append(new KeyValuePair<string, Tensor>("frozen_bn.num_batches_tracked", torch.tensor(5L)));
        string path = folder.File("counters.safetensors");
        SafeTensors.Write(path, tensors);
        var module = WeightsFixtures.TinyNet(seed: 2);

        var report = StateDict.Load(module, path, strict: true);

        Assert.IsTrue(report.IsExactMatch, report.ToString());
        CollectionAssert.AreEquivalent(new[] { "bn.num_batches_tracked", "frozen_bn.num_batches_tracked" }, report.SkippedKeys.ToList());
    }

    [TestMethod]
    public void Load_PthFixtureFromPyTorch_ReproducesPyTorchOutputs()
    {
        using var scope = torch.NewDisposeScope();
        var fromPickle = WeightsFixtures.TorchOrderNet();
        var fromSafeTensors = WeightsFixtures.TorchOrderNet();

        var report = StateDict.Load(fromPickle, WeightsFixtures.Path("sequential.pth"));
        StateDict.Load(fromSafeTensors, WeightsFixtures.Path("sequential.safetensors"));

        Assert.AreEqual(9, report.LoadedKeys.Count, report.ToString());
        Assert.AreEqual(1L, fromPickle.state_dict()["1.num_batches_tracked"].item<long>());
        foreach (var (key, value) in fromPickle.state_dict())
        {
            CollectionAssert.AreEqual(WeightsFixtures.Bytes(fromSafeTensors.state_dict()[key]), WeightsFixtures.Bytes(value), key);
        }
        using var io = StateDict.Read(WeightsFixtures.Path("sequential_io.safetensors"));
        fromPickle.eval();
        var output = fromPickle.forward(io["input"]);
        // PyTorch's float32 output (computed on another machine) and ours are two float32 evaluations of the same network:
        // each lies within ForwardError (L·(√K + 5)·u) of the largest output from the network run in float64.
        Tensor exact = Numerics.InFloat64(fromPickle, io["input"]);
        double bound = Numerics.ForwardError(fromPickle) * Numerics.LargestMagnitude(exact);
        Numerics.AssertWithin(io["output"], exact, bound, "PyTorch's output against the loaded network in float64");
        Numerics.AssertWithin(output, exact, bound, "our output against the loaded network in float64");
    }

    [TestMethod]
    public void Load_ChoosesFormatByContentNotExtension()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string pickleNamedSafetensors = folder.File("really-a-pickle.safetensors");
        File.Copy(WeightsFixtures.Path("sequential.pth"), pickleNamedSafetensors);
        string safetensorsNamedBin = folder.File("really-safetensors.bin");
        File.Copy(WeightsFixtures.Path("sequential.safetensors"), safetensorsNamedBin);

        Assert.AreEqual(9, StateDict.Load(WeightsFixtures.TorchOrderNet(), pickleNamedSafetensors).LoadedKeys.Count);
        Assert.AreEqual(9, StateDict.Load(WeightsFixtures.TorchOrderNet(), safetensorsNamedBin).LoadedKeys.Count);
    }

    [TestMethod]
    public void Load_CorruptFile_LeavesModuleUnchanged()
    {
        using var folder = new TempFolder();
        using var scope = torch.NewDisposeScope();
        byte[] whole = File.ReadAllBytes(WeightsFixtures.Path("sequential.pth"));
        string path = folder.Write("cut.pth", whole[..^40]);
        var module = WeightsFixtures.TorchOrderNet();
        var before = WeightsFixtures.Snapshot(module);

        Assert.ThrowsExactly<WeightsFormatException>(() => StateDict.Load(module, path, strict: false));

        AssertUnchanged(before, module);
    }

    [TestMethod]
    public void Load_MissingFile_ThrowsFileNotFoundNamingPath()
    {
        string path = Path.Combine(Path.GetTempPath(), "missing-" + Guid.NewGuid().ToString("N") + ".pth");
        using var module = WeightsFixtures.TinyNet();

        var error = Assert.ThrowsExactly<FileNotFoundException>(() => StateDict.Load(module, path));

        Assert.AreEqual(path, error.FileName);
        StringAssert.Contains(error.Message, path);
    }

    [TestMethod]
    [DataRow("out.pth")]
    [DataRow("out.PT")]
    public void Save_PyTorchExtension_ThrowsNotSupportedSuggestingSafetensors(string name)
    {
        using var folder = new TempFolder();
        using var module = WeightsFixtures.TinyNet();

        var error = Assert.ThrowsExactly<NotSupportedException>(() => StateDict.Save(module, folder.File(name)));

        StringAssert.Contains(error.Message, ".safetensors");
        Assert.AreEqual(0, Directory.GetFiles(folder.Path).Length);
    }

    [TestMethod]
    [DoNotParallelize] // Tensor.TotalCount is process-wide
    public void Load_DisposesEveryTemporaryTensor()
    {
        using var folder = new TempFolder();
        using var module = WeightsFixtures.TorchOrderNet();
        StateDict.Load(module, WeightsFixtures.Path("sequential.pth"));
        long before = WeightsFixtures.LiveTensorCount();

        using (var scope = torch.NewDisposeScope())
        {
            for (int i = 0; i < 3; i++)
            {
                StateDict.Load(module, WeightsFixtures.Path("sequential.pth"));
                StateDict.Load(module, WeightsFixtures.Path("sequential.safetensors"));
            }
            Assert.AreEqual(0, scope.DisposablesCount, "nothing escapes into the caller's dispose scope");
        }

        Assert.AreEqual(before, Tensor.TotalCount);
    }

    private static void AssertUnchanged(Dictionary<string, byte[]> before, nn.Module module)
    {
        foreach (var (key, value) in module.state_dict()) CollectionAssert.AreEqual(before[key], WeightsFixtures.Bytes(value), key);
    }
}
