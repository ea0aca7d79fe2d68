using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;

namespace Microsoft.ML.Residual.Classification
{
    /// <summary>
    /// Multi-label image classification on an <see cref="MLContext"/>, training and evaluation together:
    /// <c>ml.MultiLabelClassification().ImageClassifier(...)</c> and <c>ml.MultiLabelClassification().Evaluate(...)</c>.
    /// </summary>
    public sealed class MultiLabelClassificationCatalog
    {
        internal MultiLabelClassificationCatalog(MLContext context) => Context = context;

        internal MLContext Context { get; }

        /// <summary>A multi-label image classifier: <c>Score</c> (a probability per label) and <c>PredictedLabels</c> (a Boolean per label).</summary>
        public MultiLabelClassifierEstimator ImageClassifier(MultiLabelClassifierOptions options) => new(Context, options);

        /// <summary>A multi-label image classifier with the common settings; every other one keeps its <see cref="MultiLabelClassifierOptions"/> default.</summary>
        /// <param name="labelColumnName">Each image's labels: a vector of keys, or a known-size Boolean vector.</param>
        /// <param name="imageColumnName">An <c>MLImage</c> column, or pixels as a float vector C×H×W of 0–255.</param>
        /// <param name="architecture">A registered classifier, e.g. resnet18 or efficientnet_b0.</param>
        /// <param name="epochs">Passes over the training data.</param>
        /// <param name="imageWidth">Width the network sees.</param>
        /// <param name="imageHeight">Height the network sees.</param>
        public MultiLabelClassifierEstimator ImageClassifier(string labelColumnName = "Labels", string imageColumnName = "Image", string architecture = "resnet18",
            int epochs = 10, int imageWidth = 224, int imageHeight = 224) =>
            ImageClassifier(new MultiLabelClassifierOptions
            {
                LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, Architecture = architecture, Epochs = epochs,
                ImageWidth = imageWidth, ImageHeight = imageHeight,
            });

        /// <summary>
        /// Compares predicted label sets with the true ones: precision, recall, F1 and average precision per label, their micro and
        /// macro averages, the mean average precision over labels, the subset accuracy and the Hamming loss.
        /// </summary>
        /// <param name="data">Scored data, e.g. <c>model.Transform(test)</c>.</param>
        /// <param name="labelColumnName">The true labels: a vector of keys (key k + 1 is label k), or a known-size Boolean vector.</param>
        /// <param name="scoreColumnName">A known-size float vector: each label's probability (for the average precision).</param>
        /// <param name="predictedLabelsColumnName">A known-size Boolean vector: the predicted labels.</param>
        /// <exception cref="ArgumentException">A column is missing, has another type, or the sizes differ.</exception>
        /// <exception cref="InvalidOperationException">The data has no rows.</exception>
        public MultiLabelMetrics Evaluate(IDataView data, string labelColumnName = "Labels", string scoreColumnName = "Score", string predictedLabelsColumnName = "PredictedLabels")
        {
            if (data is null) throw new ArgumentNullException(nameof(data));
            LabelKeyInfo labels = LabelKeyInfo.FromMultiLabelSchema(data.Schema, labelColumnName);
            DataViewSchema.Column score = Column(data.Schema, scoreColumnName, NumberDataViewType.Single, labels.ClassCount, nameof(scoreColumnName));
            DataViewSchema.Column predicted = Column(data.Schema, predictedLabelsColumnName, BooleanDataViewType.Instance, labels.ClassCount, nameof(predictedLabelsColumnName));
            var truth = new List<float[]>();
            var scores = new List<float[]>();
            var flags = new List<bool[]>();
            using (DataViewRowCursor cursor = data.GetRowCursor(new[] { data.Schema[labelColumnName], score, predicted }))
            {
                Func<float[]> readTruth = MultiLabelColumn.Reader(cursor, data.Schema[labelColumnName], labels.ClassCount);
                var readScore = cursor.GetGetter<VBuffer<float>>(score);
                var readFlags = cursor.GetGetter<VBuffer<bool>>(predicted);
                VBuffer<float> scoreValue = default;
                VBuffer<bool> flagValue = default;
                while (cursor.MoveNext())
                {
                    truth.Add(readTruth());
                    readScore(ref scoreValue);
                    readFlags(ref flagValue);
                    scores.Add(scoreValue.DenseValues().ToArray());
                    flags.Add(flagValue.DenseValues().ToArray());
                }
            }

            if (truth.Count == 0) throw new InvalidOperationException("The scored data has no rows to evaluate.");
            string[] names = labels.ClassNames?.ToArray() ?? Enumerable.Range(1, labels.ClassCount).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return MultiLabelMetrics.From(names, truth.Select(t => t.Select(v => v > 0.5f).ToArray()).ToList(), scores, flags);
        }

        private static DataViewSchema.Column Column(DataViewSchema schema, string name, DataViewType item, int size, string parameter)
        {
            DataViewSchema.Column column = schema.GetColumnOrNull(name)
                ?? throw new ArgumentException($"The data has no column '{name}'. Columns: {string.Join(", ", schema.Select(c => c.Name))}.", parameter);
            if (column.Type is not VectorDataViewType vector || !vector.ItemType.Equals(item) || vector.Size != size)
                throw new ArgumentException($"Column '{name}' has type {column.Type}; expected a vector of {size} {item} values, one per label.", parameter);
            return column;
        }
    }

