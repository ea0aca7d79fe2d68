using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Data;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>Options of <see cref="ImageFolder"/> and <c>ml.Data.LoadImageFolder</c>.</summary>
    public sealed class ImageFolderOptions
    {
        /// <summary>Name of the output column with each image's full path (text). Default <c>ImagePath</c>.</summary>
        public string PathColumnName { get; set; } = "ImagePath";

        /// <summary>Name of the output column with the class: the sub-folder's name (text). Default <c>Label</c>.</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>File extensions taken as images (case-insensitive, with the dot). Default: .png, .jpg, .jpeg, .bmp, .gif, .webp.</summary>
        public IReadOnlyCollection<string> Extensions { get; set; } = new[] { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

        /// <summary>Also take images in folders below each class folder (they keep the class folder's label). Default true.</summary>
        public bool Recursive { get; set; } = true;

        /// <summary>
        /// Whether <c>ml.Data.LoadImageFolder</c>, <c>LoadImageFolderSplit</c> and <c>LoadImageList</c> open the listed
        /// images before returning the data view (see <see cref="ImageFiles.CheckAll"/>): <see cref="ImageCheck.Header"/>
        /// reads each header and refuses images above <see cref="ImageLoadOptions.MaxPixels"/>;
        /// <see cref="ImageCheck.Decode"/> also decodes each file once, finding truncated and damaged ones. A bad file
        /// then fails the load with an <see cref="InvalidImageException"/> naming the file, its row and the path column,
        /// instead of failing (or, for a truncated file, loading as a partly grey image) in ML.NET's <c>LoadImages</c>
        /// during training. Default <see cref="ImageCheck.None"/>: only the listing is read, as before.
        /// </summary>
        public ImageCheck CheckImages { get; set; } = ImageCheck.None;

        /// <summary>The pixel limit <see cref="CheckImages"/> applies; null for the default (8192 × 8192 pixels).</summary>
        public ImageLoadOptions? ImageLoadOptions { get; set; }
    }

    /// <summary>One image file and its class.</summary>
    public sealed class LabeledImage
    {
        /// <summary>Full path of the image file.</summary>
        public string ImagePath { get; set; } = string.Empty;

        /// <summary>Class name (in an image folder, the name of the sub-folder directly below the root folder).</summary>
        public string Label { get; set; } = string.Empty;
    }

    /// <summary>
    /// Lists a folder of class sub-folders (<c>root/cat/1.png</c>, <c>root/dog/2.jpg</c>, …), the layout of torchvision's
    /// <c>ImageFolder</c> and ML.NET's image-classification samples. Rows come sorted by class, then by path (ordinal), so a
    /// listing is the same on every machine. Hidden files and folders (names starting with '.') are skipped.
    /// </summary>
    public static class ImageFolder
    {
        /// <summary>Every image below <paramref name="folder"/>'s class sub-folders.</summary>
        /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
        /// <exception cref="InvalidDataException">The folder has no class sub-folder with an image in it.</exception>
        public static IReadOnlyList<LabeledImage> List(string folder, ImageFolderOptions? options = null)
        {
            if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException("Give the image folder's path.", nameof(folder));
            options ??= new ImageFolderOptions();
            string root = Path.GetFullPath(folder);
            if (!Directory.Exists(root))
                throw new DirectoryNotFoundException($"Image folder '{root}' does not exist. Give a folder with one sub-folder per class (e.g. {Path.Combine(root, "cat", "1.png")}).");
            var extensions = new HashSet<string>(options.Extensions, StringComparer.OrdinalIgnoreCase);
            var search = new EnumerationOptions { RecurseSubdirectories = options.Recursive, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System, IgnoreInaccessible = true };

            var rows = new List<LabeledImage>();
            foreach (string classFolder in Directory.EnumerateDirectories(root).Where(d => !IsHidden(d)).OrderBy(d => d, StringComparer.Ordinal))
            {
                string label = Path.GetFileName(classFolder);
                rows.AddRange(Directory.EnumerateFiles(classFolder, "*", search)
                    .Where(f => extensions.Contains(Path.GetExtension(f)) && !HiddenBelow(root, f))
                    .OrderBy(f => f, StringComparer.Ordinal)
                    .Select(f => new LabeledImage { ImagePath = f, Label = label }));
            }

            if (rows.Count == 0)
            {
                bool imagesAtRoot = Directory.EnumerateFiles(root).Any(f => extensions.Contains(Path.GetExtension(f)));
                throw new InvalidDataException(imagesAtRoot
                    ? $"Image folder '{root}' has images directly in it but no class sub-folders. Move each class's images into a sub-folder named after the class (e.g. {Path.Combine(root, "cat", "1.png")})."
                    : $"Image folder '{root}' has no images in class sub-folders (looked for {string.Join(", ", extensions.OrderBy(e => e, StringComparer.Ordinal))}). Expected one sub-folder per class, e.g. {Path.Combine(root, "cat", "1.png")}.");
            }

            return rows;
        }

        /// <summary>
        /// Splits a listing class by class: of each class's n images, round(n × <paramref name="testFraction"/>) go to the
        /// test set, chosen by a shuffle seeded with <paramref name="seed"/>, and at least one stays in training. So every
        /// class is in the training set, and every class with two or more images is in the test set, whatever the class
        /// sizes. Both lists keep the listing's order.
        /// </summary>
        public static (IReadOnlyList<LabeledImage> Train, IReadOnlyList<LabeledImage> Test) StratifiedSplit(
            IReadOnlyList<LabeledImage> rows, double testFraction, int seed)
        {
            if (rows is null) throw new ArgumentNullException(nameof(rows));
            if (double.IsNaN(testFraction) || testFraction <= 0 || testFraction >= 1)
                throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "testFraction must be strictly between 0 and 1 (e.g. 0.2 for 20 % test images).");
            var inTest = new bool[rows.Count];
            var random = new Random(seed);
            foreach (var group in Enumerable.Range(0, rows.Count).GroupBy(i => rows[i].Label, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                int[] members = group.ToArray();
                int testCount = Math.Min(members.Length - 1, (int)Math.Round(members.Length * testFraction, MidpointRounding.AwayFromZero));
                if (members.Length >= 2) testCount = Math.Max(1, testCount);
                // Fisher–Yates on the class's row indices; the first testCount go to the test set.
                for (int i = members.Length - 1; i > 0; i--)
                {
                    int j = random.Next(i + 1);
                    (members[i], members[j]) = (members[j], members[i]);
                }

                for (int i = 0; i < testCount; i++) inTest[members[i]] = true;
            }

            var train = new List<LabeledImage>();
            var test = new List<LabeledImage>();
            for (int i = 0; i < rows.Count; i++) (inTest[i] ? test : train).Add(rows[i]);
            return (train, test);
        }

        private static bool IsHidden(string path) => Path.GetFileName(path).StartsWith(".", StringComparison.Ordinal);

        // True when the file or any folder between the root and it is hidden by name.
        private static bool HiddenBelow(string root, string file) =>
            Path.GetRelativePath(root, file).Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar).Any(part => part.StartsWith(".", StringComparison.Ordinal));
    }
}
