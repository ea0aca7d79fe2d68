using System;
using System.Globalization;
using System.Linq;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// ScottPlot's automatic numeric ticks, labelled with as many decimals as the step between them needs, the same for every tick
    /// (1.065, 1.070, 1.075 rather than 1.065, 1.07, 1.075). Labels of very small steps or very large values keep ScottPlot's form.
    /// </summary>
    internal sealed class EvenDecimalTicks : ITickGenerator
    {
        private readonly NumericAutomatic automatic;

        /// <param name="integers">Whole-number ticks only (epochs, blocks).</param>
        /// <param name="minimumSpacing">The least distance between labelled ticks, in pixels.</param>
        public EvenDecimalTicks(bool integers, float minimumSpacing) =>
            automatic = new NumericAutomatic { IntegerTicksOnly = integers, MinimumTickSpacing = minimumSpacing };

        public Tick[] Ticks { get; set; } = Array.Empty<Tick>();

        public int MaxTickCount { get => automatic.MaxTickCount; set => automatic.MaxTickCount = value; }

        public void Regenerate(CoordinateRange range, Edge edge, PixelLength size, Paint paint, LabelStyle labelStyle)
        {
            automatic.Regenerate(range, edge, size, paint, labelStyle);
            double[] major = automatic.Ticks.Where(t => t.IsMajor).Select(t => t.Position).OrderBy(p => p).ToArray();
            double step = double.PositiveInfinity;
            for (int i = 1; i < major.Length; i++) step = Math.Min(step, major[i] - major[i - 1]);
            double largest = major.Length == 0 ? 0 : major.Max(Math.Abs);
            if (!(step >= 1e-4 && step < double.PositiveInfinity && largest < 1e6))
            {
                Ticks = automatic.Ticks;
                return;
            }

            string format = "F" + Math.Max(0, -(int)Math.Floor(Math.Log10(step) + 1e-9)).ToString(CultureInfo.InvariantCulture);
            Ticks = automatic.Ticks.Select(t => t.IsMajor ? Tick.Major(t.Position, Label(t.Position, format)) : t).ToArray();
        }

        private static string Label(double value, string format)
        {
            string label = value.ToString(format, CultureInfo.InvariantCulture);
            // No "-0.00" for a tick at zero that arrives as a tiny negative number.
            return label.TrimStart('-').Trim('0', '.').Length == 0 ? 0.0.ToString(format, CultureInfo.InvariantCulture) : label;
        }
    }
}
