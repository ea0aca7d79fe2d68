using System;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Xml.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Build;

/// <summary>
/// The NuGet package's layout, from a real <c>dotnet pack</c> of the library (offline: <c>--no-restore</c>).
/// nuget/verify-package.sh goes further and trains in a fresh project that consumes the package.
/// </summary>
[TestClass]
public sealed class PackageTests
{
    [TestMethod]
    public void Pack_GivesReadmeLicenseDocsSymbolsAndTheNativeFix_WithoutChoosingABackend()
    {
        string repo = TestRepository.Root();
        string output = Directory.CreateTempSubdirectory("residualml-pack-").FullName;
        try
        {
            const string Version = "0.0.0-packagetest";
            string project = Path.Combine(repo, "Microsoft.ML.Residual", "Microsoft.ML.Residual.csproj");
            Run($"pack \"{project}\" -c Release --no-restore -o \"{output}\" -p:Version={Version} --nologo");

            string package = Path.Combine(output, $"Microsoft.ML.Residual.{Version}.nupkg");
            Assert.IsTrue(File.Exists(package), $"no {package}");
            Assert.IsTrue(File.Exists(Path.ChangeExtension(package, ".snupkg")), "symbols package");

            using ZipArchive zip = ZipFile.OpenRead(package);
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            foreach (string expected in new[]
            {
                "README.md", "LICENSE",
                "buildTransitive/Microsoft.ML.Residual.targets", "buildTransitive/ElfVersionNeedPatch.cs",
                "lib/net8.0/Microsoft.ML.Residual.dll", "lib/net8.0/Microsoft.ML.Residual.xml",
                "lib/net10.0/Microsoft.ML.Residual.dll", "lib/net10.0/Microsoft.ML.Residual.xml",
            })
            {
                Assert.IsTrue(entries.Contains(expected), $"the package lacks {expected}; it has {string.Join(", ", entries)}");
            }

            using Stream nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
            XDocument nuspec = XDocument.Load(nuspecStream);
            XNamespace ns = nuspec.Root!.Name.Namespace;
            XElement metadata = nuspec.Root.Element(ns + "metadata")!;
            Assert.AreEqual("README.md", metadata.Element(ns + "readme")?.Value);
            Assert.AreEqual("MIT", metadata.Element(ns + "license")?.Value);
            var dependencies = metadata.Descendants(ns + "dependency").Select(d => (string)d.Attribute("id")!).Distinct().ToList();
            foreach (string id in new[] { "Microsoft.ML", "Microsoft.ML.ImageAnalytics", "Microsoft.ML.OnnxTransformer", "TorchSharp" })
                CollectionAssert.Contains(dependencies, id);
            // The native backends are the user's choice (CPU or CUDA), as ML.NET leaves ONNX Runtime's to them.
            Assert.IsFalse(dependencies.Any(id => id.StartsWith("TorchSharp-", StringComparison.Ordinal) || id.StartsWith("libtorch", StringComparison.Ordinal)),
                $"a backend is a dependency: {string.Join(", ", dependencies)}");
            Assert.IsFalse(dependencies.Any(id => id is "Microsoft.ML.OnnxRuntime" or "Microsoft.ML.OnnxRuntime.Gpu" or "Grpc.Tools"),
                $"dependencies: {string.Join(", ", dependencies)}");
            // Plots are in Microsoft.ML.Residual.Plots: the core package pulls no plotting library.
            Assert.IsFalse(dependencies.Any(id => id.StartsWith("ScottPlot", StringComparison.OrdinalIgnoreCase) || id.Contains("HarfBuzz", StringComparison.OrdinalIgnoreCase)),
                $"dependencies: {string.Join(", ", dependencies)}");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [TestMethod]
    public void PackPlots_GivesItsOwnPackageOnScottPlotWithTheFontAndItsLicence()
    {
        string repo = TestRepository.Root();
        string output = Directory.CreateTempSubdirectory("residualml-pack-plots-").FullName;
        try
        {
            const string Version = "0.0.0-packagetest";
            string project = Path.Combine(repo, "Microsoft.ML.Residual.Plots", "Microsoft.ML.Residual.Plots.csproj");
            Run($"pack \"{project}\" -c Release --no-restore -o \"{output}\" -p:Version={Version} --nologo");

            string package = Path.Combine(output, $"Microsoft.ML.Residual.Plots.{Version}.nupkg");
            Assert.IsTrue(File.Exists(package), $"no {package}");
            using ZipArchive zip = ZipFile.OpenRead(package);
            var entries = zip.Entries.ToDictionary(e => e.FullName);
            foreach (string expected in new[]
            {
                "LICENSE", "LICENSE-DejaVu.txt",
                "lib/net8.0/Microsoft.ML.Residual.Plots.dll", "lib/net8.0/Microsoft.ML.Residual.Plots.xml",
                "lib/net10.0/Microsoft.ML.Residual.Plots.dll", "lib/net10.0/Microsoft.ML.Residual.Plots.xml",
            })
            {
                Assert.IsTrue(entries.ContainsKey(expected), $"the package lacks {expected}; it has {string.Join(", ", entries.Keys)}");
            }

            // DejaVuSans.ttf (759,720 bytes) is embedded in the assembly, not shipped as a loose file.
            Assert.IsGreaterThan(759_720L, entries["lib/net10.0/Microsoft.ML.Residual.Plots.dll"].Length);
            Assert.IsFalse(entries.Keys.Any(e => e.EndsWith(".ttf", StringComparison.OrdinalIgnoreCase)), string.Join(", ", entries.Keys));
            using (var licence = new StreamReader(entries["LICENSE-DejaVu.txt"].Open()))
                StringAssert.Contains(licence.ReadToEnd(), "Bitstream Vera Fonts Copyright");

            using Stream nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
            XDocument nuspec = XDocument.Load(nuspecStream);
            XNamespace ns = nuspec.Root!.Name.Namespace;
            var dependencies = nuspec.Root.Descendants(ns + "dependency").Select(d => (string)d.Attribute("id")!).Distinct().ToList();
            CollectionAssert.Contains(dependencies, "ScottPlot");
            CollectionAssert.Contains(dependencies, "Microsoft.ML.Residual");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [TestMethod]
    public void PackSweeps_GivesItsOwnPackageOnTheCorePackage()
    {
        string repo = TestRepository.Root();
        string output = Directory.CreateTempSubdirectory("residualml-pack-sweeps-").FullName;
        try
        {
            const string Version = "0.0.0-packagetest";
            string project = Path.Combine(repo, "Microsoft.ML.Residual.Sweeps", "Microsoft.ML.Residual.Sweeps.csproj");
            Run($"pack \"{project}\" -c Release --no-restore -o \"{output}\" -p:Version={Version} --nologo");

            string package = Path.Combine(output, $"Microsoft.ML.Residual.Sweeps.{Version}.nupkg");
            Assert.IsTrue(File.Exists(package), $"no {package}");
            using ZipArchive zip = ZipFile.OpenRead(package);
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            foreach (string expected in new[]
            {
                "LICENSE", "lib/net8.0/Microsoft.ML.Residual.Sweeps.dll", "lib/net8.0/Microsoft.ML.Residual.Sweeps.xml",
                "lib/net10.0/Microsoft.ML.Residual.Sweeps.dll", "lib/net10.0/Microsoft.ML.Residual.Sweeps.xml",
            })
            {
                CollectionAssert.Contains(entries, expected, $"the package has {string.Join(", ", entries)}");
            }

            using Stream nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
            XDocument nuspec = XDocument.Load(nuspecStream);
            XNamespace ns = nuspec.Root!.Name.Namespace;
            var dependencies = nuspec.Root.Descendants(ns + "dependency").Select(d => (string)d.Attribute("id")!).Distinct().ToList();
            CollectionAssert.Contains(dependencies, "Microsoft.ML.Residual");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    private static void Run(string arguments)
    {
        var start = new ProcessStartInfo(TestRepository.DotnetHost(), arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using Process process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        // Only a guard against a hung build (it takes about a minute): nothing is concluded from how long it took.
        if (!process.WaitForExit(TimeSpan.FromMinutes(15)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {arguments} did not finish in 15 minutes");
        }

        Assert.AreEqual(0, process.ExitCode, $"dotnet {arguments}\n{output}\n{error.Result}");
    }
}
