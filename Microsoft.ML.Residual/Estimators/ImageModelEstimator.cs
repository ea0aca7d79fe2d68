using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Residual.Estimators
{
    /// <summary>
    /// The one <c>Fit</c> of every image estimator: the pixel pipeline for an MLImage column, the task's ONNX graph (trained
    /// by the trainers, built from weights by the featurizer), and ML.NET's scoring chain — [ResizeImages → ExtractPixels] →
    /// OnnxTransformer → the task's columns — scored on <c>MLContext.GpuDeviceId</c> when ONNX Runtime has CUDA. A task
    /// supplies its graph, the graph's outputs and the columns it makes of them.
    /// </summary>
    public abstract class ImageModelEstimator : IEstimator<ITransformer>
    {
        private protected ImageModelEstimator(IHostEnvironment environment, int? seed)
        {
            Environment = environment ?? throw new ArgumentNullException(nameof(environment));
            Ml = ImageInput.TransformContext(seed);
        }

        private protected IHostEnvironment Environment { get; }

        /// <summary>The context the estimator builds ML.NET's transforms with (see <see cref="ImageInput.TransformContext"/>).</summary>
        private protected MLContext Ml { get; }

        /// <summary>The image column: MLImage or a float pixel vector.</summary>
        private protected abstract string ImageColumnName { get; }

        /// <summary>The width the network sees.</summary>
        private protected abstract int ImageWidth { get; }

        /// <summary>The height the network sees.</summary>
        private protected abstract int ImageHeight { get; }

        /// <summary>The graph's output columns; those not in <see cref="KeptOutputs"/> are dropped after <see cref="AddScoringColumns"/>.</summary>
        private protected abstract string[] GraphOutputs { get; }

        /// <summary>The graph's outputs that stay in the scored data as they are.</summary>
        private protected virtual string[] KeptOutputs => Array.Empty<string>();

        /// <summary>How an MLImage column is resized to the network's size (ML.NET's default, a centred crop; a detector fills the size, keeping every box).</summary>
        private protected virtual Microsoft.ML.Transforms.Image.ImageResizingEstimator.ResizingKind Resizing => Microsoft.ML.Transforms.Image.ImageResizingEstimator.ResizingKind.IsoCrop;

        /// <summary>The graph's inputs besides the pixels, each with the ML.NET transform that makes its column from the input (a detector's image size); temporary.</summary>
        private protected virtual (string Column, IEstimator<ITransformer> Estimator)[] ExtraGraphInputs(FitState state) => Array.Empty<(string, IEstimator<ITransformer>)>();

        /// <summary>
        /// Shapes ML.NET is told for graph outputs (null: the graph's own). A detector's outputs have as many values as it finds: a shape
        /// of { 0 } makes them variable-length vectors.
        /// </summary>
        private protected virtual System.Collections.Generic.IDictionary<string, int[]>? OutputShapes => null;

        /// <summary>What the log calls a fit ("Training", "Featurizing").</summary>
        private protected abstract string Activity { get; }

        /// <inheritdoc />
        public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);

        /// <inheritdoc />
        public ITransformer Fit(IDataView input)
        {
            if (input is null) throw new ArgumentNullException(nameof(input));
            EstimatorRuntime.EnsureOnnxRuntime();
            CheckBeforeFit(input);
            (ITransformer? pixelTransform, string pixelColumn) = ImageInput.PixelPipeline(Ml, input, ImageColumnName, ImageWidth, ImageHeight, Resizing);
            using IChannel channel = Environment.Register(GetType().Name).Start(Activity);
            (byte[] onnx, FitState state) = CreateGraph(input, pixelColumn, channel);
            onnx = Scoring.Apply(onnx, Scoring.CalibrationSet ?? input, pixelTransform, pixelColumn);
            (int? gpu, bool fallbackToCpu) = EstimatorRuntime.ScoringDevice(Environment, channel);
            var chain = new ChainBuilder(input).Add(pixelTransform);
            (string Column, IEstimator<ITransformer> Estimator)[] extraInputs = ExtraGraphInputs(state);
            foreach (var (_, estimator) in extraInputs) chain.Fit(estimator);
            string[] graphInputs = extraInputs.Select(e => e.Column).Prepend(pixelColumn).ToArray();
            chain.Fit(Ml.Transforms.ApplyOnnxModel(GraphOutputs, graphInputs, new MemoryStream(onnx), OutputShapes, gpu, fallbackToCpu));
            AddScoringColumns(chain, state);
            string[] temporary = GraphOutputs.Except(KeptOutputs).Concat(extraInputs.Select(e => e.Column))
                .Concat(pixelTransform != null ? new[] { pixelColumn } : Array.Empty<string>()).ToArray();
            return chain.Fit(Ml.Transforms.DropColumns(temporary)).Build();
        }

        /// <summary>What a task learns of one input while fitting it (e.g. the class names); a task with nothing to keep uses this one.</summary>
        private protected class FitState
        {
        }

        /// <summary>How the task's float32 graph becomes the saved scoring graph (BatchNorm folding, precision).</summary>
        private protected virtual ScoringOptions Scoring { get; } = new();

        /// <summary>Checks what the task can check before any data is read or transformed (options, task columns).</summary>
        private protected virtual void CheckBeforeFit(IDataView input)
        {
        }

        /// <summary>The task's ONNX graph, reading pixels (0–255, C×H×W) from <paramref name="pixelColumn"/>, and what the fit learnt.</summary>
        private protected abstract (byte[] Onnx, FitState State) CreateGraph(IDataView input, string pixelColumn, IChannel channel);

        /// <summary>Adds the task's scoring columns after the ONNX model (key mapping, masks, features).</summary>
        private protected abstract void AddScoringColumns(ChainBuilder chain, FitState state);
    }
}
