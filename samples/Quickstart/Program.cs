// Quickstart: train a residual network (SGD with a one-cycle schedule) from the ResidualML model registry on built-in generated
// images (three texture classes), evaluate it on a held-out set and save its weights as safetensors.
//
//   dotnet run --project samples/Quickstart [-- --model resnet20 --epochs 4 --out quickstart.safetensors]
using System;
using System.Diagnostics;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Weights;
using TorchSharp;
using static TorchSharp.torch;

string modelName = Argument("--model", "resnet20");
int epochs = int.Parse(Argument("--epochs", "4"));
string outputPath = Argument("--out", "quickstart.safetensors");
const int imageSize = 32, classCount = 3, batchSize = 32;
string[] classNames = { "horizontal stripes", "vertical stripes", "checkerboard" };

torch.set_num_threads(Environment.ProcessorCount);
torch.manual_seed(1);
(Tensor trainImages, Tensor trainLabels) = TextureDataset.Generate(count: 900, imageSize, seed: 1);
(Tensor testImages, Tensor testLabels) = TextureDataset.Generate(count: 300, imageSize, seed: 2);

var model = ResidualModels.Create(modelName, numClasses: classCount,
    options: new ResNetOptions { Stem = StemKind.Cifar, ZeroInitResidual = true, Seed = 1 });
long parameterCount = model.parameters().Sum(p => p.numel());
Console.WriteLine($"{modelName}: {parameterCount:N0} parameters; {trainImages.shape[0]} training and {testImages.shape[0]} test images of {imageSize}x{imageSize}");

var optimizer = optim.SGD(model.parameters(), learningRate: 0.1, momentum: 0.9, weight_decay: 5e-4);
long batchesPerEpoch = (trainImages.shape[0] + batchSize - 1) / batchSize;
var schedule = optim.lr_scheduler.OneCycleLR(optimizer, max_lr: 0.1, total_steps: (int)(epochs * batchesPerEpoch));
var clock = Stopwatch.StartNew();
for (int epoch = 1; epoch <= epochs; epoch++)
{
    model.train();
    double lossSum = 0;
    using (var epochScope = NewDisposeScope())
    {
        Tensor order = randperm(trainImages.shape[0]);
        for (long b = 0; b < batchesPerEpoch; b++)
        {
            using var stepScope = NewDisposeScope();
            Tensor index = order.slice(0, b * batchSize, Math.Min((b + 1) * batchSize, trainImages.shape[0]), 1);
            optimizer.zero_grad();
            Tensor loss = nn.functional.cross_entropy(model.call(trainImages.index_select(0, index)), trainLabels.index_select(0, index));
            loss.backward();
            optimizer.step();
            schedule.step();
            lossSum += loss.item<float>();
        }
    }

    double accuracy = Evaluate(model, testImages, testLabels, out _);
    Console.WriteLine($"epoch {epoch}/{epochs}  train loss {lossSum / batchesPerEpoch:F4}  test accuracy {accuracy:P1}  ({clock.Elapsed.TotalSeconds:F1} s)");
}

double finalAccuracy = Evaluate(model, testImages, testLabels, out long[,] confusion);
Console.WriteLine($"\nTest accuracy: {finalAccuracy:P1}\nConfusion matrix (rows = truth, columns = prediction):");
for (int t = 0; t < classCount; t++)
    Console.WriteLine($"  {classNames[t],-20}" + string.Concat(Enumerable.Range(0, classCount).Select(p => $"{confusion[t, p],6}")));
StateDict.Save(model, outputPath);
Console.WriteLine($"Weights saved to {System.IO.Path.GetFullPath(outputPath)} (safetensors, torchvision key names).");

// Reload into a fresh network: strict loading checks every key and shape.
var reloaded = ResidualModels.Create(modelName, numClasses: classCount, options: new ResNetOptions { Stem = StemKind.Cifar });
StateDict.Load(reloaded, outputPath, strict: true);
double reloadedAccuracy = Evaluate(reloaded, testImages, testLabels, out _);
Console.WriteLine($"Reloaded from the file: test accuracy {reloadedAccuracy:P1}");
return reloadedAccuracy == finalAccuracy ? 0 : 1;

static double Evaluate(nn.Module<Tensor, Tensor> model, Tensor images, Tensor labels, out long[,] confusion)
{
    model.eval();
    int classes = (int)labels.max().item<long>() + 1;
    confusion = new long[classes, classes];
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    long[] predicted = model.call(images).argmax(1).data<long>().ToArray();
    long[] truth = labels.data<long>().ToArray();
    for (int i = 0; i < truth.Length; i++) confusion[truth[i], predicted[i]]++;
    return predicted.Zip(truth).Count(p => p.First == p.Second) / (double)truth.Length;
}

string Argument(string name, string fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
}

/// <summary>Built-in data: noisy, randomly coloured textures of three kinds.</summary>
internal static class TextureDataset
{
    public static (Tensor Images, Tensor Labels) Generate(int count, int size, int seed)
    {
        var random = new Random(seed);
        var pixels = new float[count * 3 * size * size];
        var labels = new long[count];
        for (int n = 0; n < count; n++)
        {
            int label = n % 3;
            labels[n] = label;
            int period = random.Next(3, 8);
            int phase = random.Next(period);
            var foreground = new[] { random.NextSingle(), random.NextSingle(), random.NextSingle() };
            var background = new[] { random.NextSingle(), random.NextSingle(), random.NextSingle() };
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool on = label switch
                {
                    0 => (y + phase) / period % 2 == 0,
                    1 => (x + phase) / period % 2 == 0,
                    _ => ((x + phase) / period + (y + phase) / period) % 2 == 0,
                };
                for (int c = 0; c < 3; c++)
                {
                    float value = (on ? foreground[c] : background[c]) + 0.15f * (random.NextSingle() - 0.5f);
                    pixels[((n * 3 + c) * size + y) * size + x] = (value - 0.5f) / 0.25f;
                }
            }
        }

        return (tensor(pixels, new long[] { count, 3, size, size }), tensor(labels));
    }
}
