using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Tests.Plots.NoFontsProbe;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Plots;

/// <summary>
/// Charts draw their text on a machine without fonts. SkiaSharp's Linux build (SkiaSharp.NativeAssets.Linux.NoDependencies, which
/// ScottPlot and ML.NET bring) does not read fontconfig: its font manager scans /usr/share/fonts/ and nothing else, so
/// FONTCONFIG_FILE cannot hide fonts from it. The test hides that folder instead: NoFontsProbe runs in a user and mount namespace
/// (unshare -rm) in which an empty tmpfs covers /usr/share/fonts. The probe first shows that the environment really has no fonts
/// (the control: the system font manager's typefaces have no glyphs, and text drawn with the default typeface leaves no ink),
/// then draws the charts of ProbeCharts, which must come out pixel for pixel as this process draws them, with their text.
/// </summary>
[TestClass]
public sealed class NoFontsTests
{
    [TestMethod]
    public void Charts_DrawTheirText_InAProcessThatSeesNoSystemFonts()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("The fontless child process is made with Linux namespaces (unshare).");
        string output = Directory.CreateTempSubdirectory("residualml-nofonts-").FullName;
        try
        {
            var (exitCode, stdout, stderr) = RunWithoutFonts(ProbeAssembly(), output);
            if (exitCode != 0 && stderr.Contains("unshare", StringComparison.Ordinal))
                Assert.Inconclusive($"This machine does not allow unprivileged user and mount namespaces (unshare -rm), so no process without fonts can be made: {stderr.Trim()}");
            Assert.AreEqual(0, exitCode, $"NoFontsProbe failed:\n{stdout}\n{stderr}");

            // The control: the child had no fonts, so anything drawn with a system font would be blank there.
            var facts = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(line => line.Split('=', 2)).Where(pair => pair.Length == 2).ToDictionary(pair => pair[0], pair => pair[1]);
            Assert.AreEqual("0", facts.GetValueOrDefault("glyphs"), $"the child's system font manager has no glyphs\n{stdout}");
            Assert.AreEqual("0", facts.GetValueOrDefault("defaultGlyphs"), stdout);
            Assert.AreEqual("0", facts.GetValueOrDefault("systemTextInk"), $"text in the default typeface draws nothing there\n{stdout}");

            // The charts: the same pixels as here, where fonts exist, so every piece of text was drawn with the embedded font.
            foreach (var (name, expected) in ProbeCharts.Draw())
            {
                var child = PngImage.Read(Path.Combine(output, name));
                var here = new PngImage(expected);
                Assert.AreEqual((here.Width, here.Height), (child.Width, child.Height), name);
                int differing = Enumerable.Range(0, here.Pixels.Length).Count(i => here.Pixels[i] != child.Pixels[i]);
                Assert.AreEqual(0, differing, $"{name}: {differing} pixels differ from this process's drawing");
                Assert.IsGreaterThan(30, child.CountDark(0, 0, child.Width, 36), $"{name}: the title's text in the top band");
            }
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    // dotnet NoFontsProbe.dll FOLDER in a new user and mount namespace where an empty tmpfs covers /usr/share/fonts (if it exists).
    private static (int ExitCode, string Stdout, string Stderr) RunWithoutFonts(string probe, string folder)
    {
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[]
        {
            "--user", "--map-root-user", "--mount", "sh", "-c",
            "if [ -d /usr/share/fonts ]; then mount -t tmpfs -o size=1m none /usr/share/fonts || exit 97; fi; exec \"$@\"",
            "sh", TestRepository.DotnetHost(), probe, folder,
        })
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, string.Empty, $"unshare cannot be started: {e.Message}");
        }

        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail("NoFontsProbe did not finish within 2 minutes.");
            }

            process.WaitForExit();
            string errors = stderr.Result;
            if (process.ExitCode == 97) errors = $"unshare: mounting an empty tmpfs over /usr/share/fonts failed: {errors}";
            return (process.ExitCode, stdout, errors);
        }
    }

    /// <summary>
    /// Plots/NoFontsProbe/bin/{Configuration}/{TargetFramework}/NoFontsProbe.dll, the configuration and framework read from this
    /// test assembly's own folder (…/Microsoft.ML.Residual.Tests/bin/{Configuration}/{TargetFramework}/).
    /// </summary>
    private static string ProbeAssembly()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        string path = Path.Combine(TestRepository.Root(), "Microsoft.ML.Residual.Tests", "Plots", "NoFontsProbe", "bin",
            output.Parent!.Name, output.Name, "NoFontsProbe.dll");
        Assert.IsTrue(File.Exists(path), $"{path} is missing; the test project's ProjectReference to Plots/NoFontsProbe builds it.");
        return path;
    }
}
