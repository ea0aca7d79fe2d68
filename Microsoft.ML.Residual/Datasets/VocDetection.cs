using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Xml;
using System.Xml.Linq;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Detection;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>
    /// Reads Pascal VOC detection annotations: a folder with <c>Annotations/*.xml</c> (one file per image: <c>filename</c>,
    /// <c>size</c>, and per object <c>name</c>, <c>difficult</c> and <c>bndbox</c> xmin, ymin, xmax, ymax) and the images in
    /// <c>JPEGImages/</c>.
    /// </summary>
    public static class VocDetection
    {
        /// <summary>The 20 classes of Pascal VOC 2007–2012, in their usual order.</summary>
        public static IReadOnlyList<string> VocClassNames { get; } = new[]
        {
            "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
            "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
        };

        /// <summary>
        /// Loads every <c>Annotations/*.xml</c> file of <paramref name="directory"/> (by ordinal file name), or those listed in
        /// <c>ImageSets/Main/<paramref name="imageSet"/>.txt</c>. VOC numbers pixels from 1 and its boxes include both end
        /// pixels; they become continuous coordinates as x1 = xmin − 1, y1 = ymin − 1, x2 = xmax, y2 = ymax (a box of the
        /// single pixel 1,1 is [0, 0, 1, 1]). A box partly outside its image is clipped to it; one with no area or wholly
        /// outside is refused. The image is <c>JPEGImages/</c> + <c>filename</c> (the XML file's name with <c>.jpg</c> when
        /// the element is missing); its size comes from <c>size</c>, or from the image's header when that is missing or 0.
        /// </summary>
        /// <param name="directory">The VOC folder (e.g. <c>VOCdevkit/VOC2012</c>).</param>
        /// <param name="classNames">The classes, by label; null for the 20 VOC classes when every name found is one of them, else the names found, sorted ordinally.</param>
        /// <param name="includeDifficult">Keep objects marked <c>difficult</c> (default false: they are left out, as VOC's evaluation ignores them).</param>
        /// <param name="imageSet">An image set of <c>ImageSets/Main</c> to load (e.g. <c>train</c>, <c>val</c>); null for every annotation file.</param>
        /// <exception cref="DirectoryNotFoundException">The folder or its <c>Annotations</c> folder does not exist.</exception>
        /// <exception cref="FileNotFoundException">An image, or the image set's list, does not exist.</exception>
        /// <exception cref="InvalidDataException">An XML file is malformed, lacks an element, holds a value that is not a number, names a class not in <paramref name="classNames"/>, or has an empty box or one outside its image (the message names the file and the object).</exception>
        public static DetectionDataset Load(string directory, IReadOnlyList<string>? classNames = null, bool includeDifficult = false, string? imageSet = null)
        {
            if (string.IsNullOrWhiteSpace(directory)) throw new ArgumentException("Give the VOC folder (the one holding Annotations and JPEGImages).", nameof(directory));
            string root = Path.GetFullPath(directory);
            string annotations = Path.Combine(root, "Annotations");
            if (!Directory.Exists(annotations))
                throw new DirectoryNotFoundException($"'{annotations}' does not exist. Give the VOC folder that holds Annotations/ and JPEGImages/ (e.g. VOCdevkit/VOC2012).");

            string[] files;
            if (imageSet is null)
            {
                files = Directory.GetFiles(annotations, "*.xml").OrderBy(f => f, StringComparer.Ordinal).ToArray();
            }
            else
            {
                string list = Path.Combine(root, "ImageSets", "Main", imageSet + ".txt");
                if (!File.Exists(list)) throw new FileNotFoundException($"Image set '{imageSet}' does not exist (looked for {list}).", list);
                files = File.ReadAllLines(list).Select(l => l.Trim()).Where(l => l.Length > 0)
                    .Select(id => Path.Combine(annotations, id.Split(' ', '\t')[0] + ".xml")).ToArray();
                string? missing = files.FirstOrDefault(f => !File.Exists(f));
                if (missing is not null) throw new FileNotFoundException($"'{list}' lists '{Path.GetFileNameWithoutExtension(missing)}', but {missing} does not exist.", missing);
            }

            if (files.Length == 0) throw new InvalidDataException($"'{annotations}' holds no .xml annotation files.");

            var parsed = files.Select(f => Parse(f, root, includeDifficult)).ToArray();
            IReadOnlyList<string> names = classNames ?? DefaultNames(parsed.SelectMany(p => p.Objects.Select(o => o.Name)));
            var labelOf = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < names.Count; i++) labelOf[names[i]] = i;

            var examples = new List<DetectionExample>(parsed.Length);
            foreach (var image in parsed)
            {
                var objects = new List<DetectionBox>();
                foreach (var o in image.Objects)
                {
                    if (!labelOf.TryGetValue(o.Name, out int label))
                        throw new InvalidDataException($"'{image.File}', object {o.Index}: class '{o.Name}' is not among the class names ({string.Join(", ", names)}); add it to classNames or fix the annotation.");
                    objects.Add(AnnotationBoxes.Clip(label, o.XMin - 1, o.YMin - 1, o.XMax, o.YMax, false, image.Width, image.Height, $"'{image.File}', object {o.Index} ({o.Name})"));
                }

                examples.Add(new DetectionExample(image.ImagePath, image.Width, image.Height, objects));
            }

            return new DetectionDataset(names, examples);
        }

        private static IReadOnlyList<string> DefaultNames(IEnumerable<string> found)
        {
            var distinct = found.Distinct(StringComparer.Ordinal).ToArray();
            if (distinct.All(n => VocClassNames.Contains(n, StringComparer.Ordinal))) return VocClassNames;
            return distinct.OrderBy(n => n, StringComparer.Ordinal).ToArray();
        }

        private sealed record VocObject(int Index, string Name, double XMin, double YMin, double XMax, double YMax);

        private sealed record VocImage(string File, string ImagePath, int Width, int Height, List<VocObject> Objects);

        private static VocImage Parse(string file, string root, bool includeDifficult)
        {
            XDocument document;
            try
            {
                document = XDocument.Load(file, LoadOptions.SetLineInfo);
            }
            catch (XmlException e)
            {
                throw new InvalidDataException($"'{file}' is not valid XML (line {e.LineNumber}, position {e.LinePosition}): {e.Message}", e);
            }

            XElement annotation = document.Root!;
            string name = annotation.Element("filename")?.Value.Trim() is { Length: > 0 } given ? given : Path.GetFileNameWithoutExtension(file) + ".jpg";
            string imagePath = Path.Combine(root, "JPEGImages", name);
            if (!File.Exists(imagePath))
                throw new FileNotFoundException($"'{file}': image '{name}' does not exist (looked for {imagePath}). VOC images go in JPEGImages/ next to Annotations/.", imagePath);

            int width = 0, height = 0;
            if (annotation.Element("size") is XElement size)
            {
                width = (int)Number(size, "width", file, "size");
                height = (int)Number(size, "height", file, "size");
            }

            if (width <= 0 || height <= 0)
            {
                ImageFileInfo info = ImageFiles.Probe(imagePath);
                (width, height) = (info.OrientedWidth, info.OrientedHeight);
            }

            var objects = new List<VocObject>();
            int index = 0;
            foreach (XElement element in annotation.Elements("object"))
            {
                string where = $"object {index}";
                string className = element.Element("name")?.Value.Trim() ?? "";
                if (className.Length == 0) throw new InvalidDataException($"'{file}', {where}: the object has no <name>.");
                bool difficult = element.Element("difficult") is not null && Number(element, "difficult", file, where) != 0;
                XElement box = element.Element("bndbox") ?? throw new InvalidDataException($"'{file}', {where} ({className}): the object has no <bndbox>.");
                var parsed = new VocObject(index, className, Number(box, "xmin", file, where), Number(box, "ymin", file, where), Number(box, "xmax", file, where), Number(box, "ymax", file, where));
                index++;
                if (difficult && !includeDifficult) continue;
                objects.Add(parsed);
            }

            return new VocImage(file, imagePath, width, height, objects);
        }

        private static double Number(XElement parent, string element, string file, string where)
        {
            XElement? child = parent.Element(element);
            if (child is null) throw new InvalidDataException($"'{file}', {where}: <{element}> is missing.");
            if (!double.TryParse(child.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
                throw new InvalidDataException($"'{file}', {where}: <{element}> is '{child.Value}', not a number (line {((IXmlLineInfo)child).LineNumber}).");
            return value;
        }
    }
}
