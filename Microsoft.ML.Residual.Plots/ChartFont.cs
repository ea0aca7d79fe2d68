using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using ScottPlot;
using SkiaSharp;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// The typeface of every chart's text: DejaVu Sans, embedded in this assembly (its licence is Fonts/LICENSE-DejaVu.txt) and
    /// registered with ScottPlot under a family name of its own, so that charts draw the same text whatever fonts the system has,
    /// none included. ScottPlot's own defaults (<see cref="Fonts.Default"/>) are left alone: other plots of the process keep theirs.
    /// </summary>
    internal static class ChartFont
    {
        /// <summary>The family name the charts ask ScottPlot for; no installed font has it.</summary>
        public const string Name = "ResidualML DejaVu Sans";

        private const string Resource = "Microsoft.ML.Residual.Plots.Fonts.DejaVuSans.ttf";

        private static readonly Lazy<SKTypeface> Loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);
        private static readonly Lazy<bool> Registered = new(Register, LazyThreadSafetyMode.ExecutionAndPublication);

        /// <summary>The embedded typeface, loaded on first use.</summary>
        public static SKTypeface Typeface => Loaded.Value;

        /// <summary>
        /// Puts a resolver for <see cref="Name"/> first in ScottPlot's <see cref="Fonts.FontResolvers"/>, once per process
        /// (later calls do nothing; concurrent first calls register it once). Charts call it before they build a plot.
        /// </summary>
        public static void EnsureRegistered() => _ = Registered.Value;

        /// <summary>Sets the font of the plot's title, axis labels, tick labels and legend to the embedded one.</summary>
        public static void Apply(Plot plot)
        {
            EnsureRegistered();
            plot.Axes.Title.Label.FontName = Name;
            foreach (IAxis axis in plot.Axes.GetAxes())
            {
                axis.Label.FontName = Name;
                axis.TickLabelStyle.FontName = Name;
            }

            plot.Legend.FontName = Name;
        }

        /// <summary>The font names of everything in <paramref name="plot"/> that draws text: title, axis and tick labels, legend, text plottables.</summary>
        public static IReadOnlyList<string> FontNamesOf(Plot plot)
        {
            var names = new List<string> { plot.Axes.Title.Label.FontName, plot.Legend.FontName ?? "(each legend item's own)" };
            foreach (IAxis axis in plot.Axes.GetAxes())
            {
                names.Add(axis.Label.FontName);
                names.Add(axis.TickLabelStyle.FontName);
            }

            names.AddRange(plot.GetPlottables<ScottPlot.Plottables.Text>().Select(text => text.LabelStyle.FontName));
            return names;
        }

        /// <summary>The width in pixels of <paramref name="text"/> drawn at <paramref name="size"/> pixels.</summary>
        public static float Measure(string text, float size)
        {
            using var font = new SKFont(Typeface, size);
            return font.MeasureText(text);
        }

        /// <summary><paramref name="text"/>, shortened to end in '…' if it is wider than <paramref name="width"/> pixels at <paramref name="size"/>.</summary>
        public static string Truncate(string text, float width, float size)
        {
            if (Measure(text, size) <= width) return text;
            for (int length = text.Length - 1; length > 0; length--)
            {
                string shortened = text[..length].TrimEnd() + "…";
                if (Measure(shortened, size) <= width) return shortened;
            }

            return string.Empty;
        }

        private static SKTypeface Load()
        {
            using Stream stream = typeof(ChartFont).Assembly.GetManifestResourceStream(Resource)
                ?? throw new InvalidOperationException($"The font resource '{Resource}' is missing from {typeof(ChartFont).Assembly.GetName().Name}; the assembly is damaged.");
            using SKData data = SKData.Create(stream);
            return SKTypeface.FromData(data)
                ?? throw new InvalidOperationException($"SkiaSharp cannot read the font resource '{Resource}'.");
        }

        private static bool Register()
        {
            var resolver = new EmbeddedFontResolver(Typeface);
            lock (Fonts.FontResolvers) Fonts.FontResolvers.Insert(0, resolver);
            return true;
        }

        /// <summary>The embedded typeface for <see cref="Name"/> (in every weight and slant: only the regular one is embedded); null for other names.</summary>
        private sealed class EmbeddedFontResolver : IFontResolver
        {
            private readonly SKTypeface typeface;

            public EmbeddedFontResolver(SKTypeface typeface) => this.typeface = typeface;

            public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing width) =>
                fontName == Name ? typeface : null;

            public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => fontName == Name ? typeface : null;
        }
    }
}
