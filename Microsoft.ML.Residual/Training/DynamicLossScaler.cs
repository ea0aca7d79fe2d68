using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Dynamic loss scaling for float16 training, with the rules of PyTorch's <c>GradScaler</c>: the loss is multiplied by
    /// <see cref="Scale"/> before the backward pass so that small gradients do not vanish in float16; the gradients are divided
    /// by it again before the optimiser sees them. A step whose gradients hold an infinity or NaN is skipped and the scale
    /// multiplied by <see cref="BackoffFactor"/>; after <see cref="GrowthInterval"/> steps in a row without one, the scale is
    /// multiplied by <see cref="GrowthFactor"/>.
    /// </summary>
    internal sealed class DynamicLossScaler
    {
        /// <summary>Creates a scaler starting at <paramref name="initialScale"/>.</summary>
        public DynamicLossScaler(double initialScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5, int growthInterval = 2000)
        {
            if (!(initialScale > 0) || !double.IsFinite(initialScale)) throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, "must be positive and finite");
            if (!(growthFactor > 1)) throw new ArgumentOutOfRangeException(nameof(growthFactor), growthFactor, "must be above 1");
            if (!(backoffFactor > 0 && backoffFactor < 1)) throw new ArgumentOutOfRangeException(nameof(backoffFactor), backoffFactor, "must be in (0, 1)");
            if (growthInterval < 1) throw new ArgumentOutOfRangeException(nameof(growthInterval), growthInterval, "must be positive");
            Scale = initialScale;
            GrowthFactor = growthFactor;
            BackoffFactor = backoffFactor;
            GrowthInterval = growthInterval;
        }

        /// <summary>The factor the loss is multiplied by now.</summary>
        public double Scale { get; private set; }

        /// <summary>What the scale is multiplied by after <see cref="GrowthInterval"/> steps without overflow.</summary>
        public double GrowthFactor { get; }

        /// <summary>What the scale is multiplied by after an overflow.</summary>
        public double BackoffFactor { get; }

        /// <summary>Steps in a row without overflow before the scale grows.</summary>
        public int GrowthInterval { get; }

        /// <summary>Steps skipped so far because their gradients overflowed.</summary>
        public long SkippedSteps { get; private set; }

        private int goodSteps;

        /// <summary><paramref name="loss"/> times <see cref="Scale"/>, to call <c>backward</c> on.</summary>
        public Tensor Scaled(Tensor loss) => loss.Times(Scale);

        /// <summary>
        /// Divides the gradients of <paramref name="parameters"/> by <see cref="Scale"/> and updates the scale; true when they
        /// are all finite and the optimiser may step, false when the step must be skipped. This reads one value on the host.
        /// </summary>
        public bool UnscaleAndUpdate(IEnumerable<Tensor> parameters)
        {
            bool finite;
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                Tensor[] gradients = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToArray();
                if (gradients.Length == 0) return true;
                double inverse = 1.0 / Scale;
                foreach (Tensor gradient in gradients) gradient.TimesInPlace(inverse);
                // An infinity or NaN anywhere makes its tensor's largest magnitude non-finite.
                Tensor largest = stack(gradients.Select(g => g.abs().max().to_type(ScalarType.Float32)).ToArray());
                finite = largest.isfinite().all().item<bool>();
            }

            Update(finite);
            return finite;
        }

        /// <summary>What a checkpoint keeps: the scale and the steps since the last overflow or growth.</summary>
        public (double Scale, int GoodSteps) State => (Scale, goodSteps);

        /// <summary>Continues from a checkpoint's <see cref="State"/>.</summary>
        public void Restore((double Scale, int GoodSteps) state)
        {
            if (!(state.Scale > 0) || !double.IsFinite(state.Scale) || state.GoodSteps < 0)
                throw new ArgumentOutOfRangeException(nameof(state), state, "a positive finite scale and a non-negative step count");
            Scale = state.Scale;
            goodSteps = state.GoodSteps;
        }

        /// <summary>Updates the scale after a step whose gradients were <paramref name="finite"/> or not.</summary>
        internal void Update(bool finite)
        {
            if (!finite)
            {
                SkippedSteps++;
                goodSteps = 0;
                Scale *= BackoffFactor;
                return;
            }

            if (++goodSteps < GrowthInterval) return;
            goodSteps = 0;
            double grown = Scale * GrowthFactor;
            if (double.IsFinite(grown) && grown <= float.MaxValue) Scale = grown;
        }
    }
}
