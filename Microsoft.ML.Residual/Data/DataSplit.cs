using System;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>Splitting a data view into training and validation rows.</summary>
    public static class DataSplit
    {
        /// <summary>
        /// Splits <paramref name="data"/> into training and validation views with ML.NET's
        /// <c>ml.Data.TrainTestSplit</c>: each row goes to validation with probability about
        /// <paramref name="validationFraction"/>, decided by a seeded hash, so the split is reproducible for a seed
        /// and the two views never share a row. Rows with the same <paramref name="samplingKeyColumnName"/> value
        /// land on the same side.
        /// </summary>
        /// <param name="mlContext">The ML.NET context.</param>
        /// <param name="data">The rows to split.</param>
        /// <param name="validationFraction">Fraction of the rows for validation, in (0, 1).</param>
        /// <param name="seed">Seed of the split.</param>
        /// <param name="samplingKeyColumnName">Optional column whose equal values stay together (e.g. a subject id).</param>
        public static (IDataView Train, IDataView Validation) TrainValidationSplit(MLContext mlContext, IDataView data,
            double validationFraction, int seed, string? samplingKeyColumnName = null)
        {
            if (mlContext is null) throw new ArgumentNullException(nameof(mlContext));
            if (data is null) throw new ArgumentNullException(nameof(data));
            if (double.IsNaN(validationFraction) || validationFraction <= 0 || validationFraction >= 1)
                throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction,
                    "validationFraction must be strictly between 0 and 1 (e.g. 0.1 for 10 % validation rows).");
            if (samplingKeyColumnName is not null) SchemaChecks.Find(data.Schema, samplingKeyColumnName, "sampling key");
            var split = mlContext.Data.TrainTestSplit(data, validationFraction, samplingKeyColumnName, seed);
            return (split.TrainSet, split.TestSet);
        }
    }
}
