// Side-by-side performance measurements. Each measurement runs in its own child process (so that its peak memory is
// its own), the sides alternate, and the table shows medians and ratios. Run it when nothing else runs on the machine.
//
//   dotnet run -c Release --project benchmarks [-- train|score|all|memory|ops|soak|input|precision|gpu|recipes] [--runs 5] [--quick] [--rows N] [--peer path/to/pytorch_bench.py]
//       [--arch resnet18,resnet50,...]
//
// train: our estimator's whole Fit, a bare TorchSharp loop on the same tensors (as a user would write it, and with our
//        loop's settings: retained native memory, channels-last batches), and PyTorch (the peer script; benchmarks/peers/unet_peer.py for the U-Net), images/s
// score: model.Transform through ML.NET vs a bare ONNX Runtime session on the same graph; PredictionEngine latency;
//        the featurizer likewise
// ops: ResNet-18's operations one by one, TorchSharp against PyTorch (benchmarks/peers/ops_peer.py), on 1 and 2 threads
// memory: resident memory, managed heap and live tensors over 20 training epochs and over 100,000 scored rows
// input: the input pipeline alone (ImageBatchReader over PNG files, JPEG files and in-memory pixels, flip augmentation,
//        224², batch 32) per worker count, against PyTorch's DataLoader with as many workers (benchmarks/peers/input_peer.py)
// precision: our training loop in float32, bfloat16 and float16 (ResNet-18 and ResNet-50 at 64², one fixed batch) against
//            PyTorch in float32 and under CPU autocast in bfloat16 (benchmarks/peers/precision_peer.py)
// gpu: issue 22's GPU table (bare TorchSharp loop, our loop and the estimator in each precision, the estimator from PNG
//      files, channels-last against the default layout, ResNet-20 on 28² images over a whole Fit; PyTorch through
//      benchmarks/peers/gpu_peer.py with --python); on a machine without CUDA, a small CPU smoke run.
//      For the GPU machine: benchmarks/gpu/pack.sh, then benchmarks/gpu/run.sh there
// recipes: issue 23's defaults table: on generated textures and shapes (and Fashion-MNIST / MNIST IDX files under --idx,
//          default /usr/share/datasets), the test macro accuracy of the default recipe, of the default with the learning-rate
//          finder's rate, and the best of a seeded random search (--trials, default 20) at the same epochs; --datasets a,b picks
//          some; every run is appended to --results (default recipes.jsonl); --search-only skips the default recipe and the finder
// sweeps: issue 23's sweep table: a --seconds (default 240) sweep on --dataset (default textures5-48) per variant (the
//         default search space or a space of architectures; successive halving or random search; with or without a
//         refit on all the images; --variants a;b picks those whose names start so), the best model's test macro accuracy; every sweep is appended to --results (default sweeps.jsonl)
// export: issue 27's precision table: file size and ONNX Runtime latency (batch 1 and 64) of the float32, folded, float16 and
//         INT8 graphs of --arch (default resnet18,resnet50,unet_resnet18) at --size (default 224), then the held-out accuracy of
//         each precision for models trained on --datasets (default textures5-48,shapes6-64,shapes-segmentation; --classifier
//         overrides the architecture); --speed-only, --accuracy-only
// soak: PredictionEngines on 8 threads making --rows predictions (default 1,000,000) with a small classifier, each compared
//       bit for bit with single-threaded scoring, with memory every tenth of the way (a reliability check, not a race)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Residual.Benchmarks;
using Microsoft.ML.Residual.Models;

if (args.Length > 0 && args[0] == "--measure")
{
    // A child: one measurement, printed as one JSON line.
    Measurement result = Measurements.Run(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture),
        int.Parse(args[5], CultureInfo.InvariantCulture));
    Console.WriteLine(JsonSerializer.Serialize(result with { PeakMemoryMB = Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0 }));
    return 0;
}

string what = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "all";
int runs = Option("--runs", 5);
bool quick = args.Contains("--quick");
string peerScript = Path.GetFullPath(OptionText("--peer", Path.Combine(AppContext.BaseDirectory, "../../../../../shared/peers/pytorch_bench.py")));
// torchvision has no U-Net: the same U-Net in PyTorch is this project's own peer script.
string unetPeerScript = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../peers/unet_peer.py"));
bool hasPeer = File.Exists(peerScript) && Run("/usr/bin/python3", "-c \"import torch, torchvision\"").ExitCode == 0;
Console.WriteLine($"{Environment.ProcessorCount} cores, {runs} run(s) per measurement; PyTorch peer: {(hasPeer ? peerScript : "not installed (../shared/peers/install.sh)")}");

