using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Classification;
using Microsoft.ML.Residual.Data;
using Microsoft.ML.Residual.Diagnostics;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Onnx;
using Microsoft.ML.Residual.Segmentation;
using Microsoft.ML.Residual.Tests.Build;
using Microsoft.ML.Residual.Tests.Classification;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Tests.Segmentation;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

/// <summary>
/// Every path that runs TorchSharp code, run while another thread forces garbage collections without pause. A Scalar
/// handed to libtorch without being kept alive is then finalised during the native call often enough to fail (libtorch's
/// "Expected false to be true … Scalar.h", or a wrong result): TorchSharp's own BatchNorm2d failed within
/// ~13,000 training-mode calls this way. With the library's code nothing may fail. Each test runs a fixed amount of work.
/// </summary>
[TestClass]
public sealed class GcStormTests
{
    private const int ImageSize = 8;
    private const int SegmentSize = 32;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void ClassifierTraining_WithSgdNesterovMixingAndCheckpoints_SurvivesAGcStorm()
    {
        TrainUnderStorm("resnet20", new TrainingOptions
        {
            Epochs = 2, LearningRate = 0.1, Nesterov = true, WarmupEpochs = 1, LabelSmoothing = 0.1, MixupAlpha = 0.2, CutMixAlpha = 1.0,
            GradientClipNorm = 5, Seed = 1, CheckpointDirectory = Path.Combine(TestRunFiles.Folder, "gc-storm-" + Guid.NewGuid().ToString("N")),
        });
    }

    [TestMethod]
    public void PreActivationTraining_WithStochasticDepthAdamWAStepScheduleAccumulationAndAnAverage_SurvivesAGcStorm()
    {
        TrainUnderStorm("resnet20", new TrainingOptions
        {
            Epochs = 2, Optimizer = OptimizerKind.AdamW, LearningRate = 1e-3, Schedule = LearningRateScheduleKind.Step, StepMilestones = new[] { 1 },
            EarlyStoppingPatience = 10, Seed = 2, GradientAccumulationSteps = 2, ModelEmaDecay = 0.9,
        }, modelOptions: new ResNetOptions { PreActivation = true, DropPathRate = 0.2, ResidualScale = 0.5, IdentityDecay = 0.1 });
    }

    [TestMethod]
    public void DenseNetTraining_InMemoryEfficientMode_SurvivesAGcStorm()
    {
        TrainUnderStorm("densenet_bc_100_12", new TrainingOptions { Epochs = 1, LearningRate = 0.1, Seed = 3 }, count: 32,
            new DenseNetOptions { MemoryEfficient = true, BlockConfig = new[] { 2, 2, 2 } });
    }

    [TestMethod]
    public void TheModelsBatchNormLayers_InTrainingMode_SurviveAGcStorm()
    {
        // Many cheap calls: TorchSharp's own BatchNorm2d failed within ~13,000 training-mode calls under such a storm.
        using var scope = NewDisposeScope();
        var model = ResidualModels.Create("resnet20", 3);
        model.train();
        BatchNorm[] norms = model.modules().OfType<BatchNorm>().Take(4).ToArray();
        var inputs = norms.Select(n => randn(2, n.num_features, 2, 2)).ToArray();
        using var noGrad = no_grad();
        using var storm = GcStorm.Start();
        for (int call = 0; call < 10_000; call++)
        {
            using var step = NewDisposeScope();
            for (int i = 0; i < norms.Length; i++) norms[i].call(inputs[i]);
        }

        Assert.IsTrue(norms.All(n => n.num_batches_tracked!.item<long>() == 10_000));
    }

