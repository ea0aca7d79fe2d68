using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Datasets;

namespace ResidualML.Cli
{
    /// <summary>
    /// Where a command's images come from: a folder of class sub-folders, a CSV of path,label, or loose images. Every image
    /// listed is decoded once here (ImageFiles.CheckAll, in parallel), so an empty, truncated, damaged or oversized file
    /// (above 8192 × 8192 pixels) stops the command with one line naming it before any work starts: ML.NET's LoadImages,
    /// which the models keep as their first step, has no size limit and loads a truncated file as a partly grey image.
    /// </summary>
    internal static class ImageSources
    {
        public static readonly string[] Extensions = new ImageFolderOptions().Extensions.ToArray();

        /// <summary>Labelled images from <paramref name="path"/>: a folder of class sub-folders, or a .csv file of path,label lines.</summary>
        public static IReadOnlyList<LabeledImage> Labeled(string path, string option, bool allowEmptyLabels = false)
        {
            if (Directory.Exists(path)) return Checked(ImageFolder.List(path));
            if (File.Exists(path))
            {
                if (!path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
                    throw new UsageException($"--{option} {path}: give a folder with one sub-folder per class, or a .csv file of path,label lines.");
                return Checked(ImageList.Read(path, allowEmptyLabels: allowEmptyLabels));
            }

            throw new FileNotFoundException($"--{option} {path}: no such folder or file. Give a folder with one sub-folder per class, or a .csv file of path,label lines.");
        }

        /// <summary>Images to score from <paramref name="path"/>: one image file, every image below a folder, or the paths of a CSV file (first column).</summary>
        public static IReadOnlyList<string> Unlabeled(string path, string option)
        {
            if (Directory.Exists(path))
            {
                var images = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(IsImage).Where(f => !Path.GetFileName(f).StartsWith('.')).OrderBy(f => f, StringComparer.Ordinal).ToList();
                if (images.Count == 0)
                    throw new InvalidDataException($"--{option} {path}: the folder holds no images ({string.Join(", ", Extensions)}).");
                return Checked(images);
            }

            if (File.Exists(path))
            {
                if (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)) return Checked(ImageList.Read(path).Select(r => r.ImagePath).ToList());
                if (IsImage(path)) return Checked(new[] { path });
                throw new UsageException($"--{option} {path}: give an image ({string.Join(", ", Extensions)}), a folder of images, or a .csv file whose first column is image paths.");
            }

            throw new FileNotFoundException($"--{option} {path}: no such file or folder.");
        }

        /// <summary>Every image below <paramref name="folder"/> paired with the mask below <paramref name="masks"/> at the same relative path and name (any image extension).</summary>
        public static IReadOnlyList<(string Image, string Mask)> Pairs(string folder, string masks)
        {
            if (!Directory.Exists(masks)) throw new DirectoryNotFoundException($"--masks {masks}: no such folder.");
            var byStem = Directory.EnumerateFiles(masks, "*", SearchOption.AllDirectories).Where(IsImage)
                .GroupBy(f => Stem(masks, f), StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
            var pairs = new List<(string, string)>();
            foreach (string image in Unlabeled(folder, "images"))
            {
                string stem = Stem(folder, image);
                if (!byStem.TryGetValue(stem, out List<string>? candidates))
                    throw new FileNotFoundException($"The image '{image}' has no mask: expected '{Path.Combine(masks, stem)}.png' (a PNG whose pixel values are class indices).");
                if (candidates.Count > 1)
                    throw new InvalidDataException($"The image '{image}' has {candidates.Count} masks ({string.Join(", ", candidates.Select(Path.GetFileName))}); keep one.");
                pairs.Add((image, candidates[0]));
            }

            Checked(pairs.Select(p => p.Item2).ToList());
            return pairs;
        }

        /// <summary>Decodes every image once; throws for the first bad one (InvalidImageException, an IOException: one 'residualml: error:' line).</summary>
        private static IReadOnlyList<string> Checked(IReadOnlyList<string> paths)
        {
            ImageFiles.CheckAll(paths, ImageCheck.Decode);
            return paths;
        }

        private static IReadOnlyList<LabeledImage> Checked(IReadOnlyList<LabeledImage> rows)
        {
            Checked(rows.Select(r => r.ImagePath).ToList());
            return rows;
        }

        private static bool IsImage(string file) => Extensions.Contains(Path.GetExtension(file), StringComparer.OrdinalIgnoreCase);

        private static string Stem(string root, string file)
        {
            string relative = Path.GetRelativePath(root, file);
            return Path.Combine(Path.GetDirectoryName(relative) ?? string.Empty, Path.GetFileNameWithoutExtension(relative));
        }
    }
}
