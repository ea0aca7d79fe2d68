using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;

namespace Microsoft.ML.Residual.Benchmarks
{
    /// <summary>
    /// The `toolkit` mode (issue 26): what class balancing, the moving average of the weights and gradient accumulation do to a
    /// classifier trained with the defaults, on a generated dataset of the recipes benchmark, per seed. Imbalance: the first class
    /// keeps one training image in <c>ratio</c> (1:20 by default), the test set stays balanced, and the table gives the test macro
    /// recall (the mean of the per-class recalls, balanced accuracy) and the rare class's recall.
    /// </summary>
    internal static class ToolkitMeasurements
    {
        public static List<string> Run(bool quick, string datasetName, int seeds, int ratio)
        {
            RecipeDatasets.Dataset dataset = (datasetName == SmallTextures.Name ? SmallTextures : null)
                ?? RecipeDatasets.All(quick, Array.Empty<string>()).FirstOrDefault(d => d.Name == datasetName)
                ?? throw new ArgumentException($"--dataset {datasetName}: not {SmallTextures.Name} or a generated dataset of the recipes benchmark.");
            var dataContext = new MLContext(seed: 1);
            var (trainRows, testRows) = dataset.Load(dataContext);
            ITransformer keys = dataContext.Transforms.Conversion.MapValueToKey("Label").Fit(trainRows);
            IDataView balanced = keys.Transform(trainRows), test = keys.Transform(testRows);
            // The rare class: key 1 (the first label seen). Every ratio-th of its rows is kept.
            var kept = new List<RecipeDatasets.Row>();
            int seen = 0;
            string rareLabel = dataContext.Data.CreateEnumerable<RecipeDatasets.Row>(trainRows, reuseRowObject: false).First().Label;
            foreach (RecipeDatasets.Row row in dataContext.Data.CreateEnumerable<RecipeDatasets.Row>(trainRows, reuseRowObject: false))
                if (row.Label != rareLabel || seen++ % ratio == 0) kept.Add(row);
            SchemaDefinition schema = SchemaDefinition.Create(typeof(RecipeDatasets.Row));
            schema[nameof(RecipeDatasets.Row.Image)].ColumnType = trainRows.Schema[nameof(RecipeDatasets.Row.Image)].Type;
            IDataView imbalanced = keys.Transform(dataContext.Data.LoadFromEnumerable(kept, schema));
            int rareCount = kept.Count(r => r.Label == rareLabel);

            var rows = new List<string>
            {
                $"| {dataset.Name} ({dataset.Architecture}, {dataset.Epochs} epochs, defaults otherwise) | training images | test macro recall, per seed | mean | rare class's test recall, per seed |",
                "|---|---|---|---|---|",
            };
            var variants = new (string Name, IDataView Train, Action<ImageClassifierOptions> Set)[]
            {
                ($"1:{ratio}, plain", imbalanced, _ => { }),
                ($"1:{ratio}, ClassBalance = Weights", imbalanced, o => o.ClassBalance = ClassBalance.Weights),
                ($"1:{ratio}, ClassBalance = Sampling", imbalanced, o => o.ClassBalance = ClassBalance.Sampling),
                ($"1:{ratio}, Loss = Focal", imbalanced, o => o.Loss = ClassificationLoss.Focal),
                ("balanced, plain", balanced, _ => { }),
                ("balanced, ModelEmaDecay = 0.99", balanced, o => o.ModelEmaDecay = 0.99),
                ("balanced, BatchSize 8, GradientAccumulationSteps = 4", balanced, o => { o.BatchSize = 8; o.GradientAccumulationSteps = 4; }),
            };
            foreach (var (name, train, set) in variants)
            {
                var macro = new List<double>();
                var rare = new List<double>();
                var seconds = new List<double>();
                for (int seed = 1; seed <= seeds; seed++)
                {
                    var ml = new MLContext(seed: seed);
                    var options = new ImageClassifierOptions
                    {
                        ImageColumnName = nameof(RecipeDatasets.Row.Image), ImageWidth = dataset.Size, ImageHeight = dataset.Size,
                        Architecture = dataset.Architecture, Epochs = dataset.Epochs, Seed = seed,
                    };
                    set(options);
                    var clock = Stopwatch.StartNew();
                    ITransformer model = ml.Transforms.ResNetClassifier(options).Fit(train);
                    seconds.Add(clock.Elapsed.TotalSeconds);
                    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
                    macro.Add(metrics.MacroAccuracy);
                    rare.Add(RecallOfKey1(ml, model.Transform(test)));
                    Console.WriteLine($"  {name}, seed {seed}: macro recall {metrics.MacroAccuracy:P1}, rare class {rare[^1]:P1}, {seconds[^1]:F0} s");
                }

                string Figures(List<double> values) => string.Join(" / ", values.Select(v => v.ToString("P1", CultureInfo.InvariantCulture)));
                long trainCount = train == imbalanced ? kept.Count : trainRows.GetRowCount() ?? 0;
                rows.Add($"| {name} | {trainCount}{(train == imbalanced ? $" ({rareCount} of the rare class)" : string.Empty)} | {Figures(macro)} | {macro.Average():P1} | {Figures(rare)} |");
            }

            return rows;
        }

