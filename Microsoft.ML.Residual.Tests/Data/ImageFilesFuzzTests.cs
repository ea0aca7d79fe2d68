using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;
using static Microsoft.ML.Residual.Tests.Data.TestImageFiles;

namespace Microsoft.ML.Residual.Tests.Data;

[TestClass]
public sealed class ImageFilesFuzzTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>
    /// Valid PNG, JPEG and WebP files with bits flipped, bytes inserted, overwritten or dropped, or cut short (fixed seed,
    /// 3000 cases): Load and Probe either succeed or throw <see cref="InvalidImageException"/> (or its
    /// <see cref="ImageTooLargeException"/>), never another exception, a crash or a hang. The pixel limit is lowered to
    /// 2^16 so that a mutated header claiming a large image is refused instead of decoded, which keeps the test fast.
    /// </summary>
    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public void MutatedPngJpegAndWebpFiles_OnlyEverLoadOrThrowInvalidImage()
    {
        byte[] gray16 = Png(6, 5, 16, 0, Enumerable.Range(0, 5).Select(y => Enumerable.Range(0, 12).Select(i => (byte)(y * 40 + i * 7)).ToArray()).ToArray());
        var seeds = new (string Name, byte[] Bytes)[]
        {
            ("rgb.png", Noise(16, 12, SKEncodedImageFormat.Png, seed: 3)),
            ("rgba.png", Encode(9, 7, (x, y) => ((byte)(x * 20), (byte)(y * 30), 90, (byte)(x * y * 4)), SKEncodedImageFormat.Png)),
            ("gray16.png", gray16),
            ("photo.jpg", Noise(24, 16, SKEncodedImageFormat.Jpeg, seed: 4)),
            ("exif.jpg", WithExifOrientation(Noise(16, 8, SKEncodedImageFormat.Jpeg, seed: 5), 6)),
            ("photo.webp", Noise(12, 12, SKEncodedImageFormat.Webp, seed: 6)),
        };
        string folder = DataTestSupport.NewFolder(TestContext);
        var options = new ImageLoadOptions { MaxPixels = 1 << 16 };
        var random = new Random(20240611);
        var outcomes = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        const int cases = 3000;
        try
        {
            for (int n = 0; n < cases; n++)
            {
                TestContext.CancellationToken.ThrowIfCancellationRequested();
                var (name, original) = seeds[n % seeds.Length];
                (byte[] bytes, string mutation) = Mutate(original, random);
                // A new file per case: overwriting one (a truncation) can cost a disk flush on ext4; the folder goes at the end.
                string path = Path.Combine(folder, $"{n:D4}-{name}");
                File.WriteAllBytes(path, bytes);
                string outcome;
                try
                {
                    ImageFiles.Probe(path);
                    using MLImage image = ImageFiles.Load(path, options);
                    Assert.IsTrue(image.Width > 0 && image.Height > 0 && image.Pixels.Length == image.Width * image.Height * 4);
                    outcome = "loaded";
                }
                catch (InvalidImageException e)
                {
                    Assert.AreEqual(path, e.FilePath, $"case {n} ({mutation} of {name})");
                    StringAssert.Contains(e.Message, path, $"case {n} ({mutation} of {name})");
                    outcome = e.GetType().Name;
                }
                catch (Exception e)
                {
                    Assert.Fail($"case {n} ({mutation} of {name}, {bytes.Length} bytes in {path}): undocumented {e.GetType().Name}: {e.Message}");
                    throw;
                }

                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }
        }
        finally
        {
            TestContext.WriteLine($"{cases} cases in {clock.Elapsed.TotalSeconds:F1} s: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}");
        }

        Assert.IsTrue(outcomes.GetValueOrDefault("loaded") > 100, "many mutations still decode");
        Assert.IsTrue(outcomes.GetValueOrDefault(nameof(InvalidImageException)) > 100, "many are refused");
        Directory.Delete(folder, recursive: true);
    }

    private static (byte[] Bytes, string Mutation) Mutate(byte[] original, Random random)
    {
        var bytes = new List<byte>(original);
        int kind = random.Next(6);
        switch (kind)
        {
            case 0: // flip 1–8 bits anywhere
                int flips = random.Next(1, 9);
                for (int i = 0; i < flips; i++) bytes[random.Next(bytes.Count)] ^= (byte)(1 << random.Next(8));
                return (bytes.ToArray(), $"{flips} bit flips");
            case 1: // flip bits in the first 64 bytes, where the headers are
                int at = random.Next(Math.Min(64, bytes.Count));
                bytes[at] ^= (byte)(1 << random.Next(8));
                return (bytes.ToArray(), $"header bit flip at {at}");
            case 2: // cut short
                int keep = random.Next(bytes.Count);
                return (bytes.Take(keep).ToArray(), $"truncated to {keep}");
            case 3: // insert random bytes
                int where = random.Next(bytes.Count + 1), count = random.Next(1, 17);
                var insert = new byte[count];
                random.NextBytes(insert);
                bytes.InsertRange(where, insert);
                return (bytes.ToArray(), $"{count} bytes inserted at {where}");
            case 4: // overwrite a run with one value (0x00, 0xFF or random)
                int start = random.Next(bytes.Count), length = Math.Min(random.Next(1, 33), bytes.Count - start);
                byte value = (random.Next(3)) switch { 0 => 0, 1 => 0xFF, _ => (byte)random.Next(256) };
                for (int i = start; i < start + length; i++) bytes[i] = value;
                return (bytes.ToArray(), $"{length} bytes set to {value:X2} at {start}");
            default: // drop a run
                int from = random.Next(bytes.Count), drop = Math.Min(random.Next(1, 33), bytes.Count - from);
                bytes.RemoveRange(from, drop);
                return (bytes.ToArray(), $"{drop} bytes dropped at {from}");
        }
    }
}
