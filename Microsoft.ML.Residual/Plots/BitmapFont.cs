using System;
using System.Collections.Generic;
using System.Text;

namespace Microsoft.ML.Residual.Plots
{
    /// <summary>
    /// A built-in proportional pixel font, so that charts need no system fonts: glyphs at most 5 pixels wide, 7 rows from the cap
    /// line to the baseline and 2 more for descenders, for printable ASCII (32–126) and '…' (U+2026). Any other character draws as
    /// a small hollow box. Text is drawn at an integer scale (each font pixel becomes a scale×scale square).
    /// </summary>
    internal static class BitmapFont
    {
        /// <summary>Rows from the top of a capital letter to the baseline, at scale 1.</summary>
        public const int CapHeight = 7;

        /// <summary>Rows of a line including descenders (g, p, q, y, j, comma, underscore), at scale 1.</summary>
        public const int LineHeight = 9;

        /// <summary>The character that ends truncated text.</summary>
        public const string Ellipsis = "\u2026";

        private const int Spacing = 1, SpaceAdvance = 4;

        // One pattern per character from ' ' (32) to '~' (126): 7 rows (cap line to baseline) or 9 (with the 2 descender rows),
        // each 5 characters, '#' for a lit pixel. Glyphs are proportional: a glyph is as wide as its lit columns.
        private static readonly string[] Patterns =
        {
            /*   */ "..... ..... ..... ..... ..... ..... .....",
            /* ! */ "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
            /* " */ ".#.#. .#.#. ..... ..... ..... ..... .....",
            /* # */ ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
            /* $ */ "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
            /* % */ "##... ##..# ...#. ..#.. .#... #..## ...##",
            /* & */ ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
            /* ' */ "..#.. ..#.. ..... ..... ..... ..... .....",
            /* ( */ "...#. ..#.. .#... .#... .#... ..#.. ...#.",
            /* ) */ ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
            /* * */ "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
            /* + */ "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
            /* , */ "..... ..... ..... ..... ..... ..... .##.. ..#.. .#...",
            /* - */ "..... ..... ..... .###. ..... ..... .....",
            /* . */ "..... ..... ..... ..... ..... .##.. .##..",
            /* / */ "..... ....# ...#. ..#.. .#... #.... .....",
            /* 0 */ ".###. #...# #..## #.#.# ##..# #...# .###.",
            /* 1 */ "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
            /* 2 */ ".###. #...# ....# ...#. ..#.. .#... #####",
            /* 3 */ "##### ...#. ..#.. ...#. ....# #...# .###.",
            /* 4 */ "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
            /* 5 */ "##### #.... ####. ....# ....# #...# .###.",
            /* 6 */ "..##. .#... #.... ####. #...# #...# .###.",
            /* 7 */ "##### ....# ...#. ..#.. .#... .#... .#...",
            /* 8 */ ".###. #...# #...# .###. #...# #...# .###.",
            /* 9 */ ".###. #...# #...# .#### ....# ...#. .##..",
            /* : */ "..... .##.. .##.. ..... .##.. .##.. .....",
            /* ; */ "..... .##.. .##.. ..... .##.. ..#.. .#...",
            /* < */ "...#. ..#.. .#... #.... .#... ..#.. ...#.",
            /* = */ "..... ..... ##### ..... ##### ..... .....",
            /* > */ ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
            /* ? */ ".###. #...# ....# ...#. ..#.. ..... ..#..",
            /* @ */ ".###. #...# #.### #.#.# #.### #.... .####",
            /* A */ ".###. #...# #...# ##### #...# #...# #...#",
            /* B */ "####. #...# #...# ####. #...# #...# ####.",
            /* C */ ".###. #...# #.... #.... #.... #...# .###.",
            /* D */ "###.. #..#. #...# #...# #...# #..#. ###..",
            /* E */ "##### #.... #.... ####. #.... #.... #####",
            /* F */ "##### #.... #.... ####. #.... #.... #....",
            /* G */ ".###. #...# #.... #.### #...# #...# .####",
            /* H */ "#...# #...# #...# ##### #...# #...# #...#",
            /* I */ ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
            /* J */ "..### ...#. ...#. ...#. ...#. #..#. .##..",
            /* K */ "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
            /* L */ "#.... #.... #.... #.... #.... #.... #####",
            /* M */ "#...# ##.## #.#.# #.#.# #...# #...# #...#",
            /* N */ "#...# #...# ##..# #.#.# #..## #...# #...#",
            /* O */ ".###. #...# #...# #...# #...# #...# .###.",
            /* P */ "####. #...# #...# ####. #.... #.... #....",
            /* Q */ ".###. #...# #...# #...# #.#.# #..#. .##.#",
            /* R */ "####. #...# #...# ####. #.#.. #..#. #...#",
            /* S */ ".#### #.... #.... .###. ....# ....# ####.",
            /* T */ "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
            /* U */ "#...# #...# #...# #...# #...# #...# .###.",
            /* V */ "#...# #...# #...# #...# #...# .#.#. ..#..",
            /* W */ "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
            /* X */ "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
            /* Y */ "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
            /* Z */ "##### ....# ...#. ..#.. .#... #.... #####",
            /* [ */ ".###. .#... .#... .#... .#... .#... .###.",
            /* \ */ "..... #.... .#... ..#.. ...#. ....# .....",
            /* ] */ ".###. ...#. ...#. ...#. ...#. ...#. .###.",
            /* ^ */ "..#.. .#.#. #...# ..... ..... ..... .....",
            /* _ */ "..... ..... ..... ..... ..... ..... ..... ##### .....",
            /* ` */ ".#... ..#.. ...#. ..... ..... ..... .....",
            /* a */ "..... ..... .###. ....# .#### #...# .####",
            /* b */ "#.... #.... #.##. ##..# #...# #...# ####.",
            /* c */ "..... ..... .###. #.... #.... #...# .###.",
            /* d */ "....# ....# .##.# #..## #...# #...# .####",
            /* e */ "..... ..... .###. #...# ##### #.... .###.",
            /* f */ "..##. .#..# .#... ###.. .#... .#... .#...",
            /* g */ "..... ..... .#### #...# #...# #...# .#### ....# .###.",
            /* h */ "#.... #.... #.##. ##..# #...# #...# #...#",
            /* i */ "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
            /* j */ "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
            /* k */ "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
            /* l */ ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
            /* m */ "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
            /* n */ "..... ..... #.##. ##..# #...# #...# #...#",
            /* o */ "..... ..... .###. #...# #...# #...# .###.",
            /* p */ "..... ..... #.##. ##..# #...# #...# ####. #.... #....",
            /* q */ "..... ..... .##.# #..## #...# #...# .#### ....# ....#",
            /* r */ "..... ..... #.##. ##..# #.... #.... #....",
            /* s */ "..... ..... .###. #.... .###. ....# ####.",
            /* t */ ".#... .#... ###.. .#... .#... .#..# ..##.",
            /* u */ "..... ..... #...# #...# #...# #..## .##.#",
            /* v */ "..... ..... #...# #...# #...# .#.#. ..#..",
            /* w */ "..... ..... #...# #...# #.#.# #.#.# .#.#.",
            /* x */ "..... ..... #...# .#.#. ..#.. .#.#. #...#",
            /* y */ "..... ..... #...# #...# #...# #...# .#### ....# .###.",
            /* z */ "..... ..... ##### ...#. ..#.. .#... #####",
            /* { */ "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
            /* | */ "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
            /* } */ ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
            /* ~ */ "..... ..... .#... #.#.# ...#. ..... .....",
        };

