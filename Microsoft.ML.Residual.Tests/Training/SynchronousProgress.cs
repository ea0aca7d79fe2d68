using System;

namespace Microsoft.ML.Residual.Tests.Training;

/// <summary>Calls the handler on the reporting thread, at once (System.Progress posts to a synchronisation context instead).</summary>
internal sealed class SynchronousProgress<T> : IProgress<T>
{
    private readonly Action<T> handler;

    public SynchronousProgress(Action<T> handler) => this.handler = handler;

    public void Report(T value) => handler(value);
}
