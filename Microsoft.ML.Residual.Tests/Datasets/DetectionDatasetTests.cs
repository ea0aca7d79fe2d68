using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Datasets;
using Microsoft.ML.Residual.Detection;
using Microsoft.ML.Residual.Tests.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using SkiaSharp;

namespace Microsoft.ML.Residual.Tests.Datasets;

[TestClass]
public sealed class DetectionDatasetTests : TempFolderTest
{
    private string WriteImage(string relative, int width, int height, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        string path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, TestImageFiles.Encode(width, height, (x, y) => ((byte)x, (byte)y, 0, 255), format));
        return path;
    }

    private string WriteText(string relative, string text)
    {
        string path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    // ---- DetectionDataset.ToDataView ----

    [TestMethod]
    public void DataViewHasKeyLabelsWithNamesAndFourNumbersPerBoxWithoutCrowds()
    {
        var dataset = new DetectionDataset(new[] { "cat", "dog" }, new[]
        {
            new DetectionExample("/a.png", 40, 30, new[] { new DetectionBox(1, 1, 2, 11, 12), new DetectionBox(0, 5, 5, 9, 9, IsCrowd: true), new DetectionBox(0, 0, 0, 40, 30) }),
            new DetectionExample("/b.png", 20, 10, Array.Empty<DetectionBox>()),
        });
        var ml = new MLContext(seed: 1);

        IDataView view = dataset.ToDataView(ml);

        var labels = view.Schema["Labels"];
        Assert.IsInstanceOfType<VectorDataViewType>(labels.Type);
        var key = (KeyDataViewType)((VectorDataViewType)labels.Type).ItemType;
        Assert.AreEqual(2UL, key.Count);
        Assert.AreEqual(0, ((VectorDataViewType)labels.Type).Size);
        VBuffer<ReadOnlyMemory<char>> names = default;
        labels.GetKeyValues(ref names);
        CollectionAssert.AreEqual(new[] { "cat", "dog" }, names.DenseValues().Select(n => n.ToString()).ToArray());
        Assert.AreEqual(NumberDataViewType.Single, ((VectorDataViewType)view.Schema["Boxes"].Type).ItemType);

        var rows = view.GetColumn<VBuffer<uint>>("Labels").Select(v => v.DenseValues().ToArray()).ToArray();
        var boxes = view.GetColumn<float[]>("Boxes").ToArray();
        CollectionAssert.AreEqual(new uint[] { 2, 1 }, rows[0]);
        CollectionAssert.AreEqual(new float[] { 1, 2, 11, 12, 0, 0, 40, 30 }, boxes[0]);
        Assert.AreEqual(0, rows[1].Length);
        CollectionAssert.AreEqual(new float[] { 40, 20 }, view.GetColumn<float>("Width").ToArray());
        CollectionAssert.AreEqual(new float[] { 30, 10 }, view.GetColumn<float>("Height").ToArray());
        CollectionAssert.AreEqual(new[] { "/a.png", "/b.png" }, view.GetColumn<string>("ImagePath").ToArray());
    }

    [TestMethod]
    public void DataViewFeedsTheEvaluator()
    {
        // The ground truth scored against itself: every class with objects has AP 1.
        var dataset = new DetectionDataset(new[] { "cat", "dog" }, new[] { new DetectionExample("/a.png", 40, 30, new[] { new DetectionBox(1, 1, 2, 11, 12) }) });
        var ml = new MLContext(seed: 1);
        IDataView view = dataset.ToDataView(ml);
        IDataView scored = ml.Transforms.CopyColumns("PredictedLabel", "Labels").Append(ml.Transforms.CopyColumns("PredictedBoundingBoxes", "Boxes"))
            .Append(ml.Transforms.CustomMapping<BoxesRow, ScoreRow>((i, o) => o.Score = i.Boxes.Where((_, j) => j % 4 == 0).Select(_ => 1f).ToArray(), null))
            .Fit(view).Transform(view);

        var metrics = DetectionEvaluator.Evaluate(scored);

        Assert.IsNull(metrics.PerClassAveragePrecision[0]);
        Assert.AreEqual(1.0, metrics.MeanAveragePrecision, 1e-12);
    }

    private sealed class BoxesRow
    {
        public float[] Boxes { get; set; } = Array.Empty<float>();
    }

    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void DatasetRefusesLabelsOutOfRangeAndRepeatedNames()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DetectionDataset(new[] { "a" }, new[] { new DetectionExample("/x.png", 9, 9, new[] { new DetectionBox(1, 0, 0, 1, 1) }) })).Message, "object 0: label 1");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new DetectionDataset(new[] { "a", "a" }, Array.Empty<DetectionExample>())).Message, "'a' appears twice");
    }

    // ---- ShapeDetection ----

    [TestMethod]
    public void ShapesAreDeterministicForASeed()
    {
        var first = ShapeDetection.Generate(Path.Combine(Root, "one"), 4, imageSize: 64, seed: 7);
        var again = ShapeDetection.Generate(Path.Combine(Root, "two"), 4, imageSize: 64, seed: 7);
        var other = ShapeDetection.Generate(Path.Combine(Root, "three"), 4, imageSize: 64, seed: 8);

        for (int i = 0; i < 4; i++)
        {
            CollectionAssert.AreEqual(first.Examples[i].Objects.ToArray(), again.Examples[i].Objects.ToArray());
            CollectionAssert.AreEqual(File.ReadAllBytes(first.Examples[i].ImagePath), File.ReadAllBytes(again.Examples[i].ImagePath));
        }

        Assert.IsFalse(Enumerable.Range(0, 4).All(i => File.ReadAllBytes(first.Examples[i].ImagePath).SequenceEqual(File.ReadAllBytes(other.Examples[i].ImagePath))));
        CollectionAssert.AreEqual(new[] { "circle", "square", "triangle" }, first.ClassNames.ToArray());
    }

    [TestMethod]
    public void ShapeBoxesAreTightAroundTheDrawnPixels()
    {
        // One shape per image: the background's channels stay below 100 (grey ≤ 84 plus noise ≤ 15), a shape has a channel
        // of 200 or more; the box of the pixels with a channel ≥ 150 is the shape's box exactly.
        var dataset = ShapeDetection.Generate(Root, 12, imageSize: 64, seed: 3, maxObjects: 1);

        foreach (DetectionExample example in dataset.Examples)
        {
            Assert.AreEqual(1, example.Objects.Count);
            using MLImage image = ImageFiles.Load(example.ImagePath);
            Assert.AreEqual(64, image.Width);
            int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                {
                    var (b, g, r, _) = TestImageFiles.At(image, x, y);
                    if (Math.Max(b, Math.Max(g, r)) < 150) continue;
                    (minX, minY, maxX, maxY) = (Math.Min(minX, x), Math.Min(minY, y), Math.Max(maxX, x), Math.Max(maxY, y));
                }

            DetectionBox box = example.Objects[0];
            Assert.AreEqual(new DetectionBox(box.Label, minX, minY, maxX + 1, maxY + 1), box, example.ImagePath);
            Assert.IsTrue(box.X2 - box.X1 >= 6 && box.X2 - box.X1 <= 30, $"{box}");
        }

        Assert.AreEqual(3, dataset.Examples.Select(e => e.Objects[0].Label).Distinct().Count());
    }

    [TestMethod]
    public void ShapesWriteACocoFileThatLoadsBackTheSameDataset()
    {
        var dataset = ShapeDetection.Generate(Root, 6, imageSize: 48, seed: 1, maxObjects: 3);

        var loaded = CocoDetection.Load(Path.Combine(Root, ShapeDetection.AnnotationFileName), Root);

        CollectionAssert.AreEqual(dataset.ClassNames.ToArray(), loaded.ClassNames.ToArray());
        Assert.AreEqual(dataset.Examples.Count, loaded.Examples.Count);
        for (int i = 0; i < dataset.Examples.Count; i++)
        {
            Assert.AreEqual(dataset.Examples[i].ImagePath, loaded.Examples[i].ImagePath);
            Assert.AreEqual(48, loaded.Examples[i].Width);
            CollectionAssert.AreEqual(dataset.Examples[i].Objects.ToArray(), loaded.Examples[i].Objects.ToArray());
        }

        Assert.IsTrue(dataset.Examples.Any(e => e.Objects.Count > 1));
        Assert.AreEqual(0, Directory.GetFiles(Root, ".*").Length, "no temporary file is left");
    }

    // ---- COCO ----

    private string Coco(string images, string annotations, string categories = """[{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}]""") =>
        WriteText("instances.json", $$"""{"images": {{images}}, "annotations": {{annotations}}, "categories": {{categories}}}""");

    [TestMethod]
    public void CocoMapsCategoryIdsInOrderAndConvertsBoxes()
    {
        WriteImage("img/a.png", 40, 30);
        WriteImage("img/b.png", 20, 10);
        string file = Coco("""[{"id": 10, "file_name": "a.png", "width": 40, "height": 30}, {"id": 2, "file_name": "b.png"}]""",
            """[{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1.5, 2, 10, 5]}, {"id": 2, "image_id": 10, "category_id": 1, "bbox": [30, 20, 20, 20], "iscrowd": 1}, {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 0}]""");

        var dataset = CocoDetection.Load(file, Path.Combine(Root, "img"));

        CollectionAssert.AreEqual(new[] { "cat", "dog" }, dataset.ClassNames.ToArray());
        Assert.AreEqual(Path.Combine(Root, "img", "a.png"), dataset.Examples[0].ImagePath);
        // [1.5, 2, 10, 5] → x1 1.5, y1 2, x2 11.5, y2 7; the crowd box [30, 20, 50, 40] is clipped to the 40×30 image.
        CollectionAssert.AreEqual(new[] { new DetectionBox(1, 1.5f, 2, 11.5f, 7), new DetectionBox(0, 30, 20, 40, 30, IsCrowd: true) }, dataset.Examples[0].Objects.ToArray());
        // b.png has no width/height in the file: read from its header.
        Assert.AreEqual((20, 10), (dataset.Examples[1].Width, dataset.Examples[1].Height));
        CollectionAssert.AreEqual(new[] { new DetectionBox(0, 0, 0, 4, 4) }, dataset.Examples[1].Objects.ToArray());
    }

    [TestMethod]
    public void CocoErrorsNameTheEntry()
    {
        WriteImage("a.png", 40, 30);
        const string image = """[{"id": 10, "file_name": "a.png", "width": 40, "height": 30}]""";

        string Fails<T>(string images, string annotations, string? categories = null) where T : Exception =>
            Assert.ThrowsExactly<T>(() => CocoDetection.Load(categories is null ? Coco(images, annotations) : Coco(images, annotations, categories), Root)).Message;

        StringAssert.Contains(Fails<FileNotFoundException>("""[{"id": 4, "file_name": "gone.png", "width": 4, "height": 4}]""", "[]"), "images[0] (id 4): image 'gone.png' does not exist");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7, "image_id": 10, "category_id": 2, "bbox": [0, 0, 1, 1]}]"""), "annotations[0] (id 7): category_id 2 is not in 'categories' (ids 1, 3)");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7, "image_id": 11, "category_id": 1, "bbox": [0, 0, 1, 1]}]"""), "image_id 11 is not in 'images'");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7, "image_id": 10, "category_id": 1, "bbox": [0, 0, "1", 1]}]"""), "'bbox' must be 4 numbers");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7, "image_id": 10, "category_id": 1, "bbox": [5, 5, 0, 3]}]"""), "annotations[0] (id 7) (image 'a.png'): the box (x1 5, y1 5, x2 5, y2 8) has no area");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7, "image_id": 10, "category_id": 1, "bbox": [45, 5, 3, 3]}]"""), "lies outside the 40×30 image");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7, "image_id": "10", "category_id": 1, "bbox": [0, 0, 1, 1]}]"""), "'image_id' is \"10\", not an integer");
        StringAssert.Contains(Fails<InvalidDataException>(image, "[]", "[]"), "'categories' is empty");
        StringAssert.Contains(Fails<InvalidDataException>(image, """[{"id": 7 "image_id": 10}]"""), "is not valid JSON (line 1");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => CocoDetection.Load(WriteText("x.json", """{"images": []}"""), Root)).Message, "expected an array 'categories'");
    }
}
