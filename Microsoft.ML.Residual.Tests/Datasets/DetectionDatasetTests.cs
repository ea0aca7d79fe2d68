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
        string file = Coco("""[{"id": 10, "file_name": "a.png", "width": 40.0, "height": 30}, {"id": 2, "file_name": "b.png"}]""",
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

    // ---- Pascal VOC ----

    private static string VocXml(string file, int width, int height, params (string Name, int Difficult, string XMin, string YMin, string XMax, string YMax)[] objects) =>
        $"<annotation><folder>VOC2012</folder><filename>{file}</filename><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        + string.Concat(objects.Select(o => $"<object><name>{o.Name}</name><pose>Left</pose><truncated>0</truncated><difficult>{o.Difficult}</difficult>"
            + $"<bndbox><xmin>{o.XMin}</xmin><ymin>{o.YMin}</ymin><xmax>{o.XMax}</xmax><ymax>{o.YMax}</ymax></bndbox></object>"))
        + "</annotation>";

    [TestMethod]
    public void VocConvertsOneBasedInclusivePixelsAndSkipsDifficultObjects()
    {
        WriteImage("voc/JPEGImages/2007_000001.jpg", 50, 40, SKEncodedImageFormat.Jpeg);
        WriteImage("voc/JPEGImages/2007_000002.jpg", 30, 20, SKEncodedImageFormat.Jpeg);
        WriteText("voc/Annotations/2007_000001.xml", VocXml("2007_000001.jpg", 50, 40, ("dog", 0, "1", "1", "10", "20"), ("cat", 1, "5", "5", "9", "9"), ("cat", 0, "40", "30", "60", "40")));
        WriteText("voc/Annotations/2007_000002.xml", VocXml("2007_000002.jpg", 30, 20, ("person", 0, "2.0", "3.0", "2.0", "3.0")));

        var dataset = VocDetection.Load(Path.Combine(Root, "voc"));

        // Every name is a VOC class: the 20 classes in VOC order (cat 7, dog 11, person 14).
        Assert.AreEqual(20, dataset.ClassNames.Count);
        Assert.AreEqual(Path.Combine(Root, "voc", "JPEGImages", "2007_000001.jpg"), dataset.Examples[0].ImagePath);
        // xmin 1 … xmax 10 covers pixels 1–10 (1-based): [0, 0, 10, 20]; the difficult cat is left out; the last cat's
        // [39, 29, 60, 40] is clipped to the 50×40 image.
        CollectionAssert.AreEqual(new[] { new DetectionBox(11, 0, 0, 10, 20), new DetectionBox(7, 39, 29, 50, 40) }, dataset.Examples[0].Objects.ToArray());
        // A one-pixel box (xmin = xmax = 2): [1, 2, 2, 3].
        CollectionAssert.AreEqual(new[] { new DetectionBox(14, 1, 2, 2, 3) }, dataset.Examples[1].Objects.ToArray());

        var withDifficult = VocDetection.Load(Path.Combine(Root, "voc"), includeDifficult: true);
        Assert.AreEqual(3, withDifficult.Examples[0].Objects.Count);
    }

    [TestMethod]
    public void VocUsesTheNamesFoundWhenTheyAreNotVocClassesAndReadsImageSets()
    {
        WriteImage("voc/JPEGImages/a.jpg", 50, 40, SKEncodedImageFormat.Jpeg);
        WriteImage("voc/JPEGImages/b.jpg", 50, 40, SKEncodedImageFormat.Jpeg);
        WriteText("voc/Annotations/a.xml", VocXml("a.jpg", 50, 40, ("zebra", 0, "1", "1", "10", "20"), ("dog", 0, "1", "1", "10", "20")));
        WriteText("voc/Annotations/b.xml", VocXml("b.jpg", 0, 0, ("apple", 0, "1", "1", "10", "20")));
        WriteText("voc/ImageSets/Main/val.txt", "b\n");

        var dataset = VocDetection.Load(Path.Combine(Root, "voc"));
        CollectionAssert.AreEqual(new[] { "apple", "dog", "zebra" }, dataset.ClassNames.ToArray());
        Assert.AreEqual(new DetectionBox(2, 0, 0, 10, 20), dataset.Examples[0].Objects[0]);

        var val = VocDetection.Load(Path.Combine(Root, "voc"), new[] { "apple" }, imageSet: "val");
        Assert.AreEqual(1, val.Examples.Count);
        // Size 0×0 in the XML: read from the JPEG's header.
        Assert.AreEqual((50, 40), (val.Examples[0].Width, val.Examples[0].Height));

        string message = Assert.ThrowsExactly<InvalidDataException>(() => VocDetection.Load(Path.Combine(Root, "voc"), new[] { "apple", "dog" })).Message;
        StringAssert.Contains(message, "a.xml', object 0: class 'zebra' is not among the class names (apple, dog)");
    }

    [TestMethod]
    public void VocErrorsNameTheFileAndObject()
    {
        WriteImage("voc/JPEGImages/a.jpg", 50, 40, SKEncodedImageFormat.Jpeg);
        string voc = Path.Combine(Root, "voc");
        string Fails<T>(string xml) where T : Exception
        {
            WriteText("voc/Annotations/a.xml", xml);
            return Assert.ThrowsExactly<T>(() => VocDetection.Load(voc)).Message;
        }

        StringAssert.Contains(Fails<InvalidDataException>(VocXml("a.jpg", 50, 40, ("dog", 0, "1", "1", "ten", "20"))), "a.xml', object 0: <xmax> is 'ten', not a number");
        StringAssert.Contains(Fails<InvalidDataException>(VocXml("a.jpg", 50, 40, ("dog", 0, "1", "1", "10", "20"), ("cat", 0, "9", "1", "5", "20"))), "a.xml', object 1 (cat): the box (x1 8, y1 0, x2 5, y2 20) has no area");
        StringAssert.Contains(Fails<InvalidDataException>(VocXml("a.jpg", 50, 40, ("dog", 0, "61", "1", "70", "20"))), "lies outside the 50×40 image");
        StringAssert.Contains(Fails<InvalidDataException>("<annotation><filename>a.jpg</filename><object><name>dog</name></annotation>"), "a.xml' is not valid XML (line 1");
        StringAssert.Contains(Fails<InvalidDataException>("<annotation><filename>a.jpg</filename><object><name>dog</name></object></annotation>"), "object 0 (dog): the object has no <bndbox>");
        StringAssert.Contains(Fails<FileNotFoundException>(VocXml("b.jpg", 50, 40)), "a.xml': image 'b.jpg' does not exist");
        StringAssert.Contains(Assert.ThrowsExactly<DirectoryNotFoundException>(() => VocDetection.Load(Root)).Message, "Annotations");
    }

    // ---- YOLO ----

    [TestMethod]
    public void YoloConvertsNormalisedCentresToPixelsWithSizesFromTheImages()
    {
        WriteImage("images/a.png", 100, 50);
        WriteImage("images/b.jpg", 20, 10, SKEncodedImageFormat.Jpeg);
        WriteText("labels/a.txt", "1 0.5 0.5 0.2 0.4\n\n0 0.05 0.9 0.2 0.4\n");
        WriteText("labels/orphan.txt", "0 0.5 0.5 0.1 0.1\n");

        var dataset = YoloDetection.Load(Path.Combine(Root, "images"), Path.Combine(Root, "labels"), new[] { "cat", "dog" });

        Assert.AreEqual(2, dataset.Examples.Count);
        // cx .5, cy .5, w .2, h .4 of 100×50: [40, 15, 60, 35]. The second, [−5, 35, 15, 55], is clipped to [0, 35, 15, 50].
        CollectionAssert.AreEqual(new[] { new DetectionBox(1, 40, 15, 60, 35), new DetectionBox(0, 0, 35, 15, 50) }, dataset.Examples[0].Objects.ToArray());
        // b.jpg has no label file: no objects.
        Assert.AreEqual((20, 10, 0), (dataset.Examples[1].Width, dataset.Examples[1].Height, dataset.Examples[1].Objects.Count));
    }

    [TestMethod]
    public void YoloReadsClassNamesFromClassesTxtAndDataYaml()
    {
        WriteImage("images/a.png", 10, 10);
        WriteText("labels/a.txt", "2 0.5 0.5 0.5 0.5\n");
        string images = Path.Combine(Root, "images"), labels = Path.Combine(Root, "labels");

        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird" }, YoloDetection.Load(images, labels, WriteText("classes.txt", "cat\ndog\n\nbird\n")).ClassNames.ToArray());
        CollectionAssert.AreEqual(new[] { "cat", "dog", "hot dog" }, YoloDetection.ReadClassNames(WriteText("inline.yaml", "path: x\nnames: ['cat', dog, \"hot dog\"]\n")).ToArray());
        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird" }, YoloDetection.ReadClassNames(WriteText("list.yaml", "train: images\nnames:\n  - cat\n  - dog # a comment\n  - bird\nnc: 3\n")).ToArray());
        CollectionAssert.AreEqual(new[] { "cat", "dog", "bird" }, YoloDetection.ReadClassNames(WriteText("map.yml", "names:\n  1: dog\n  0: cat\n  2: 'bird'\ntest: x\n")).ToArray());
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => YoloDetection.ReadClassNames(WriteText("gap.yaml", "names:\n  0: cat\n  2: dog\n"))).Message, "indices 0, 2");
    }

    [TestMethod]
    public void YoloErrorsNameTheFileAndLine()
    {
        WriteImage("images/a.png", 10, 10);
        string images = Path.Combine(Root, "images"), labels = Path.Combine(Root, "labels");
        string Fails(string text)
        {
            WriteText("labels/a.txt", text);
            return Assert.ThrowsExactly<InvalidDataException>(() => YoloDetection.Load(images, labels, new[] { "cat", "dog" })).Message;
        }

        StringAssert.Contains(Fails("0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n"), "a.txt', line 2: class 2 is out of range: there are 2 class names");
        StringAssert.Contains(Fails("0 0.5 0.5 0.1\n"), "line 1: expected 'class cx cy w h' (5 values), found 4");
        StringAssert.Contains(Fails("0 0.1 0.1 0.2 0.1 0.2 0.2\n"), "a segmentation polygon");
        StringAssert.Contains(Fails("0 0.5 half 0.1 0.1\n"), "line 1: 'half' is not a number");
        StringAssert.Contains(Fails("cat 0.5 0.5 0.1 0.1\n"), "the class 'cat' is not a class index");
        StringAssert.Contains(Fails("0 0.5 0.5 0 0.1\n"), "line 1: the box (x1 5, y1 4.5, x2 5, y2 5.5) has no area");
        StringAssert.Contains(Fails("0 1.5 0.5 0.2 0.2\n"), "lies outside the 10×10 image");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => YoloDetection.Load(labels, labels, new[] { "cat" })).Message, "has no images");
    }
}
