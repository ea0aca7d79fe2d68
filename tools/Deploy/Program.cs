// Deploy: scores image files with a model.zip that ML.NET saved, using only Microsoft.ML, Microsoft.ML.ImageAnalytics,
// Microsoft.ML.OnnxTransformer and ONNX Runtime. No reference to Microsoft.ML.Residual or TorchSharp: a classifier
// trained by this library is a chain of ML.NET's own transformers around an ONNX graph, so this is all it needs.
// Classifiers print PredictedLabel and the top scores; segmenters (a PredictedMask column) print the pixels per class;
// detectors (a PredictedBoundingBoxes column) print each detection's class, score and box.
//
//   dotnet run --project tools/Deploy -- model.zip image1.png [image2.jpg | folder ...] [--json out.json] [--top 3] [--image-column Image]
//       [--width-column Width --height-column Height]
//
// Exit codes: 0 scored, 1 error (one line on stderr), 2 usage.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Deploy;

internal static class Program
{
    private const string Usage =
        "usage: Deploy <model.zip> <image or folder> [more images or folders ...] [--json <out.json>] [--top <k>] [--image-column <name>]\n"
        + "  Scores each image with the saved ML.NET model and prints its PredictedLabel and top Score values\n"
        + "  (for a segmenter: the predicted mask's pixels per class; --json then holds every mask).\n"
        + "  --json  also writes every score to a JSON file (floats in round-trip precision)\n"
        + "  --top   how many classes to print per image (default 3)\n"
        + "  --image-column  the column the model reads images from, when the model was saved after LoadImages (default Image;\n"
        + "          not needed when the saved pipeline starts with LoadImages)\n"
        + "  --width-column, --height-column  the model's input columns that hold each image's width and height in pixels (a detector\n"
        + "          trained on images of different sizes reads them): filled from each image";

