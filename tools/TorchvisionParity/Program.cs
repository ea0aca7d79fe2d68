// Checks our models against torchvision with full-size weights made by the peer script:
//
//   /usr/bin/python3 ../shared/peers/torchvision_reference.py resnet50 /tmp/tvref --classes 1000
//   dotnet run --project tools/TorchvisionParity -c Release -- /tmp/tvref resnet50 [more names]
//
// For each name: loads ARCH.safetensors and ARCH.pth strictly into ResidualModels.Create(name), runs
// ARCH.io.safetensors' "input" in eval mode and compares with its "logits" (float32). The peer script's
// random BatchNorm statistics make deep networks' logits huge (resnet152: ~1e11), and then float32
// rounding alone moves torchvision's own logits by more than 1e-4. When ARCH.io64.safetensors exists
// (torchvision's logits computed in float64 from the same .pth), the model is also run in float64, which
// separates structure from rounding. A name passes when its float32 logits are within 1e-4 absolute or
// 1e-4 relative (per logit, |Δ| ≤ 1e-4·max(1, |y|)); or, failing that, when in float64 it matches
// torchvision to 1e-9 of the logit scale and its float32 error is no larger than torchvision's own
// float32-vs-float64 error (times 2). Exit code 1 when a name fails.
using System;
using System.IO;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using TorchSharp;
using static TorchSharp.torch;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: TorchvisionParity REFERENCE_DIR ARCH [ARCH ...]");
    return 2;
}

string folder = args[0];
bool allPassed = true;
foreach (string arch in args.Skip(1))
{
    using var io = StateDict.Read(Path.Combine(folder, arch + ".io.safetensors"));
    Tensor input = io["input"];
    Tensor expected = io["logits"];
    string doublePath = Path.Combine(folder, arch + ".io64.safetensors");
    using var io64 = File.Exists(doublePath) ? StateDict.Read(doublePath) : null;
    foreach (string extension in new[] { ".safetensors", ".pth" })
    {
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create(arch, numClasses: (int)expected.shape[1]);
        StateDict.Load(model, Path.Combine(folder, arch + extension), strict: true);
        model.eval();
        using var noGrad = no_grad();
        Tensor actual = model.call(input);
        Tensor difference = (actual - expected).abs();
        double maxAbsolute = difference.max().item<float>();
        double maxRelative = (difference / expected.abs().clamp_min(1.0)).max().item<float>();
        bool passed = maxRelative <= 1e-4;
        string doubleReport = string.Empty;
        if (io64 != null)
        {
            Tensor expected64 = io64["logits"];
            double scale = expected64.abs().max().item<double>();
            double torchvisionRounding = (expected.to_type(ScalarType.Float64) - expected64).abs().max().item<double>();
            model.to(ScalarType.Float64);
            double difference64 = (model.call(io64["input"]) - expected64).abs().max().item<double>();
            bool structureMatches = difference64 <= 1e-9 * Math.Max(1.0, scale);
            passed |= structureMatches && maxAbsolute <= 2 * torchvisionRounding;
            doubleReport = $"  float64 max |Δ|/scale {difference64 / Math.Max(1.0, scale):E2}  torchvision's own f32 rounding {torchvisionRounding:E2}";
        }

        allPassed &= passed;
        Console.WriteLine($"{arch,-16} {extension,-12} max |y| {expected.abs().max().item<float>():E2}  f32 max |Δ| {maxAbsolute:E2}  max |Δ|/max(1,|y|) {maxRelative:E2}{doubleReport}  {(passed ? "ok" : "FAIL")}");
        model.Dispose();
    }
}

return allPassed ? 0 : 1;
