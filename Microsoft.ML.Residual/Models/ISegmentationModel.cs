namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// A network that maps <c>N × C × H × W</c> images to <c>N × NumClasses × H × W</c> per-pixel logits at the
    /// input resolution, for any H and W.
    /// </summary>
    public interface ISegmentationModel
    {
        /// <summary>Output channels: one logit per class and pixel.</summary>
        int NumClasses { get; }

        /// <summary>State-dict prefix of the last layer (<c>"segmentation_head."</c>); skip it to fine-tune with another class count.</summary>
        string HeadPrefix { get; }

        /// <summary>
        /// The network computes on sides that are multiples of this number: other inputs are padded up to the next
        /// multiple and the output is cropped back. Inputs that already are multiples run without padding.
        /// </summary>
        int SizeMultiple { get; }
    }
}