    private static readonly string[] ImageExtensions = { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    private static int Main(string[] args)
    {
        Arguments? parsed = Arguments.Parse(args, out string? usageError);
        if (parsed is null)
        {
            if (usageError != null) Console.Error.WriteLine("error: " + usageError);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        try
        {
            Run(parsed);
            return 0;
        }
        catch (DeployException e)
        {
            Console.Error.WriteLine("error: " + OneLine(e.Message));
            return 1;
        }
        catch (Exception e)
        {
            // Anything unforeseen still ends as one line, never as a stack trace.
            Console.Error.WriteLine($"error: {e.GetType().Name}: {OneLine(e.Message)}");
            return 1;
        }
    }

    private static void Run(Arguments arguments)
    {
        // ML.NET writes each ONNX graph it loads to a file in MLContext.TempFilePath and deletes it only when the
        // transformer is disposed or finalised. A folder of this run's own, removed at the end, leaves nothing in /tmp.
        string scratch = Directory.CreateTempSubdirectory("residualml-deploy-").FullName;
        try
        {
            ScoreImages(arguments, new MLContext(seed: 1) { TempFilePath = scratch });
        }
        finally
        {
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A file still open (Windows) stays behind; the scores are already out.
            }
        }
    }

    private static void ScoreImages(Arguments arguments, MLContext ml)
    {
        List<string> images = ExpandImages(arguments.Inputs);
        var widths = new List<float>();
        var heights = new List<float>();
        foreach (string image in images)
        {
            var (width, height) = CheckReadable(image);
            widths.Add(width);
            heights.Add(height);
        }

        var sizes = new Dictionary<string, IReadOnlyList<float>>();
        if (arguments.WidthColumn != null) sizes[arguments.WidthColumn] = widths;
        if (arguments.HeightColumn != null) sizes[arguments.HeightColumn] = heights;

        string modelPath = Path.GetFullPath(arguments.ModelPath);
        if (!File.Exists(modelPath)) throw new DeployException($"model file '{arguments.ModelPath}' not found.");
        ITransformer model;
        DataViewSchema inputSchema;
        try
        {
            model = ml.Model.Load(modelPath, out inputSchema);
        }
        catch (Exception e)
        {
            throw new DeployException($"'{arguments.ModelPath}' is not a model that ML.NET can load ({e.GetType().Name}: {OneLine(e.Message)}).");
        }

        IDataView input = ModelInput.Build(ml, model, inputSchema, images, arguments.ImageColumn, sizes);
        // One Transform over all images: ML.NET streams the rows through the chain (OnnxTransformer runs the graph one
        // row at a time), so memory does not grow with the number of images.
        IDataView scored;
        try
        {
            scored = model.Transform(input);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new DeployException($"the model cannot score images: {OneLine(e.Message)}");
        }

        if (scored.Schema.GetColumnOrNull("PredictedMask") is DataViewSchema.Column maskColumn)
        {
            List<(string File, uint[] Mask)> masks = ReadMasks(scored, maskColumn, images);
            foreach (var (file, mask) in masks)
            {
                var counts = mask.GroupBy(v => v).OrderBy(g => g.Key).Select(g => $"class {g.Key}: {g.Count()}");
                Console.WriteLine($"{file}: {mask.Length} pixels ({string.Join(", ", counts)})");
            }

            if (arguments.JsonPath != null) WriteMasksJson(arguments.JsonPath, modelPath, masks);
            return;
        }

        if (scored.Schema.GetColumnOrNull("PredictedBoundingBoxes") is DataViewSchema.Column boxColumn)
        {
            List<(string File, List<Detected> Found)> detections = ReadDetections(scored, boxColumn, images);
            foreach (var (file, found) in detections)
            {
                IEnumerable<string> each = found.Take(arguments.Top).Select(d =>
                    $"{d.Label} {d.Score.ToString("F4", CultureInfo.InvariantCulture)} [{string.Join(", ", d.Box.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)))}]");
                Console.WriteLine($"{file}: {found.Count} detections ({string.Join("; ", each)})");
            }

            if (arguments.JsonPath != null)
            {
                var document = new
                {
                    model = modelPath,
                    images = detections.Select(d => new
                    {
                        file = d.File,
                        detections = d.Found.Select(x => new { label = x.Label, score = x.Score, box = x.Box }),
                    }),
                };
                File.WriteAllText(arguments.JsonPath, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
            }

            return;
        }

        List<Prediction> predictions = Score(scored, images, out string[]? classNames);
        foreach (Prediction p in predictions)
        {
            IEnumerable<string> top = p.Scores.Select((value, k) => (value, k)).OrderByDescending(s => s.value).Take(arguments.Top)
                .Select(s => $"{ClassName(classNames, s.k)} {s.value.ToString("F4", CultureInfo.InvariantCulture)}");
            Console.WriteLine($"{p.File}: {p.PredictedLabel}  ({string.Join(", ", top)})");
        }

        if (arguments.JsonPath != null) WriteJson(arguments.JsonPath, modelPath, classNames, predictions);
    }

    private sealed record Detected(string Label, float Score, float[] Box);

    // Each image's detections, best first: the PredictedLabel keys' values, the scores and the 4 box values per detection.
    private static List<(string File, List<Detected> Found)> ReadDetections(IDataView scored, DataViewSchema.Column boxColumn, List<string> images)
    {
        DataViewSchema.Column score = scored.Schema.GetColumnOrNull("Score")
            ?? throw new DeployException($"the detector produces no 'Score' column (columns: {Columns(scored.Schema)}).");
        DataViewSchema.Column label = scored.Schema.GetColumnOrNull("PredictedLabel")
            ?? throw new DeployException($"the detector produces no 'PredictedLabel' column (columns: {Columns(scored.Schema)}).");
        string[]? names = Annotations.Strings(label.Annotations, "KeyValues");
        var result = new List<(string, List<Detected>)>(images.Count);
        using DataViewRowCursor cursor = scored.GetRowCursor(new[] { boxColumn, score, label });
        ValueGetter<VBuffer<float>> getBoxes = cursor.GetGetter<VBuffer<float>>(boxColumn);
        ValueGetter<VBuffer<float>> getScores = cursor.GetGetter<VBuffer<float>>(score);
        ValueGetter<VBuffer<uint>> getLabels = cursor.GetGetter<VBuffer<uint>>(label);
        VBuffer<float> boxes = default, scores = default;
        VBuffer<uint> labels = default;
        int row = 0;
        while (cursor.MoveNext())
        {
            getBoxes(ref boxes);
            getScores(ref scores);
            getLabels(ref labels);
            float[] b = boxes.DenseValues().ToArray(), s = scores.DenseValues().ToArray();
            uint[] k = labels.DenseValues().ToArray();
            var found = new List<Detected>(s.Length);
            for (int i = 0; i < s.Length; i++)
                found.Add(new Detected(names != null && k[i] >= 1 && k[i] <= names.Length ? names[k[i] - 1] : "class " + k[i], s[i], b[(4 * i)..(4 * i + 4)]));
            result.Add((images[row++], found));
        }

        return result;
    }

    private static string ClassName(string[]? classNames, int k) =>
        classNames != null && k < classNames.Length ? classNames[k] : "class " + k.ToString(CultureInfo.InvariantCulture);

    /// <summary>Files as given; folders become their image files (not recursive), sorted by name.</summary>
    private static List<string> ExpandImages(IEnumerable<string> inputs)
    {
        var images = new List<string>();
        foreach (string input in inputs)
        {
            if (Directory.Exists(input))
            {
                List<string> found = Directory.EnumerateFiles(input)
                    .Where(f => ImageExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                    .OrderBy(f => f, StringComparer.Ordinal).ToList();
                if (found.Count == 0) throw new DeployException($"folder '{input}' contains no images ({string.Join(", ", ImageExtensions)}).");
                images.AddRange(found.Select(Path.GetFullPath));
            }
            else if (File.Exists(input))
            {
                images.Add(Path.GetFullPath(input));
            }
            else
            {
                throw new DeployException($"image '{input}' not found.");
            }
        }

        return images;
    }

    // Decodes each image once before scoring, so that a broken file is reported by name instead of as an error from
    // inside ML.NET's cursor halfway through the output.
    private static (float Width, float Height) CheckReadable(string image)
    {
        try
        {
            using MLImage decoded = MLImage.CreateFromFile(image);
            return (decoded.Width, decoded.Height);
        }
        catch (Exception e)
        {
            throw new DeployException($"image '{image}' cannot be read ({OneLine(e.Message)}).");
        }
    }

    private static List<Prediction> Score(IDataView scored, List<string> images, out string[]? classNames)
    {
        DataViewSchema.Column score = scored.Schema.GetColumnOrNull("Score")
            ?? throw new DeployException($"the model produces no 'Score' column (columns: {Columns(scored.Schema)}).");
        if (score.Type is not VectorDataViewType { ItemType: NumberDataViewType } scoreType || scoreType.ItemType.RawType != typeof(float))
            throw new DeployException($"the model's 'Score' column is {score.Type}, not a vector of floats; this sample takes classifiers.");
        DataViewSchema.Column label = scored.Schema.GetColumnOrNull("PredictedLabel")
            ?? throw new DeployException($"the model produces no 'PredictedLabel' column (columns: {Columns(scored.Schema)}).");

        // Score's slot names when the model has them; otherwise the PredictedLabel key's values, because ML.NET's
        // multiclass convention is that Score slot k belongs to key k+1; otherwise "class k".
        string[]? keyValues = label.Type is KeyDataViewType ? Annotations.Strings(label.Annotations, "KeyValues") : null;
        classNames = Annotations.Strings(score.Annotations, "SlotNames");
        if (classNames == null && keyValues != null && keyValues.Length == scoreType.Size) classNames = keyValues;

        var predictions = new List<Prediction>(images.Count);
        using DataViewRowCursor cursor = scored.GetRowCursor(new[] { score, label });
        ValueGetter<VBuffer<float>> getScore = cursor.GetGetter<VBuffer<float>>(score);
        Func<string> getLabel = Annotations.LabelReader(cursor, label, keyValues);
        VBuffer<float> buffer = default;
        while (cursor.MoveNext() && predictions.Count < images.Count)
        {
            getScore(ref buffer);
            predictions.Add(new Prediction(images[predictions.Count], getLabel(), buffer.DenseValues().ToArray()));
        }

        if (predictions.Count != images.Count)
            throw new DeployException($"the model returned {predictions.Count} rows for {images.Count} images.");
        return predictions;
    }

    private static List<(string File, uint[] Mask)> ReadMasks(IDataView scored, DataViewSchema.Column column, List<string> images)
    {
        if (column.Type is not VectorDataViewType { ItemType: var item } || item.RawType != typeof(uint))
            throw new DeployException($"the model's 'PredictedMask' column is {column.Type}, not a vector of UInt32 class indices.");
        var masks = new List<(string, uint[])>(images.Count);
        using DataViewRowCursor cursor = scored.GetRowCursor(new[] { column });
        ValueGetter<VBuffer<uint>> getMask = cursor.GetGetter<VBuffer<uint>>(column);
        VBuffer<uint> buffer = default;
        while (cursor.MoveNext() && masks.Count < images.Count)
        {
            getMask(ref buffer);
            masks.Add((images[masks.Count], buffer.DenseValues().ToArray()));
        }

        if (masks.Count != images.Count) throw new DeployException($"the model returned {masks.Count} rows for {images.Count} images.");
        return masks;
    }

    private static void WriteMasksJson(string path, string modelPath, List<(string File, uint[] Mask)> masks) => WriteJsonFile(path, json =>
    {
        json.WriteString("model", modelPath);
        json.WriteStartArray("images");
        foreach (var (file, mask) in masks)
        {
            json.WriteStartObject();
            json.WriteString("file", file);
            json.WriteStartArray("mask");
            foreach (uint value in mask) json.WriteNumberValue(value);
            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
    });

    // One JSON object written to path, its body from writeBody; an unwritable path is a one-line error.
    private static void WriteJsonFile(string path, Action<Utf8JsonWriter> writeBody)
    {
        try
        {
            using FileStream stream = File.Create(path);
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            writeBody(json);
            json.WriteEndObject();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DeployException($"cannot write '{path}' ({OneLine(e.Message)}).");
        }
    }

    private static void WriteJson(string path, string modelPath, string[]? classNames, List<Prediction> predictions) => WriteJsonFile(path, json =>
    {
        json.WriteString("model", modelPath);
        json.WritePropertyName("classes");
        if (classNames == null)
        {
            json.WriteNullValue();
        }
        else
        {
            json.WriteStartArray();
            foreach (string name in classNames) json.WriteStringValue(name);
            json.WriteEndArray();
        }

        json.WriteStartArray("images");
        foreach (Prediction p in predictions)
        {
            json.WriteStartObject();
            json.WriteString("file", p.File);
            json.WriteString("predictedLabel", p.PredictedLabel);
            json.WriteStartArray("score");
            foreach (float value in p.Scores)
            {
                // "R": the shortest text that parses back to the same float, so a reader gets the exact bits.
                if (float.IsFinite(value)) json.WriteRawValue(value.ToString("R", CultureInfo.InvariantCulture));
                else json.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
    });

    private static string Columns(DataViewSchema schema) => string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name));

    internal static string OneLine(string message) => string.Join(" ", message.Split(new[] { '\r', '\n' }, StringSplitOptions.RemoveEmptyEntries)).Trim();

    private sealed record Prediction(string File, string PredictedLabel, float[] Scores);

    private sealed class Arguments
    {
        public string ModelPath { get; private set; } = string.Empty;

        public List<string> Inputs { get; } = new();

        public string? JsonPath { get; private set; }

        public int Top { get; private set; } = 3;

        public string ImageColumn { get; private set; } = "Image";

        public string? WidthColumn { get; private set; }

        public string? HeightColumn { get; private set; }

        public static Arguments? Parse(string[] args, out string? error)
        {
            error = null;
            var result = new Arguments();
            var positional = new List<string>();
            for (int i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "-h" or "--help":
                        return null;
                    case "--json" when i + 1 < args.Length:
                        result.JsonPath = args[++i];
                        break;
                    case "--top" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int top) && top > 0:
                        result.Top = top;
                        i++;
                        break;
                    case "--image-column" when i + 1 < args.Length:
                        result.ImageColumn = args[++i];
                        break;
                    case "--width-column" when i + 1 < args.Length:
                        result.WidthColumn = args[++i];
                        break;
                    case "--height-column" when i + 1 < args.Length:
                        result.HeightColumn = args[++i];
                        break;
                    case "--json" or "--top" or "--image-column" or "--width-column" or "--height-column":
                        error = args[i] == "--top" ? "--top needs a positive whole number." : $"{args[i]} needs a name.";
                        return null;
                    default:
                        if (args[i].StartsWith("--", StringComparison.Ordinal))
                        {
                            error = $"unknown option '{args[i]}'.";
                            return null;
                        }

                        positional.Add(args[i]);
                        break;
                }
            }

            if (positional.Count < 2)
            {
                if (positional.Count == 1) error = "no images given.";
                return null;
            }

            if ((result.WidthColumn is null) != (result.HeightColumn is null))
            {
                error = "give --width-column and --height-column together (a detector's graph scales its boxes by both).";
                return null;
            }

            result.ModelPath = positional[0];
            result.Inputs.AddRange(positional.Skip(1));
            return result;
        }
    }
}

/// <summary>An error with a message for the user: printed as one line, without a stack trace.</summary>
internal sealed class DeployException : Exception
{
    public DeployException(string message)
        : base(message)
    {
    }
}
