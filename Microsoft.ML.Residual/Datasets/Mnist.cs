using System;
using System.Buffers.Binary;
using System.Globalization;
using System.IO;
using System.IO.Compression;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>
    /// Reader for the IDX files of MNIST (LeCun et al.) and of datasets in the same format (Fashion-MNIST, KMNIST,
    /// EMNIST): an images file (magic 2051, count, rows, columns, then one byte per pixel) and a labels file (magic 2049,
    /// count, then one byte per label), plain or gzip-compressed (<c>.gz</c>, detected by content). Both files are read
    /// and checked when loading. Images come out as 1×rows×columns values 0–255; labels as text: the label number, or
    /// the matching entry of <c>classNames</c>.
    /// </summary>
    internal static class Mnist
    {
        private const int ImagesMagic = 0x00000803;
        private const int LabelsMagic = 0x00000801;

        internal static PixelDataset Read(string imagesPath, string labelsPath, string[]? classNames)
        {
            byte[] images = ReadFile(imagesPath, "images");
            byte[] labelBytes = ReadFile(labelsPath, "labels");

            if (images.Length < 16 || BinaryPrimitives.ReadInt32BigEndian(images) != ImagesMagic)
                throw new InvalidDataException($"'{imagesPath}' is not an IDX images file (it must start with magic number 2051, as train-images-idx3-ubyte does).");
            if (labelBytes.Length < 8 || BinaryPrimitives.ReadInt32BigEndian(labelBytes) != LabelsMagic)
                throw new InvalidDataException($"'{labelsPath}' is not an IDX labels file (it must start with magic number 2049, as train-labels-idx1-ubyte does).");

            int count = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(4));
            int rows = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(8));
            int columns = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(12));
            if (count < 0 || rows <= 0 || columns <= 0)
                throw new InvalidDataException($"'{imagesPath}' declares {count} images of {rows}×{columns}: not a valid IDX images header.");
            long expected = 16 + (long)count * rows * columns;
            if (images.LongLength != expected)
                throw new InvalidDataException($"'{imagesPath}' declares {count} images of {rows}×{columns} ({expected} bytes with the header) but has {images.LongLength} bytes: it is truncated or damaged.");

            int labelCount = BinaryPrimitives.ReadInt32BigEndian(labelBytes.AsSpan(4));
            if (labelCount != count)
                throw new InvalidDataException($"'{labelsPath}' has {labelCount} labels but '{imagesPath}' has {count} images: use the labels file of the same split.");
            if (labelBytes.LongLength != 8L + count)
                throw new InvalidDataException($"'{labelsPath}' declares {labelCount} labels ({8L + labelCount} bytes with the header) but has {labelBytes.LongLength} bytes: it is truncated or damaged.");

            var labels = new string[count];
            for (int i = 0; i < count; i++)
            {
                int label = labelBytes[8 + i];
                if (classNames is null) labels[i] = label.ToString(CultureInfo.InvariantCulture);
                else if (label < classNames.Length) labels[i] = classNames[label];
                else throw new InvalidDataException($"'{labelsPath}', label {i}: value {label} has no class name (classNames has {classNames.Length}).");
            }

            // The pixels follow the 16-byte header: the file's buffer serves as it is.
            return new PixelDataset(1, rows, columns, images, labels, offset: 16);
        }

        // The whole file, decompressed when it starts with gzip's magic bytes.
        private static byte[] ReadFile(string path, string kind)
        {
            if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException($"Give the IDX {kind} file's path.");
            if (!File.Exists(path)) throw new FileNotFoundException($"IDX {kind} file '{Path.GetFullPath(path)}' does not exist.", path);
            byte[] raw = File.ReadAllBytes(path);
            if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
            using var gzip = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var chunk = new byte[1 << 16];
            while (true)
            {
                int read;
                try
                {
                    read = gzip.Read(chunk, 0, chunk.Length);
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"'{path}' starts like a gzip file but does not decompress ({e.Message}): download it again.", e);
                }

                if (read == 0) return output.ToArray();
                // A file that inflates beyond what one array can hold is not a dataset this reader can load.
                if (output.Length + read > Array.MaxLength)
                    throw new InvalidDataException($"'{path}' decompresses to more than {Array.MaxLength} bytes: it is not an IDX file this reader can load.");
                output.Write(chunk, 0, read);
            }
        }
    }
}
