using System;
using System.IO;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

[TestClass]
public sealed class GpuMemoryTests
{
    [TestMethod]
    public void InUseMegabytes_OfTheCpu_IsNull()
    {
        Assert.IsNull(GpuMemory.InUseMegabytes(CPU));
    }

    [TestMethod]
    public void LoadedModulePath_FindsLibtorchAmongTheProcesssNativeModules_AndNothingForANameNeverLoaded()
    {
        using Tensor any = ones(2);   // TorchSharp has loaded libtorch by now
        string? libtorch = GpuMemory.LoadedModulePath(name => name.StartsWith(OperatingSystem.IsWindows() ? "torch_cpu" : "libtorch_cpu", StringComparison.Ordinal));
        Assert.IsNotNull(libtorch, "libtorch's CPU library is loaded in a test process");
        Assert.IsTrue(File.Exists(libtorch), libtorch);
        Assert.IsNull(GpuMemory.LoadedModulePath(name => name.StartsWith("libno-such-library", StringComparison.Ordinal)));
    }
}
