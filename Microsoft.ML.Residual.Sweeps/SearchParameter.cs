using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>How a parameter's values are spread.</summary>
    internal enum SearchParameterKind
    {
        Choice,
        Uniform,
        LogUniform,
    }

    /// <summary>
    /// One dimension of a search space. Tuners work on coordinates: a choice's index, or a range's position in [0, 1]
    /// (on the log scale for log-uniform ranges); <see cref="Decode"/> turns a coordinate into the value.
    /// </summary>
    internal sealed class SearchParameter
    {
        private SearchParameter(string name, SearchParameterKind kind, object[] values, double min, double max)
        {
            Name = name;
            Kind = kind;
            Values = values;
            Min = min;
            Max = max;
        }

        public string Name { get; }

        public SearchParameterKind Kind { get; }

        /// <summary>A choice's values (empty for a range).</summary>
        public IReadOnlyList<object> Values { get; }

        public double Min { get; }

        public double Max { get; }

        public bool IsChoice => Kind == SearchParameterKind.Choice;

        public static SearchParameter Choice(string name, object[] values) => new(name, SearchParameterKind.Choice, values, 0, values.Length - 1);

        public static SearchParameter Range(string name, double min, double max, bool logarithmic) =>
            new(name, logarithmic ? SearchParameterKind.LogUniform : SearchParameterKind.Uniform, Array.Empty<object>(), min, max);

        /// <summary>The value at a coordinate: a choice's index, or a position in [0, 1] of a range.</summary>
        public object Decode(double coordinate) => Kind switch
        {
            SearchParameterKind.Choice => Values[(int)Math.Clamp(Math.Round(coordinate), 0, Values.Count - 1)],
            SearchParameterKind.LogUniform => Math.Exp(Math.Log(Min) + Math.Clamp(coordinate, 0, 1) * (Math.Log(Max) - Math.Log(Min))),
            _ => Min + Math.Clamp(coordinate, 0, 1) * (Max - Min),
        };

        /// <summary>A uniformly random coordinate.</summary>
        public double Sample(Random random) => IsChoice ? random.Next(Values.Count) : random.NextDouble();

        /// <summary>The grid's coordinates: every choice, or <paramref name="pointsPerRange"/> evenly spaced positions of a range.</summary>
        public IEnumerable<double> GridCoordinates(int pointsPerRange) =>
            IsChoice ? Enumerable.Range(0, Values.Count).Select(i => (double)i)
            : Min == Max || pointsPerRange == 1 ? new[] { 0.5 }
            : Enumerable.Range(0, pointsPerRange).Select(i => i / (double)(pointsPerRange - 1));

        public override string ToString() => Kind switch
        {
            SearchParameterKind.Choice => $"{Name} ∈ {{{string.Join(", ", Values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)))}}}",
            SearchParameterKind.LogUniform => string.Create(CultureInfo.InvariantCulture, $"{Name} ~ log-uniform[{Min:G4}, {Max:G4}]"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{Name} ~ uniform[{Min:G4}, {Max:G4}]"),
        };
    }
}
