using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Detection;

namespace Microsoft.ML.Residual.Datasets
{
    /// <summary>One image of a detection dataset and its objects.</summary>
    /// <param name="ImagePath">The image file's full path.</param>
    /// <param name="Width">The image's width in pixels.</param>
    /// <param name="Height">The image's height in pixels.</param>
    /// <param name="Objects">Its objects: 0-based labels, x1, y1, x2, y2 boxes in pixels (continuous coordinates), crowd regions flagged.</param>
    public sealed record DetectionExample(string ImagePath, int Width, int Height, IReadOnlyList<DetectionBox> Objects);

    /// <summary>
    /// Images with their objects, as the loaders of COCO, Pascal VOC and YOLO annotations and the generated shapes give
    /// them, and their <see cref="IDataView"/> in the layout of ML.NET's object detector.
    /// </summary>
    public sealed class DetectionDataset
    {
        /// <summary>A dataset of <paramref name="examples"/> whose labels index <paramref name="classNames"/>.</summary>
        /// <param name="classNames">The class names, by 0-based label.</param>
        /// <param name="examples">The images.</param>
        /// <exception cref="ArgumentException">There is no class, a name repeats, or an object's label is out of range or its box inverted.</exception>
        public DetectionDataset(IReadOnlyList<string> classNames, IReadOnlyList<DetectionExample> examples)
        {
            if (classNames is null) throw new ArgumentNullException(nameof(classNames));
            if (examples is null) throw new ArgumentNullException(nameof(examples));
            if (classNames.Count == 0) throw new ArgumentException("A detection dataset needs at least one class.", nameof(classNames));
            string? repeated = classNames.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1)?.Key;
            if (repeated is not null) throw new ArgumentException($"Class name '{repeated}' appears twice; each class needs its own name.", nameof(classNames));
            for (int i = 0; i < examples.Count; i++)
            {
                DetectionExample example = examples[i] ?? throw new ArgumentException($"Example {i} is null.", nameof(examples));
                for (int b = 0; b < example.Objects.Count; b++)
                {
                    DetectionBox box = example.Objects[b];
                    if (box.Label < 0 || box.Label >= classNames.Count)
                        throw new ArgumentException($"Example {i} ({example.ImagePath}), object {b}: label {box.Label} is not a class index 0–{classNames.Count - 1}.", nameof(examples));
                    DetectionEvaluator.CheckBox(box.X1, box.Y1, box.X2, box.Y2, $"Example {i} ({example.ImagePath}), object {b}", nameof(examples));
                }
            }

            ClassNames = classNames.ToArray();
            Examples = examples.ToArray();
        }

        /// <summary>The class names, by 0-based label.</summary>
        public IReadOnlyList<string> ClassNames { get; }

        /// <summary>The images and their objects.</summary>
        public IReadOnlyList<DetectionExample> Examples { get; }

        /// <summary>
        /// One row per image: <c>ImagePath</c> (text), <c>Labels</c> (a variable-length vector of keys, key count = the number
        /// of classes, key values = the class names), <c>Boxes</c> (a variable-length float vector, x1, y1, x2, y2 per label),
        /// <c>Width</c> and <c>Height</c> (float, the image's size in pixels). Crowd regions are left out.
        /// </summary>
        /// <param name="ml">The ML.NET context.</param>
        public IDataView ToDataView(MLContext ml)
        {
            if (ml is null) throw new ArgumentNullException(nameof(ml));
            var schema = SchemaDefinition.Create(typeof(Row));
            int classes = ClassNames.Count;
            schema[nameof(Row.Labels)].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), classes));
            schema[nameof(Row.Labels)].AddAnnotation("KeyValues", new VBuffer<ReadOnlyMemory<char>>(classes, ClassNames.Select(n => n.AsMemory()).ToArray()),
                new VectorDataViewType(TextDataViewType.Instance, classes));
            var rows = Examples.Select(e =>
            {
                DetectionBox[] kept = e.Objects.Where(o => !o.IsCrowd).ToArray();
                return new Row
                {
                    ImagePath = e.ImagePath,
                    Labels = kept.Select(o => (uint)(o.Label + 1)).ToArray(),
                    Boxes = kept.SelectMany(o => new[] { o.X1, o.Y1, o.X2, o.Y2 }).ToArray(),
                    Width = e.Width,
                    Height = e.Height,
                };
            }).ToArray();
            return ml.Data.LoadFromEnumerable(rows, schema);
        }

        /// <summary>The number of objects of each class (crowd regions not counted).</summary>
        public IReadOnlyList<int> CountObjects()
        {
            var counts = new int[ClassNames.Count];
            foreach (DetectionExample e in Examples)
                foreach (DetectionBox o in e.Objects)
                    if (!o.IsCrowd) counts[o.Label]++;
            return counts;
        }

        /// <inheritdoc/>
        public override string ToString() =>
            $"{Examples.Count} images, {Examples.Sum(e => e.Objects.Count(o => !o.IsCrowd))} objects of {ClassNames.Count} classes ({string.Join(", ", ClassNames.Zip(CountObjects(), (n, c) => $"{n} {c.ToString(CultureInfo.InvariantCulture)}"))})";

        private sealed class Row
        {
            public string ImagePath { get; set; } = string.Empty;

            public uint[] Labels { get; set; } = Array.Empty<uint>();

            public float[] Boxes { get; set; } = Array.Empty<float>();

            public float Width { get; set; }

            public float Height { get; set; }
        }
    }

    /// <summary>
    /// The rule every loader applies to an annotated box, in pixels of its image: a box that lies partly outside the image
    /// is clipped to it; a box with x2 ≤ x1 or y2 ≤ y1 (as written, or after clipping, i.e. one wholly outside the image)
    /// is refused, with the file and the annotation named, since it marks no object that a detector could find.
    /// </summary>
    internal static class AnnotationBoxes
    {
        public static DetectionBox Clip(int label, double x1, double y1, double x2, double y2, bool crowd, int width, int height, string where)
        {
            if (!double.IsFinite(x1) || !double.IsFinite(y1) || !double.IsFinite(x2) || !double.IsFinite(y2))
                throw new InvalidDataException($"{where}: the box has a coordinate that is not a finite number.");
            if (x2 <= x1 || y2 <= y1)
                throw new InvalidDataException($"{where}: the box (x1 {F(x1)}, y1 {F(y1)}, x2 {F(x2)}, y2 {F(y2)}) has no area (width {F(x2 - x1)}, height {F(y2 - y1)}); fix or remove the annotation.");
            double cx1 = Math.Clamp(x1, 0, width), cy1 = Math.Clamp(y1, 0, height), cx2 = Math.Clamp(x2, 0, width), cy2 = Math.Clamp(y2, 0, height);
            if (cx2 <= cx1 || cy2 <= cy1)
                throw new InvalidDataException($"{where}: the box (x1 {F(x1)}, y1 {F(y1)}, x2 {F(x2)}, y2 {F(y2)}) lies outside the {width}×{height} image; fix the annotation or the image size.");
            return new DetectionBox(label, (float)cx1, (float)cy1, (float)cx2, (float)cy2, crowd);
        }

        private static string F(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
    }
}
