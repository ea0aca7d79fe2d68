using System;
using System.IO;
using Microsoft.ML.Residual.Tests.Plots.NoFontsProbe;
using SkiaSharp;

// Usage: NoFontsProbe FOLDER. Prints what SkiaSharp's system font manager finds: "glyphs=N" (the glyphs of all the typefaces of
// its font families; with no fonts it has one family holding an empty typeface), "defaultGlyphs=N" (those of the default
// typeface) and "systemTextInk=N" (dark pixels left by text drawn with the default typeface); then writes ProbeCharts' PNGs into FOLDER.
SKFontManager fonts = SKFontManager.Default;
int glyphs = 0;
foreach (string family in fonts.FontFamilies)
    using (SKFontStyleSet styles = fonts.GetFontStyles(family))
        for (int i = 0; i < styles.Count; i++)
            using (SKTypeface? typeface = styles.CreateTypeface(i))
                glyphs += typeface?.GlyphCount ?? 0;
Console.WriteLine($"glyphs={glyphs}");
Console.WriteLine($"defaultGlyphs={SKTypeface.Default.GlyphCount}");
using (var bitmap = new SKBitmap(new SKImageInfo(240, 60, SKColorType.Rgba8888, SKAlphaType.Premul)))
using (var canvas = new SKCanvas(bitmap))
using (var font = new SKFont(SKTypeface.Default, 32))
using (var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true })
{
    canvas.Clear(SKColors.White);
    canvas.DrawText("Loss 0.5", 10, 45, font, paint);
    canvas.Flush();
    int ink = 0;
    foreach (SKColor pixel in bitmap.Pixels)
        if (pixel.Red < 128 && pixel.Green < 128 && pixel.Blue < 128)
            ink++;
    Console.WriteLine($"systemTextInk={ink}");
}

foreach (var (name, png) in ProbeCharts.Draw()) File.WriteAllBytes(Path.Combine(args[0], name), png);
return 0;
