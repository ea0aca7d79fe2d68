using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.IO;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>
    /// Reads and writes COCO object-detection annotations (the <c>instances_*.json</c> files): <c>images</c> (id, file_name,
    /// width, height), <c>annotations</c> (image_id, category_id, bbox [x, y, width, height] in pixels, iscrowd) and
    /// <c>categories</c> (id, name). Category ids need not be contiguous: labels are 0, 1, … in ascending id order.
    /// </summary>
    public static class CocoDetection
    {
        /// <summary>
        /// Loads the images of <paramref name="annotationFile"/> (in file order) with their objects. Boxes become x1 = x,
        /// y1 = y, x2 = x + width, y2 = y + height; a box partly outside its image is clipped to it, and one with no area
        /// or wholly outside is refused. Crowd annotations (<c>iscrowd</c> 1) are kept as <see cref="DetectionBox.IsCrowd"/>
        /// regions. An image without <c>width</c>/<c>height</c> gets its size from the file's header.
        /// </summary>
        /// <param name="annotationFile">The COCO JSON file.</param>
        /// <param name="imageDirectory">The folder that <c>file_name</c> is relative to.</param>
        /// <exception cref="FileNotFoundException">The annotation file or a listed image does not exist.</exception>
        /// <exception cref="InvalidDataException">The file is not valid JSON, misses a section or a field, or an annotation names an unknown image or category, or has an empty box or one outside its image (the message names the entry).</exception>
        public static DetectionDataset Load(string annotationFile, string imageDirectory)
        {
            if (string.IsNullOrWhiteSpace(annotationFile)) throw new ArgumentException("Give the COCO annotation file's path.", nameof(annotationFile));
            if (string.IsNullOrWhiteSpace(imageDirectory)) throw new ArgumentException("Give the folder that holds the images.", nameof(imageDirectory));
            string file = Path.GetFullPath(annotationFile);
            if (!File.Exists(file)) throw new FileNotFoundException($"COCO annotation file '{file}' does not exist.", file);
            string images = Path.GetFullPath(imageDirectory);

            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(File.ReadAllBytes(file), new JsonDocumentOptions { AllowTrailingCommas = true });
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"'{file}' is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {e.Message}", e);
            }

            using (document)
            {
                JsonElement root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"'{file}': expected a JSON object with images, annotations and categories.");

                // Categories by ascending id → labels 0, 1, ….
                var categories = new List<(long Id, string Name)>();
                foreach (var (entry, where) in Section(root, "categories", file))
                    categories.Add((Integer(entry, "id", where), Text(entry, "name", where)));
                if (categories.Count == 0) throw new InvalidDataException($"'{file}': 'categories' is empty; list the classes as {{\"id\": 1, \"name\": \"cat\"}}.");
                long repeatedCategory = categories.GroupBy(c => c.Id).FirstOrDefault(g => g.Count() > 1)?.Key ?? -1;
                if (categories.GroupBy(c => c.Id).Any(g => g.Count() > 1))
                    throw new InvalidDataException($"'{file}': category id {repeatedCategory} appears twice in 'categories'.");
                categories.Sort((a, b) => a.Id.CompareTo(b.Id));
                var labelOf = categories.Select((c, i) => (c.Id, i)).ToDictionary(c => c.Id, c => c.i);

                var imageIndex = new Dictionary<long, int>();
                var paths = new List<string>();
                var sizes = new List<(int Width, int Height)>();
                foreach (var (entry, where) in Section(root, "images", file))
                {
                    long id = Integer(entry, "id", where);
                    if (imageIndex.ContainsKey(id)) throw new InvalidDataException($"{where}: image id {id} appears twice in 'images'.");
                    string name = Text(entry, "file_name", where);
                    string path = Path.GetFullPath(Path.Combine(images, name));
                    if (!File.Exists(path))
                        throw new FileNotFoundException($"{where}: image '{name}' does not exist (looked for {path}). Give the folder that holds the images as imageDirectory.", path);
                    int width = entry.TryGetProperty("width", out _) ? (int)Integer(entry, "width", where) : 0;
                    int height = entry.TryGetProperty("height", out _) ? (int)Integer(entry, "height", where) : 0;
                    if (width <= 0 || height <= 0)
                    {
                        ImageFileInfo info = ImageFiles.Probe(path);
                        (width, height) = (info.OrientedWidth, info.OrientedHeight);
                    }

                    imageIndex[id] = paths.Count;
                    paths.Add(path);
                    sizes.Add((width, height));
                }

                var objects = paths.Select(_ => new List<DetectionBox>()).ToArray();
                if (root.TryGetProperty("annotations", out _))
                {
                    foreach (var (entry, where) in Section(root, "annotations", file))
                    {
                        long imageId = Integer(entry, "image_id", where);
                        if (!imageIndex.TryGetValue(imageId, out int image))
                            throw new InvalidDataException($"{where}: image_id {imageId} is not in 'images'; add the image or remove the annotation.");
                        long categoryId = Integer(entry, "category_id", where);
                        if (!labelOf.TryGetValue(categoryId, out int label))
                            throw new InvalidDataException($"{where}: category_id {categoryId} is not in 'categories' (ids {string.Join(", ", categories.Select(c => c.Id))}); add the category or fix the annotation.");
                        if (!entry.TryGetProperty("bbox", out JsonElement bbox) || bbox.ValueKind != JsonValueKind.Array || bbox.GetArrayLength() != 4
                            || bbox.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.Number))
                            throw new InvalidDataException($"{where}: 'bbox' must be 4 numbers [x, y, width, height] in pixels.");
                        double[] b = bbox.EnumerateArray().Select(v => v.GetDouble()).ToArray();
                        bool crowd = entry.TryGetProperty("iscrowd", out _) && Integer(entry, "iscrowd", where) != 0;
                        objects[image].Add(AnnotationBoxes.Clip(label, b[0], b[1], b[0] + b[2], b[1] + b[3], crowd, sizes[image].Width, sizes[image].Height,
                            $"{where} (image '{Path.GetFileName(paths[image])}')"));
                    }
                }

                var examples = paths.Select((p, i) => new DetectionExample(p, sizes[i].Width, sizes[i].Height, objects[i])).ToArray();
                return new DetectionDataset(categories.Select(c => c.Name).ToArray(), examples);
            }
        }

        /// <summary>
        /// Writes <paramref name="dataset"/> as a COCO annotation file (whole or not at all): image ids 1, 2, … in example
        /// order with file names relative to the file's folder, category id = label + 1, bbox = [x1, y1, x2 − x1, y2 − y1].
        /// </summary>
        /// <param name="dataset">The dataset.</param>
        /// <param name="annotationFile">The JSON file to write.</param>
        public static void Save(DetectionDataset dataset, string annotationFile)
        {
            if (dataset is null) throw new ArgumentNullException(nameof(dataset));
            if (string.IsNullOrWhiteSpace(annotationFile)) throw new ArgumentException("Give the annotation file's path.", nameof(annotationFile));
            string file = Path.GetFullPath(annotationFile);
            string folder = Path.GetDirectoryName(file)!;
            Directory.CreateDirectory(folder);
            AtomicFile.Write(file, temporary =>
            {
                using var stream = File.Create(temporary);
                using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
                json.WriteStartObject();
                json.WriteStartArray("images");
                for (int i = 0; i < dataset.Examples.Count; i++)
                {
                    DetectionExample e = dataset.Examples[i];
                    json.WriteStartObject();
                    json.WriteNumber("id", i + 1);
                    json.WriteString("file_name", Path.GetRelativePath(folder, e.ImagePath).Replace('\\', '/'));
                    json.WriteNumber("width", e.Width);
                    json.WriteNumber("height", e.Height);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteStartArray("annotations");
                int id = 1;
                for (int i = 0; i < dataset.Examples.Count; i++)
                {
                    foreach (DetectionBox o in dataset.Examples[i].Objects)
                    {
                        json.WriteStartObject();
                        json.WriteNumber("id", id++);
                        json.WriteNumber("image_id", i + 1);
                        json.WriteNumber("category_id", o.Label + 1);
                        json.WriteStartArray("bbox");
                        json.WriteNumberValue(o.X1);
                        json.WriteNumberValue(o.Y1);
                        json.WriteNumberValue(o.X2 - o.X1);
                        json.WriteNumberValue(o.Y2 - o.Y1);
                        json.WriteEndArray();
                        json.WriteNumber("area", o.Area);
                        json.WriteNumber("iscrowd", o.IsCrowd ? 1 : 0);
                        json.WriteEndObject();
                    }
                }

                json.WriteEndArray();
                json.WriteStartArray("categories");
                for (int k = 0; k < dataset.ClassNames.Count; k++)
                {
                    json.WriteStartObject();
                    json.WriteNumber("id", k + 1);
                    json.WriteString("name", dataset.ClassNames[k]);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }, ".tmp.json");
        }

        private static IEnumerable<(JsonElement Entry, string Where)> Section(JsonElement root, string name, string file)
        {
            if (!root.TryGetProperty(name, out JsonElement section) || section.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"'{file}': expected an array '{name}' at the top level (COCO's images, annotations and categories).");
            int index = 0;
            foreach (JsonElement entry in section.EnumerateArray())
            {
                string where = entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("id", out JsonElement id) && id.ValueKind == JsonValueKind.Number
                    ? $"'{file}', {name}[{index}] (id {id.GetRawText()})"
                    : $"'{file}', {name}[{index}]";
                if (entry.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected a JSON object.");
                yield return (entry, where);
                index++;
            }
        }

        private static long Integer(JsonElement entry, string field, string where)
        {
            if (!entry.TryGetProperty(field, out JsonElement value))
                throw new InvalidDataException($"{where}: the field '{field}' is missing.");
            if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long number)) return number;
            // Some tools write integers as 640.0.
            if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double real) && real == Math.Floor(real) && Math.Abs(real) < 1e15) return (long)real;
            throw new InvalidDataException($"{where}: '{field}' is {value.GetRawText()}, not an integer.");
        }

        private static string Text(JsonElement entry, string field, string where)
        {
            if (!entry.TryGetProperty(field, out JsonElement value))
                throw new InvalidDataException($"{where}: the field '{field}' is missing.");
            if (value.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(value.GetString()))
                throw new InvalidDataException($"{where}: '{field}' is {value.GetRawText()}, not a non-empty string.");
            return value.GetString()!;
        }
    }
}