var rows = new List<string>();
if (what is "train" or "all")
{
    rows.Add("| training | ours (whole Fit) | ours (loop only) | bare TorchSharp | bare TorchSharp, our settings | PyTorch | ours / PyTorch | bare, our settings / PyTorch | loop / bare, our settings | our settings / none | peak MB ours / bare / bare, our settings / PyTorch |");
    rows.Add("|---|---|---|---|---|---|---|---|---|---|---|");
    foreach (var (arch, size, batch, steps) in new[] { ("resnet18", 32, 64, 20), ("resnet50", 64, 32, 10), ("densenet121", 64, 32, 10), ("unet_resnet18", 64, 8, 20), ("resnet20", 28, 128, 20) })
    {
        if (!Selected(arch)) continue;
        int n = quick ? Math.Max(3, steps / 4) : steps;
        var ours = new List<Measurement>();
        var bare = new List<Measurement>();
        var tuned = new List<Measurement>();
        var peer = new List<Measurement>();
        for (int r = 0; r < runs; r++)
        {
            ours.Add(Child("train-estimator", arch, size, batch, n));
            bare.Add(Child("train-bare", arch, size, batch, n));
            tuned.Add(Child("train-bare-tuned", arch, size, batch, n));
            if (hasPeer) peer.Add(Peer("train", arch, size, batch, n));
        }

        double loop = MedianOf(ours.Select(m => m.LoopImagesPerSecond ?? double.NaN));
        rows.Add($"| {arch} {size}², batch {batch} | {Median(ours):F1} img/s | {loop:F1} img/s | {Median(bare):F1} img/s | {Median(tuned):F1} img/s | {(peer.Count > 0 ? $"{Median(peer):F1} img/s" : "—")} | "
            + $"{(peer.Count > 0 ? $"{Median(ours) / Median(peer):F2}×" : "—")} | {(peer.Count > 0 ? $"{Median(tuned) / Median(peer):F2}×" : "—")} | {loop / Median(tuned):F2}× | {Median(tuned) / Median(bare):F2}× | "
            + $"{MedianMemory(ours):F0} / {MedianMemory(bare):F0} / {MedianMemory(tuned):F0} / {(peer.Count > 0 ? MedianMemory(peer).ToString("F0", CultureInfo.InvariantCulture) : "—")} |");
        Console.WriteLine(rows[^1]);
    }
}

if (what is "score" or "all")
{
    rows.Add("");
    rows.Add("| scoring | ours (model.Transform) | ML.NET ApplyOnnxModel alone | ONNX Runtime, batch 1 | ours / ORT batch 1 | ONNX Runtime, batch B | PyTorch, batch B | ours / PyTorch | PredictionEngine, one image |");
    rows.Add("|---|---|---|---|---|---|---|---|---|");
    foreach (var (arch, size, batch, count) in new[] { ("resnet18", 224, 64, 256), ("resnet50", 224, 32, 128) })
    {
        if (!Selected(arch)) continue;
        int n = quick ? count / 4 : count;
        var ours = new List<Measurement>();
        var apply = new List<Measurement>();
        var single = new List<Measurement>();
        var batched = new List<Measurement>();
        var peer = new List<Measurement>();
        var engine = new List<Measurement>();
        for (int r = 0; r < runs; r++)
        {
            ours.Add(Child("score-transform", arch, size, batch, n));
            apply.Add(Child("score-applyonnx", arch, size, 1, n));
            single.Add(Child("score-ort", arch, size, 1, n));
            batched.Add(Child("score-ort", arch, size, batch, n));
            engine.Add(Child("score-engine", arch, size, 1, Math.Min(n, 32)));
            if (hasPeer) peer.Add(Peer("infer", arch, size, batch, Math.Max(1, n / batch)));
        }

        rows.Add($"| {arch} {size}², B = {batch} | {Median(ours):F1} img/s | {Median(apply):F1} img/s | {Median(single):F1} img/s | {Median(ours) / Median(single):F2}× | {Median(batched):F1} img/s | "
            + $"{(peer.Count > 0 ? $"{Median(peer):F1} img/s" : "—")} | {(peer.Count > 0 ? $"{Median(ours) / Median(peer):F2}×" : "—")} | {1000 / Median(engine):F1} ms |");
        Console.WriteLine(rows[^1]);
    }
}

