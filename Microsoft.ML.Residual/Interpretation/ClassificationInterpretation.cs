using System;
using System.Collections.Generic;
using System.Linq;

namespace Microsoft.ML.Residual.Interpretation
{
    /// <summary>An image the model got most wrong: its map, its true class, and the loss −ln p(true class).</summary>
    /// <param name="Map">The image's map (for the class it was computed for, usually the predicted one).</param>
    /// <param name="Actual">The image's true class (an index into the model's classes).</param>
    /// <param name="Loss">The cross-entropy −ln p(<paramref name="Actual"/>), from the map's scores.</param>
    public sealed record TopLoss(ClassActivationMap Map, int Actual, double Loss);

    /// <summary>A pair of classes the model confuses: how many images of <paramref name="Actual"/> it predicts as <paramref name="Predicted"/>.</summary>
    /// <param name="Actual">The true class.</param>
    /// <param name="Predicted">The class predicted instead.</param>
    /// <param name="Count">How many images.</param>
    public sealed record ConfusedPair(int Actual, int Predicted, int Count);

    /// <summary>
    /// What a classifier gets wrong on labelled images, as fastai's <c>ClassificationInterpretation</c> shows it: the images of
    /// largest loss, and the class pairs most often confused.
    /// </summary>
    public static class ClassificationInterpretation
    {
        /// <summary>The <paramref name="count"/> images of largest loss, largest first (ties in input order).</summary>
        /// <param name="maps">One map per image, with the model's scores.</param>
        /// <param name="actual">Each image's true class.</param>
        /// <param name="count">How many to return (fewer if there are fewer images).</param>
        /// <exception cref="ArgumentException">The lists differ in length, or a class is out of range.</exception>
        public static IReadOnlyList<TopLoss> TopLosses(IReadOnlyList<ClassActivationMap> maps, IReadOnlyList<int> actual, int count)
        {
            Check(maps, actual);
            if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be 0 or more.");
            return maps.Select((map, i) => new TopLoss(map, actual[i], -Math.Log(Math.Max(map.Scores[actual[i]], double.Epsilon))))
                .OrderByDescending(l => l.Loss)
                .Take(count)
                .ToList();
        }

        /// <summary>
        /// The pairs (true class, predicted class) of different classes with at least <paramref name="minimum"/> images, most
        /// frequent first (ties by true, then predicted class).
        /// </summary>
        /// <exception cref="ArgumentException">The lists differ in length, or a class is out of range.</exception>
        public static IReadOnlyList<ConfusedPair> MostConfused(IReadOnlyList<ClassActivationMap> maps, IReadOnlyList<int> actual, int minimum = 1)
        {
            Check(maps, actual);
            return MostConfused(actual, maps.Select(m => m.PredictedIndex).ToList(), minimum);
        }

        /// <summary>
        /// The same from each image's true and predicted class alone (for images whose maps were not all kept): the pairs of
        /// different classes with at least <paramref name="minimum"/> images, most frequent first.
        /// </summary>
        /// <exception cref="ArgumentException">The lists differ in length.</exception>
        public static IReadOnlyList<ConfusedPair> MostConfused(IReadOnlyList<int> actual, IReadOnlyList<int> predicted, int minimum = 1)
        {
            if (actual is null) throw new ArgumentNullException(nameof(actual));
            if (predicted is null) throw new ArgumentNullException(nameof(predicted));
            if (actual.Count != predicted.Count)
                throw new ArgumentException($"There are {actual.Count} true classes but {predicted.Count} predictions; give one of each per image.", nameof(predicted));
            return actual.Select((a, i) => (Actual: a, Predicted: predicted[i]))
                .Where(p => p.Actual != p.Predicted)
                .GroupBy(p => p)
                .Select(g => new ConfusedPair(g.Key.Actual, g.Key.Predicted, g.Count()))
                .Where(p => p.Count >= minimum)
                .OrderByDescending(p => p.Count).ThenBy(p => p.Actual).ThenBy(p => p.Predicted)
                .ToList();
        }

        private static void Check(IReadOnlyList<ClassActivationMap> maps, IReadOnlyList<int> actual)
        {
            if (maps is null) throw new ArgumentNullException(nameof(maps));
            if (actual is null) throw new ArgumentNullException(nameof(actual));
            if (maps.Count != actual.Count)
                throw new ArgumentException($"There are {maps.Count} maps but {actual.Count} true classes; give one true class per map.", nameof(actual));
            for (int i = 0; i < actual.Count; i++)
                if (actual[i] < 0 || actual[i] >= maps[i].Scores.Count)
                    throw new ArgumentException($"actual[{i}] = {actual[i]} is not a class of the model (0 to {maps[i].Scores.Count - 1}).", nameof(actual));
        }
    }
}
