using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.ML.Residual.Build;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Build;

[TestClass]
public sealed class ElfVersionNeedTests
{
    private const string Version = "GLIBCXX_3.4.32";

    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// A minimal ELF64 little-endian file: null section, .dynstr, .gnu.version_r (one Verneed for
    /// libstdc++.so.6 with the given versions), .shstrtab.
    /// </summary>
    internal static byte[] BuildElf(params (string Name, ushort Flags)[] versions)
    {
        var dynstr = new List<byte> { 0 };
        int AddString(List<byte> table, string s)
        {
            int offset = table.Count;
            table.AddRange(Encoding.ASCII.GetBytes(s));
            table.Add(0);
            return offset;
        }

        int fileName = AddString(dynstr, "libstdc++.so.6");
        int[] names = versions.Select(v => AddString(dynstr, v.Name)).ToArray();
        var verneed = new List<byte>();
        void U16(List<byte> b, int v) => b.AddRange(BitConverter.GetBytes((ushort)v));
        void U32(List<byte> b, long v) => b.AddRange(BitConverter.GetBytes((uint)v));
        void U64(List<byte> b, long v) => b.AddRange(BitConverter.GetBytes((ulong)v));
        U16(verneed, 1); U16(verneed, versions.Length); U32(verneed, fileName); U32(verneed, 16); U32(verneed, 0);
        for (int i = 0; i < versions.Length; i++)
        {
            U32(verneed, 0x1234 + i); U16(verneed, versions[i].Flags); U16(verneed, 2 + i); U32(verneed, names[i]);
            U32(verneed, i == versions.Length - 1 ? 0 : 16);
        }

        var shstr = new List<byte> { 0 };
        int dynstrName = AddString(shstr, ".dynstr");
        int verneedName = AddString(shstr, ".gnu.version_r");
        int shstrName = AddString(shstr, ".shstrtab");

        var file = new List<byte>(new byte[64]);
        long dynstrOffset = file.Count; file.AddRange(dynstr);
        while (file.Count % 8 != 0) file.Add(0);
        long verneedOffset = file.Count; file.AddRange(verneed);
        long shstrOffset = file.Count; file.AddRange(shstr);
        while (file.Count % 8 != 0) file.Add(0);
        long sectionTable = file.Count;
        var sections = new List<byte>();
        void Section(int name, uint type, long offset, long size, int link, int info)
        {
            U32(sections, name); U32(sections, type); U64(sections, 0); U64(sections, 0);
            U64(sections, offset); U64(sections, size); U32(sections, link); U32(sections, info); U64(sections, 1); U64(sections, 0);
        }

        Section(0, 0, 0, 0, 0, 0);
        Section(dynstrName, 3, dynstrOffset, dynstr.Count, 0, 0);
        Section(verneedName, 0x6ffffffe, verneedOffset, verneed.Count, 1, 1);
        Section(shstrName, 3, shstrOffset, shstr.Count, 0, 0);
        file.AddRange(sections);

        byte[] image = file.ToArray();
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1 }.CopyTo(image, 0);
        BitConverter.GetBytes((ushort)3).CopyTo(image, 16);          // ET_DYN
        BitConverter.GetBytes((ulong)sectionTable).CopyTo(image, 40);
        BitConverter.GetBytes((ushort)64).CopyTo(image, 52);
        BitConverter.GetBytes((ushort)64).CopyTo(image, 58);
        BitConverter.GetBytes((ushort)4).CopyTo(image, 60);
        BitConverter.GetBytes((ushort)3).CopyTo(image, 62);
        return image;
    }

    private string WriteTemp(byte[] content)
    {
        string path = Path.Combine(TestRunFiles.Folder, Guid.NewGuid().ToString("N") + ".so");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return path;
    }

    [TestMethod]
    public void MarkWeak_SetsOnlyTheWeakFlagOfTheNamedRequirement()
    {
        byte[] original = BuildElf(("GLIBCXX_3.4.19", 0), (Version, 0), ("CXXABI_1.3.5", 0));
        string path = WriteTemp(original);

        Assert.AreEqual(ElfPatchOutcome.Patched, ElfVersionNeed.MarkWeak(path, Version));

        var requirements = ElfVersionNeed.ReadRequirements(path);
        Assert.IsTrue(requirements[Version]);
        Assert.IsFalse(requirements["GLIBCXX_3.4.19"]);
        Assert.IsFalse(requirements["CXXABI_1.3.5"]);
        byte[] patched = File.ReadAllBytes(path);
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.AreEqual(1, changed.Count, "exactly one byte (the low byte of vna_flags) changes");
        Assert.AreEqual(0x2, patched[changed[0]]);
    }

    [TestMethod]
    public void MarkWeak_SecondRun_LeavesTheFileUntouched()
    {
        string path = WriteTemp(BuildElf((Version, 0)));
        Assert.AreEqual(ElfPatchOutcome.Patched, ElfVersionNeed.MarkWeak(path, Version));
        byte[] once = File.ReadAllBytes(path);
        DateTime written = File.GetLastWriteTimeUtc(path);

        Assert.AreEqual(ElfPatchOutcome.AlreadyWeak, ElfVersionNeed.MarkWeak(path, Version));
        CollectionAssert.AreEqual(once, File.ReadAllBytes(path));
        Assert.AreEqual(written, File.GetLastWriteTimeUtc(path));
    }

    [TestMethod]
    public void MarkWeak_KeepsOtherFlags()
    {
        string path = WriteTemp(BuildElf((Version, 0x1)));
        ElfVersionNeed.MarkWeak(path, Version);
        byte[] image = File.ReadAllBytes(path);
        Assert.IsTrue(ElfVersionNeed.ReadRequirements(path)[Version]);
        CollectionAssert.Contains(image, (byte)0x3);
    }

    [TestMethod]
    public void MarkWeak_FileWithoutThatRequirement_IsNotRequiredAndUnchanged()
    {
        byte[] original = BuildElf(("GLIBCXX_3.4.19", 0));
        string path = WriteTemp(original);
        Assert.AreEqual(ElfPatchOutcome.NotRequired, ElfVersionNeed.MarkWeak(path, Version));
        CollectionAssert.AreEqual(original, File.ReadAllBytes(path));
    }

    [TestMethod]
    public void MarkWeak_NotAnElfFile_IsReportedAndUnchanged()
    {
        byte[] original = Encoding.ASCII.GetBytes("this is not an ELF shared object, just text");
        string path = WriteTemp(original);
        Assert.AreEqual(ElfPatchOutcome.NotElf64, ElfVersionNeed.MarkWeak(path, Version));
        CollectionAssert.AreEqual(original, File.ReadAllBytes(path));
    }

    [TestMethod]
    public void MarkWeak_TruncatedElf_IsReportedWithoutThrowing()
    {
        byte[] full = BuildElf((Version, 0));
        string path = WriteTemp(full.Take(full.Length - 100).ToArray());
        Assert.AreEqual(ElfPatchOutcome.NotElf64, ElfVersionNeed.MarkWeak(path, Version));
    }

    [TestMethod]
    public void MarkWeak_ReplacesAHardLinkInsteadOfWritingThroughIt()
    {
        // The build output may hard-link into the NuGet cache; the patch must never modify the cache's copy.
        byte[] original = BuildElf((Version, 0));
        string cacheCopy = WriteTemp(original);
        string outputCopy = cacheCopy + ".out";
        if (!OperatingSystem.IsLinux() || !TryHardLink(cacheCopy, outputCopy)) Assert.Inconclusive("hard links need Linux");
        ElfVersionNeed.MarkWeak(outputCopy, Version);
        CollectionAssert.AreEqual(original, File.ReadAllBytes(cacheCopy));
        Assert.IsTrue(ElfVersionNeed.ReadRequirements(outputCopy)[Version]);
    }

    [TestMethod]
    public void BuildOutputCopyOfLibTorchSharp_IsWeakExactlyWhenTheHostLacksTheVersion()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("the patch runs on Linux only");
        string library = Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        string? host = ElfVersionNeed.FindHostLibStdCxx();
        Assert.IsNotNull(host, "no libstdc++.so.6 found on this Linux host");
        bool hostHasVersion = ElfVersionNeed.ReadDefinitions(host).Contains(Version);
        var requirements = ElfVersionNeed.ReadRequirements(library);
        Assert.IsTrue(requirements.ContainsKey(Version), "TorchSharp 0.107's library requires " + Version);
        Assert.AreEqual(!hostHasVersion, requirements[Version]);
        Assert.IsTrue(ElfVersionNeed.ReadDefinitions(host).Any(v => v.StartsWith("GLIBCXX_3.4", StringComparison.Ordinal)),
            "the host's libstdc++ version definitions are readable");
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int link(string existing, string newPath);

    private static bool TryHardLink(string existing, string newPath) => link(existing, newPath) == 0;
}
