using System;
using System.Collections.Generic;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>The colours the charts share.</summary>
    internal static class ChartStyle
    {
        /// <summary>The series colours, in order: 10 well separated colours.</summary>
        public static readonly IReadOnlyList<ScottPlot.Color> Palette = new ScottPlot.Color[]
        {
            new(31, 100, 200), new(235, 110, 20), new(40, 160, 60), new(205, 35, 50), new(135, 75, 195),
            new(20, 170, 180), new(145, 95, 50), new(225, 70, 165), new(150, 155, 20), new(30, 40, 120),
        };

        /// <summary>Text.</summary>
        public static readonly ScottPlot.Color Ink = new(30, 30, 30);

        /// <summary>The frame around the plot, and tick marks.</summary>
        public static readonly ScottPlot.Color Frame = new(70, 70, 70);

        /// <summary>Grid lines.</summary>
        public static readonly ScottPlot.Color Grid = new(228, 228, 228);

        public static readonly ScottPlot.Color White = new(255, 255, 255);

        /// <summary>The colour <paramref name="t"/> of the way from <paramref name="from"/> to <paramref name="to"/> (t in [0, 1]).</summary>
        public static ScottPlot.Color Blend(ScottPlot.Color from, ScottPlot.Color to, double t)
        {
            t = Math.Clamp(t, 0, 1);
            return new ScottPlot.Color(Mix(from.R, to.R), Mix(from.G, to.G), Mix(from.B, to.B));

            byte Mix(byte a, byte b) => (byte)Math.Round(a + (b - a) * t, MidpointRounding.AwayFromZero);
        }

        /// <summary>Relative luminance as WCAG defines it for contrast: 0 (black) to 1 (white), from the linearised sRGB channels.</summary>
        public static double Luminance(ScottPlot.Color colour) => 0.2126 * Linear(colour.R) + 0.7152 * Linear(colour.G) + 0.0722 * Linear(colour.B);

        /// <summary>Whichever of <see cref="Ink"/> and white contrasts more with <paramref name="background"/> (WCAG contrast ratio).</summary>
        public static ScottPlot.Color ReadableOn(ScottPlot.Color background)
        {
            double lit = Luminance(background) + 0.05;
            double onWhite = (Luminance(White) + 0.05) / lit, onInk = lit / (Luminance(Ink) + 0.05);
            return onWhite > onInk ? White : Ink;
        }

        private static double Linear(byte channel)
        {
            double c = channel / 255.0;
            return c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
        }
    }
}