if (what is "score" or "all")
{
    rows.Add("");
    rows.Add("| featurizer | ours (Transform) | ONNX Runtime, batch 1 | ours / ORT batch 1 | PredictionEngine, one image |");
    rows.Add("|---|---|---|---|---|");
    foreach (var (arch, size, count) in new[] { ("resnet50", 224, 128) })
    {
        if (!Selected(arch)) continue;
        int n = quick ? count / 4 : count;
        var ours = new List<Measurement>();
        var single = new List<Measurement>();
        var engine = new List<Measurement>();
        for (int r = 0; r < runs; r++)
        {
            ours.Add(Child("featurize-transform", arch, size, 1, n));
            single.Add(Child("featurize-ort", arch, size, 1, n));
            engine.Add(Child("featurize-engine", arch, size, 1, Math.Min(n, 32)));
        }

        rows.Add($"| {arch} {size}² | {Median(ours):F1} img/s | {Median(single):F1} img/s | {Median(ours) / Median(single):F2}× | {1000 / Median(engine):F1} ms |");
        Console.WriteLine(rows[^1]);
    }
}

if (what is "ops")
{
    // Per operation, medians of the runs, on 1 and on 2 threads: where the bare TorchSharp/PyTorch gap comes from.
    string opsPeer = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../peers/ops_peer.py"));
    rows.Add("| ResNet-18 operation at 32², batch 64, forward + backward | TorchSharp, 1 thread | PyTorch, 1 thread | TorchSharp speed / PyTorch | TorchSharp, 2 threads | PyTorch, 2 threads | TorchSharp speed / PyTorch |");
    rows.Add("|---|---|---|---|---|---|---|");
    var ours = new Dictionary<int, List<IReadOnlyDictionary<string, double>>> { [1] = new(), [2] = new() };
    var theirs = new Dictionary<int, List<IReadOnlyDictionary<string, double>>> { [1] = new(), [2] = new() };
    for (int r = 0; r < runs; r++)
    {
        foreach (int threads in new[] { 1, 2 })
        {
            ours[threads].Add(Child("ops", "resnet18", 32, 64, threads).Operations!);
            if (hasPeer) theirs[threads].Add(OpsPeer(opsPeer, threads));
        }
    }

    double Ms(Dictionary<int, List<IReadOnlyDictionary<string, double>>> side, int threads, string op) => MedianOf(side[threads].Select(d => d[op]));
    foreach (string op in ours[1][0].Keys)
    {
        string Cell(Dictionary<int, List<IReadOnlyDictionary<string, double>>> side, int threads) =>
            side[threads].Count > 0 ? $"{Ms(side, threads, op):F2} ms" : "—";
        string Ratio(int threads) => theirs[threads].Count > 0 ? $"{Ms(theirs, threads, op) / Ms(ours, threads, op):F2}×" : "—";
        rows.Add($"| {op} | {Cell(ours, 1)} | {Cell(theirs, 1)} | {Ratio(1)} | {Cell(ours, 2)} | {Cell(theirs, 2)} | {Ratio(2)} |");
    }
}

if (what is "input")
{
    // The sides alternate per run; the files are written once, before the first run, outside the timings.
    const int size = 224, batch = 32;
    int rowCount = Option("--rows", quick ? 128 : 512);
    string inputPeer = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../peers/input_peer.py"));
    rows.Add($"| input pipeline, {size}², batch {batch}, flip, {rowCount} images | workers | ours | PyTorch DataLoader | ours / PyTorch |");
    rows.Add("|---|---|---|---|---|");
    foreach (string source in new[] { "png", "jpeg", "memory" })
    {
        string folder = source == "memory" ? "" : InputMeasurements.Files(source, rowCount);
        foreach (int workers in new[] { 1, 2 })
        {
            var ours = new List<Measurement>();
            var peer = new List<Measurement>();
            for (int r = 0; r < runs; r++)
            {
                ours.Add(Child("input-" + source, workers.ToString(CultureInfo.InvariantCulture), size, batch, rowCount));
                if (hasPeer) peer.Add(InputPeer(inputPeer, source, folder, workers, size, batch, rowCount));
            }

            string label = source == "memory" ? "pixels in memory" : $"{source.ToUpperInvariant()} files ({InputMeasurements.SourceSize}², decoded and resized every epoch)";
            rows.Add($"| {label} | {workers} | {Median(ours):F0} img/s | {(peer.Count > 0 ? $"{Median(peer):F0} img/s" : "—")} | "
                + $"{(peer.Count > 0 ? $"{Median(ours) / Median(peer):F2}×" : "—")} |");
            Console.WriteLine(rows[^1]);
        }
    }
}