        private const string EllipsisPattern = "..... ..... ..... ..... ..... ..... #.#.#";
        private const string UnknownPattern = "..... ####. #..#. #..#. #..#. ####. .....";

        private static readonly Glyph[] Glyphs = Array.ConvertAll(Patterns, Parse);
        private static readonly Glyph EllipsisGlyph = Parse(EllipsisPattern);
        private static readonly Glyph UnknownGlyph = Parse(UnknownPattern);

        /// <summary>A glyph: its rows (bit 4 = leftmost column), its first lit column and its width in lit columns.</summary>
        internal readonly struct Glyph
        {
            public Glyph(byte[] rows, int left, int width)
            {
                Rows = rows;
                Left = left;
                Width = width;
            }

            public byte[] Rows { get; }

            public int Left { get; }

            public int Width { get; }

            /// <summary>Pixels from this glyph's left edge to the next one's, at scale 1.</summary>
            public int Advance => Width == 0 ? SpaceAdvance : Width + Spacing;

            public bool IsLit(int column, int row) => row < Rows.Length && (Rows[row] & (0x10 >> column)) != 0;
        }

        /// <summary>The glyph drawn for <paramref name="rune"/>: its own, or the hollow box.</summary>
        internal static Glyph GlyphOf(Rune rune)
        {
            if (rune.Value >= 32 && rune.Value <= 126) return Glyphs[rune.Value - 32];
            return rune.Value == 0x2026 ? EllipsisGlyph : UnknownGlyph;
        }

