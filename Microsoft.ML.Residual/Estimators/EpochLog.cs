using System;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Residual.Estimators
{
    // Per-epoch messages through MLContext.Log, and the user's callback.
    internal sealed class EpochLog : IProgress<EpochReport>
    {
        private readonly IChannel channel;
        private readonly IProgress<EpochReport>? user;

        private readonly bool lossOnly;

        /// <param name="channel">ML.NET's log.</param>
        /// <param name="user">The user's progress, or null.</param>
        /// <param name="lossOnly">The task measures no accuracy (a detector): the line gives the losses alone.</param>
        public EpochLog(IChannel channel, IProgress<EpochReport>? user, bool lossOnly = false)
        {
            this.channel = channel;
            this.user = user;
            this.lossOnly = lossOnly;
        }

        public void Report(EpochReport r)
        {
            channel.Info(MessageSensitivity.None,
                $"epoch {r.Epoch}/{r.Epochs}: loss {r.TrainingLoss:F4}" + (lossOnly ? string.Empty : $", accuracy {r.TrainingAccuracy:P1}")
                + (r.ValidationAccuracy is double v ? $", validation loss {r.ValidationLoss:F4}, accuracy {v:P1}"
                    : lossOnly && r.ValidationLoss is double loss ? $", validation loss {loss:F4}" : string.Empty)
                + (r.ValidationMeanIoU is double iou ? $", mean IoU {iou:F3}" : string.Empty)
                + (r.ValidationMacroRecall is double recall ? $", macro recall {recall:P1}" : string.Empty)
                + $", learning rate {r.LearningRate:G3}, {r.ImagesPerSecond:F0} images/s"
                + (r.GpuMemoryMegabytes is double memory ? $", GPU memory {memory:F0} MB" : string.Empty)
                + $", ETA {r.EstimatedRemaining:hh\\:mm\\:ss}");
            user?.Report(r);
        }
    }
}
