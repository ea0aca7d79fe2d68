using System;
using System.Threading;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>The options every training estimator shares, which a sweep sets for each of its trials.</summary>
    internal interface ITrainingRunOptions
    {
        int Epochs { get; set; }

        int Seed { get; set; }

        /// <summary>Pause after this epoch (the schedule still spans <see cref="Epochs"/>); see <see cref="TrainingOptions"/>.</summary>
        int? StopAfterEpoch { get; set; }

        string? CheckpointDirectory { get; set; }

        IDataView? ValidationSet { get; set; }

        double ValidationFraction { get; set; }

        IProgress<EpochReport>? Progress { get; set; }

        IProgress<BatchReport>? BatchProgress { get; set; }

        CancellationToken CancellationToken { get; set; }
    }
}
