using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Datasets;

namespace Microsoft.ML.Residual
{
    /// <summary>
    /// Data loaders on <c>ml.Data</c> for the image datasets people otherwise list by hand: folders of class
    /// sub-folders, CSV lists of path and label, and the CIFAR and MNIST files.
    /// </summary>
    public static class ResidualDataCatalog
    {
        /// <summary>
        /// The images below <paramref name="folder"/>'s class sub-folders (<c>folder/cat/1.png</c> → label <c>cat</c>) as
        /// rows of <c>ImagePath</c> (full path) and <c>Label</c> (text), sorted by class and path. Load the pixels with
        /// <c>ml.Transforms.LoadImages("Image", null, "ImagePath")</c> and make the label a key with
        /// <c>MapValueToKey("Label")</c>.
        /// </summary>
        /// <exception cref="System.IO.DirectoryNotFoundException">The folder does not exist.</exception>
        /// <exception cref="System.IO.InvalidDataException">No class sub-folder holds an image.</exception>
        /// <exception cref="InvalidImageException">With <see cref="ImageFolderOptions.CheckImages"/>, an image is bad (the row, column and file named).</exception>
        public static IDataView LoadImageFolder(this DataOperationsCatalog catalog, string folder, ImageFolderOptions? options = null)
        {
            options ??= new ImageFolderOptions();
            return ToDataView(catalog, ImageFolder.List(folder, options), options);
        }

        /// <summary>
        /// <see cref="LoadImageFolder"/>, split class by class into a training and a test set: of each class's images,
        /// round(n × <paramref name="testFraction"/>) go to the test set (at least one when the class has two or more, never
        /// all), chosen by <paramref name="seed"/>. Unlike <c>ml.Data.TrainTestSplit</c>, every class is in both sets.
        /// </summary>
        public static (IDataView Train, IDataView Test) LoadImageFolderSplit(this DataOperationsCatalog catalog, string folder,
            double testFraction = 0.2, int seed = 0, ImageFolderOptions? options = null)
        {
            options ??= new ImageFolderOptions();
            var (train, test) = ImageFolder.StratifiedSplit(ImageFolder.List(folder, options), testFraction, seed);
            return (ToDataView(catalog, train, options), ToDataView(catalog, test, options));
        }

        /// <summary>
        /// The images a CSV file lists (<c>path,label</c> per line, paths relative to the CSV's folder or absolute, an
        /// optional header line) as rows of <c>ImagePath</c> (full path) and <c>Label</c> (text). See <see cref="ImageList"/>.
        /// </summary>
        public static IDataView LoadImageList(this DataOperationsCatalog catalog, string csvPath, ImageFolderOptions? options = null)
        {
            options ??= new ImageFolderOptions();
            return ToDataView(catalog, ImageList.Read(csvPath, options.Extensions), options);
        }

        /// <summary>
        /// CIFAR-10's binary version ("for C programs") from <paramref name="folder"/>, the extracted
        /// <c>cifar-10-batches-bin</c> folder or the folder that contains it: rows of <c>Image</c> (3×32×32 Single, 0–255,
        /// for the classifiers' pixel-vector input) and <c>Label</c> (class name, from <c>batches.meta.txt</c>). The whole
        /// split is read and checked here, so a damaged file fails now rather than during training.
        /// </summary>
        /// <exception cref="System.IO.FileNotFoundException">A batch file of the split is missing.</exception>
        /// <exception cref="System.IO.InvalidDataException">A file is not whole records, or a label is out of range.</exception>
        public static IDataView LoadCifar10(this DataOperationsCatalog catalog, string folder, DatasetSplit split = DatasetSplit.Train,
            string imageColumnName = "Image", string labelColumnName = "Label") =>
            Cifar.ReadCifar10(folder, split).ToDataView(Checked(catalog), imageColumnName, labelColumnName);

        /// <summary>
        /// CIFAR-100's binary version from <paramref name="folder"/> (<c>cifar-100-binary</c> or the folder that contains
        /// it): rows of <c>Image</c> (3×32×32 Single, 0–255) and <c>Label</c>, the 100 fine classes or, with
        /// <paramref name="fineLabels"/> false, the 20 superclasses; names from <c>fine_label_names.txt</c> /
        /// <c>coarse_label_names.txt</c>, or the label numbers without them.
        /// </summary>
        /// <exception cref="System.IO.FileNotFoundException">The split's file is missing.</exception>
        /// <exception cref="System.IO.InvalidDataException">A file is not whole records, or a label is out of range.</exception>
        public static IDataView LoadCifar100(this DataOperationsCatalog catalog, string folder, DatasetSplit split = DatasetSplit.Train,
            bool fineLabels = true, string imageColumnName = "Image", string labelColumnName = "Label") =>
            Cifar.ReadCifar100(folder, split, fineLabels).ToDataView(Checked(catalog), imageColumnName, labelColumnName);

        /// <summary>
        /// IDX files of MNIST or a dataset in its format (Fashion-MNIST, KMNIST, EMNIST), plain or gzip-compressed: rows of
        /// <c>Image</c> (1×rows×columns Single, 0–255) and <c>Label</c> (the label number as text, or its entry in
        /// <paramref name="classNames"/>). Both files are read and checked here.
        /// </summary>
        /// <param name="catalog">ml.Data.</param>
        /// <param name="imagesPath">The images file, e.g. <c>train-images-idx3-ubyte.gz</c>.</param>
        /// <param name="labelsPath">The labels file of the same split, e.g. <c>train-labels-idx1-ubyte.gz</c>.</param>
        /// <param name="classNames">Names of the labels 0, 1, …; null for the numbers.</param>
        /// <param name="imageColumnName">Name of the image column.</param>
        /// <param name="labelColumnName">Name of the label column.</param>
        /// <exception cref="System.IO.FileNotFoundException">A file is missing.</exception>
        /// <exception cref="System.IO.InvalidDataException">A file is not an IDX file of its kind, is truncated, or the counts differ.</exception>
        public static IDataView LoadMnist(this DataOperationsCatalog catalog, string imagesPath, string labelsPath, string[]? classNames = null,
            string imageColumnName = "Image", string labelColumnName = "Label") =>
            Mnist.Read(imagesPath, labelsPath, classNames).ToDataView(Checked(catalog), imageColumnName, labelColumnName);

        private static IDataView ToDataView(DataOperationsCatalog catalog, IReadOnlyList<LabeledImage> rows, ImageFolderOptions options)
        {
            Checked(catalog);
            ImageFiles.CheckAll(rows.Select(r => r.ImagePath).ToList(), options.CheckImages, options.ImageLoadOptions, options.PathColumnName);
            SchemaDefinition schema = SchemaDefinition.Create(typeof(LabeledImage));
            schema[nameof(LabeledImage.ImagePath)].ColumnName = options.PathColumnName;
            schema[nameof(LabeledImage.Label)].ColumnName = options.LabelColumnName;
            return Checked(catalog).LoadFromEnumerable(rows, schema);
        }

        private static DataOperationsCatalog Checked(DataOperationsCatalog catalog) => catalog ?? throw new ArgumentNullException(nameof(catalog));
    }
}