if (what is "precision")
{
    // Our loop in each precision on one fixed batch, and PyTorch's in float32 and under CPU autocast in bfloat16 (PyTorch
    // 1.13 has no float16 autocast on the CPU); the sides alternate per run.
    string precisionPeer = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../peers/precision_peer.py"));
    rows.Add("| training step, one fixed batch | ours float32 | ours bfloat16 | ours float16 | PyTorch float32 | PyTorch bfloat16 (autocast) | ours / PyTorch, float32 | ours / PyTorch, bfloat16 |");
    rows.Add("|---|---|---|---|---|---|---|---|");
    foreach (var (arch, size, batch, steps) in new[] { ("resnet18", 64, 32, 10), ("resnet50", 64, 32, 5) })
    {
        if (!Selected(arch)) continue;
        int n = quick ? Math.Max(2, steps / 3) : steps;
        var ours = new Dictionary<string, List<Measurement>> { ["float32"] = new(), ["bfloat16"] = new(), ["float16"] = new() };
        var peer = new Dictionary<string, List<Measurement>> { ["float32"] = new(), ["bfloat16"] = new() };
        for (int r = 0; r < runs; r++)
        {
            foreach (var (precision, list) in ours) list.Add(Child("train-loop-" + precision, arch, size, batch, n));
            if (!hasPeer) continue;
            foreach (var (precision, list) in peer)
            {
                string[] lines = JsonLines("/usr/bin/python3", $"{precisionPeer} {arch} --precision {precision} --size {size} --batch {batch} --steps {n} --threads {Environment.ProcessorCount}",
                    $"precision_peer.py {arch} {precision}", 1);
                using JsonDocument result = JsonDocument.Parse(lines[^1]);
                list.Add(new Measurement("pytorch-" + precision, arch, result.RootElement.GetProperty("images_per_s").GetDouble(), 0));
                Console.WriteLine($"  pytorch-{precision,-9} {arch,-10} {list[^1].ImagesPerSecond,8:F1} img/s");
            }
        }

        string Figure(List<Measurement> m) => m.Count > 0 ? $"{Median(m):F0} img/s" : "—";
        string Ratio(List<Measurement> a, List<Measurement> b) => a.Count > 0 && b.Count > 0 ? $"{Median(a) / Median(b):F2}×" : "—";
        rows.Add($"| {arch} {size}², batch {batch} | {Figure(ours["float32"])} | {Figure(ours["bfloat16"])} | {Figure(ours["float16"])} | "
            + $"{Figure(peer["float32"])} | {Figure(peer["bfloat16"])} | {Ratio(ours["float32"], peer["float32"])} | {Ratio(ours["bfloat16"], peer["bfloat16"])} |");
        Console.WriteLine(rows[^1]);
    }
}

if (what is "memory")
{
    // One long run each: memory is about the trend within a run, not about medians.
    var (arch, size, batch) = ("resnet18", 32, 64);
    int epochs = quick ? 4 : 20, scoredRows = quick ? 10_000 : 100_000;
    Measurement training = Child("memory-train", arch, size, batch, epochs);
    Measurement scoring = Child("memory-score", arch, size, 1, scoredRows);
    rows.Add($"| training {arch} {size}², batch {batch}, 10 batches per epoch ({training.ImagesPerSecond:F0} img/s) | resident MB | managed MB | live tensors |");
    rows.Add("|---|---|---|---|");
    rows.AddRange(training.Memory!.Select(m => $"| after epoch {m.At} | {m.ResidentMB:F0} | {m.ManagedMB:F1} | {m.LiveTensors} |"));
    rows.Add("");
    rows.Add($"| scoring {arch} {size}² through model.Transform ({scoring.ImagesPerSecond:F0} img/s) | resident MB | managed MB | live tensors |");
    rows.Add("|---|---|---|---|");
    rows.AddRange(scoring.Memory!.Select(m => $"| after {m.At:N0} rows | {m.ResidentMB:F0} | {m.ManagedMB:F1} | {m.LiveTensors} |"));
}

