using System;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Residual.Sweeps
{
    /// <summary>Creates sweep experiments (<c>mlContext.ResidualSweep()</c>): one per task.</summary>
    public sealed class ResidualSweepCatalog
    {
        private readonly MLContext ml;

        internal ResidualSweepCatalog(MLContext ml)
        {
            this.ml = ml;
        }

        /// <summary>A sweep of image classifiers (<see cref="ImageClassifierEstimator"/>), ranked by a multiclass metric.</summary>
        /// <param name="labelColumnName">The label: a key column (use <c>MapValueToKey</c>, fitted once for training and validation data).</param>
        /// <param name="imageColumnName">An <c>MLImage</c> column, or pixels as a float vector C×H×W of 0–255.</param>
        /// <param name="imageWidth">Width the networks see.</param>
        /// <param name="imageHeight">Height the networks see.</param>
        public ImageSweepExperiment ImageClassification(string labelColumnName = "Label", string imageColumnName = "Image", int imageWidth = 224, int imageHeight = 224) =>
            ImageClassification(new ImageClassifierOptions
            {
                LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, ImageWidth = imageWidth, ImageHeight = imageHeight,
            });

        /// <summary>
        /// A sweep of image classifiers starting from <paramref name="baseOptions"/>: every trial trains a copy of them with the
        /// search space's values set. The sweep sets <c>Epochs</c>, <c>Seed</c>, the validation data, the checkpoints and the
        /// cancellation itself; a <c>Progress</c> callback still receives every epoch of every trial.
        /// </summary>
        public ImageSweepExperiment ImageClassification(ImageClassifierOptions baseOptions)
        {
            if (baseOptions is null) throw new ArgumentNullException(nameof(baseOptions));
            if (baseOptions.CheckpointDirectory != null)
                throw new ArgumentException("A sweep keeps each trial's checkpoints itself; leave ImageClassifierOptions.CheckpointDirectory null.", nameof(baseOptions));
            return new ImageSweepExperiment(ml, new ClassificationSweepTask((IHostEnvironment)ml, ml, baseOptions));
        }

        /// <summary>A sweep of U-Net segmenters (<see cref="UNetSegmenterEstimator"/>), ranked by mean IoU unless told otherwise.</summary>
        /// <param name="maskColumnName">The true masks (see <see cref="SegmenterOptions.MaskColumnName"/>).</param>
        /// <param name="imageColumnName">An <c>MLImage</c> column, or pixels as a float vector C×H×W of 0–255.</param>
        /// <param name="numClasses">Classes, background included.</param>
        /// <param name="imageWidth">Width the networks see.</param>
        /// <param name="imageHeight">Height the networks see.</param>
        public ImageSweepExperiment Segmentation(string maskColumnName = "Mask", string imageColumnName = "Image", int numClasses = 2, int imageWidth = 256, int imageHeight = 256) =>
            Segmentation(new SegmenterOptions
            {
                MaskColumnName = maskColumnName, ImageColumnName = imageColumnName, NumClasses = numClasses, ImageWidth = imageWidth, ImageHeight = imageHeight,
            });

        /// <summary>A sweep of U-Net segmenters starting from <paramref name="baseOptions"/> (see <see cref="ImageClassification(ImageClassifierOptions)"/>).</summary>
        public ImageSweepExperiment Segmentation(SegmenterOptions baseOptions)
        {
            if (baseOptions is null) throw new ArgumentNullException(nameof(baseOptions));
            if (baseOptions.CheckpointDirectory != null)
                throw new ArgumentException("A sweep keeps each trial's checkpoints itself; leave SegmenterOptions.CheckpointDirectory null.", nameof(baseOptions));
            return new ImageSweepExperiment(ml, new SegmentationSweepTask((IHostEnvironment)ml, ml, baseOptions));
        }
    }

    /// <summary>The entry point of the sweeps package on <see cref="MLContext"/>.</summary>
    public static class ResidualSweepCatalogExtensions
    {
        /// <summary>
        /// Sweeps over architectures and hyperparameters, AutoML-style:
        /// <c>ml.ResidualSweep().ImageClassification(...).SetSearchSpace(...).SetTuner(...).Run(train, validation)</c>.
        /// </summary>
        public static ResidualSweepCatalog ResidualSweep(this MLContext mlContext) =>
            new(mlContext ?? throw new ArgumentNullException(nameof(mlContext)));
    }
}
