// Checks our models against torchvision with full-size weights made by the peer script:
//
//   /usr/bin/python3 ../shared/peers/torchvision_reference.py resnet50 /tmp/tvref --classes 1000
//   dotnet run --project tools/TorchvisionParity -c Release -- /tmp/tvref resnet50 [more names]
//
// For each name: loads ARCH.safetensors and ARCH.pth strictly into ResidualModels.Create(name), runs
// ARCH.io.safetensors' "input" in eval mode and compares with its "logits". Exit code 1 when any
// difference exceeds 1e-4 absolute (or 1e-4 relative for |logit| > 1).
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
        allPassed &= passed;
        Console.WriteLine($"{arch,-18} {extension,-12} logits {string.Join("x", actual.shape)}  max |Δ| {maxAbsolute:E2}  max |Δ|/max(1,|y|) {maxRelative:E2}  max |y| {expected.abs().max().item<float>():F2}  {(passed ? "ok" : "FAIL")}");
        model.Dispose();
    }
}

return allPassed ? 0 : 1;
