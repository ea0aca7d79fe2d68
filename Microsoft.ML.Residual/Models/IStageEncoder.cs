using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A backbone that exposes the feature maps of its stages, from the highest resolution to the lowest,
    /// for encoder–decoder networks (U-Net) and feature pyramids.
    /// </summary>
    public interface IStageEncoder
    {
        /// <summary>Channels of each stage's output, first (highest resolution) to last.</summary>
        IReadOnlyList<int> StageChannels { get; }

        /// <summary>Downsampling factor of each stage's output relative to the input (e.g. 2, 4, 8, 16, 32).</summary>
        IReadOnlyList<int> StageReductions { get; }

        /// <summary>Runs the backbone and returns every stage's output, in the order of <see cref="StageChannels"/>.</summary>
        IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
            where T : class;
    }
}
