using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The image datasets the `recipes` mode measures training recipes on (issue 23): generated textures and shapes of several
    /// sizes, class counts and lengths, made here from a seed, and Fashion-MNIST and MNIST when their IDX files are present.
    /// </summary>
    internal static class RecipeDatasets
    {
        /// <summary>One dataset: its rows (pixel vectors CHW 0–255 with a string label), its image size and channels, and the architecture and epochs a user would set.</summary>
        public sealed record Dataset(string Name, int Size, int Channels, int Classes, string Architecture, int Epochs, Func<MLContext, (IDataView Train, IDataView Test)> Load, string Description);

        /// <summary>A row of pixels and a label.</summary>
        public sealed class Row
        {
            public float[] Image { get; set; } = Array.Empty<float>();

            public string Label { get; set; } = string.Empty;
        }

        private static readonly string[] TextureKinds = { "horizontal", "vertical", "checker", "diagonal", "antidiagonal", "dots" };

        private static readonly string[] ShapeKinds = { "disc", "square", "triangle", "cross", "ring", "diamond", "bar", "frame" };

        /// <summary>The datasets, in order; Fashion-MNIST and MNIST only where their files are found under <paramref name="idxFolders"/>.</summary>
        public static List<Dataset> All(bool quick, IEnumerable<string> idxFolders)
        {
            int Scaled(int count) => quick ? Math.Max(60, count / 5) : count;
            int Epochs(int epochs) => quick ? Math.Max(2, epochs / 3) : epochs;
            var list = new List<Dataset>
            {
                Generated("textures5-48", 48, 3, 5, "resnet18", Epochs(15), Scaled(450), Scaled(450), Textures, "five kinds of noisy stripes and checks, random colours"),
                Generated("shapes6-64", 64, 3, 6, "resnet18", Epochs(15), Scaled(600), Scaled(600), Shapes, "six filled or outlined shapes at random places, sizes (radius a fifth to a third of the image) and colours"),
                Generated("textures3-28-grey", 28, 1, 3, "resnet20", Epochs(6), Scaled(3000), Scaled(1000), Textures, "three kinds of grey stripes and checks, MNIST's size"),
                Generated("shapes8-32", 32, 3, 8, "resnet20", Epochs(10), Scaled(2000), Scaled(1000), Shapes, "eight shapes (radius a fifth to a third of the image), CIFAR's size"),
                Generated("textures6-96", 96, 3, 6, "resnet18", Epochs(12), Scaled(300), Scaled(300), Textures, "six texture kinds at 96², few images"),
            };
            foreach (string folder in idxFolders)
            {
                foreach (var (name, classes) in new[] { ("fashion-mnist", FashionClasses), ("mnist", Enumerable.Range(0, 10).Select(d => d.ToString()).ToArray()) })
                {
                    string directory = Path.Combine(folder, name);
                    string? trainImages = Find(directory, "train-images-idx3-ubyte"), trainLabels = Find(directory, "train-labels-idx1-ubyte");
                    string? testImages = Find(directory, "t10k-images-idx3-ubyte"), testLabels = Find(directory, "t10k-labels-idx1-ubyte");
                    if (trainImages is null || trainLabels is null || testImages is null || testLabels is null || list.Any(d => d.Name == name)) continue;
                    int trainRows = quick ? 2000 : 20_000, testRows = quick ? 1000 : 10_000;
                    list.Add(new Dataset(name, 28, 1, 10, "resnet20", Epochs(6), ml =>
                        (ml.Data.TakeRows(ml.Data.LoadMnist(trainImages, trainLabels, classes), trainRows),
                         ml.Data.TakeRows(ml.Data.LoadMnist(testImages, testLabels, classes), testRows)),
                        $"{name} from {directory}, the first {trainRows:N0} training and {testRows:N0} test images"));
                }
            }

            return list;
        }

        private static readonly string[] FashionClasses =
            { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

        private static string? Find(string directory, string stem) =>
            new[] { stem, stem + ".gz" }.Select(n => Path.Combine(directory, n)).FirstOrDefault(File.Exists);

        private static Dataset Generated(string name, int size, int channels, int classes, string architecture, int epochs, int train, int test,
            Func<int, int, int, int, Random, float[]> draw, string description) =>
            new(name, size, channels, classes, architecture, epochs, ml =>
            {
                SchemaDefinition schema = SchemaDefinition.Create(typeof(Row));
                schema[nameof(Row.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, channels, size, size);
                string[] kinds = draw == Textures ? TextureKinds : ShapeKinds;
                List<Row> Rows(int count, int seed)
                {
                    var random = new Random(seed);
                    return Enumerable.Range(0, count).Select(i => new Row { Image = draw(i % classes, size, channels, classes, random), Label = kinds[i % classes] }).ToList();
                }

                return (ml.Data.LoadFromEnumerable(Rows(train, 1), schema), ml.Data.LoadFromEnumerable(Rows(test, 2), schema));
            }, $"{classes} classes at {size}²{(channels == 1 ? ", grey" : string.Empty)}: {description}; {train:N0} training and {test:N0} test images");

        // Stripes or checks with a random period (3 to size/6 pixels), phase and two random colours, plus noise.
        private static float[] Textures(int kind, int size, int channels, int classes, Random random)
        {
            int period = random.Next(3, Math.Max(4, size / 6));
            int phase = random.Next(period);
            float[] on = Colour(channels, random), off = Contrasting(on, random);
            var pixels = new float[channels * size * size];
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool lit = kind switch
                {
                    0 => (y + phase) / period % 2 == 0,
                    1 => (x + phase) / period % 2 == 0,
                    2 => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                    3 => (x + y + phase) / period % 2 == 0,
                    4 => (x - y + size + phase) / period % 2 == 0,
                    _ => (x + phase) % period < period / 2 + 1 && (y + phase) % period < period / 2 + 1,
                };
                Paint(pixels, size, channels, x, y, lit ? on : off, random);
            }

            return pixels;
        }

        // A shape of random size (its radius a fifth to a third of the image, so that the outline shows at 32²), place and
        // colour on a background of another colour, plus noise.
        private static float[] Shapes(int kind, int size, int channels, int classes, Random random)
        {
            double radius = size * (0.2 + 0.13 * random.NextDouble());
            double cx = radius + random.NextDouble() * (size - 2 * radius), cy = radius + random.NextDouble() * (size - 2 * radius);
            float[] shape = Colour(channels, random), background = Contrasting(shape, random);
            var pixels = new float[channels * size * size];
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                double dx = (x + 0.5 - cx) / radius, dy = (y + 0.5 - cy) / radius;
                double r = Math.Sqrt(dx * dx + dy * dy), ax = Math.Abs(dx), ay = Math.Abs(dy);
                bool inside = kind switch
                {
                    0 => r <= 1,
                    1 => ax <= 0.85 && ay <= 0.85,
                    2 => dy <= 0.8 && dy >= -0.9 + 1.7 * ax,
                    3 => (ax <= 0.3 && ay <= 1) || (ay <= 0.3 && ax <= 1),
                    4 => r <= 1 && r >= 0.6,
                    5 => ax + ay <= 1,
                    6 => ax <= 1 && ay <= 0.3,
                    _ => ax <= 0.9 && ay <= 0.9 && (ax >= 0.6 || ay >= 0.6),
                };
                Paint(pixels, size, channels, x, y, inside ? shape : background, random);
            }

            return pixels;
        }

        private static float[] Colour(int channels, Random random)
        {
            var colour = new float[channels];
            for (int c = 0; c < channels; c++) colour[c] = random.Next(256);
            return colour;
        }

        // A random colour at least 48 levels from `other` in some channel, so that the pattern shows through the noise.
        private static float[] Contrasting(float[] other, Random random)
        {
            while (true)
            {
                float[] colour = Colour(other.Length, random);
                if (colour.Zip(other).Any(pair => Math.Abs(pair.First - pair.Second) >= 48)) return colour;
            }
        }

        private static void Paint(float[] pixels, int size, int channels, int x, int y, float[] colour, Random random)
        {
            for (int c = 0; c < channels; c++)
                pixels[(c * size + y) * size + x] = Math.Clamp(colour[c] + random.Next(-20, 21), 0, 255);
        }
    }
}
