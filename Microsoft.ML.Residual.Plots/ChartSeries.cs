using System.Collections.Generic;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>One named line of a <see cref="LineChart"/>: the points (X[i], Y[i]), joined in their order.</summary>
    /// <param name="Name">The name shown in the legend.</param>
    /// <param name="X">The points' X values (finite), as many as Y values.</param>
    /// <param name="Y">
    /// The points' Y values. A NaN or infinite Y (or, on a logarithmic Y axis, a Y of 0 or less) leaves its point out and breaks the
    /// line there, as for a validation loss that was not measured in some epochs.
    /// </param>
    public sealed record ChartSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);
}
