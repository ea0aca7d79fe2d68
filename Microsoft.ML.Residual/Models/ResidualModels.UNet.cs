using System.Collections.Generic;

namespace Microsoft.ML.Residual.Models
{
    public static partial class ResidualModels
    {
        private static void RegisterUNets(List<Entry> registry)
        {
        }
    }
}
