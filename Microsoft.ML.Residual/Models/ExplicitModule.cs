using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// Base of the library's modules: children are registered explicitly under their state-dict names
    /// (torchvision's), never by C# field name. TorchSharp's <c>register_module</c> calls
    /// <c>RegisterComponents()</c> on every child it adds, which by default registers each module-typed field
    /// under the field's name; for a module nested in another (a ResNet as a U-Net encoder) that would add
    /// duplicate keys such as <c>encoder.finalNorm.weight</c> next to <c>encoder.norm.weight</c>.
    /// </summary>
    public abstract class ExplicitModule : nn.Module<Tensor, Tensor>
    {
        /// <summary>Creates the module.</summary>
        protected ExplicitModule(string name) : base(name)
        {
        }

        /// <summary>Does nothing: every child is registered explicitly by the constructor.</summary>
        protected sealed override void RegisterComponents()
        {
        }
    }
}
