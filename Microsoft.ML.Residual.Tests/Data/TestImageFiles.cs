using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Data;

/// <summary>Image files written byte by byte, for the loader tests: PNGs of any bit depth and colour type, JPEGs with an EXIF orientation.</summary>
internal static class TestImageFiles
{
    /// <summary>A PNG of the given IHDR fields whose IDAT holds <paramref name="scanlines"/> (each row prefixed by filter byte 0 here).</summary>
    public static byte[] Png(int width, int height, byte bitDepth, byte colorType, byte[][] rows)
    {
        var raw = new MemoryStream();
        foreach (byte[] row in rows)
        {
            raw.WriteByte(0);
            raw.Write(row);
        }

        var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) zlib.Write(raw.ToArray());
        return PngChunks(Ihdr(width, height, bitDepth, colorType), ("IDAT", compressed.ToArray()));
    }

    /// <summary>
    /// A decompression bomb: a valid PNG signature and IHDR (CRCs right) claiming <paramref name="width"/>×<paramref name="height"/>
    /// RGB pixels, followed by a few bytes of compressed zeros and IEND. Tiny on disk; decoding it would need width×height×4 bytes.
    /// </summary>
    public static byte[] PngBomb(int width, int height)
    {
        var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) zlib.Write(new byte[4096]);
        return PngChunks(Ihdr(width, height, 8, 2), ("IDAT", compressed.ToArray()));
    }

    private static byte[] Ihdr(int width, int height, byte bitDepth, byte colorType)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = bitDepth;
        ihdr[9] = colorType;
        return ihdr; // compression 0, filter 0, no interlace
    }

    private static byte[] PngChunks(byte[] ihdr, params (string Type, byte[] Data)[] chunks)
    {
        var png = new MemoryStream();
        png.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        foreach (var (type, data) in new[] { ("IHDR", ihdr) }.Concat(chunks).Append(("IEND", Array.Empty<byte>())))
        {
            var header = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
            png.Write(header);
            byte[] typeAndData = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            png.Write(typeAndData);
            BinaryPrimitives.WriteUInt32BigEndian(header, Crc32(typeAndData));
            png.Write(header);
        }

        return png.ToArray();
    }

    /// <summary>The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320).</summary>
    public static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }

        return ~crc;
    }

    /// <summary>Encodes RGBA pixels (straight alpha) with SkiaSharp as PNG, JPEG or WebP.</summary>
    public static byte[] Encode(int width, int height, Func<int, int, (byte R, byte G, byte B, byte A)> pixel, SKEncodedImageFormat format, int quality = 95)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bytes = new byte[width * height * 4];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var (r, g, b, a) = pixel(x, y);
                int i = 4 * (y * width + x);
                (bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]) = (r, g, b, a);
            }

        using var bitmap = new SKBitmap(info);
        Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length);
        using SKData data = bitmap.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>A noisy opaque RGB picture (so that compressed data is long and truncation lands in the pixel data).</summary>
    public static byte[] Noise(int width, int height, SKEncodedImageFormat format, int seed = 1)
    {
        var random = new Random(seed);
        return Encode(width, height, (x, y) => ((byte)random.Next(256), (byte)(x * 4), (byte)(y * 4), 255), format);
    }

    /// <summary>The JPEG <paramref name="jpeg"/> with an APP1 EXIF segment (big-endian TIFF, one IFD entry: orientation 274) inserted after SOI.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, int orientation)
    {
        var tiff = new List<byte> { (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8 };   // header, IFD0 at offset 8
        tiff.AddRange(new byte[] { 0, 1 });                                        // one entry
        tiff.AddRange(new byte[] { 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (byte)orientation, 0, 0 }); // tag 274, SHORT, count 1, value
        tiff.AddRange(new byte[] { 0, 0, 0, 0 });                                  // no next IFD
        byte[] payload = Encoding.ASCII.GetBytes("Exif\0\0").Concat(tiff).ToArray();
        int length = payload.Length + 2;
        byte[] segment = new byte[] { 0xFF, 0xE1, (byte)(length >> 8), (byte)length }.Concat(payload).ToArray();
        return jpeg.Take(2).Concat(segment).Concat(jpeg.Skip(2)).ToArray();
    }

    /// <summary>The pixels of <paramref name="image"/> in B, G, R, A order whatever its pixel format.</summary>
    public static byte[] Bgra(MLImage image)
    {
        byte[] pixels = image.Pixels.ToArray();
        if (image.PixelFormat == MLPixelFormat.Rgba32)
            for (int i = 0; i < pixels.Length; i += 4) (pixels[i], pixels[i + 2]) = (pixels[i + 2], pixels[i]);
        return pixels;
    }

    /// <summary>(B, G, R, A) of pixel (x, y).</summary>
    public static (byte B, byte G, byte R, byte A) At(MLImage image, int x, int y)
    {
        ReadOnlySpan<byte> p = image.Pixels.Slice(4 * (y * image.Width + x), 4);
        return image.PixelFormat == MLPixelFormat.Bgra32 ? (p[0], p[1], p[2], p[3]) : (p[2], p[1], p[0], p[3]);
    }
}
