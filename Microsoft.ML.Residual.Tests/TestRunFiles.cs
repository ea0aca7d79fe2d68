using System;
using System.Diagnostics;
using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests;

/// <summary>
/// Starts a test run (<see cref="StartRun"/>) and keeps its scratch folder (residualml-tests-PID in the temporary folder):
/// deleted when the run ends, and folders left by runs whose process has ended (a crash, a killed run) are deleted when the
/// next run starts.
/// </summary>
[TestClass]
public static class TestRunFiles
{
    private const string Prefix = "residualml-tests-";

    public static string Folder { get; } = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), Prefix + Environment.ProcessId)).FullName;

    [AssemblyInitialize]
    public static void StartRun(TestContext _)
    {
        DeleteFoldersOfEndedRuns();
        // Before any test: where libtorch's oneDNN convolutions are wrong on this CPU, they are switched off for the whole
        // process, so a test that runs a convolution directly sees the same kernels whatever ran before it.
        Microsoft.ML.Residual.Models.ConvolutionKernels.EnsureCorrect();
    }

    private static void DeleteFoldersOfEndedRuns()
    {
        foreach (string folder in Directory.EnumerateDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            if (!int.TryParse(Path.GetFileName(folder).AsSpan(Prefix.Length), out int pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
            TryDelete(folder);
        }
    }

    [AssemblyCleanup]
    public static void DeleteThisRunsFolder() => TryDelete(Folder);

    private static bool IsRunning(int pid)
    {
        try
        {
            using Process process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