    /// <summary>One label's figures in <see cref="MultiLabelMetrics"/>.</summary>
    /// <param name="Name">The label (its key value, or its slot name).</param>
    /// <param name="Support">Rows that truly have it.</param>
    /// <param name="Precision">Of the rows predicted to have it, the share that do (0 when none is predicted).</param>
    /// <param name="Recall">Of the rows that have it, the share predicted (NaN when none has it).</param>
    /// <param name="F1">The harmonic mean of precision and recall (0 when both are 0; NaN when recall is).</param>
    /// <param name="AveragePrecision">The area under its precision–recall curve by the scores, as scikit-learn's <c>average_precision_score</c> (NaN when no row has it).</param>
    public sealed record LabelMetrics(string Name, long Support, double Precision, double Recall, double F1, double AveragePrecision);

    /// <summary>Multi-label classification metrics (<see cref="MultiLabelClassificationCatalog.Evaluate"/>).</summary>
    public sealed class MultiLabelMetrics
    {
        private MultiLabelMetrics()
        {
        }

        /// <summary>Each label's figures, in key order.</summary>
        public IReadOnlyList<LabelMetrics> PerLabel { get; private init; } = Array.Empty<LabelMetrics>();

        /// <summary>Precision over every (row, label) decision: all true positives over all predicted positives.</summary>
        public double MicroPrecision { get; private init; }

        /// <summary>Recall over every (row, label) decision: all true positives over all true labels.</summary>
        public double MicroRecall { get; private init; }

        /// <summary>The harmonic mean of <see cref="MicroPrecision"/> and <see cref="MicroRecall"/>.</summary>
        public double MicroF1 { get; private init; }

        /// <summary>The mean precision over the labels that some row has.</summary>
        public double MacroPrecision { get; private init; }

        /// <summary>The mean recall over the labels that some row has.</summary>
        public double MacroRecall { get; private init; }

        /// <summary>The mean F1 over the labels that some row has.</summary>
        public double MacroF1 { get; private init; }

        /// <summary>The mean average precision over the labels that some row has (threshold-free: it ranks rows by score).</summary>
        public double MeanAveragePrecision { get; private init; }

        /// <summary>The share of rows whose predicted label set is exactly the true one.</summary>
        public double SubsetAccuracy { get; private init; }

        /// <summary>The share of (row, label) decisions that are wrong.</summary>
        public double HammingLoss { get; private init; }

        /// <summary>The rows evaluated.</summary>
        public long Rows { get; private init; }

        internal static MultiLabelMetrics From(IReadOnlyList<string> names, IReadOnlyList<bool[]> truth, IReadOnlyList<float[]> scores, IReadOnlyList<bool[]> predicted)
        {
            int labels = names.Count, rows = truth.Count;
            var perLabel = new List<LabelMetrics>();
            long allTrue = 0, allPredicted = 0, allHits = 0, wrong = 0, exact = 0;
            for (int r = 0; r < rows; r++)
            {
                bool same = true;
                for (int k = 0; k < labels; k++) if (truth[r][k] != predicted[r][k]) { wrong++; same = false; }
                if (same) exact++;
            }

            for (int k = 0; k < labels; k++)
            {
                long support = 0, predictedCount = 0, hits = 0;
                for (int r = 0; r < rows; r++)
                {
                    if (truth[r][k]) support++;
                    if (predicted[r][k]) predictedCount++;
                    if (truth[r][k] && predicted[r][k]) hits++;
                }

                allTrue += support;
                allPredicted += predictedCount;
                allHits += hits;
                double precision = predictedCount == 0 ? 0 : (double)hits / predictedCount;
                double recall = support == 0 ? double.NaN : (double)hits / support;
                perLabel.Add(new LabelMetrics(names[k], support, precision, recall, F1(precision, recall), AveragePrecision(truth, scores, k)));
            }

            double microPrecision = allPredicted == 0 ? 0 : (double)allHits / allPredicted;
            double microRecall = allTrue == 0 ? double.NaN : (double)allHits / allTrue;
            var present = perLabel.Where(l => l.Support > 0).ToList();
            double Mean(Func<LabelMetrics, double> of) => present.Count == 0 ? double.NaN : present.Average(of);
            return new MultiLabelMetrics
            {
                PerLabel = perLabel, MicroPrecision = microPrecision, MicroRecall = microRecall, MicroF1 = F1(microPrecision, microRecall),
                MacroPrecision = Mean(l => l.Precision), MacroRecall = Mean(l => l.Recall), MacroF1 = Mean(l => l.F1),
                MeanAveragePrecision = Mean(l => l.AveragePrecision), SubsetAccuracy = (double)exact / rows,
                HammingLoss = (double)wrong / ((long)rows * Math.Max(1, labels)), Rows = rows,
            };
        }

        private static double F1(double precision, double recall) =>
            double.IsNaN(recall) ? double.NaN : precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);

        // Σₙ (Rₙ − Rₙ₋₁)·Pₙ over the distinct scores from the highest down (rows with equal scores enter together).
        internal static double AveragePrecision(IReadOnlyList<bool[]> truth, IReadOnlyList<float[]> scores, int label)
        {
            var rows = Enumerable.Range(0, truth.Count).Select(r => (Score: scores[r][label], Positive: truth[r][label])).OrderByDescending(r => r.Score).ToArray();
            long positives = rows.Count(r => r.Positive);
            if (positives == 0) return double.NaN;
            double sum = 0, previousRecall = 0;
            long hits = 0;
            for (int i = 0; i < rows.Length; i++)
            {
                if (rows[i].Positive) hits++;
                if (i + 1 < rows.Length && rows[i + 1].Score == rows[i].Score) continue;
                double recall = (double)hits / positives;
                sum += (recall - previousRecall) * hits / (i + 1);
                previousRecall = recall;
            }

            return sum;
        }
    }
}
