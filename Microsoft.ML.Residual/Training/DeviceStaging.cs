using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Moves batches to the training device one batch ahead: the copy of the next batch is issued (asynchronously from
    /// page-locked memory) before the current one is handed out, so the host never waits for a copy and the device has
    /// the next batch queued when it finishes a step.
    /// </summary>
    internal static class DeviceStaging
    {
        /// <summary>
        /// The batches of <paramref name="batches"/> on <paramref name="device"/>, each copied while its predecessor is in use;
        /// on the CPU, the batches as they are. The caller owns (and disposes) each batch handed out; the host batches and a
        /// staged batch never handed out (the caller stopped early) are disposed here.
        /// </summary>
        public static IEnumerable<(Tensor Images, Tensor Labels)> OneAhead(IEnumerable<(Tensor Images, Tensor Labels)> batches, Device device)
        {
            if (device.type == DeviceType.CPU)
            {
                foreach (var batch in batches) yield return batch;
                yield break;
            }

            (Tensor Images, Tensor Labels)? staged = null;
            try
            {
                foreach (var (images, labels) in batches)
                {
                    (Tensor Images, Tensor Labels) next;
                    using (images)
                    using (labels)
                    {
                        // A page-locked source stays allocated until its copy has run, even once disposed (libtorch's host allocator).
                        Tensor deviceImages = images.to(device, non_blocking: true);
                        try
                        {
                            next = (deviceImages, labels.to(device, non_blocking: true));
                        }
                        catch
                        {
                            deviceImages.Dispose();
                            throw;
                        }
                    }

                    if (staged is { } ready)
                    {
                        staged = next;
                        yield return ready;
                    }
                    else
                    {
                        staged = next;
                    }
                }

                if (staged is { } last)
                {
                    staged = null;
                    yield return last;
                }
            }
            finally
            {
                if (staged is { } left)
                {
                    left.Images.Dispose();
                    left.Labels.Dispose();
                }
            }
        }
    }
}
