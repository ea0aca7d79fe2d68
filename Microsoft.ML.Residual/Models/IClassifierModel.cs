using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>A network that ends in pooled features followed by a linear classifier.</summary>
    public interface IClassifierModel
    {
        /// <summary>State-dict prefix of the classifier head (e.g. <c>"fc."</c>); skip it to fine-tune with another class count.</summary>
        string ClassifierPrefix { get; }

        /// <summary>Length of the pooled feature vector the classifier reads.</summary>
        long FeatureDimension { get; }

        /// <summary>The pooled features (batch × <see cref="FeatureDimension"/>), before dropout and classifier.</summary>
        Tensor ForwardFeatures(Tensor input);
    }
}
