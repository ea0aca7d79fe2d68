using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Diagnostics;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>The plots of a <see cref="DegradationStudyResult"/> (its tables: <see cref="DegradationStudyResult.Save"/>).</summary>
    public static class DegradationStudyPlots
    {
        /// <summary>The file names <see cref="SavePlots"/> writes, in order.</summary>
        public static IReadOnlyList<string> FileNames { get; } = new[] { "training-loss.png", "gradient-flow-initial.png", "gradient-flow-final.png" };

        /// <summary>
        /// Writes into <paramref name="folder"/> (which must exist): training-loss.png (every network's training loss by epoch),
        /// gradient-flow-initial.png and gradient-flow-final.png (each network's per-block input-gradient norms at initialisation and
        /// after training, on a logarithmic axis), each whole or not at all. Returns the paths.
        /// </summary>
        /// <param name="result">The study's outcome.</param>
        /// <param name="folder">The folder to write into.</param>
        /// <exception cref="ArgumentNullException"><paramref name="result"/> is null.</exception>
        /// <exception cref="ArgumentException"><paramref name="result"/> has no networks.</exception>
        /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
        public static IReadOnlyList<string> SavePlots(this DegradationStudyResult result, string folder)
        {
            if (result is null) throw new ArgumentNullException(nameof(result));
            if (result.Runs.Count == 0) throw new ArgumentException("The study has no networks to plot.", nameof(result));
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"The folder '{folder}' does not exist; create it first.");
            var charts = Charts(result);
            var paths = new List<string>();
            for (int i = 0; i < charts.Length; i++)
            {
                string path = Path.Combine(folder, FileNames[i]);
                charts[i].Save(path);
                paths.Add(path);
            }

            return paths;
        }

        /// <summary>The three charts of <see cref="SavePlots"/>, in the order of <see cref="FileNames"/>.</summary>
        internal static LineChart[] Charts(DegradationStudyResult result)
        {
            var loss = new LineChart { Title = "Training loss", XLabel = "epoch", YLabel = "training loss" };
            var initial = new LineChart { Title = "Gradient norm at each block's input, at initialisation", XLabel = "block (input to output)", YLabel = "gradient norm", LogarithmicY = true };
            var final = new LineChart { Title = "Gradient norm at each block's input, after training", XLabel = "block (input to output)", YLabel = "gradient norm", LogarithmicY = true };
            foreach (DegradationRun run in result.Runs)
            {
                loss.Add(run.Label, run.History.Select(r => (double)r.Epoch).ToArray(), run.History.Select(r => r.TrainingLoss).ToArray());
                double[] blocks = Enumerable.Range(1, run.GradientFlow[0].BlockNames.Length).Select(b => (double)b).ToArray();
                initial.Add(run.Label, blocks, run.GradientFlow[0].BlockInputGradientNorms);
                final.Add(run.Label, blocks, run.GradientFlow[^1].BlockInputGradientNorms);
            }

            return new[] { loss, initial, final };
        }
    }
}
