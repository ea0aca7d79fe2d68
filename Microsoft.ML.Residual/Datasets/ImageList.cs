using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>
    /// Reads a CSV list of images: one <c>path,label</c> line per image, paths relative to the CSV file's folder or
    /// absolute. Fields may be quoted ("a, b.png" with "" for a quote). The first line is a header when its first field
    /// does not end in an image extension (e.g. <c>path,label</c>). Every listed file must exist: a missing one fails
    /// the load with its line number.
    /// </summary>
    public static class ImageList
    {
        /// <summary>The images listed in <paramref name="csvPath"/>, in file order, with full paths.</summary>
        /// <exception cref="FileNotFoundException">The CSV file, or an image it lists, does not exist.</exception>
        /// <param name="csvPath">The CSV file.</param>
        /// <param name="imageExtensions">The extensions that mark an image path (null: those of <see cref="ImageFolderOptions"/>).</param>
        /// <param name="allowEmptyLabels">Accept an empty label field (an image without labels, in a multi-label list of <c>path,label1;label2</c>).</param>
        /// <exception cref="InvalidDataException">A line does not have two fields, a label is empty (unless allowed), or the list is empty.</exception>
        public static IReadOnlyList<LabeledImage> Read(string csvPath, IReadOnlyCollection<string>? imageExtensions = null, bool allowEmptyLabels = false)
        {
            if (string.IsNullOrWhiteSpace(csvPath)) throw new ArgumentException("Give the CSV file's path.", nameof(csvPath));
            string fullPath = Path.GetFullPath(csvPath);
            if (!File.Exists(fullPath)) throw new FileNotFoundException($"Image list '{fullPath}' does not exist.", fullPath);
            var extensions = new HashSet<string>(imageExtensions ?? new ImageFolderOptions().Extensions, StringComparer.OrdinalIgnoreCase);
            string folder = Path.GetDirectoryName(fullPath)!;

            var rows = new List<LabeledImage>();
            string[] lines = File.ReadAllLines(fullPath);
            bool first = true;
            for (int i = 0; i < lines.Length; i++)
            {
                if (lines[i].Trim().Length == 0) continue;
                List<string> fields = SplitCsvLine(lines[i], fullPath, i + 1);
                bool isHeader = first && !extensions.Contains(Path.GetExtension(fields[0].Trim()));
                first = false;
                if (isHeader) continue;
                if (fields.Count != 2 || fields[0].Trim().Length == 0)
                    throw new InvalidDataException($"'{fullPath}', line {i + 1}: expected two fields, image path and label (e.g. images/cat1.png,cat), found {fields.Count}: {lines[i]}");
                if (fields[1].Trim().Length == 0 && !allowEmptyLabels)
                    throw new InvalidDataException($"'{fullPath}', line {i + 1}: the label is empty: {lines[i]}. Give every image its class.");
                string image = Path.GetFullPath(Path.Combine(folder, fields[0].Trim()));
                if (!File.Exists(image))
                    throw new FileNotFoundException($"'{fullPath}', line {i + 1}: image '{fields[0].Trim()}' does not exist (looked for {image}).", image);
                rows.Add(new LabeledImage { ImagePath = image, Label = fields[1].Trim() });
            }

            if (rows.Count == 0) throw new InvalidDataException($"Image list '{fullPath}' lists no images; expected lines of path,label.");
            return rows;
        }

        // RFC 4180 fields of one line: commas separate, quotes enclose, a doubled quote inside quotes is a quote.
        private static List<string> SplitCsvLine(string line, string path, int lineNumber)
        {
            var fields = new List<string>();
            var field = new StringBuilder();
            bool quoted = false;
            for (int i = 0; i < line.Length; i++)
            {
                char c = line[i];
                if (quoted)
                {
                    if (c != '"') field.Append(c);
                    else if (i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                    else quoted = false;
                }
                else if (c == '"') quoted = true;
                else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
                else field.Append(c);
            }

            if (quoted) throw new InvalidDataException($"'{path}', line {lineNumber}: a quoted field is not closed: {line}");
            fields.Add(field.ToString());
            return fields;
        }
    }
}
