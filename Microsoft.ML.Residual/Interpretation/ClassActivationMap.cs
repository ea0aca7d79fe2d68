using System.Collections.Generic;

namespace Microsoft.ML.Residual.Interpretation
{
    /// <summary>
    /// One image's explanation: a heatmap at the image's size saying where the evidence for <see cref="ClassIndex"/> lies,
    /// with the image as the network saw it and the network's scores for it.
    /// </summary>
    public sealed class ClassActivationMap
    {
        internal ClassActivationMap(float[] heatmap, int width, int height, float[] pixels, int channels, int classIndex, string className,
            float[] scores, int predictedIndex, string predictedClassName, string? source)
        {
            PredictedIndex = predictedIndex;
            PredictedClassName = predictedClassName;
            Heatmap = heatmap;
            Width = width;
            Height = height;
            Pixels = pixels;
            Channels = channels;
            ClassIndex = classIndex;
            ClassName = className;
            Scores = scores;
            Source = source;
        }

        /// <summary>
        /// The map, row by row (<see cref="Height"/> rows of <see cref="Width"/> values), in [0, 1]: 1 at the strongest
        /// evidence for the class, 0 where there is none (all zeros when nothing in the image speaks for it).
        /// </summary>
        public IReadOnlyList<float> Heatmap { get; }

        /// <summary>Width of the map and of the image, in pixels.</summary>
        public int Width { get; }

        /// <summary>Height of the map and of the image, in pixels.</summary>
        public int Height { get; }

        /// <summary>The image the network read, C×H×W, 0–255 (before the model's pixel normalisation).</summary>
        public IReadOnlyList<float> Pixels { get; }

        /// <summary>Channels of <see cref="Pixels"/> (3: red, green, blue).</summary>
        public int Channels { get; }

        /// <summary>The class the map explains (an index into the model's classes).</summary>
        public int ClassIndex { get; }

        /// <summary>The name of the class the map explains.</summary>
        public string ClassName { get; }

        /// <summary>The model's probability for each class (softmax; a sigmoid per class for a multi-label model).</summary>
        public IReadOnlyList<float> Scores { get; }

        /// <summary>The class the model predicts: the largest logit (the first of equal ones).</summary>
        public int PredictedIndex { get; }

        /// <summary>The name of the class the model predicts.</summary>
        public string PredictedClassName { get; }

        /// <summary>The image file the map was computed for, or null for pixels given directly.</summary>
        public string? Source { get; }

        /// <summary>The map's value at (<paramref name="x"/>, <paramref name="y"/>).</summary>
        public float this[int x, int y] => Heatmap[y * Width + x];

        /// <summary>Where the map is highest (the first such pixel in row order).</summary>
        public (int X, int Y) Peak
        {
            get
            {
                int best = 0;
                for (int i = 1; i < Heatmap.Count; i++)
                    if (Heatmap[i] > Heatmap[best]) best = i;
                return (best % Width, best / Width);
            }
        }
    }
}
