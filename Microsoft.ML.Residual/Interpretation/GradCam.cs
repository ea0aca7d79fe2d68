using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Estimators;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Interpretation
{
    /// <summary>How <see cref="GradCam"/> weighs the channels of the last stage's map.</summary>
    public enum GradCamMethod
    {
        /// <summary>Grad-CAM (Selvaraju et al. 2017): each channel by the mean of the class score's gradient over the map.</summary>
        GradCam,

        /// <summary>
        /// Grad-CAM++ (Chattopadhay et al. 2018): each channel by a weighted sum of the positive gradients, the weights from the
        /// second and third powers of the gradient (the closed form for an exponential of the score), so that several
        /// instances of the class each show.
        /// </summary>
        GradCamPlusPlus,
    }

    /// <summary>
    /// Grad-CAM explanations of a classifier of any of the library's families: for an image and a class, where in the image the
    /// evidence for that class lies. The last stage's map A (the one the network pools into its features) is weighted channel by
    /// channel by the gradient of the class's logit with respect to it, summed over channels, passed through ReLU, upsampled
    /// bilinearly to the image's size and scaled so that its peak is 1.
    /// </summary>
    /// <example>
    /// <code>
    /// using var gradCam = GradCam.Load("model.zip");
    /// ClassActivationMap map = gradCam.ExplainFiles(new[] { "cat.jpg" })[0];
    /// Console.WriteLine($"{map.ClassName}: peak at {map.Peak}");
    /// </code>
    /// </example>
    public sealed class GradCam : IDisposable
    {
        private readonly ClassifierNetwork network;
        private readonly bool ownsNetwork;
        private readonly PixelNormalizer? normalizer;
        private readonly string[] classes;
        private readonly bool multiLabel;
        private readonly Device device;
        private int batchSize = 16;

        private GradCam(ClassifierNetwork network, bool ownsNetwork, PixelNormalization? normalization, int? channels, string[] classes, bool multiLabel)
        {
            this.network = network;
            this.ownsNetwork = ownsNetwork;
            this.classes = classes;
            this.multiLabel = multiLabel;
            device = network.parameters().FirstOrDefault()?.device ?? CPU;
            Channels = channels;
            if (normalization != null)
            {
                int count = normalization.Mean.Count;
                if (normalization.Std.Count != count)
                    throw new ArgumentException($"The normalisation has {count} means but {normalization.Std.Count} standard deviations; give one of each per channel.", nameof(normalization));
                if (channels is int c && c != count)
                    throw new ArgumentException($"The normalisation has {count} channels but the model reads {c}.", nameof(normalization));
                normalizer = new PixelNormalizer(normalization, count, device);
                Channels = count;
            }
        }

        /// <summary>
        /// Explains a network in memory, e.g. one made by <see cref="ResidualModels.Create"/> and trained by the caller. The
        /// network is not disposed with this object; it is put in evaluation mode while maps are computed, then back as it was.
        /// </summary>
        /// <param name="model">A classifier of the library's families (a <see cref="ClassifierNetwork"/>) built with classes.</param>
        /// <param name="classNames">The class names in the order of the logits (null: "0", "1", …).</param>
        /// <param name="normalization">
        /// How pixels are normalised before the network (as the estimators do: <see cref="PixelNormalization.For"/>); null: pixels
        /// go to the network as they are given.
        /// </param>
        /// <exception cref="ArgumentException">The model is not a classifier network with a head, or the names do not fit it.</exception>
        public GradCam(nn.Module<Tensor, Tensor> model, IReadOnlyList<string>? classNames = null, PixelNormalization? normalization = null)
            : this(Checked(model), ownsNetwork: false, normalization, channels: null, Names((ClassifierNetwork)model, classNames), multiLabel: false)
        {
        }

        /// <summary>
        /// Explains a saved classifier: a model.zip from <c>ml.Model.Save</c> of a pipeline with a ResidualML classifier
        /// (single- or multi-label), or the .onnx graph it exports. The network is rebuilt from its architecture with the saved
        /// weights; pixels are normalised as the saved graph does, and images are read at its input size.
        /// </summary>
        /// <exception cref="ArgumentException">The file is missing or unreadable, or holds no ResidualML classifier.</exception>
        public static GradCam Load(string modelPath)
        {
            SavedClassifier saved = SavedClassifier.Read(modelPath, nameof(modelPath));
            try
            {
                return new GradCam(saved.Network, ownsNetwork: true, PixelNormalization.For(saved.Card, saved.Channels), saved.Channels, saved.Classes, saved.MultiLabel)
                {
                    ImageWidth = saved.Width,
                    ImageHeight = saved.Height,
                };
            }
            catch
            {
                saved.Network.Dispose();
                throw;
            }
        }

        /// <summary>The class names, in the order of the model's scores.</summary>
        public IReadOnlyList<string> ClassNames => classes;

        /// <summary>The channels the model reads, when known (a loaded model, or a normalisation given).</summary>
        public int? Channels { get; }

        /// <summary>The width images are resized to by <see cref="ExplainFiles"/>: the saved model's input width (set it for a network in memory).</summary>
        public int? ImageWidth { get; set; }

        /// <summary>The height images are resized to by <see cref="ExplainFiles"/>: the saved model's input height (set it for a network in memory).</summary>
        public int? ImageHeight { get; set; }

        /// <summary>Grad-CAM (the default) or Grad-CAM++.</summary>
        public GradCamMethod Method { get; set; } = GradCamMethod.GradCam;

        /// <summary>How many images go through the network at once (16 by default).</summary>
        public int BatchSize
        {
            get => batchSize;
            set => batchSize = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "BatchSize must be at least 1.");
        }

        /// <summary>The index of the class named <paramref name="className"/>.</summary>
        /// <exception cref="ArgumentException">The model has no such class; the message lists those it has.</exception>
        public int ClassIndex(string className)
        {
            int index = Array.IndexOf(classes, className ?? throw new ArgumentNullException(nameof(className)));
            return index >= 0 ? index
                : throw new ArgumentException($"className = '{className}' is not a class of this model; its classes are {string.Join(", ", classes.Select(c => $"'{c}'"))}.", nameof(className));
        }

        /// <summary>
        /// The maps of a batch of images, each for <paramref name="classIndex"/> or, when it is null, for the class the model predicts for it.
        /// </summary>
        /// <param name="pixels">N×C×H×W (or one C×H×W image) float pixels: 0–255 for a loaded model, as the network expects otherwise.</param>
        /// <param name="classIndex">The class to explain in every image (null: each image's predicted class).</param>
        /// <exception cref="ArgumentException">The pixels are not images of the model's channels, or the class index is out of range.</exception>
        public IReadOnlyList<ClassActivationMap> Explain(Tensor pixels, int? classIndex = null)
        {
            if (pixels is null) throw new ArgumentNullException(nameof(pixels));
            if (pixels.dim() is not (3 or 4))
                throw new ArgumentException($"pixels has the shape [{string.Join(", ", pixels.shape)}]; give images as N×C×H×W (or one image as C×H×W).", nameof(pixels));
            long[] shape = pixels.dim() == 4 ? pixels.shape : pixels.shape.Prepend(1L).ToArray();
            if (Channels is int channels && shape[1] != channels)
                throw new ArgumentException($"pixels has {shape[1]} channel(s) but the model reads {channels}.", nameof(pixels));
            CheckClass(classIndex);
            var maps = new List<ClassActivationMap>((int)shape[0]);
            for (long start = 0; start < shape[0]; start += BatchSize)
            {
                using var scope = NewDisposeScope();
                maps.AddRange(Compute(pixels.reshape(shape).narrow(0, start, Math.Min(BatchSize, shape[0] - start)), classIndex, sources: null));
            }

            return maps;
        }

        /// <summary>The maps of a batch of images for the class named <paramref name="className"/>.</summary>
        /// <exception cref="ArgumentException">The model has no such class, or the pixels are not images of its channels.</exception>
        public IReadOnlyList<ClassActivationMap> Explain(Tensor pixels, string className) => Explain(pixels, ClassIndex(className));

        /// <summary>
        /// The maps of image files, read as the saved model's scoring chain reads them (ML.NET's LoadImages, ResizeImages to
        /// <see cref="ImageWidth"/>×<see cref="ImageHeight"/>, ExtractPixels), each for <paramref name="className"/> or, when it is
        /// null, for the class the model predicts for it.
        /// </summary>
        /// <exception cref="ArgumentException">The model has no class of that name.</exception>
        /// <exception cref="InvalidOperationException">The image size is not known, or the model does not read RGB images.</exception>
        public IReadOnlyList<ClassActivationMap> ExplainFiles(IReadOnlyList<string> imagePaths, string? className = null)
        {
            if (imagePaths is null) throw new ArgumentNullException(nameof(imagePaths));
            int? classIndex = className is null ? null : ClassIndex(className);
            if (ImageWidth is not int width || ImageHeight is not int height)
                throw new InvalidOperationException("ExplainFiles needs the model's input size: set ImageWidth and ImageHeight to the size it was trained at (GradCam.Load sets them).");
            if (Channels is int channels && channels != 3)
                throw new InvalidOperationException($"The model reads {channels}-channel pixels; ExplainFiles reads RGB images. Give the pixels to Explain(Tensor) instead.");

            var ml = new MLContext(seed: 1);
            IDataView rows = ml.Data.LoadFromEnumerable(imagePaths.Select(p => new ImagePathRow { ImagePath = p }).ToList());
            IDataView read = ml.Transforms.LoadImages("Image", imageFolder: null, nameof(ImagePathRow.ImagePath))
                .Append(ml.Transforms.ResizeImages("Resized", width, height, "Image"))
                .Append(ml.Transforms.ExtractPixels("Pixels", "Resized"))
                .Fit(rows).Transform(rows);
            var maps = new List<ClassActivationMap>(imagePaths.Count);
            using DataViewRowCursor cursor = read.GetRowCursor(read.Schema.Where(c => c.Name is "Pixels"));
            var getter = cursor.GetGetter<VBuffer<float>>(read.Schema["Pixels"]);
            VBuffer<float> buffer = default;
            int plane = 3 * height * width, row = 0;
            var batch = new float[BatchSize * plane];
            int filled = 0;
            void Flush()
            {
                if (filled == 0) return;
                using var scope = NewDisposeScope();
                Tensor pixels = tensor(batch.AsSpan(0, filled * plane).ToArray(), new long[] { filled, 3, height, width });
                maps.AddRange(Compute(pixels, classIndex, imagePaths.Skip(row - filled).Take(filled).ToList()));
                filled = 0;
            }

            while (cursor.MoveNext())
            {
                getter(ref buffer);
                buffer.GetValues().CopyTo(batch.AsSpan(filled * plane, plane));
                filled++;
                row++;
                if (filled == BatchSize) Flush();
            }

            Flush();
            return maps;
        }

        /// <summary>Disposes the network when this object loaded it (<see cref="Load"/>), and the normalisation's tensors.</summary>
        public void Dispose()
        {
            normalizer?.Dispose();
            if (ownsNetwork) network.Dispose();
        }

        /// <summary>
        /// The class activation maps N×h×w of activations A and the gradients dy/dA of the class scores (both N×C×h×w): the
        /// channels weighted by <paramref name="method"/>'s weights, summed, and passed through ReLU.
        /// </summary>
        internal static Tensor Weighted(Tensor activations, Tensor gradients, GradCamMethod method)
        {
            var space = new long[] { 2, 3 };
            Tensor weights;
            if (method == GradCamMethod.GradCam)
            {
                weights = gradients.mean(space, keepdim: true);
            }
            else
            {
                // α = g² / (2g² + Σ_ab A_ab · g³), 0 where the denominator is; weights Σ_ij α_ij · ReLU(g_ij).
                Tensor squared = gradients.mul(gradients);
                Tensor cubed = squared.mul(gradients);
                Tensor denominator = squared.Times(2.0).Plus(activations.sum(space, keepdim: true).mul(cubed));
                Tensor zero = denominator.eq(zeros_like(denominator));
                Tensor alpha = where(zero, zeros_like(denominator), squared.div(where(zero, ones_like(denominator), denominator)));
                weights = alpha.mul(nn.functional.relu(gradients)).sum(space, keepdim: true);
            }

            return nn.functional.relu(weights.mul(activations).sum(new long[] { 1 }));
        }

        /// <summary>Maps N×h×w upsampled bilinearly (half-pixel centres) to N×<paramref name="height"/>×<paramref name="width"/>, each divided by its maximum (an all-zero map stays zero).</summary>
        internal static Tensor Scaled(Tensor maps, long height, long width)
        {
            Tensor resized = nn.functional.interpolate(maps.unsqueeze(1), new[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false).squeeze(1);
            Tensor peaks = resized.amax(new long[] { 1, 2 }, keepdim: true);
            return resized.div(peaks.AtLeast(1e-30));
        }

        // One batch: the last stage's map without gradients, then the logits from it as a leaf, and the gradient of the chosen
        // logits with respect to it (nothing accumulates in the network's parameters).
        private IEnumerable<ClassActivationMap> Compute(Tensor pixels, int? classIndex, IReadOnlyList<string>? sources)
        {
            long n = pixels.shape[0], height = pixels.shape[2], width = pixels.shape[3];
            bool wasTraining = network.training;
            network.eval();
            Tensor heat, scores, chosen, predicted;
            try
            {
                Tensor batch = pixels.to(ScalarType.Float32).to(device);
                Tensor input = normalizer?.Apply(batch) ?? batch;
                Tensor map;
                using (no_grad()) map = network.LastStageMap(TensorOperations.Instance, input);
                Tensor leaf = map.detach().requires_grad_(true);
                Tensor logits;
                using (enable_grad()) logits = network.OutputFromMap(TensorOperations.Instance, leaf);
                predicted = logits.argmax(1);
                chosen = classIndex is int c ? tensor(Enumerable.Repeat((long)c, (int)n).ToArray(), device: device) : predicted;
                Tensor gradient = autograd.grad(new[] { logits.gather(1, chosen.unsqueeze(1)).sum() }, new[] { leaf })[0];
                heat = Scaled(Weighted(leaf.detach(), gradient, Method), height, width).cpu();
                using (no_grad()) scores = (multiLabel ? logits.sigmoid() : logits.softmax(1)).cpu();
                chosen = chosen.cpu();
                predicted = predicted.cpu();
            }
            finally
            {
                if (wasTraining) network.train();
            }

            float[] heatValues = heat.data<float>().ToArray(), scoreValues = scores.data<float>().ToArray();
            float[] pixelValues = pixels.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
            long[] chosenValues = chosen.data<long>().ToArray(), predictedValues = predicted.data<long>().ToArray();
            int plane = (int)(height * width), channels = (int)pixels.shape[1], k = classes.Length;
            var maps = new ClassActivationMap[n];
            for (int i = 0; i < n; i++)
            {
                int cls = (int)chosenValues[i], best = (int)predictedValues[i];
                maps[i] = new ClassActivationMap(heatValues.AsSpan(i * plane, plane).ToArray(), (int)width, (int)height,
                    pixelValues.AsSpan(i * channels * plane, channels * plane).ToArray(), channels, cls, classes[cls],
                    scoreValues.AsSpan(i * k, k).ToArray(), best, classes[best], sources?[i]);
            }

            return maps;
        }

        private void CheckClass(int? classIndex)
        {
            if (classIndex is int c && (c < 0 || c >= classes.Length))
                throw new ArgumentException($"classIndex = {c} is out of range; the model has {classes.Length} classes (0 to {classes.Length - 1}).", nameof(classIndex));
        }

        private static ClassifierNetwork Checked(nn.Module<Tensor, Tensor> model)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            if (model is not ClassifierNetwork network)
                throw new ArgumentException(
                    $"model is a {model.GetType().Name}; Grad-CAM explains the library's classifier networks (ResNet, DenseNet, RegNet, MobileNet, EfficientNet, "
                    + "ConvNeXt: what ResidualModels.Create gives for a classifier's name). A segmenter's or an outside module's last map is not known to it.",
                    nameof(model));
            if (network.ClassCount == 0)
                throw new ArgumentException("model was built without classes (NumClasses = 0): it gives features, not class scores. Create it with numClasses.", nameof(model));
            return network;
        }

        private static string[] Names(ClassifierNetwork network, IReadOnlyList<string>? names)
        {
            if (names is null) return Enumerable.Range(0, network.ClassCount).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            if (names.Count != network.ClassCount)
                throw new ArgumentException($"classNames has {names.Count} names but the model scores {network.ClassCount} classes; give one name per class, in the order of its logits.", "classNames");
            return names.ToArray();
        }

        /// <summary>One row of <see cref="ExplainFiles"/>' input.</summary>
        private sealed class ImagePathRow
        {
            public string ImagePath { get; set; } = string.Empty;
        }
    }
}
