using System;
using System.Threading;

/// <summary>
/// A .NET startup hook that runs any .NET program under a storm of garbage collections: a background thread forces
/// full collections and runs the finalizers back to back for the life of the process. Used to check that training
/// never hands libtorch a Scalar the collector may free (docs/reliability.md):
/// <c>DOTNET_STARTUP_HOOKS=$PWD/tools/GcStormHook/bin/Release/net10.0/GcStormHook.dll dotnet residualml.dll train …</c>.
/// The runtime finds the hook by this type name (no namespace) and method name.
/// </summary>
internal static class StartupHook
{
    /// <summary>Called by the runtime before the program's Main.</summary>
    public static void Initialize()
    {
        var storm = new Thread(() =>
        {
            while (true)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        })
        { IsBackground = true, Name = "GC storm" };
        storm.Start();
    }
}
