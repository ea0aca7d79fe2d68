using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Datasets;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Datasets;

[TestClass]
public sealed class ImageFolderTests : TempFolderTest
{
    private string Touch(string relative)
    {
        string path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, new byte[] { 1 });
        return path;
    }

    private static List<(string Path, string Label)> Rows(IDataView data, string pathColumn = "ImagePath", string labelColumn = "Label")
    {
        var rows = new List<(string, string)>();
        using var cursor = data.GetRowCursor(data.Schema);
        var path = cursor.GetGetter<ReadOnlyMemory<char>>(data.Schema[pathColumn]);
        var label = cursor.GetGetter<ReadOnlyMemory<char>>(data.Schema[labelColumn]);
        ReadOnlyMemory<char> p = default, l = default;
        while (cursor.MoveNext())
        {
            path(ref p);
            label(ref l);
            rows.Add((p.ToString(), l.ToString()));
        }

        return rows;
    }

    [TestMethod]
    public void LoadImageFolder_ListsClassSubFoldersSortedWithFullPaths()
    {
        Touch("dog/b.jpg");
        Touch("cat/2.PNG");
        Touch("cat/1.png");
        Touch("cat/nested/3.jpeg");
        Touch("cat/notes.txt");
        Touch("cat/.hidden.png");
        Touch(".cache/x.png");
        Touch("readme.png");

        var rows = Rows(new MLContext().Data.LoadImageFolder(Root));

        CollectionAssert.AreEqual(
            new[] { ("cat/1.png", "cat"), ("cat/2.PNG", "cat"), ("cat/nested/3.jpeg", "cat"), ("dog/b.jpg", "dog") },
            rows.Select(r => (Path.GetRelativePath(Root, r.Path).Replace('\\', '/'), r.Label)).ToArray());
        Assert.IsTrue(rows.All(r => Path.IsPathFullyQualified(r.Path) && File.Exists(r.Path)));
    }

    [TestMethod]
    public void LoadImageFolder_OptionsRenameColumnsAndStopRecursion()
    {
        Touch("cat/1.png");
        Touch("cat/nested/2.png");
        var options = new ImageFolderOptions { PathColumnName = "File", LabelColumnName = "Class", Recursive = false };

        IDataView data = new MLContext().Data.LoadImageFolder(Root, options);

        Assert.IsInstanceOfType<TextDataViewType>(data.Schema["File"].Type);
        var rows = Rows(data, "File", "Class");
        Assert.AreEqual(1, rows.Count);
        Assert.AreEqual("cat", rows[0].Label);
    }

    [TestMethod]
    public void LoadImageFolder_LoadsImagesThroughMLNet()
    {
        string path = Path.Combine(Root, "red", "r.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Microsoft.ML.Residual.Tests.Data.DataTestSupport.WriteRgbPng(path, new float[3 * 4 * 5], height: 4, width: 5);
        var ml = new MLContext();

        IDataView images = ml.Transforms.LoadImages("Image", null, "ImagePath").Fit(ml.Data.LoadImageFolder(Root)).Transform(ml.Data.LoadImageFolder(Root));

        using var cursor = images.GetRowCursor(images.Schema);
        var getter = cursor.GetGetter<MLImage>(images.Schema["Image"]);
        Assert.IsTrue(cursor.MoveNext());
        MLImage image = null!;
        getter(ref image);
        Assert.AreEqual(5, image.Width);
        Assert.AreEqual(4, image.Height);
    }

    [TestMethod]
    public void LoadImageFolder_BadFolders_NameTheFolderAndTheExpectedLayout()
    {
        var data = new MLContext().Data;
        string missing = Path.Combine(Root, "nope");
        var notFound = Assert.ThrowsExactly<DirectoryNotFoundException>(() => data.LoadImageFolder(missing));
        StringAssert.Contains(notFound.Message, missing);

        Touch("loose.png");
        var flat = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadImageFolder(Root));
        StringAssert.Contains(flat.Message, "no class sub-folders");

        File.Delete(Path.Combine(Root, "loose.png"));
        Touch("cat/readme.txt");
        var empty = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadImageFolder(Root));
        StringAssert.Contains(empty.Message, Root);
        StringAssert.Contains(empty.Message, ".png");
    }

    [TestMethod]
    public void StratifiedSplit_PutsTheFractionOfEveryClassInTheTestSet()
    {
        for (int i = 0; i < 10; i++) Touch($"a/{i:D2}.png");
        for (int i = 0; i < 3; i++) Touch($"b/{i}.png");
        Touch("c/only.png");
        var listing = ImageFolder.List(Root);

        var (train, test) = ImageFolder.StratifiedSplit(listing, 0.2, seed: 5);

        Assert.AreEqual(2, test.Count(r => r.Label == "a"));
        Assert.AreEqual(1, test.Count(r => r.Label == "b"), "round(0.6) = 1");
        Assert.AreEqual(0, test.Count(r => r.Label == "c"), "a class's only image stays in training");
        Assert.AreEqual(listing.Count, train.Count + test.Count);
        Assert.AreEqual(0, train.Select(r => r.ImagePath).Intersect(test.Select(r => r.ImagePath)).Count());
        CollectionAssert.AreEqual(test.Select(r => r.ImagePath).ToArray(), ImageFolder.StratifiedSplit(listing, 0.2, seed: 5).Test.Select(r => r.ImagePath).ToArray(), "same seed, same split");
        var other = Enumerable.Range(0, 20).Select(s => string.Join("|", ImageFolder.StratifiedSplit(listing, 0.2, s).Test.Select(r => r.ImagePath))).Distinct().Count();
        Assert.IsTrue(other > 1, "the seed changes which images are held out");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ImageFolder.StratifiedSplit(listing, 1.0, 0));
    }

    [TestMethod]
    public void LoadImageFolderSplit_GivesTwoDataViewsCoveringEveryClass()
    {
        for (int i = 0; i < 5; i++)
        {
            Touch($"x/{i}.png");
            Touch($"y/{i}.png");
        }

        var (train, test) = new MLContext().Data.LoadImageFolderSplit(Root, testFraction: 0.4, seed: 1);

        var trainRows = Rows(train);
        var testRows = Rows(test);
        Assert.AreEqual(6, trainRows.Count);
        Assert.AreEqual(4, testRows.Count);
        CollectionAssert.AreEquivalent(new[] { "x", "y" }, testRows.Select(r => r.Label).Distinct().ToArray());
    }

    [TestMethod]
    public void LoadImageList_ResolvesRelativePathsAndSkipsTheHeader()
    {
        string a = Touch("imgs/a 1.png");
        string b = Touch("other/b.jpg");
        string csv = Path.Combine(Root, "list.csv");
        File.WriteAllLines(csv, new[] { "path,label", "\"imgs/a 1.png\",cat", "", $"{b},\"dog, big\"" });

        var rows = Rows(new MLContext().Data.LoadImageList(csv));

        CollectionAssert.AreEqual(new[] { (a, "cat"), (b, "dog, big") }, rows.ToArray());
    }

    [TestMethod]
    public void LoadImageList_BadLines_NameTheFileAndLine()
    {
        Touch("a.png");
        string csv = Path.Combine(Root, "list.csv");
        var data = new MLContext().Data;

        File.WriteAllLines(csv, new[] { "a.png,cat", "missing.png,dog" });
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => data.LoadImageList(csv));
        StringAssert.Contains(missing.Message, "line 2");
        StringAssert.Contains(missing.Message, "missing.png");

        File.WriteAllLines(csv, new[] { "a.png,cat,extra" });
        var fields = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadImageList(csv));
        StringAssert.Contains(fields.Message, "line 1");

        File.WriteAllLines(csv, new[] { "a.png,cat", "a.png," });
        var empty = Assert.ThrowsExactly<InvalidDataException>(() => data.LoadImageList(csv));
        StringAssert.Contains(empty.Message, "line 2: the label is empty");
        // A multi-label list may have an image without labels.
        Assert.AreEqual("", ImageList.Read(csv, allowEmptyLabels: true)[1].Label);

        File.WriteAllLines(csv, new[] { "path,label" });
        Assert.ThrowsExactly<InvalidDataException>(() => data.LoadImageList(csv));
        Assert.ThrowsExactly<FileNotFoundException>(() => data.LoadImageList(Path.Combine(Root, "none.csv")));
    }
}