if (what is "gpu")
{
    // Issue 22's GPU table in one run (benchmarks/GpuMeasurements.cs); packed for the GPU machine by benchmarks/gpu/pack.sh.
    string gpuPeer = Path.GetFullPath(OptionText("--gpu-peer", Path.Combine(AppContext.BaseDirectory, "../../../peers/gpu_peer.py")));
    rows.AddRange(GpuMeasurements.Run(quick, OptionText("--python", "python3"), gpuPeer,
        OptionText("--files", Path.Combine(Path.GetTempPath(), "residualml-bench-gpu"))));
}

if (what is "recipes")
{
    // Issue 23's default-recipe table (benchmarks/RecipeMeasurements.cs): the default recipe, the default with the finder's
    // rate, and a random search, per dataset; every run appended to --results as a JSON line.
    string results = Path.GetFullPath(OptionText("--results", "recipes.jsonl"));
    rows.AddRange(RecipeMeasurements.Run(quick, Option("--trials", quick ? 3 : 20), args.Contains("--datasets") ? OptionText("--datasets", "") : null,
        new[] { OptionText("--idx", "/usr/share/datasets") }, results, args.Contains("--search-only")));
    Console.WriteLine($"every run: {results}");
}

if (what is "sweeps")
{
    string results = Path.GetFullPath(OptionText("--results", "sweeps.jsonl"));
    rows.AddRange(SweepMeasurements.Run(quick, (uint)Option("--seconds", quick ? 30 : 240), OptionText("--dataset", "textures5-48"),
        args.Contains("--variants") ? OptionText("--variants", "") : null, results));
    Console.WriteLine($"every sweep: {results}");
}

if (what is "toolkit")
{
    // Issue 26: class balancing on a 1:20 dataset, the weights' moving average and gradient accumulation, per seed.
    if (!args.Contains("--multi-label-only"))
        rows.AddRange(ToolkitMeasurements.Run(quick, OptionText("--dataset", "shapes8-32"), Option("--seeds", 2), Option("--ratio", 20)));
    if (!args.Contains("--without-multi-label"))
        rows.AddRange(ToolkitMeasurements.RunMultiLabel(Option("--seeds", 2), Option("--train", 1200), Option("--test", 400), Option("--epochs", 8)));
}

if (what is "export")
{
    // Issue 27: each scoring precision against float32: size and ONNX Runtime latency, then accuracy on held-out images.
    if (!args.Contains("--accuracy-only"))
        rows.AddRange(ExportMeasurements.Speed(Option("--size", 224), runs, OptionText("--arch", "resnet18,resnet50,unet_resnet18").Split(',')));
    if (!args.Contains("--speed-only"))
    {
        rows.Add(string.Empty);
        rows.AddRange(ExportMeasurements.Accuracy(quick, OptionText("--datasets", "textures5-48,shapes6-64,shapes-segmentation").Split(','), OptionText("--classifier", "")));
    }
}

if (what is "soak")
{
    var (arch, size, threads) = ("resnet20", 32, 8);
    int predictions = Option("--rows", quick ? 100_000 : 1_000_000);
    Measurement soak = Child("soak", arch, size, threads, predictions);
    rows.Add($"| {threads} threads, one PredictionEngine each, {arch} {size}² ({soak.ImagesPerSecond:F0} predictions/s, {soak.Mismatches} differing from one thread) | resident MB | managed MB |");
    rows.Add("|---|---|---|");
    rows.AddRange(soak.Memory!.Select(m => $"| after {m.At:N0} predictions | {m.ResidentMB:F0} | {m.ManagedMB:F1} |"));
}

Console.WriteLine();
foreach (string row in rows) Console.WriteLine(row);
return 0;

// --arch resnet18,unet_resnet18 limits the tables to those rows.
bool Selected(string arch) => OptionText("--arch", arch).Split(',').Contains(arch);

