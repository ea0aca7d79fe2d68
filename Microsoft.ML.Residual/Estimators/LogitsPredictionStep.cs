using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Interop;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// Turns a column of class logits into ML.NET's multiclass outputs with ML.NET's own, persisted components: a
    /// multiclass prediction transformer over a maximum-entropy model whose weights are the identity and whose bias is
    /// zero. Its <c>Score</c> is then exactly softmax(logits), with the class names as slot names, and its
    /// <c>PredictedLabel</c> is the arg-max as a key with the label's key values — the columns every ML.NET multiclass
    /// trainer produces, so <c>Evaluate</c>, <c>CrossValidate</c>, <c>MapKeyToValue</c> and <c>PredictionEngine</c> see an
    /// ordinary classifier, and a saved model needs nothing but Microsoft.ML to load this step.
    /// </summary>
    /// <remarks>
    /// ML.NET offers no public way to build a model from given weights; the two internal constructors it takes are in
    /// <see cref="MlNetInternals"/>. The saved model contains nothing of ours: it is an ordinary <c>MulticlassPredictionTransformer</c>.
    /// </remarks>
    internal static class LogitsPredictionStep
    {
        /// <summary>Builds the step for a data view whose <paramref name="logitsColumn"/> holds K logits per row.</summary>
        /// <param name="environment">The environment of the MLContext.</param>
        /// <param name="ml">The MLContext (to build the schema the transformer records).</param>
        /// <param name="logitsType">The logits column's type: a float vector of K values.</param>
        /// <param name="logitsColumn">The logits column.</param>
        /// <param name="classNames">The K class names, in key order.</param>
        /// <param name="scoreColumn">The probabilities column to create.</param>
        /// <param name="predictedLabelColumn">The key column to create.</param>
        public static ITransformer Create(
            IHostEnvironment environment, MLContext ml, DataViewType logitsType, string logitsColumn, IReadOnlyList<string> classNames,
            string scoreColumn, string predictedLabelColumn)
        {
            int classes = classNames.Count;
            if (logitsType is not VectorDataViewType { ItemType: NumberDataViewType n, Size: var size } || n != NumberDataViewType.Single || size != classes)
                throw new InvalidOperationException($"The logits column '{logitsColumn}' has type {logitsType}; expected {classes} float values.");

            string labelColumn = ImageInput.Prefix + "Class";
            IDataView schemaData = SchemaData(ml, logitsType, logitsColumn, labelColumn, classNames);
            var weights = new VBuffer<float>[classes];
            for (int k = 0; k < classes; k++)
            {
                var row = new float[classes];
                row[k] = 1f;
                weights[k] = new VBuffer<float>(classes, row);
            }

            MaximumEntropyModelParameters model = MlNetInternals.NewMaximumEntropyModel(environment, weights, new float[classes], classes, classNames.ToArray());
            return MlNetInternals.NewMulticlassPredictionTransformer(environment, model, schemaData.Schema, logitsColumn, labelColumn, scoreColumn, predictedLabelColumn);
        }

        // A data view with the logits column and a key label column whose key values are the class names: the
        // transformer records this schema and takes the Score slot names and the PredictedLabel key values from it.
        private static IDataView SchemaData(MLContext ml, DataViewType logitsType, string logitsColumn, string labelColumn, IReadOnlyList<string> classNames)
        {
            var definition = SchemaDefinition.Create(typeof(SchemaRow));
            definition[nameof(SchemaRow.Logits)].ColumnType = logitsType;
            definition[nameof(SchemaRow.Logits)].ColumnName = logitsColumn;
            definition[nameof(SchemaRow.Class)].ColumnName = labelColumn;
            var rows = classNames.Select(name => new SchemaRow { Logits = new float[classNames.Count], Class = name });
            IDataView data = ml.Data.LoadFromEnumerable(rows, definition);
            IDataView keyData = ml.Data.LoadFromEnumerable(classNames.Select(name => new KeyValueRow { Value = name }));
            return ml.Transforms.Conversion.MapValueToKey(labelColumn, keyData: keyData).Fit(data).Transform(data);
        }

        private sealed class SchemaRow
        {
            public float[] Logits { get; set; } = Array.Empty<float>();

            public string Class { get; set; } = string.Empty;
        }

        private sealed class KeyValueRow
        {
            public string Value { get; set; } = string.Empty;
        }
    }
}
