using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ScottPlot;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// Ticks for an axis whose coordinates are base-10 logarithms of the values: labelled ticks at powers of ten (every 2nd, 5th, …
    /// decade on long ranges), with 2× and 5× between them on ranges of three decades or less, or 1× to 9× on ranges shorter than
    /// two decades; minor ticks at the other multiples. Labels are plain decimals from 0.001 to 9000, else like 2e-5.
    /// </summary>
    internal sealed class LogarithmicTicks : ITickGenerator
    {
        private static readonly int[] DecadeSteps = { 1, 2, 3, 5, 10, 20, 25, 50, 100 };

        public Tick[] Ticks { get; set; } = Array.Empty<Tick>();

        public int MaxTickCount { get; set; } = 1000;

        public void Regenerate(CoordinateRange range, Edge edge, PixelLength size, Paint paint, LabelStyle labelStyle)
        {
            // Labels need about three times their height apart on a vertical axis, their width and a gap on a horizontal one.
            double spacing = edge is Edge.Left or Edge.Right ? 3 * labelStyle.FontSize : 6 * labelStyle.FontSize;
            int count = Math.Max(2, (int)(size.Length / spacing));
            Ticks = Create(Math.Min(range.Min, range.Max), Math.Max(range.Min, range.Max), count);
        }

        /// <summary>The ticks from 10^<paramref name="low"/> to 10^<paramref name="high"/>, at most about <paramref name="count"/> labelled.</summary>
        internal static Tick[] Create(double low, double high, int count)
        {
            var major = Major(low, high, count);
            bool plain = Plain(major);
            var ticks = major.Select(t => Tick.Major(t.Exponent + Math.Log10(t.Mantissa), Label(t, plain))).ToList();
            var taken = new HashSet<(int, int)>(major.Select(t => (t.Mantissa, t.Exponent)));
            foreach (var (mantissa, exponent) in Mantissas(low, high, new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 }))
                if (!taken.Contains((mantissa, exponent)))
                    ticks.Add(Tick.Minor(exponent + Math.Log10(mantissa)));
            return ticks.ToArray();
        }

        private static List<(int Mantissa, int Exponent)> Major(double low, double high, int count)
        {
            int first = (int)Math.Ceiling(low - 1e-9), last = (int)Math.Floor(high + 1e-9);
            if (last - first + 1 >= 2)
            {
                int step = DecadeSteps[^1];
                foreach (int candidate in DecadeSteps)
                    if (Math.Floor((double)last / candidate) - Math.Ceiling((double)first / candidate) + 1 <= count)
                    {
                        step = candidate;
                        break;
                    }

                if (step == 1 && high - low <= 3.5)
                {
                    var finer = Mantissas(low, high, new[] { 1, 2, 5 });
                    if (finer.Count <= count) return finer;
                }

                var powers = new List<(int, int)>();
                for (int k = first; k <= last; k++)
                    if (((k % step) + step) % step == 0)
                        powers.Add((1, k));
                return powers;
            }

            // Fewer than two powers of ten in range: 1×, 2×, 5× if that gives 3 ticks, else every 1× to 9× if they fit, else 1×, 2×, 5×.
            var coarse = Mantissas(low, high, new[] { 1, 2, 5 });
            if (coarse.Count >= 3 && coarse.Count <= count) return coarse;
            var fine = Mantissas(low, high, new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 });
            if (fine.Count >= 2 && fine.Count <= count) return fine;
            return coarse.Count > 0 ? coarse : fine;
        }

        // m·10^k for the given mantissas m within [10^low, 10^high].
        private static List<(int Mantissa, int Exponent)> Mantissas(double low, double high, int[] mantissas)
        {
            var ticks = new List<(int, int)>();
            for (int k = (int)Math.Floor(low) - 1; k <= (int)Math.Ceiling(high); k++)
                foreach (int m in mantissas)
                {
                    double exponent = k + Math.Log10(m);
                    if (exponent >= low - 1e-9 && exponent <= high + 1e-9) ticks.Add((m, k));
                }

            return ticks;
        }

        private static bool Plain(List<(int Mantissa, int Exponent)> ticks) => ticks.TrueForAll(t => t.Exponent >= -3 && t.Exponent <= 3);

        // m·10^k as a plain decimal (0.002, 50) or as "me k" (2e-5).
        private static string Label((int Mantissa, int Exponent) tick, bool plain)
        {
            var (m, k) = tick;
            if (!plain) return string.Create(CultureInfo.InvariantCulture, $"{m}e{k}");
            return k >= 0 ? string.Create(CultureInfo.InvariantCulture, $"{m}{new string('0', k)}")
                : string.Create(CultureInfo.InvariantCulture, $"0.{new string('0', -k - 1)}{m}");
        }
    }
}
