using System;

namespace Microsoft.ML.Residual.IO
{
    /// <summary>
    /// A seam for tests of failing disks: the library's writers report each file they have just written, before it is
    /// committed (renamed into place), and a test can throw from there what a full or failing disk would (an
    /// <see cref="System.IO.IOException"/>). Per thread, so tests running in parallel do not see each other's faults.
    /// </summary>
    internal static class FaultInjection
    {
        [ThreadStatic]
        private static Action<string>? afterWrite;

        /// <summary>Calls <paramref name="check"/> with every file written on this thread until the result is disposed.</summary>
        public static IDisposable OnWrite(Action<string> check)
        {
            Action<string>? previous = afterWrite;
            afterWrite = check;
            return new Restore(() => afterWrite = previous);
        }

        /// <summary>Reports a file just written (not yet committed).</summary>
        public static void Wrote(string path) => afterWrite?.Invoke(path);

        private sealed class Restore : IDisposable
        {
            private Action? undo;

            public Restore(Action undo) => this.undo = undo;

            public void Dispose()
            {
                undo?.Invoke();
                undo = null;
            }
        }
    }
}