int Option(string name, int fallback) => int.Parse(OptionText(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

string OptionText(string name, string fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

static double Median(List<Measurement> values) => MedianOf(values.Select(v => v.ImagesPerSecond));

static double MedianMemory(List<Measurement> values) => MedianOf(values.Select(v => v.PeakMemoryMB));

static double MedianOf(IEnumerable<double> values)
{
    double[] sorted = values.OrderBy(v => v).ToArray();
    return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

Measurement Child(string kind, string arch, int size, int batch, int steps)
{
    string self = Environment.ProcessPath!;
    string dll = typeof(Measurement).Assembly.Location;
    string arguments = Path.GetFileNameWithoutExtension(self) == "dotnet" ? $"\"{dll}\" " : string.Empty;
    string line = JsonLines(self, arguments + $"--measure {kind} {arch} {size} {batch} {steps}", $"{kind} {arch}", 1)[^1];
    Measurement m = JsonSerializer.Deserialize<Measurement>(line)!;
    Console.WriteLine($"  {kind,-16} {arch,-14} {m.ImagesPerSecond,8:F1} img/s  peak {m.PeakMemoryMB,6:F0} MB"
        + (m.LoopImagesPerSecond is double loop ? $"  (loop {loop:F1} img/s)" : string.Empty));
    return m;
}

// The peer script, with its peak resident memory read from the same interpreter after it ends.
Measurement Peer(string mode, string arch, int size, int batch, int steps)
{
    string wrapper = "import json, resource, runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
        + "print(json.dumps({'peak_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))";
    string script = ResidualModels.Find(arch)?.Task == ModelTask.Segmenter ? unetPeerScript : peerScript;
    string[] lines = JsonLines("/usr/bin/python3", $"-c \"{wrapper}\" {script} {mode} {arch} --size {size} --batch {batch} --steps {steps} --threads {Environment.ProcessorCount}",
        $"{Path.GetFileName(script)} {mode} {arch}", 2);
    using JsonDocument result = JsonDocument.Parse(lines[^2]), memory = JsonDocument.Parse(lines[^1]);
    var m = new Measurement("pytorch-" + mode, arch, result.RootElement.GetProperty("images_per_s").GetDouble(), memory.RootElement.GetProperty("peak_kb").GetDouble() / 1024);
    Console.WriteLine($"  {"pytorch-" + mode,-16} {arch,-14} {m.ImagesPerSecond,8:F1} img/s  peak {m.PeakMemoryMB,6:F0} MB");
    return m;
}

Measurement InputPeer(string script, string source, string folder, int workers, int size, int batch, int count)
{
    string arguments = source == "memory" ? $"{script} memory --rows {count}" : $"{script} files --folder \"{folder}\"";
    using JsonDocument result = JsonDocument.Parse(JsonLines("/usr/bin/python3", $"{arguments} --size {size} --batch {batch} --workers {workers} --epochs {InputMeasurements.TimedEpochs(source)}", "input_peer.py", 1)[^1]);
    var m = new Measurement("pytorch-input-" + source, workers.ToString(CultureInfo.InvariantCulture), result.RootElement.GetProperty("images_per_s").GetDouble(), 0);
    Console.WriteLine($"  {m.Kind,-16} {m.Arch,-14} {m.ImagesPerSecond,8:F1} img/s");
    return m;
}

IReadOnlyDictionary<string, double> OpsPeer(string script, int threads)
{
    using JsonDocument result = JsonDocument.Parse(JsonLines("/usr/bin/python3", $"{script} --threads {threads}", "ops_peer.py", 1)[^1]);
    return result.RootElement.GetProperty("ops").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
}

// The JSON lines a measuring process printed (at least `needed` of them), or an error with all it printed.
static string[] JsonLines(string file, string arguments, string what, int needed)
{
    var (code, output) = Run(file, arguments);
    string[] lines = output.Split('\n').Where(l => l.TrimStart().StartsWith('{')).ToArray();
    if (code != 0 || lines.Length < needed) throw new InvalidOperationException($"{what} failed ({code}):\n{output}");
    return lines;
}

static (int ExitCode, string Output) Run(string file, string arguments)
{
    var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
    using Process process = Process.Start(start)!;
    var error = process.StandardError.ReadToEndAsync();
    string output = process.StandardOutput.ReadToEnd();
    process.WaitForExit();
    return (process.ExitCode, output + error.Result);
}
