using System;
using System.Collections.Generic;
using System.Globalization;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>A tick on an axis: its value in data units and its label.</summary>
    internal readonly record struct Tick(double Value, string Label);

    /// <summary>
    /// A chart axis: the range it shows (the data's range padded on both sides), how a value maps to a pixel, and round ticks with
    /// labels spaced so that they do not overlap. Logarithmic axes work in base-10 exponents.
    /// </summary>
    internal sealed class Axis
    {
        /// <summary>The share of the data's range added on each side, so that no point sits on the frame.</summary>
        public const double Padding = 0.04;

        private static readonly int[] DecadeSteps = { 1, 2, 3, 5, 10, 20, 25, 50, 100 };

        private Axis(bool logarithmic, double low, double high, IReadOnlyList<Tick> ticks)
        {
            Logarithmic = logarithmic;
            Low = low;
            High = high;
            Ticks = ticks;
        }

        public bool Logarithmic { get; }

        /// <summary>The start of the axis, in axis units (base-10 exponents on a logarithmic axis).</summary>
        public double Low { get; }

        /// <summary>The end of the axis, in axis units (base-10 exponents on a logarithmic axis).</summary>
        public double High { get; }

        public IReadOnlyList<Tick> Ticks { get; }

        /// <summary>A data value in axis units: log10 of it on a logarithmic axis, else the value.</summary>
        public double Transform(double value) => Logarithmic ? Math.Log10(value) : value;

        /// <summary>The pixel coordinate of <paramref name="value"/> when the axis runs from pixel <paramref name="from"/> to <paramref name="to"/>.</summary>
        public double ToPixel(double value, double from, double to) => from + (Transform(value) - Low) / (High - Low) * (to - from);

        /// <summary>
        /// An axis for data from <paramref name="min"/> to <paramref name="max"/> (both finite, and positive on a logarithmic axis; the
        /// caller checks that max − min is finite), drawn <paramref name="length"/> pixels long.
        /// </summary>
        /// <param name="min">The smallest data value.</param>
        /// <param name="max">The largest data value.</param>
        /// <param name="logarithmic">A base-10 logarithmic axis.</param>
        /// <param name="integers">The data are whole numbers (epochs): ticks are whole numbers too.</param>
        /// <param name="length">The axis length in pixels.</param>
        /// <param name="spacing">The smallest distance between ticks to aim for, in pixels.</param>
        /// <param name="extent">The size of a label along the axis, in pixels.</param>
        /// <param name="gap">The smallest free space between two labels, in pixels.</param>
        public static Axis Create(double min, double max, bool logarithmic, bool integers, int length, int spacing, Func<string, int> extent, int gap)
        {
            double low = logarithmic ? Math.Log10(min) : min, high = logarithmic ? Math.Log10(max) : max;
            if (high == low)
            {
                // One value: a range around it, so that it still draws (half a decade, one unit, or a tenth of the value either side).
                double half = logarithmic ? 0.5 : integers || low == 0 ? 1 : Math.Abs(low) / 10;
                low -= half;
                high += half;
            }

            double pad = Padding * (high - low);
            low -= pad;
            high += pad;

            for (int count = Math.Max(2, length / Math.Max(1, spacing)); count >= 1; count--)
            {
                var ticks = logarithmic ? LogarithmicTicks(low, high, count) : LinearTicks(low, high, count, integers);
                if (ticks.Count == 0) continue;
                var axis = new Axis(logarithmic, low, high, ticks);
                if (count == 1 || axis.LabelsFit(length, extent, gap)) return axis;
            }

            // No round value in the range (a very short axis over a narrow range): one tick in the middle of the data.
            double centre = logarithmic ? Math.Sqrt(min) * Math.Sqrt(max) : min / 2 + max / 2;
            return new Axis(logarithmic, low, high, new[] { new Tick(centre, FormatValue(centre)) });
        }

        /// <summary>A value with up to 3 decimals, or in exponent form with 3 significant digits below 0.001 or from a million up.</summary>
        internal static string FormatValue(double value)
        {
            double size = Math.Abs(value);
            return value == 0 || (size >= 1e-3 && size < 1e6)
                ? value.ToString("0.###", CultureInfo.InvariantCulture)
                : FormatExponent(value, (int)Math.Floor(Math.Log10(size)) - 2);
        }

        private bool LabelsFit(int length, Func<string, int> extent, int gap)
        {
            for (int i = 1; i < Ticks.Count; i++)
            {
                double distance = Math.Abs(ToPixel(Ticks[i].Value, 0, length) - ToPixel(Ticks[i - 1].Value, 0, length));
                if (distance < (extent(Ticks[i].Label) + extent(Ticks[i - 1].Label)) / 2.0 + gap) return false;
            }

            return true;
        }

        /// <summary>
        /// Multiples of a round step (1, 2 or 5 times a power of ten; at least 1 for whole numbers) in [low, high], with at most about
        /// <paramref name="count"/> + 1 of them.
        /// </summary>
        internal static IReadOnlyList<Tick> LinearTicks(double low, double high, int count, bool integers)
        {
            double raw = (high - low) / Math.Max(1, count);
            double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
            double step = 10 * magnitude;
            foreach (int multiple in new[] { 1, 2, 5 })
                if (multiple * magnitude >= raw * (1 - 1e-9))
                {
                    step = multiple * magnitude;
                    break;
                }

            if (integers && step < 1) step = 1;
            double first = Math.Ceiling(low / step - 1e-9), last = Math.Floor(high / step + 1e-9);
            var values = new List<double>();
            for (double k = first; k <= last && values.Count <= 1000; k++)
            {
                double value = k * step;
                values.Add(Math.Abs(value) < step * 1e-9 ? 0 : value);
            }

            double largest = 0;
            foreach (double value in values) largest = Math.Max(largest, Math.Abs(value));
            var ticks = new Tick[values.Count];
            for (int i = 0; i < ticks.Length; i++) ticks[i] = new Tick(values[i], FormatLinear(values[i], largest, step));
            return ticks;
        }

        /// <summary>
        /// Ticks for a logarithmic axis from 10^<paramref name="low"/> to 10^<paramref name="high"/>, at most about <paramref name="count"/>:
        /// powers of ten (every 2nd, 5th, … decade on long ranges), with 2× and 5× between them on ranges of three decades or less; on
        /// ranges too short for two powers of ten, 1×, 2× and 5× or 1× to 9× every power of ten, or else round linear steps.
        /// </summary>
        internal static IReadOnlyList<Tick> LogarithmicTicks(double low, double high, int count)
        {
            int first = (int)Math.Ceiling(low - 1e-9), last = (int)Math.Floor(high + 1e-9);
            if (last - first + 1 >= 2)
            {
                int step = DecadeSteps[^1];
                foreach (int candidate in DecadeSteps)
                    if (Multiples(first, last, candidate) <= count)
                    {
                        step = candidate;
                        break;
                    }

                if (step == 1 && high - low <= 3.5)
                {
                    var finer = Mantissas(low, high, new[] { 1, 2, 5 });
                    if (finer.Count <= count) return Label(finer);
                }

                var powers = new List<(int, int)>();
                for (int k = first; k <= last; k++)
                    if (((k % step) + step) % step == 0)
                        powers.Add((1, k));
                return Label(powers);
            }

            // Fewer than two powers of ten in range: 1×, 2×, 5× if that gives 3 ticks, else every 1× to 9× if they fit, else 1×, 2×, 5× if that gives 2.
            var coarse = Mantissas(low, high, new[] { 1, 2, 5 });
            if (coarse.Count >= 3 && coarse.Count <= count) return Label(coarse);
            var fine = Mantissas(low, high, new[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 });
            if (fine.Count >= 2 && fine.Count <= count) return Label(fine);
            if (coarse.Count >= 2 && coarse.Count <= count) return Label(coarse);

            return LinearTicks(Math.Pow(10, low), Math.Pow(10, high), count, integers: false);
        }

        private static int Multiples(int first, int last, int step) =>
            (int)(Math.Floor((double)last / step) - Math.Ceiling((double)first / step) + 1);

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

        // Labels m·10^k as plain decimals when every tick is between 0.001 and 9000, else as "me k" (1e-6, 5e-3, 1e0).
        private static IReadOnlyList<Tick> Label(List<(int Mantissa, int Exponent)> ticks)
        {
            bool plain = ticks.TrueForAll(t => t.Exponent >= -3 && t.Exponent <= 3);
            var result = new Tick[ticks.Count];
            for (int i = 0; i < result.Length; i++)
            {
                var (m, k) = ticks[i];
                string label = !plain ? FormattableString.Invariant($"{m}e{k}")
                    : k >= 0 ? FormattableString.Invariant($"{m}{new string('0', k)}")
                    : FormattableString.Invariant($"0.{new string('0', -k - 1)}{m}");
                result[i] = new Tick(m * Math.Pow(10, k), label);
            }

            return result;
        }

        /// <summary>
        /// A tick label: fixed decimals as the step needs (0.0, 0.5, 1.0), or, for values of a million or more or steps below 0.0001,
        /// a compact exponent form (1.5e-5, 2e6).
        /// </summary>
        /// <param name="value">The tick's value.</param>
        /// <param name="largest">The largest absolute value among the axis's ticks.</param>
        /// <param name="step">The step between ticks.</param>
        internal static string FormatLinear(double value, double largest, double step)
        {
            int stepExponent = (int)Math.Floor(Math.Log10(step) + 1e-9);
            if (largest < 1e6 && stepExponent >= -4)
                return value.ToString("F" + Math.Max(0, -stepExponent).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            return FormatExponent(value, stepExponent);
        }

        /// <summary>
        /// <paramref name="value"/> as mantissa "e" exponent, with as many mantissa digits as a precision of 10^<paramref name="precisionExponent"/>
        /// needs (at most 15), trailing zeros dropped: 1.5e-5, 2e6, -3e-7; 0 for zero.
        /// </summary>
        internal static string FormatExponent(double value, int precisionExponent)
        {
            if (value == 0) return "0";
            int exponent = (int)Math.Floor(Math.Log10(Math.Abs(value)) + 1e-9);
            int decimals = Math.Clamp(exponent - precisionExponent, 0, 15);
            double mantissa = Math.Round(value / Math.Pow(10, exponent), decimals, MidpointRounding.AwayFromZero);
            if (Math.Abs(mantissa) >= 10)
            {
                mantissa /= 10;
                exponent++;
            }

            string digits = mantissa.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            if (digits.Contains('.')) digits = digits.TrimEnd('0').TrimEnd('.');
            return digits + "e" + exponent.ToString(CultureInfo.InvariantCulture);
        }
    }
}
