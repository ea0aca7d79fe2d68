using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>The kind of a one-stage detector: how its anchors are laid out, how its boxes are coded and what it outputs per anchor.</summary>
    public enum DetectorKind
    {
        /// <summary>RetinaNet (Lin et al. 2017): 9 anchors per location, box deltas coded as torchvision's <c>BoxCoder</c>, K class logits + 4 box deltas per anchor.</summary>
        RetinaNet,

        /// <summary>FCOS (Tian et al. 2019): one anchor point per location, left/top/right/bottom distances, K class logits + 4 distances + 1 centerness logit per anchor.</summary>
        Fcos,
    }

    /// <summary>
    /// A one-stage detector over a feature pyramid: it maps <c>N × C × H × W</c> images to <c>N × A × (K + 4)</c> (RetinaNet) or
    /// <c>N × A × (K + 5)</c> (FCOS) head outputs, A anchors in torchvision's order: pyramid level by level (finest first), within a
    /// level row by row, then the anchors of one location. Per anchor: the K class logits, the 4 box regressions (before decoding),
    /// and for FCOS the centerness logit.
    /// </summary>
    public interface IDetectionModel
    {
        /// <summary>RetinaNet or FCOS.</summary>
        DetectorKind Kind { get; }

        /// <summary>K: object classes (no background class).</summary>
        int NumClasses { get; }

        /// <summary>Anchors per feature-map location (9 for RetinaNet, 1 for FCOS).</summary>
        int AnchorsPerLocation { get; }

        /// <summary>The feature-map size (height, width) of every pyramid level for an input of <paramref name="height"/> × <paramref name="width"/>, finest first.</summary>
        IReadOnlyList<(int Height, int Width)> LevelSizes(int height, int width);

        /// <summary>State-dict prefix of the heads (<c>"head."</c>), trained from scratch when fine-tuning.</summary>
        string HeadPrefix { get; }

        /// <summary>State-dict prefix of the backbone's own weights (<c>"backbone.body."</c>), where a classifier's pretrained weights load.</summary>
        string BackbonePrefix { get; }
    }
}
