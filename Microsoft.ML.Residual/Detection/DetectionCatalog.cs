using System;

namespace Microsoft.ML.Residual.Detection
{
    /// <summary>
    /// Object detection on an <see cref="MLContext"/>, training and evaluation together: <c>ml.Detection().ObjectDetector(...)</c> trains,
    /// <c>ml.Detection().Evaluate(scored)</c> measures COCO-style mAP.
    /// </summary>
    public sealed class DetectionCatalog
    {
        internal DetectionCatalog(MLContext context) => Context = context;

        internal MLContext Context { get; }

        /// <summary>A detector (the estimator <c>ml.Transforms.ObjectDetector</c> gives): <c>PredictedLabel</c>, <c>Score</c> and <c>PredictedBoundingBoxes</c> per image.</summary>
        public ObjectDetectorEstimator ObjectDetector(ObjectDetectorOptions options) => new(Context, options);

        /// <summary>A detector with the common settings; every other one keeps its <see cref="ObjectDetectorOptions"/> default.</summary>
        /// <param name="labelColumnName">The objects' classes: a vector of keys.</param>
        /// <param name="boxColumnName">The objects' boxes: 4 values (x1, y1, x2, y2 in pixels) per object.</param>
        /// <param name="imageColumnName">An <c>MLImage</c> column, or pixels as a float vector C×H×W of 0–255.</param>
        /// <param name="architecture">A registered detector, e.g. retinanet_resnet50_fpn or fcos_resnet50_fpn.</param>
        /// <param name="epochs">Passes over the training data.</param>
        /// <param name="imageWidth">Width the network sees (images are resized to it).</param>
        /// <param name="imageHeight">Height the network sees.</param>
        /// <param name="imageWidthColumnName">Each original image's width (needed for images of different sizes; the dataset loaders write <c>Width</c>).</param>
        /// <param name="imageHeightColumnName">Each original image's height (<c>Height</c>).</param>
        public ObjectDetectorEstimator ObjectDetector(string labelColumnName = "Labels", string boxColumnName = "Boxes", string imageColumnName = "Image",
            string architecture = "retinanet_resnet50_fpn", int epochs = 10, int imageWidth = 512, int imageHeight = 512,
            string? imageWidthColumnName = null, string? imageHeightColumnName = null) =>
            ObjectDetector(new ObjectDetectorOptions
            {
                LabelColumnName = labelColumnName, BoxColumnName = boxColumnName, ImageColumnName = imageColumnName, Architecture = architecture,
                Epochs = epochs, ImageWidth = imageWidth, ImageHeight = imageHeight,
                ImageWidthColumnName = imageWidthColumnName, ImageHeightColumnName = imageHeightColumnName,
            });

        /// <summary>
        /// COCO-style metrics of scored data (mAP over IoU 0.5–0.95, mAP at 0.5 and 0.75, AP per class): the true objects in
        /// <paramref name="labelColumnName"/> and <paramref name="boxColumnName"/>, the detections in the three scoring columns.
        /// </summary>
        public DetectionMetrics Evaluate(IDataView data, string labelColumnName = "Labels", string boxColumnName = "Boxes", string predictedLabelColumnName = "PredictedLabel",
            string scoreColumnName = "Score", string predictedBoundingBoxColumnName = "PredictedBoundingBoxes") =>
            DetectionEvaluator.Evaluate(data ?? throw new ArgumentNullException(nameof(data)), labelColumnName, boxColumnName, predictedLabelColumnName, scoreColumnName, predictedBoundingBoxColumnName);
    }
}
