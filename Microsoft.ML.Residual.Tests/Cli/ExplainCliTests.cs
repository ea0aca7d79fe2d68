using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Interpretation;
using Microsoft.ML.Residual.Tests.Interpretation;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using ResidualML.Cli.Commands;

namespace Microsoft.ML.Residual.Tests.Cli;

/// <summary>residualml explain on a model the tool trained once for the class: the files it writes, and its errors.</summary>
[TestClass]
public sealed class ExplainCliTests
{
    private static string root = string.Empty;
    private static string dataset = string.Empty;
    private static string model = string.Empty;
    private static CliRun training = null!;

    private string scratch = string.Empty;

    [ClassInitialize]
    public static void TrainOnce(TestContext _)
    {
        root = Directory.CreateTempSubdirectory("residualml-explain-").FullName;
        dataset = Path.Combine(root, "textures");
        CliImages.WriteClassFolders(dataset, perClass: 8, seed: 1);
        training = CliRun.Of(root, "train", "--dataset", "textures", "--arch", "resnet20", "--epochs", "2", "--image-size", "16",
            "--batch-size", "12", "--learning-rate", "0.05", "--output", "run");
        model = Path.Combine(root, "run", "model.zip");
    }

    [ClassCleanup]
    public static void DeleteFiles()
    {
        if (root.Length > 0) Directory.Delete(root, recursive: true);
    }

    [TestInitialize]
    public void CreateScratch() => scratch = Directory.CreateTempSubdirectory("residualml-explain-test-").FullName;

    [TestCleanup]
    public void DeleteScratch() => Directory.Delete(scratch, recursive: true);

    [TestMethod]
    public void Explain_OnALabelledFolder_WritesAnOverlayPerImageTheCsvAndTheGridTopLossesAndMostConfusedPages()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        CliRun run = CliRun.Of(scratch, "explain", "--model", model, "--dataset", dataset, "--top-losses", "6", "--output", "why");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        Assert.AreEqual(string.Empty, run.Errors);
        string output = Path.Combine(scratch, "why");

        string[] overlays = Directory.GetFiles(Path.Combine(output, "overlays"));
        Assert.AreEqual(24, overlays.Length, "one overlay per image");
        Assert.IsTrue(File.Exists(Path.Combine(output, "overlays", "vertical-000.png")), "named by the image's path below the folder");
        var (width, height) = CliImages.PngSize(overlays[0]);
        Assert.IsTrue(width > 2 * 256 && height > 256, $"the image and its overlay side by side: {width}x{height}");

        string[] lines = File.ReadAllLines(Path.Combine(output, "explanations.csv"));
        Assert.AreEqual("image,explained,predicted,probability,peak_x,peak_y", lines[0]);
        Assert.AreEqual(25, lines.Length);
        int wrong = 0;
        foreach (string line in lines.Skip(1))
        {
            string[] fields = line.Split(',');
            Assert.AreEqual(fields[2], fields[1], $"{line}: without --class the predicted class is explained");
            Assert.IsTrue(int.Parse(fields[4]) is >= 0 and < CliImages.Size && int.Parse(fields[5]) is >= 0 and < CliImages.Size, line);
            if (Path.GetFileName(Path.GetDirectoryName(fields[0])) != fields[2]) wrong++;
        }

        foreach (string page in new[] { "explanations.png", "top-losses.png" })
        {
            var png = Plots.PngImage.Read(Path.Combine(output, page));
            Assert.IsGreaterThan(30, png.CountDark(0, 0, png.Width, 40), $"{page}: its title is drawn");
        }

