using System;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Calls a delegate at once, on the reporting thread (System.Progress would post to a thread-pool thread, out of order).
    /// The trainer reports each epoch synchronously before the next begins, so a handler sees the model as the epoch left it.
    /// </summary>
    internal sealed class CallbackProgress<T> : IProgress<T>
    {
        private readonly Action<T> report;

        public CallbackProgress(Action<T> report) => this.report = report;

        public void Report(T value) => report(value);
    }
}