    [TestMethod]
    [DataRow(OptimizerKind.Sgd)]
    [DataRow(OptimizerKind.AdamW)]
    public void OptimizerSteps_WithTheScheduleSettingTheRate_SurviveAGcStorm(OptimizerKind kind)
    {
        using var scope = NewDisposeScope();
        var options = new TrainingOptions { Optimizer = kind, Epochs = 4, LearningRate = 1e-3, Nesterov = true, WarmupEpochs = 1, WeightDecay = 1e-4, Seed = 1 };
        manual_seed(1);
        var module = nn.Sequential(("fc", nn.Linear(4, 3)), ("out", nn.Linear(3, 2)));
        using (var grad = NewDisposeScope())
            nn.functional.cross_entropy(module.call(randn(8, 4)), tensor(new long[] { 0, 1, 0, 1, 0, 1, 0, 1 })).backward();
        const long stepsPerEpoch = 2_000;
        var schedule = new LearningRateSchedule(options, stepsPerEpoch);
        using TrainingOptimizer optimizer = TrainingOptimizer.Create(module, options);
        using var storm = GcStorm.Start();
        for (long step = 0; step < schedule.TotalSteps; step++)
        {
            optimizer.SetLearningRate(schedule.At(step));
            optimizer.Step();
        }

        Assert.IsTrue(module.parameters().All(p => p.isfinite().all().item<bool>()));
    }