        Assert.AreEqual(wrong > 0, File.Exists(Path.Combine(output, "most-confused.png")), $"a most-confused page when some image is wrong ({wrong} are)");
        StringAssert.Contains(run.Output, $"{24 - wrong} of 24 images classified correctly");
    }

    [TestMethod]
    public void Explain_OneImageForAGivenClass_WritesItsOverlayAndExplainsThatClass()
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string image = Path.Combine(dataset, "horizontal", "003.png");
        CliRun run = CliRun.Of(scratch, "explain", "--model", model, "--images", image, "--class", "vertical", "--method", "gradcam++");
        Assert.AreEqual(0, run.ExitCode, run.ToString());
        Assert.IsTrue(CliImages.IsPng(Path.Combine(scratch, "overlays", "003.png")));
        string[] lines = File.ReadAllLines(Path.Combine(scratch, "explanations.csv"));
        Assert.AreEqual(2, lines.Length);
        StringAssert.StartsWith(lines[1], image + ",vertical,");
        Assert.IsFalse(File.Exists(Path.Combine(scratch, "top-losses.png")), "no labels, no top losses");
    }

    [TestMethod]
    [DataRow(new[] { "--class", "diagonal" }, "--class diagonal: the model has no such class; its classes are checked, horizontal, vertical.")]
    [DataRow(new string[0], "explain needs one of --images (images to explain) or --dataset")]
    [DataRow(new[] { "--method", "lime" }, "--method must be one of gradcam, gradcam++; got 'lime'.")]
    public void Explain_CalledWrongly_IsOneLineAndExitCode2(string[] extra, string expected)
    {
        Assert.AreEqual(0, training.ExitCode, training.ToString());
        string[] images = extra.Length == 0 ? Array.Empty<string>() : new[] { "--images", Path.Combine(dataset, "vertical", "000.png") };
        CliRun run = CliRun.Of(scratch, new[] { "explain", "--model", model }.Concat(images).Concat(extra).ToArray());
        Assert.AreEqual(2, run.ExitCode, run.ToString());
        StringAssert.Contains(run.Errors, expected);
        Assert.AreEqual(1, run.Errors.Trim().Split('\n').Length, run.Errors);
    }

    [TestMethod]
    public void ChunkByChunk_TheKeptMapsGiveThePagesThatAllMapsAtOnceGive()
    {
        // 200 images of 3 classes with seeded random scores, seen 64 at a time as the command sees them.
        var random = new Random(4);
        var all = Enumerable.Range(0, 200).Select(_ =>
        {
            float[] scores = { random.NextSingle(), random.NextSingle(), random.NextSingle() };
            float sum = scores.Sum();
            return (Map: ClassificationInterpretationTests.Map(scores.Select(p => p / sum).ToArray()), Actual: random.Next(3));
        }).ToList();
        var kept = new List<(ClassActivationMap Map, int Actual)>();
        for (int start = 0; start < all.Count; start += 64) kept = ExplainCommand.Kept(kept.Concat(all.Skip(start).Take(64)).ToList(), topLosses: 10);

        var maps = all.Select(a => a.Map).ToList();
        var actual = all.Select(a => a.Actual).ToList();
        var keptMaps = kept.Select(k => k.Map).ToList();
        var keptActual = kept.Select(k => k.Actual).ToList();
        CollectionAssert.AreEqual(ClassificationInterpretation.TopLosses(maps, actual, 10).ToArray(), ClassificationInterpretation.TopLosses(keptMaps, keptActual, 10).ToArray());
        Assert.IsTrue(keptMaps.Count < 10 + 6 * 4 + 1, $"at most the top losses and 4 mistakes per confused pair are kept: {keptMaps.Count}");
        foreach (ConfusedPair pair in ClassificationInterpretation.MostConfused(maps, actual))
        {
            ClassActivationMap[] Examples(IReadOnlyList<ClassActivationMap> m, IReadOnlyList<int> a) => Enumerable.Range(0, m.Count)
                .Where(i => a[i] == pair.Actual && m[i].PredictedIndex == pair.Predicted)
                .OrderByDescending(i => m[i].Scores[pair.Predicted]).Take(4).Select(i => m[i]).ToArray();
            CollectionAssert.AreEquivalent(Examples(maps, actual), Examples(keptMaps, keptActual), $"{pair}: the page's examples");
        }
    }

    [TestMethod]
    public void Explain_WithAFileThatIsNotAModel_IsAOneLineErrorNamingIt()
    {
        string notModel = Path.Combine(scratch, "model.zip");
        File.WriteAllText(notModel, "not a model");
        CliRun run = CliRun.Of(scratch, "explain", "--model", notModel, "--images", Path.Combine(dataset, "vertical", "000.png"));
        Assert.AreEqual(1, run.ExitCode, run.ToString());
        StringAssert.StartsWith(run.Errors, $"residualml: error: --model {notModel}: the file cannot be read as a saved model");
        Assert.AreEqual(1, run.Errors.Trim().Split('\n').Length, run.Errors);
    }
}
