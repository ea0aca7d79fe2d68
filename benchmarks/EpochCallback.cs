using System;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>Runs an action on every epoch report, on the training thread (unlike <see cref="Progress{T}"/>).</summary>
    internal sealed class EpochCallback : IProgress<EpochReport>
    {
        private readonly Action<EpochReport> action;

        public EpochCallback(Action<EpochReport> action) => this.action = action;

        public void Report(EpochReport value) => action(value);
    }
}