        /// <summary>Width of <paramref name="text"/> in pixels at <paramref name="scale"/> (0 for empty text).</summary>
        public static int Measure(string text, int scale)
        {
            int width = 0;
            foreach (var rune in text.EnumerateRunes()) width += GlyphOf(rune).Advance;
            return width == 0 ? 0 : (width - Spacing) * scale;
        }

        /// <summary>
        /// <paramref name="text"/> if it is at most <paramref name="maxWidth"/> pixels wide at <paramref name="scale"/>; otherwise its longest
        /// prefix that fits with '…' after it, or "" if not even '…' fits.
        /// </summary>
        public static string Truncate(string text, int maxWidth, int scale)
        {
            if (Measure(text, scale) <= maxWidth) return text;
            var starts = new List<int>();
            int at = 0;
            foreach (var rune in text.EnumerateRunes())
            {
                starts.Add(at);
                at += rune.Utf16SequenceLength;
            }

            for (int keep = starts.Count - 1; keep >= 0; keep--)
            {
                string candidate = text.Substring(0, starts[keep]).TrimEnd() + Ellipsis;
                if (Measure(candidate, scale) <= maxWidth) return candidate;
            }

            return "";
        }

        /// <summary>Draws <paramref name="text"/> left to right with the top of its capitals at (<paramref name="x"/>, <paramref name="y"/>).</summary>
        public static void Draw(Raster raster, string text, int x, int y, int scale, Rgb colour) =>
            Render(text, scale, (column, row) => raster.FillRect(x + column * scale, y + row * scale, scale, scale, colour));

        /// <summary>
        /// Draws <paramref name="text"/> turned a quarter counter-clockwise, reading bottom to top: it starts at height <paramref name="bottom"/>
        /// and the tops of its capitals face left, at column <paramref name="x"/>.
        /// </summary>
        public static void DrawUp(Raster raster, string text, int x, int bottom, int scale, Rgb colour) =>
            Render(text, scale, (column, row) => raster.FillRect(x + row * scale, bottom - (column + 1) * scale, scale, scale, colour));

        // Calls lit(column, row) for every lit font pixel of the text, in font pixels from the text's top left corner.
        private static void Render(string text, int scale, Action<int, int> lit)
        {
            if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "The text scale must be 1 or more.");
            int pen = 0;
            foreach (var rune in text.EnumerateRunes())
            {
                var glyph = GlyphOf(rune);
                for (int row = 0; row < glyph.Rows.Length; row++)
                    for (int column = 0; column < glyph.Width; column++)
                        if (glyph.IsLit(glyph.Left + column, row))
                            lit(pen + column, row);
                pen += glyph.Advance;
            }
        }

        private static Glyph Parse(string pattern)
        {
            var lines = pattern.Split(' ');
            if ((lines.Length != CapHeight && lines.Length != LineHeight) || Array.Exists(lines, line => line.Length != 5))
                throw new InvalidOperationException($"Bad glyph pattern '{pattern}': 7 or 9 rows of 5 pixels.");
            var rows = new byte[lines.Length];
            int used = 0;
            for (int row = 0; row < lines.Length; row++)
                for (int column = 0; column < 5; column++)
                    if (lines[row][column] == '#')
                    {
                        rows[row] |= (byte)(0x10 >> column);
                        used |= 0x10 >> column;
                    }

            if (used == 0) return new Glyph(rows, 0, 0);
            int left = 0, right = 4;
            while ((used & (0x10 >> left)) == 0) left++;
            while ((used & (0x10 >> right)) == 0) right--;
            return new Glyph(rows, left, right - left + 1);
        }
    }
}
