using System;
using System.Linq;
using Microsoft.ML.Residual.Training;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>The plot of a <see cref="LearningRateFinderResult"/>: the loss against the learning rate, as fastai's <c>lr_find</c> draws it.</summary>
    public static class LearningRateFinderPlots
    {
        /// <summary>
        /// A chart of each step's loss and the smoothed loss against the learning rate (logarithmic axis), with the suggested rate
        /// marked on the smoothed curve when there is one. Batch losses above twice the highest smoothed loss are left out. Save
        /// it with <see cref="LineChart.Save"/>.
        /// </summary>
        /// <param name="result">The finder's outcome.</param>
        /// <exception cref="ArgumentNullException"><paramref name="result"/> is null.</exception>
        /// <exception cref="ArgumentException">The sweep recorded no step.</exception>
        public static LineChart ToChart(this LearningRateFinderResult result)
        {
            if (result is null) throw new ArgumentNullException(nameof(result));
            if (result.Points.Count == 0)
                throw new ArgumentException("The learning-rate finder recorded no step (its first loss was not finite); there is nothing to plot.", nameof(result));
            double[] rates = result.Points.Select(p => p.LearningRate).ToArray();
            // A batch's loss shoots up as the sweep diverges; above twice the highest smoothed loss it is left out, so that
            // the descent stays readable.
            double ceiling = 2 * result.Points.Max(p => p.SmoothedLoss);
            var chart = new LineChart { Title = "Learning-rate finder", XLabel = "learning rate", YLabel = "training loss", LogarithmicX = true }
                .Add("loss per batch", rates, result.Points.Select(p => p.Loss <= ceiling ? p.Loss : double.NaN).ToArray())
                .Add("smoothed loss", rates, result.Points.Select(p => p.SmoothedLoss).ToArray());
            if (result.Suggested is double suggested)
            {
                // The marker sits on the smoothed curve at the recorded rate nearest the suggestion (in log scale).
                var nearest = result.Points.MinBy(p => Math.Abs(Math.Log(p.LearningRate / suggested)))!;
                chart.Add(FormattableString.Invariant($"suggested {suggested:G2}"), new[] { suggested }, new[] { nearest.SmoothedLoss });
            }

            return chart;
        }
    }
}