    [TestMethod]
    public void ClassifierEstimator_FitAndScore_SurvivesAGcStorm()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(48, seed: 1));
        using var storm = GcStorm.Start();
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ResNetClassifier(new ImageClassifierOptions
            {
                Architecture = "resnet20", ImageWidth = 16, ImageHeight = 16, Epochs = 2, BatchSize = 8, Seed = 1, ValidationFraction = 0.25,
                Augmentation = new ImageAugmentation { HorizontalFlipProbability = 0.5 },
            }));
        ITransformer model = pipeline.Fit(train);
        float[][] scores = model.Transform(train).GetColumn<float[]>("Score").ToArray();
        Assert.IsTrue(scores.All(s => s.All(float.IsFinite)));
    }

    [TestMethod]
    public void SegmenterFit_SurvivesAGcStorm()
    {
        var ml = new MLContext(seed: 1);
        IDataView train = ml.Data.LoadFromEnumerable(UNetSegmenterTests.Shapes(16, seed: 1));
        using var storm = GcStorm.Start();
        ITransformer model = ml.Transforms.UNetSegmenter(new SegmenterOptions
        {
            Architecture = "unet", ModelOptions = new UNetOptions { Depth = 3, BaseWidth = 8 }, NumClasses = 3,
            ImageWidth = SegmentSize, ImageHeight = SegmentSize, Epochs = 2, BatchSize = 4, Seed = 1,
            Loss = SegmentationLoss.CrossEntropyDice,
        }).Fit(train);
        int rows = model.Transform(train).GetColumn<uint[]>("PredictedMask").Count();
        Assert.AreEqual(16, rows);
    }

    [TestMethod]
    [DataRow("retinanet_resnet18_fpn")]
    [DataRow("fcos_resnet18_fpn")]
    public void DetectorFit_WithBoxAugmentationLossesAndExport_SurvivesAGcStorm(string architecture)
    {
        var ml = new MLContext(seed: 1);
        IDataView train = Detection.ObjectDetectorEstimatorTests.Keyed(ml, Detection.ObjectDetectorEstimatorTests.Shapes(8, seed: 1));
        Microsoft.ML.Residual.Detection.ObjectDetectorOptions options = Detection.ObjectDetectorEstimatorTests.TinyOptions(architecture);
        options.Epochs = 2;
        options.BatchSize = 4;
        options.ScoreThreshold = 0.01;
        using var storm = GcStorm.Start();
        ITransformer model = ml.Detection().ObjectDetector(options).Fit(train);
        int rows = model.Transform(train).GetColumn<float[]>("Score").Count();
        Assert.AreEqual(8, rows);
    }

    [TestMethod]
    public void FeaturizerFitExportAndDiagnostics_SurviveAGcStorm()
    {
        string weights = ModelTestSupport.TempFile(TestContext, ".safetensors");
        using (var scope = NewDisposeScope())
        {
            StateDict.Save(ResidualModels.Create("resnet20", 10, options: new ResNetOptions { Seed = 4 }), weights);
        }

        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(ImageClassifierEstimatorTests.Textures(16, seed: 3));
        using var storm = GcStorm.Start();
        for (int round = 0; round < 2; round++)
        {
            ITransformer featurizer = ml.Transforms.ResNetFeaturizer("Embedding", "Image", architecture: "resnet20", weightsPath: weights,
                imageWidth: 16, imageHeight: 16).Fit(data);
            Assert.AreEqual(16, featurizer.Transform(data).GetColumn<float[]>("Embedding").Count());
        }

        using (var scope = NewDisposeScope())
        {
            var model = ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = 5 });
            model.eval();
            using var train = new TrainingTestData(16, ImageSize, seed: 5);
            for (int round = 0; round < 2; round++)
            {
                Assert.IsTrue(OnnxExporter.ExportToBytes(model, new long[] { 1, 3, ImageSize, ImageSize }).Length > 0);
                GradientFlowReport flow = GradientFlow.Measure(model, train.Images, train.Labels);
                Assert.IsTrue(flow.BlockInputGradientNorms.All(double.IsFinite));
                JacobianReport jacobian = BlockJacobian.Measure(model, train.Images.slice(0, 0, 4, 1), iterations: 3);
                Assert.IsTrue(jacobian.SpectralNorms.All(double.IsFinite));
                LipschitzReport lipschitz = LipschitzBound.Measure(model, ImageSize, ImageSize, iterations: 3);
                Assert.IsTrue(double.IsFinite(lipschitz.UpperBound));
            }
        }

    }

    [TestMethod]
    public void TheseTestsOwnCode_HoldsEveryScalar()
    {
        // The tests would fail for the wrong reason if their own code handed libtorch a temporary Scalar.
        var types = new[] { typeof(GcStormTests), typeof(TrainingTestData), typeof(GcStorm) };
        var methods = ScalarLifetimeAnalysis.MethodsOf(types.Concat(types.SelectMany(t => t.GetNestedTypes(BindingFlags.NonPublic | BindingFlags.Public))));
        var violations = ScalarLifetimeAnalysis.ForLoadedTorchSharp.Violations(methods);
        Assert.AreEqual(0, violations.Count, string.Join("\n", violations));
    }

    private void TrainUnderStorm(string architecture, TrainingOptions options, int count = 48, ModelOptions? modelOptions = null)
    {
        using var scope = NewDisposeScope();
        using var train = new TrainingTestData(count, ImageSize, seed: 1);
        using var validation = new TrainingTestData(8, ImageSize, seed: 2);
        var model = ResidualModels.Create(architecture, 3, options: modelOptions);
        const int batchSize = 4;
        var reports = new List<EpochReport>();
        using var storm = GcStorm.Start();
        TrainingResult result = new TrainingLoop(model, options).Train(e => train.Epoch(e, batchSize), train.StepsPerEpoch(batchSize),
            () => validation.Epoch(0, batchSize, shuffle: false), new SynchronousProgress<EpochReport>(reports.Add));
        Assert.AreEqual(options.Epochs, result.History.Count);
        Assert.IsTrue(reports.All(r => double.IsFinite(r.TrainingLoss)), string.Join(", ", reports.Select(r => r.TrainingLoss)));
    }
}

/// <summary>A background thread that forces full garbage collections and runs the finalizers, back to back, until disposed.</summary>
internal sealed class GcStorm : IDisposable
{
    private readonly Thread thread;
    private readonly ManualResetEventSlim firstCollection = new();
    private volatile bool stopping;

    private GcStorm()
    {
        thread = new Thread(Run) { IsBackground = true, Name = "GC storm" };
    }

    /// <summary>Starts the storm and returns once the first collection is done.</summary>
    public static GcStorm Start()
    {
        var storm = new GcStorm();
        storm.thread.Start();
        storm.firstCollection.Wait();
        return storm;
    }

    private void Run()
    {
        while (!stopping)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            firstCollection.Set();
        }
    }

    public void Dispose()
    {
        stopping = true;
        thread.Join();
        firstCollection.Dispose();
    }
}
