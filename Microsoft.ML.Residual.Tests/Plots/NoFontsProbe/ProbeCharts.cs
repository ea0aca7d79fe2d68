using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Plots;

namespace Microsoft.ML.Residual.Tests.Plots.NoFontsProbe
{
    /// <summary>The charts that NoFontsProbe draws in a process without fonts and Plots/NoFontsTests draws in its own (one source, compiled into both).</summary>
    internal static class ProbeCharts
    {
        public static IReadOnlyDictionary<string, byte[]> Draw()
        {
            double[] epochs = Enumerable.Range(1, 10).Select(e => (double)e).ToArray();
            var loss = new LineChart { Title = "Loss", XLabel = "epoch", YLabel = "loss" }
                .Add("training", epochs, epochs.Select(e => 2.0 / e).ToArray())
                .Add("validation", epochs, epochs.Select(e => 2.5 / e + 0.1).ToArray());
            var flow = new LineChart { Title = "Gradient norm at each block's input", XLabel = "block", YLabel = "gradient norm", LogarithmicY = true }
                .Add("plain20", epochs, epochs.Select(e => 1e-3 * e * e).ToArray());
            var matrix = new ConfusionMatrixChart(new[] { "cat", "dog", "horse" },
                new[] { new double[] { 50, 3, 2 }, new double[] { 5, 40, 10 }, new double[] { 0, 1, 120 } });
            return new Dictionary<string, byte[]>
            {
                ["loss.png"] = loss.ToPng(),
                ["gradient-flow.png"] = flow.ToPng(),
                ["confusion-matrix.png"] = matrix.ToPng(),
            };
        }
    }
}
