using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.IO;
using Microsoft.ML.Residual.Tests.Sweeps;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.IO;

[TestClass]
public sealed class ScoringModelFilesTests
{
    public TestContext TestContext { get; set; } = null!;

    // Regular files of model size only: the temporary folder can hold FIFOs, which block a reader.
    // Other processes' files in the temporary folder can disappear between the listing and the size: they are not ours.
    private static bool LargerThan(FileInfo file, long bytes)
    {
        try
        {
            return file.Length > bytes;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string[] OnnxFilesIn(string folder) =>
        new DirectoryInfo(folder).GetFiles().Where(f => LargerThan(f, 1000) && (f.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0)
            .Select(f => f.FullName).Where(file =>
        {
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                var head = new byte[24];
                int read = stream.Read(head, 0, head.Length);
                return System.Text.Encoding.ASCII.GetString(head, 0, read).Contains("ResidualML");
            }
            catch (IOException)
            {
                return false;
            }
        }).ToArray();

    [TestMethod]
    public void AFit_KeepsItsScoringModelFileInThisProcessesFolder_NotLooseInTheTemporaryFolder()
    {
        var (ml, train, _) = ImageSweepExperimentTests.Data(trainRows: 32, validationRows: 4);
        string[] looseBefore = OnnxFilesIn(Path.GetTempPath());
        string[] keptBefore = OnnxFilesIn(ScoringModelFiles.Folder);
        ImageClassifierOptions options = ImageSweepExperimentTests.Tiny();
        options.Epochs = 1;
        ITransformer model = ml.Transforms.ResNetClassifier(options).Fit(train);

        string[] appeared = OnnxFilesIn(Path.GetTempPath()).Except(looseBefore).ToArray();
        Assert.AreEqual(Path.Combine(Path.GetTempPath(), ScoringModelFiles.Prefix + System.Environment.ProcessId), ScoringModelFiles.Folder);
        Assert.IsTrue(OnnxFilesIn(ScoringModelFiles.Folder).Length > 0);

        // ML.NET reads the file back by name to save the model.
        using var saved = new MemoryStream();
        ml.Model.Save(model, train.Schema, saved);
        Assert.IsTrue(saved.Length > 100_000);

        // Other tests' files may disappear meanwhile (ML.NET deletes them when their transformers are finalised), and other
        // processes on the machine may write theirs: what must not appear is this fit's model, which the saved zip holds.
        byte[][] entries;
        saved.Position = 0;
        using (var zip = new System.IO.Compression.ZipArchive(saved, System.IO.Compression.ZipArchiveMode.Read, leaveOpen: true))
            entries = zip.Entries.Select(e =>
            {
                using var content = new MemoryStream();
                using (Stream stream = e.Open()) stream.CopyTo(content);
                return content.ToArray();
            }).ToArray();
        bool IsThisFitsModel(string file)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (IOException)
            {
                return false; // deleted meanwhile
            }

            return entries.Any(entry => entry.AsSpan().IndexOf(bytes) >= 0);
        }

        Assert.IsTrue(OnnxFilesIn(ScoringModelFiles.Folder).Except(keptBefore).Any(IsThisFitsModel), "the fit's model file is in this process's folder, as the zip holds it");
        string[] ours = appeared.Where(IsThisFitsModel).ToArray();
        Assert.AreEqual(0, ours.Length, "this fit's model file left in the temporary folder itself: " + string.Join(", ", ours));
    }

    [TestMethod]
    public void FoldersOfEndedProcesses_AreRemoved_RunningProcessesAndOtherNamesAreKept()
    {
        string root = Path.Combine(TestRunFiles.Folder, "scoring-files-" + Path.GetRandomFileName());
        using (Process ended = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!)
        {
            ended.WaitForExit();
            Directory.CreateDirectory(Path.Combine(root, ScoringModelFiles.Prefix + ended.Id));
            File.WriteAllText(Path.Combine(root, ScoringModelFiles.Prefix + ended.Id, "model.onnx"), "left by a crash");
        }

        string running = Path.Combine(root, ScoringModelFiles.Prefix + System.Environment.ProcessId);
        string other = Path.Combine(root, ScoringModelFiles.Prefix + "notes");
        Directory.CreateDirectory(running);
        Directory.CreateDirectory(other);
        try
        {
            ScoringModelFiles.RemoveFoldersOfEndedProcesses(root);

            CollectionAssert.AreEquivalent(new[] { running, other }, Directory.GetDirectories(root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
