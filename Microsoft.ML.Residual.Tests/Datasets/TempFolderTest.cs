using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Datasets;

/// <summary>A test class whose tests each get a fresh temporary folder, deleted afterwards.</summary>
public abstract class TempFolderTest
{
    /// <summary>This test's folder.</summary>
    protected string Root { get; set; } = string.Empty;

    private string created = string.Empty;

    [TestInitialize]
    public void CreateFolder() => Root = created = Directory.CreateTempSubdirectory("residualml-datasets-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(created, recursive: true);
}
