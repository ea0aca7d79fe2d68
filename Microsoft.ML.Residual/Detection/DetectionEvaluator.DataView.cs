using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;

namespace Microsoft.ML.Residual.Detection
{
    public static partial class DetectionEvaluator
    {
        /// <summary>
        /// Evaluates scored data in the layout of ML.NET's object detector (Microsoft.ML.TorchSharp): per row, the ground
        /// truth as a variable-length key vector of labels and a float vector of 4 numbers (x1, y1, x2, y2) per box, and the
        /// detections as a key vector of predicted labels, a float vector of scores and a float vector of boxes. The number of
        /// classes and their names come from the ground-truth label column's key type and key values.
        /// </summary>
        /// <param name="scored">The scored data, one row per image.</param>
        /// <param name="labelColumnName">The ground-truth labels: a vector of keys.</param>
        /// <param name="boxColumnName">The ground-truth boxes: a float vector, 4 numbers per label.</param>
        /// <param name="predictedLabelColumnName">The detections' labels: a vector of keys.</param>
        /// <param name="scoreColumnName">The detections' scores: a float vector, one per predicted label.</param>
        /// <param name="predictedBoxColumnName">The detections' boxes: a float vector, 4 numbers per predicted label.</param>
        /// <param name="maxDetections">The detections kept per image and class, highest scores first (COCO: 100).</param>
        /// <exception cref="ArgumentException">A column is missing or of the wrong type, or a row's vectors do not agree (the message names the column and the row).</exception>
        public static DetectionMetrics Evaluate(IDataView scored, string labelColumnName = "Labels", string boxColumnName = "Boxes", string predictedLabelColumnName = "PredictedLabel",
            string scoreColumnName = "Score", string predictedBoxColumnName = "PredictedBoundingBoxes", int maxDetections = 100)
        {
            if (scored is null) throw new ArgumentNullException(nameof(scored));
            DataViewSchema schema = scored.Schema;
            DataViewSchema.Column labels = KeyVectorColumn(schema, labelColumnName, "ground-truth label");
            DataViewSchema.Column boxes = FloatVectorColumn(schema, boxColumnName, "ground-truth box");
            DataViewSchema.Column predicted = KeyVectorColumn(schema, predictedLabelColumnName, "predicted label");
            DataViewSchema.Column scores = FloatVectorColumn(schema, scoreColumnName, "score");
            DataViewSchema.Column predictedBoxes = FloatVectorColumn(schema, predictedBoxColumnName, "predicted box");
            LabelKeyInfo info = LabelKeyInfo.FromMultiLabelSchema(schema, labelColumnName);
            int classes = info.ClassCount;

            var truths = new List<IReadOnlyList<DetectionBox>>();
            var detections = new List<IReadOnlyList<ScoredBox>>();
            using (DataViewRowCursor cursor = scored.GetRowCursor(new[] { labels, boxes, predicted, scores, predictedBoxes }))
            {
                var getLabels = cursor.GetGetter<VBuffer<uint>>(labels);
                var getBoxes = cursor.GetGetter<VBuffer<float>>(boxes);
                var getPredicted = cursor.GetGetter<VBuffer<uint>>(predicted);
                var getScores = cursor.GetGetter<VBuffer<float>>(scores);
                var getPredictedBoxes = cursor.GetGetter<VBuffer<float>>(predictedBoxes);
                VBuffer<uint> labelValues = default, predictedValues = default;
                VBuffer<float> boxValues = default, scoreValues = default, predictedBoxValues = default;
                for (long row = 0; cursor.MoveNext(); row++)
                {
                    getLabels(ref labelValues);
                    getBoxes(ref boxValues);
                    getPredicted(ref predictedValues);
                    getScores(ref scoreValues);
                    getPredictedBoxes(ref predictedBoxValues);
                    uint[] truthKeys = Keys(labelValues, labelColumnName, row, classes);
                    float[] truthBoxes = Boxes(boxValues, boxColumnName, row, truthKeys.Length, labelColumnName);
                    uint[] detectionKeys = Keys(predictedValues, predictedLabelColumnName, row, classes);
                    float[] detectionScores = scoreValues.DenseValues().ToArray();
                    if (detectionScores.Length != detectionKeys.Length)
                        throw new ArgumentException($"Column '{scoreColumnName}', row {row}: {detectionScores.Length} scores for {detectionKeys.Length} predicted labels in '{predictedLabelColumnName}'; give one score per detection.", nameof(scored));
                    float[] detectionBoxes = Boxes(predictedBoxValues, predictedBoxColumnName, row, detectionKeys.Length, predictedLabelColumnName);

                    var truth = new DetectionBox[truthKeys.Length];
                    for (int i = 0; i < truth.Length; i++)
                        truth[i] = new DetectionBox((int)truthKeys[i] - 1, truthBoxes[4 * i], truthBoxes[4 * i + 1], truthBoxes[4 * i + 2], truthBoxes[4 * i + 3]);
                    var found = new ScoredBox[detectionKeys.Length];
                    for (int i = 0; i < found.Length; i++)
                        found[i] = new ScoredBox((int)detectionKeys[i] - 1, detectionScores[i], detectionBoxes[4 * i], detectionBoxes[4 * i + 1], detectionBoxes[4 * i + 2], detectionBoxes[4 * i + 3]);
                    truths.Add(truth);
                    detections.Add(found);
                }
            }

            return Evaluate(truths, detections, classes, info.ClassNames, maxDetections);
        }

        private static DataViewSchema.Column KeyVectorColumn(DataViewSchema schema, string name, string role)
        {
            DataViewSchema.Column column = SchemaChecks.Find(schema, name, role);
            if (column.Type is not VectorDataViewType { ItemType: KeyDataViewType key } || key.RawType != typeof(uint) || key.Count is 0 or > int.MaxValue)
                throw new ArgumentException($"The {role} column '{name}' has type {column.Type}; it must be a vector of UInt32 keys (one per box, e.g. MapValueToKey over the label names).");
            return column;
        }

        private static DataViewSchema.Column FloatVectorColumn(DataViewSchema schema, string name, string role)
        {
            DataViewSchema.Column column = SchemaChecks.Find(schema, name, role);
            if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType number } || number.RawType != typeof(float))
                throw new ArgumentException($"The {role} column '{name}' has type {column.Type}; it must be a vector of Single.");
            return column;
        }

        private static uint[] Keys(VBuffer<uint> values, string column, long row, int classes)
        {
            uint[] keys = values.DenseValues().ToArray();
            for (int i = 0; i < keys.Length; i++)
                if (keys[i] == 0 || keys[i] > classes)
                    throw new ArgumentException($"Column '{column}', row {row}: label {i} is {(keys[i] == 0 ? "missing (key 0)" : $"key {keys[i]}, above the {classes} classes")}; every box needs a class.");
            return keys;
        }

        private static float[] Boxes(VBuffer<float> values, string column, long row, int count, string labelColumn)
        {
            float[] boxes = values.DenseValues().ToArray();
            if (boxes.Length % 4 != 0)
                throw new ArgumentException($"Column '{column}', row {row}: {boxes.Length} numbers, not a multiple of 4; give x1, y1, x2, y2 for each box.");
            if (boxes.Length != 4 * count)
                throw new ArgumentException($"Column '{column}', row {row}: {boxes.Length / 4} boxes for {count} labels in '{labelColumn}'; give one box (4 numbers) per label.");
            for (int i = 0; i < count; i++)
                CheckBox(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], $"Column '{column}', row {row}, box {i}", "scored");
            return boxes;
        }

    }
}
