using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>Which part of a dataset to read.</summary>
    public enum DatasetSplit
    {
        /// <summary>The training images (CIFAR: <c>data_batch_1…5.bin</c> or <c>train.bin</c>).</summary>
        Train,

        /// <summary>The test images (CIFAR: <c>test_batch.bin</c> or <c>test.bin</c>).</summary>
        Test,
    }

    /// <summary>
    /// Readers for the binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky 2009, "binary version for C programs"):
    /// records of one label byte (CIFAR-100: a coarse and a fine label byte) and 3072 pixel bytes, the red, green and blue
    /// 32×32 planes in row-major order. The whole split is read and checked when loading, so a damaged file fails there
    /// and not in the middle of training. Images come out as 3×32×32 values 0–255 with their class names.
    /// </summary>
    internal static class Cifar
    {
        /// <summary>Pixels per image: 3 channels of 32×32.</summary>
        public const int ImageBytes = 3 * 32 * 32;

        private const string DownloadHint = "Download the binary version from https://www.cs.toronto.edu/~kriz/cifar.html and extract it";

        // The class names of CIFAR-10, in label order, for folders without batches.meta.txt.
        private static readonly string[] Cifar10Names = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" };

        /// <summary>CIFAR-10 from the extracted <c>cifar-10-batches-bin</c> folder or the folder that contains it; class names from <c>batches.meta.txt</c> when present.</summary>
        internal static PixelDataset ReadCifar10(string folder, DatasetSplit split)
        {
            string root = FindFolder(folder, "cifar-10-batches-bin", "data_batch_1.bin", "CIFAR-10");
            string[] files = split == DatasetSplit.Train
                ? Enumerable.Range(1, 5).Select(i => Path.Combine(root, $"data_batch_{i}.bin")).ToArray()
                : new[] { Path.Combine(root, "test_batch.bin") };
            string[] names = ReadNames(Path.Combine(root, "batches.meta.txt")) ?? Cifar10Names;
            return Read(files, labelBytes: 1, labelIndex: 0, names, "CIFAR-10");
        }

        /// <summary>
        /// CIFAR-100 from the extracted <c>cifar-100-binary</c> folder or the folder that contains it, with its 100 fine
        /// classes or 20 superclasses; names from <c>fine_label_names.txt</c> / <c>coarse_label_names.txt</c> when present,
        /// else the label numbers.
        /// </summary>
        internal static PixelDataset ReadCifar100(string folder, DatasetSplit split, bool fineLabels)
        {
            string root = FindFolder(folder, "cifar-100-binary", "train.bin", "CIFAR-100");
            string file = Path.Combine(root, split == DatasetSplit.Train ? "train.bin" : "test.bin");
            int classes = fineLabels ? 100 : 20;
            string[] names = ReadNames(Path.Combine(root, fineLabels ? "fine_label_names.txt" : "coarse_label_names.txt"))
                ?? Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            if (names.Length != classes)
                throw new InvalidDataException($"{(fineLabels ? "fine" : "coarse")} label names file in '{root}' has {names.Length} names; CIFAR-100 has {classes}.");
            return Read(new[] { file }, labelBytes: 2, labelIndex: fineLabels ? 1 : 0, names, "CIFAR-100");
        }

        private static PixelDataset Read(string[] files, int labelBytes, int labelIndex, string[] names, string dataset)
        {
            int recordBytes = labelBytes + ImageBytes;
            foreach (string file in files)
            {
                if (!File.Exists(file)) throw new FileNotFoundException($"{dataset} file '{file}' is missing. {DownloadHint}.", file);
            }

            long total = 0;
            foreach (string file in files)
            {
                long length = new FileInfo(file).Length;
                if (length == 0 || length % recordBytes != 0)
                    throw new InvalidDataException($"{dataset} file '{file}' has {length} bytes, not a whole number of {recordBytes}-byte records: it is damaged or not a {dataset} binary batch. {DownloadHint} again.");
                total += length / recordBytes;
            }

            if (total * ImageBytes > Array.MaxLength)
                throw new InvalidDataException($"{dataset} files hold {total} images, more than one array can hold: give the batches of one split only.");
            var pixels = new byte[total * ImageBytes];
            var labels = new string[total];
            var record = new byte[recordBytes];
            long index = 0;
            foreach (string file in files)
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                long records = stream.Length / recordBytes;
                for (long r = 0; r < records; r++, index++)
                {
                    stream.ReadExactly(record);
                    int label = record[labelIndex];
                    if (label >= names.Length)
                        throw new InvalidDataException($"{dataset} file '{file}', record {r}: label {label} is out of range (0–{names.Length - 1}); the file is damaged or from another dataset.");
                    labels[index] = names[label];
                    Buffer.BlockCopy(record, labelBytes, pixels, (int)(index * ImageBytes), ImageBytes);
                }
            }

            return new PixelDataset(3, 32, 32, pixels, labels);
        }

        // The folder with the marker file: the given one, or its sub-folder of the usual name.
        private static string FindFolder(string folder, string extractedName, string marker, string dataset)
        {
            if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException($"Give the {dataset} folder's path.", nameof(folder));
            string root = Path.GetFullPath(folder);
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{dataset} folder '{root}' does not exist. {DownloadHint}.");
            if (!File.Exists(Path.Combine(root, marker)) && File.Exists(Path.Combine(root, extractedName, marker)))
                return Path.Combine(root, extractedName);
            return root;
        }

        // Non-empty lines of a names file, or null when there is none.
        private static string[]? ReadNames(string path)
        {
            if (!File.Exists(path)) return null;
            string[] names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            return names.Length == 0 ? null : names;
        }
    }
}