        /// <summary>
        /// Four noisy RGB textures at 16² (horizontal and vertical stripes, checks, diagonals; random period, phase and colours),
        /// 2,000 training and 400 test images, ResNet-20 for 6 epochs: a dataset the defaults learn completely when balanced, so
        /// that what imbalance costs shows.
        /// </summary>
        private static readonly RecipeDatasets.Dataset SmallTextures = new("textures4-16", 16, 3, 4, "resnet20", 6, ml =>
        {
            SchemaDefinition schema = SchemaDefinition.Create(typeof(RecipeDatasets.Row));
            schema[nameof(RecipeDatasets.Row.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3, 16, 16);
            return (ml.Data.LoadFromEnumerable(TextureRows(2000, seed: 1), schema), ml.Data.LoadFromEnumerable(TextureRows(400, seed: 2), schema));
        }, "four textures at 16², 2,000 training and 400 test images");

        private static List<RecipeDatasets.Row> TextureRows(int count, int seed)
        {
            var random = new Random(seed);
            var rows = new List<RecipeDatasets.Row>();
            for (int n = 0; n < count; n++)
            {
                int kind = n % 4, period = random.Next(2, 4), phase = random.Next(period);
                float[] on = { random.Next(256), random.Next(256), random.Next(256) }, off = { random.Next(256), random.Next(256), random.Next(256) };
                var pixels = new float[3 * 16 * 16];
                for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                {
                    bool lit = kind switch
                    {
                        0 => (y + phase) / period % 2 == 0,
                        1 => (x + phase) / period % 2 == 0,
                        2 => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                        _ => (x + y + phase) / period % 2 == 0,
                    };
                    for (int c = 0; c < 3; c++) pixels[(c * 16 + y) * 16 + x] = Math.Clamp((lit ? on[c] : off[c]) + random.Next(-12, 13), 0, 255);
                }

                rows.Add(new RecipeDatasets.Row { Image = pixels, Label = QuadrantKinds[kind] });
            }

            return rows;
        }

        /// <summary>
        /// Multi-label: 32² images of four quadrants, each holding one of four textures (horizontal or vertical stripes, checks,
        /// diagonals; random colours, noise) with probability ½ or flat noise otherwise; an image's labels are the textures it shows.
        /// ResNet-20 with the defaults, the single threshold ½ against thresholds tuned per label on a validation fifth.
        /// </summary>
        public static List<string> RunMultiLabel(int seeds, int trainCount, int testCount, int epochs)
        {
            var rows = new List<string>
            {
                $"| multi-label quadrant textures, 32², resnet20, {epochs} epochs, {trainCount} training images ({trainCount / 5} of them validating), {testCount} test | test mAP, per seed | micro F1 | macro F1 | exact label sets |",
                "|---|---|---|---|---|",
            };
            foreach (bool tune in new[] { false, true })
            {
                var map = new List<double>();
                var micro = new List<double>();
                var macro = new List<double>();
                var exact = new List<double>();
                for (int seed = 1; seed <= seeds; seed++)
                {
                    var ml = new MLContext(seed: seed);
                    IDataView train = ml.Data.LoadFromEnumerable(QuadrantRows(trainCount, seed: 10 + seed)), test = ml.Data.LoadFromEnumerable(QuadrantRows(testCount, seed: 100));
                    ITransformer keys = ml.Transforms.Text.TokenizeIntoWords("Labels", "Tags", separators: new[] { ';' })
                        .Append(ml.Transforms.Conversion.MapValueToKey("Labels")).Fit(train);
                    var options = new MultiLabelClassifierOptions
                    {
                        ImageColumnName = "Image", ImageWidth = 32, ImageHeight = 32, Architecture = "resnet20", Epochs = epochs, Seed = seed,
                        ValidationFraction = 0.2, TuneThresholds = tune,
                    };
                    ITransformer model = keys.Append(ml.MultiLabelClassification().ImageClassifier(options).Fit(keys.Transform(train)));
                    MultiLabelMetrics metrics = ml.MultiLabelClassification().Evaluate(model.Transform(test));
                    map.Add(metrics.MeanAveragePrecision);
                    micro.Add(metrics.MicroF1);
                    macro.Add(metrics.MacroF1);
                    exact.Add(metrics.SubsetAccuracy);
                    Console.WriteLine($"  multi-label, thresholds {(tune ? "tuned" : "0.5")}, seed {seed}: mAP {metrics.MeanAveragePrecision:P1}, micro F1 {metrics.MicroF1:P1}, macro F1 {metrics.MacroF1:P1}, exact {metrics.SubsetAccuracy:P1}");
                }

                string Figures(List<double> values) => string.Join(" / ", values.Select(v => v.ToString("P1", CultureInfo.InvariantCulture)));
                rows.Add($"| thresholds {(tune ? "tuned per label (TuneThresholds)" : "0.5 (default)")} | {Figures(map)} | {Figures(micro)} | {Figures(macro)} | {Figures(exact)} |");
            }

            return rows;
        }

        private sealed class QuadrantRow
        {
            [VectorType(3 * 32 * 32)]
            public float[] Image { get; set; } = Array.Empty<float>();

            public string Tags { get; set; } = string.Empty;
        }

        private static readonly string[] QuadrantKinds = { "horizontal", "vertical", "checker", "diagonal" };

        private static List<QuadrantRow> QuadrantRows(int count, int seed)
        {
            var random = new Random(seed);
            var rows = new List<QuadrantRow>();
            for (int n = 0; n < count; n++)
            {
                var pixels = new float[3 * 32 * 32];
                var tags = new SortedSet<string>(StringComparer.Ordinal);
                for (int quadrant = 0; quadrant < 4; quadrant++)
                {
                    int kind = random.NextDouble() < 0.5 ? random.Next(4) : -1;
                    if (kind >= 0) tags.Add(QuadrantKinds[kind]);
                    int period = random.Next(2, 4), phase = random.Next(period);
                    float[] on = { random.Next(256), random.Next(256), random.Next(256) }, off = { random.Next(256), random.Next(256), random.Next(256) };
                    int top = quadrant / 2 * 16, left = quadrant % 2 * 16;
                    for (int y = top; y < top + 16; y++)
                    for (int x = left; x < left + 16; x++)
                    {
                        bool lit = kind switch
                        {
                            0 => (y + phase) / period % 2 == 0,
                            1 => (x + phase) / period % 2 == 0,
                            2 => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                            3 => (x + y + phase) / period % 2 == 0,
                            _ => false,
                        };
                        for (int c = 0; c < 3; c++)
                            pixels[(c * 32 + y) * 32 + x] = Math.Clamp((lit ? on[c] : off[c]) + random.Next(-16, 17), 0, 255);
                    }
                }

                rows.Add(new QuadrantRow { Image = pixels, Tags = string.Join(";", tags) });
            }

            return rows;
        }

        // The share of test rows of class key 1 predicted as it.
        private static double RecallOfKey1(MLContext ml, IDataView scored)
        {
            uint[] truth = scored.GetColumn<uint>("Label").ToArray();
            uint[] predicted = scored.GetColumn<uint>("PredictedLabel").ToArray();
            int total = truth.Count(t => t == 1);
            return total == 0 ? double.NaN : (double)truth.Where((t, i) => t == 1 && predicted[i] == 1).Count() / total;
        }
    }
}
