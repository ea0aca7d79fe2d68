using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterDenseNets(List<Entry> registry)
        {
        }
    }
}
