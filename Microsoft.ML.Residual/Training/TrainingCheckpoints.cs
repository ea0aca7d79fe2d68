using System;
using System.IO;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// What a <c>CheckpointDirectory</c> holds. Training writes a checkpoint after every epoch (each one complete before it
    /// replaces the previous); fitting again with the same directory resumes after the latest.
    /// </summary>
    public static class TrainingCheckpoints
    {
        /// <summary>The epoch of the latest checkpoint in <paramref name="directory"/>, or null when it holds none or does not exist.</summary>
        /// <exception cref="InvalidOperationException">The directory names a latest checkpoint that is missing.</exception>
        public static int? LatestEpoch(string directory)
        {
            if (string.IsNullOrWhiteSpace(directory)) throw new ArgumentException("Give the checkpoint directory's path.", nameof(directory));
            return CheckpointStore.Latest(Path.GetFullPath(directory))?.Epoch;
        }
    }
}
