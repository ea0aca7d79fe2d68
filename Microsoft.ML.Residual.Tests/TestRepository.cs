using System;
using System.IO;

namespace Microsoft.ML.Residual.Tests;

/// <summary>Where the repository is, and which dotnet host to start child processes with.</summary>
internal static class TestRepository
{
    /// <summary>The folder holding ResidualML.sln, above this test assembly's output folder.</summary>
    public static string Root()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder != null; folder = folder.Parent)
            if (File.Exists(Path.Combine(folder.FullName, "ResidualML.sln"))) return folder.FullName;
        throw new InvalidOperationException($"No ResidualML.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The dotnet host that runs the tests (the SDK sets DOTNET_HOST_PATH for its child processes), else the one on PATH.</summary>
    public static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } set && File.Exists(set) ? set : "dotnet";
}
