using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Detection;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>
    /// Reads YOLO (Darknet / Ultralytics) detection labels: for each image a text file of the same name in the label
    /// folder, one line <c>class cx cy w h</c> per object, the 0-based class then the box's centre and size as fractions
    /// of the image's width and height.
    /// </summary>
    public static class YoloDetection
    {
        /// <summary>
        /// Loads the images directly in <paramref name="imageDirectory"/> (by ordinal file name; the extensions of
        /// <see cref="ImageFolderOptions.Extensions"/>) with the boxes of <c>labelDirectory/&lt;image name&gt;.txt</c>; an image
        /// without a label file has no objects. Each box becomes x1 = (cx − w/2)·width, y1 = (cy − h/2)·height,
        /// x2 = (cx + w/2)·width, y2 = (cy + h/2)·height in pixels of the image, whose size is read from its header (upright,
        /// after its EXIF orientation). A box partly outside the image is clipped to it; one with no area or wholly outside is refused.
        /// </summary>
        /// <param name="imageDirectory">The folder of images.</param>
        /// <param name="labelDirectory">The folder of label files.</param>
        /// <param name="classNames">The class names, by class index.</param>
        /// <exception cref="DirectoryNotFoundException">A folder does not exist.</exception>
        /// <exception cref="InvalidDataException">The folder has no image, or a label line is malformed, has a value that is not a number or a class index out of range, or an empty box or one outside the image (the message names the file and the line).</exception>
        public static DetectionDataset Load(string imageDirectory, string labelDirectory, IReadOnlyList<string> classNames)
        {
            if (string.IsNullOrWhiteSpace(imageDirectory)) throw new ArgumentException("Give the folder of images.", nameof(imageDirectory));
            if (string.IsNullOrWhiteSpace(labelDirectory)) throw new ArgumentException("Give the folder of YOLO label files.", nameof(labelDirectory));
            if (classNames is null || classNames.Count == 0) throw new ArgumentException("Give the class names, by class index.", nameof(classNames));
            string images = Path.GetFullPath(imageDirectory), labels = Path.GetFullPath(labelDirectory);
            if (!Directory.Exists(images)) throw new DirectoryNotFoundException($"Image folder '{images}' does not exist.");
            if (!Directory.Exists(labels)) throw new DirectoryNotFoundException($"Label folder '{labels}' does not exist.");

            var extensions = new HashSet<string>(new ImageFolderOptions().Extensions, StringComparer.OrdinalIgnoreCase);
            string[] files = Directory.EnumerateFiles(images)
                .Where(f => extensions.Contains(Path.GetExtension(f)) && !Path.GetFileName(f).StartsWith('.'))
                .OrderBy(f => f, StringComparer.Ordinal).ToArray();
            if (files.Length == 0)
                throw new InvalidDataException($"Image folder '{images}' has no images (looked for {string.Join(", ", extensions.OrderBy(e => e, StringComparer.Ordinal))}).");

            var examples = new List<DetectionExample>(files.Length);
            foreach (string image in files)
            {
                ImageFileInfo info = ImageFiles.Probe(image);
                int width = info.OrientedWidth, height = info.OrientedHeight;
                string labelFile = Path.Combine(labels, Path.GetFileNameWithoutExtension(image) + ".txt");
                var objects = new List<DetectionBox>();
                if (File.Exists(labelFile))
                {
                    string[] lines = File.ReadAllLines(labelFile);
                    for (int i = 0; i < lines.Length; i++)
                    {
                        string line = lines[i].Trim();
                        if (line.Length == 0) continue;
                        string where = $"'{labelFile}', line {i + 1}";
                        string[] fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                        if (fields.Length != 5)
                            throw new InvalidDataException(fields.Length > 5 && fields.Length % 2 == 1
                                ? $"{where}: {fields.Length} values, a segmentation polygon; this loader reads boxes, 'class cx cy w h' (export the labels as boxes)."
                                : $"{where}: expected 'class cx cy w h' (5 values), found {fields.Length}: {line}");
                        if (!int.TryParse(fields[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int label) || label < 0)
                            throw new InvalidDataException($"{where}: the class '{fields[0]}' is not a class index (0, 1, …).");
                        if (label >= classNames.Count)
                            throw new InvalidDataException($"{where}: class {label} is out of range: there are {classNames.Count} class names ({string.Join(", ", classNames)}); give every class a name.");
                        var v = new double[4];
                        for (int k = 0; k < 4; k++)
                            if (!double.TryParse(fields[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[k]))
                                throw new InvalidDataException($"{where}: '{fields[k + 1]}' is not a number; expected 'class cx cy w h' with fractions of the image size.");
                        objects.Add(AnnotationBoxes.Clip(label, (v[0] - v[2] / 2) * width, (v[1] - v[3] / 2) * height, (v[0] + v[2] / 2) * width, (v[1] + v[3] / 2) * height,
                            false, width, height, where));
                    }
                }

                examples.Add(new DetectionExample(image, width, height, objects));
            }

            return new DetectionDataset(classNames, examples);
        }

        /// <summary>
        /// As <see cref="Load(string, string, IReadOnlyList{string})"/>, with the class names read from
        /// <paramref name="namesFile"/>: a <c>classes.txt</c> / <c>*.names</c> file (one name per line) or an Ultralytics
        /// <c>data.yaml</c> whose <c>names</c> is a list (<c>[a, b]</c> or <c>- a</c> lines) or a map (<c>0: a</c> lines).
        /// </summary>
        /// <param name="imageDirectory">The folder of images.</param>
        /// <param name="labelDirectory">The folder of label files.</param>
        /// <param name="namesFile">The file of class names.</param>
        public static DetectionDataset Load(string imageDirectory, string labelDirectory, string namesFile) =>
            Load(imageDirectory, labelDirectory, ReadClassNames(namesFile));

        /// <summary>The class names of a <c>classes.txt</c> file or of a <c>data.yaml</c>'s <c>names</c>.</summary>
        /// <param name="namesFile">The file.</param>
        /// <exception cref="FileNotFoundException">The file does not exist.</exception>
        /// <exception cref="InvalidDataException">The file lists no names, or a YAML map skips a class index.</exception>
        public static IReadOnlyList<string> ReadClassNames(string namesFile)
        {
            if (string.IsNullOrWhiteSpace(namesFile)) throw new ArgumentException("Give the class-names file.", nameof(namesFile));
            string file = Path.GetFullPath(namesFile);
            if (!File.Exists(file)) throw new FileNotFoundException($"Class-names file '{file}' does not exist.", file);
            string[] lines = File.ReadAllLines(file);
            string extension = Path.GetExtension(file);
            IReadOnlyList<string> names = extension.Equals(".yaml", StringComparison.OrdinalIgnoreCase) || extension.Equals(".yml", StringComparison.OrdinalIgnoreCase)
                ? YamlNames(lines, file)
                : lines.Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names.Count == 0) throw new InvalidDataException($"'{file}' lists no class names.");
            return names;
        }

        private static IReadOnlyList<string> YamlNames(string[] lines, string file)
        {
            int at = Array.FindIndex(lines, l => l.TrimStart().StartsWith("names:", StringComparison.Ordinal) && !char.IsWhiteSpace(l[0]));
            if (at < 0) throw new InvalidDataException($"'{file}' has no top-level 'names:' entry.");
            string inline = lines[at].Trim()["names:".Length..].Trim();
            if (inline.StartsWith('['))
            {
                int end = inline.LastIndexOf(']');
                if (end < 0) throw new InvalidDataException($"'{file}', line {at + 1}: the list of names is not closed with ']'.");
                return inline[1..end].Split(',').Select(Unquote).Where(n => n.Length > 0).ToArray();
            }

            var list = new List<string>();
            var map = new SortedDictionary<int, string>();
            for (int i = at + 1; i < lines.Length; i++)
            {
                string raw = lines[i];
                string line = StripComment(raw).Trim();
                if (line.Length == 0) continue;
                if (!char.IsWhiteSpace(raw[0]) && !line.StartsWith('-')) break; // the next top-level key
                if (line.StartsWith('-')) { list.Add(Unquote(line[1..])); continue; }
                int colon = line.IndexOf(':');
                if (colon > 0 && int.TryParse(line[..colon].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int index))
                    map[index] = Unquote(line[(colon + 1)..]);
                else
                    throw new InvalidDataException($"'{file}', line {i + 1}: expected '- name' or 'index: name' under names, found: {raw.Trim()}");
            }

            if (map.Count == 0) return list;
            if (map.Keys.Select((k, i) => k != i).Any(skipped => skipped))
                throw new InvalidDataException($"'{file}': the names map has indices {string.Join(", ", map.Keys)}; give every index from 0 to {map.Count - 1}.");
            return map.Values.ToArray();
        }

        private static string StripComment(string line)
        {
            int hash = line.IndexOf(" #", StringComparison.Ordinal);
            return hash >= 0 ? line[..hash] : line;
        }

        private static string Unquote(string value)
        {
            string v = StripComment(value).Trim();
            if (v.Length >= 2 && (v[0] == '\'' || v[0] == '"') && v[^1] == v[0]) v = v[1..^1];
            return v;
        }
    }
}
