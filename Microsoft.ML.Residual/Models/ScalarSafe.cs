using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Tensor arithmetic that keeps every <see cref="Scalar"/> alive until libtorch has read it. TorchSharp 0.107's
    /// operators and number overloads (<c>a + b</c> passes a temporary alpha of 1, <c>x * 0.5</c>, <c>x.ge(0)</c>,
    /// <c>x.clamp_min(1)</c> a temporary Scalar) hand only the Scalar's handle to native code and leave the object to the
    /// finalizer, which can free it during the call under garbage-collection pressure (seen as libtorch's "Expected false
    /// to be true … toFloat"). These helpers use one Scalar that lives as long as the process, or dispose theirs after the
    /// call. Hot paths (forward passes, losses, the training step) use them.
    /// </summary>
    internal static class ScalarSafe
    {
        private static readonly Scalar One = 1.ToScalar();

        // Runs the operation, then frees the Scalar: it stays reachable for the whole native call.
        private static Tensor With(Scalar scalar, System.Func<Scalar, Tensor> operation)
        {
            using (scalar) return operation(scalar);
        }

        /// <summary>a + b.</summary>
        public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

        /// <summary>a ← (1 − w)·a + w·b, in place on <paramref name="a"/> (a step of an exponential moving average).</summary>
        public static Tensor MoveTowardsInPlace(this Tensor a, Tensor b, double weight) =>
            With((1 - weight).ToScalar(), kept => With(weight.ToScalar(), w => a.mul_(kept).add_(b, w)));

        /// <summary>a += b, in place on <paramref name="a"/>.</summary>
        public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

        /// <summary>a + value.</summary>
        public static Tensor Plus(this Tensor a, double value) => With(value.ToScalar(), s => a.add(s, One));

        /// <summary>a · factor.</summary>
        public static Tensor Times(this Tensor a, double factor) => With(factor.ToScalar(), s => a.mul(s));

        /// <summary>a / divisor.</summary>
        public static Tensor DividedBy(this Tensor a, double divisor) => With(divisor.ToScalar(), s => a.div(s));

        /// <summary>a · factor, keeping an integer tensor's type.</summary>
        public static Tensor Times(this Tensor a, long factor) => With(factor.ToScalar(), s => a.mul(s));

        /// <summary>value − a.</summary>
        public static Tensor SubtractedFrom(this Tensor a, double value) => a.Times(-1.0).Plus(value);

        /// <summary>a^exponent, element-wise.</summary>
        public static Tensor Power(this Tensor a, double exponent) => With(exponent.ToScalar(), s => a.pow(s));

        /// <summary>max(a, minimum), element-wise.</summary>
        public static Tensor AtLeast(this Tensor a, double minimum) => With(minimum.ToScalar(), s => a.clamp_min(s));

        /// <summary>min(a, maximum), element-wise.</summary>
        public static Tensor AtMost(this Tensor a, double maximum) => With(maximum.ToScalar(), s => a.clamp_max(s));

        /// <summary>
        /// min(max(a, minimum), maximum), element-wise; in place on <paramref name="a"/> when <paramref name="inPlace"/>. (Not
        /// TorchSharp 0.107's <c>Tensor.hardtanh(min, max)</c>: it returned its input unclipped here.)
        /// </summary>
        public static Tensor Clamp(this Tensor a, double minimum, double maximum, bool inPlace = false)
        {
            using Scalar low = minimum.ToScalar(), high = maximum.ToScalar();
            return inPlace ? a.clamp_(low, high) : a.clamp(low, high);
        }

        /// <summary>max(a, minimum), element-wise, keeping an integer tensor's type.</summary>
        public static Tensor AtLeast(this Tensor a, long minimum) => With(minimum.ToScalar(), s => a.clamp_min(s));

        /// <summary>Sets every element of <paramref name="a"/> to <paramref name="value"/>, in place.</summary>
        public static Tensor Fill(this Tensor a, double value) => With(value.ToScalar(), s => a.fill_(s));

        /// <summary>Adds one to <paramref name="counter"/> in place (an integer counter such as BatchNorm's <c>num_batches_tracked</c>).</summary>
        public static Tensor Increment(this Tensor counter) => counter.add_(One, One);

        /// <summary>0, 1, …, count − 1 as <paramref name="type"/>: what <c>torch.arange(count)</c> gives, without the temporary Scalars it makes.</summary>
        public static Tensor Range(long count, ScalarType type = ScalarType.Int64)
        {
            using Tensor indices = torch.tensor(Enumerable.Range(0, checked((int)count)).Select(i => (long)i).ToArray());
            return indices.to_type(type, copy: true);
        }

        /// <summary>a ≥ value, element-wise (a boolean tensor).</summary>
        public static Tensor NotBelow(this Tensor a, long value) => With(value.ToScalar(), s => a.ge(s));

        /// <summary>a + alpha·b (a new tensor).</summary>
        public static Tensor PlusScaled(this Tensor a, Tensor b, double alpha) => With(alpha.ToScalar(), s => a.add(b, s));

        /// <summary>a += alpha·b, in place on <paramref name="a"/>.</summary>
        public static Tensor PlusScaledInPlace(this Tensor a, Tensor b, double alpha) => With(alpha.ToScalar(), s => a.add_(b, s));

        /// <summary>a += value, in place on <paramref name="a"/>.</summary>
        public static Tensor PlusInPlace(this Tensor a, double value) => With(value.ToScalar(), s => a.add_(s, One));

        /// <summary>a *= factor, in place on <paramref name="a"/>.</summary>
        public static Tensor TimesInPlace(this Tensor a, double factor) => With(factor.ToScalar(), s => a.mul_(s));

        /// <summary>a += value·b·c (element-wise), in place on <paramref name="a"/>.</summary>
        public static Tensor PlusProductInPlace(this Tensor a, Tensor b, Tensor c, double value) => With(value.ToScalar(), s => a.addcmul_(b, c, s));

        /// <summary>a += value·b/c (element-wise), in place on <paramref name="a"/>.</summary>
        public static Tensor PlusQuotientInPlace(this Tensor a, Tensor b, Tensor c, double value) => With(value.ToScalar(), s => a.addcdiv_(b, c, s));
    }
}
