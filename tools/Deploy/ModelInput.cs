using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Deploy;

/// <summary>
/// Turns a list of image files into the data view a saved model expects. What the model reads is worked out from its
/// input schema and its chain of transformers, with ML.NET's public API only:
/// <list type="bullet">
/// <item>a <c>LoadImages</c> step at the start of the saved pipeline (the model was saved with the raw rows' schema, as
/// in the README's example): the text column it reads holds the files' absolute paths;</item>
/// <item>an image column: the files are loaded into it with ML.NET's <c>LoadImages</c>. ML.NET does not write image
/// columns into a saved model's input schema (a model saved after <c>LoadImages</c> comes back without that column),
/// so the column is taken from the schema when it is there, else it is the name given with <c>--image-column</c>
/// (default <c>Image</c>), accepted when the model's chain can then be applied.</item>
/// </list>
/// Every other input column (e.g. a text <c>Label</c> that the saved pipeline's <c>MapValueToKey</c> reads) gets its
/// type's default value: a scoring run has no labels.
/// </summary>
internal static class ModelInput
{
    public static IDataView Build(MLContext ml, ITransformer model, DataViewSchema inputSchema, IReadOnlyList<string> images, string imageColumnName,
        IReadOnlyDictionary<string, IReadOnlyList<float>>? sizes = null)
    {
        List<DataViewSchema.Column> columns = inputSchema.Where(c => !c.IsHidden).ToList();

        string? pathInput = LoadImagesInputs(model, inputSchema).FirstOrDefault(name => columns.Any(c => c.Name == name && c.Type is TextDataViewType));
        if (pathInput != null)
            return new InputRows(columns.Select(c => (c.Name, c.Type)), pathInput, images, sizes);

        DataViewSchema.Column? listed = columns.Where(c => c.Type is ImageDataViewType).Select(c => (DataViewSchema.Column?)c).FirstOrDefault();
        if (listed is DataViewSchema.Column image)
            return LoadInto(ml, columns.Where(c => c.Index != image.Index).ToList(), image.Name, image.Type as ImageDataViewType, images, sizes);

        if (Applies(model, inputSchema))
        {
            // The model scores its saved input as it is: it does not read images.
            string vectors = string.Join(", ", columns.Where(c => c.Type is VectorDataViewType).Select(c => $"'{c.Name}' ({c.Type})"));
            throw new DeployException(
                $"the model expects {(vectors.Length > 0 ? "pixel vectors (" + vectors + ")" : "the columns " + Describe(columns))}, not images. This sample takes "
                + "models trained on an image column (ml.Transforms.LoadImages before the classifier); for a pixel-vector model, build the vectors as in training and call model.Transform.");
        }

        IDataView loaded = LoadInto(ml, columns.Where(c => c.Name != imageColumnName).ToList(), imageColumnName, null, images, sizes);
        if (Applies(model, loaded.Schema)) return loaded;
        throw new DeployException(
            $"the model reads a column that its saved input schema ({Describe(columns)}) does not list, and it is not an image column named "
            + $"'{imageColumnName}'. ML.NET does not save image columns in a model's input schema: if the model reads images from another column, pass its name with --image-column.");
    }

    // Rows of the other input columns plus a path column, and LoadImages from it into the image column.
    private static IDataView LoadInto(MLContext ml, List<DataViewSchema.Column> others, string imageColumn, ImageDataViewType? expected, IReadOnlyList<string> images,
        IReadOnlyDictionary<string, IReadOnlyList<float>>? sizes)
    {
        string pathColumn = FreeName(others.Select(c => c.Name).Append(imageColumn), "ImagePath");
        var rows = new InputRows(others.Select(c => (c.Name, c.Type)).Append((pathColumn, (DataViewType)TextDataViewType.Instance)), pathColumn, images, sizes);
        IEstimator<ITransformer> load = ml.Transforms.LoadImages(imageColumn, imageFolder: null, pathColumn);
        // An image column of a fixed size (saved after ResizeImages): resize to it with ML.NET's defaults.
        if (expected is { Height: > 0, Width: > 0 })
            load = load.Append(ml.Transforms.ResizeImages(imageColumn, expected.Width, expected.Height));
        return load.Fit(rows).Transform(rows);
    }

    private static bool Applies(ITransformer model, DataViewSchema schema)
    {
        try
        {
            model.GetOutputSchema(schema);
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    // The columns that LoadImages steps in the (nested) chain of the saved model read their paths from, first step
    // first, as far as the chain applies to the saved schema. ML.NET's public API does not expose a loader's column
    // pairs; the dependencies of its row mapper are them.
    private static List<string> LoadImagesInputs(ITransformer model, DataViewSchema inputSchema)
    {
        var found = new List<string>();
        DataViewSchema schema = inputSchema;
        void Visit(ITransformer transformer)
        {
            if (transformer is ImageLoadingTransformer loader)
            {
                IRowToRowMapper mapper = ((ITransformer)loader).GetRowToRowMapper(schema);
                IEnumerable<DataViewSchema.Column> images = mapper.OutputSchema.Where(c => c.Type is ImageDataViewType && !c.IsHidden);
                found.AddRange(mapper.GetDependencies(images).Select(c => c.Name));
            }
            else if (transformer is IEnumerable<ITransformer> chain)
            {
                foreach (ITransformer part in chain) Visit(part);
                return;
            }

            schema = transformer.GetOutputSchema(schema);
        }

        try
        {
            Visit(model);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // The chain needs a column the saved schema lacks (an image column): the steps up to there count.
        }

        return found;
    }

    private static string Describe(IEnumerable<DataViewSchema.Column> columns) => string.Join(", ", columns.Select(c => $"'{c.Name}' ({c.Type})"));

    private static string FreeName(IEnumerable<string> taken, string name)
    {
        var names = new HashSet<string>(taken);
        string candidate = name;
        for (int n = 1; names.Contains(candidate); n++) candidate = name + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return candidate;
    }
}
