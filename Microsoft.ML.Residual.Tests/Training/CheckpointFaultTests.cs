using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.ML.Residual.IO;
using Microsoft.ML.Residual.Models;
using Microsoft.ML.Residual.Tests.Cli;
using Microsoft.ML.Residual.Tests.Models;
using Microsoft.ML.Residual.Training;
using Microsoft.ML.Residual.Weights;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Training;

/// <summary>Training that is killed or whose disk fails loses nothing: the checkpoint directory always holds a good checkpoint to resume from.</summary>
[TestClass]
public sealed class CheckpointFaultTests
{
    public TestContext TestContext { get; set; } = null!;

    private static TrainingOptions Options(string directory) => new()
    {
        Epochs = 3, LearningRate = 0.1, WarmupEpochs = 0.5, Seed = 3, CheckpointDirectory = directory,
    };

    private static nn.Module<Tensor, Tensor> Network(long seed) => ResidualModels.Create("resnet20", 3, options: new ResNetOptions { Seed = seed });

    [TestMethod]
    public void KilledTrainingProcess_ResumedWithTheSameCommand_EndsWithTheWeightsOfAnUninterruptedRun()
    {
        string root = Directory.CreateTempSubdirectory("residualml-kill-").FullName;
        try
        {
            CliImages.WriteClassFolders(Path.Combine(root, "textures"), perClass: 30, seed: 1);
            string[] Train(string name) => new[]
            {
                "train", "--dataset", "textures", "--arch", "resnet20", "--epochs", "5", "--image-size", "16", "--batch-size", "8",
                "--learning-rate", "0.05", "--seed", "5", "--checkpoints", name + "-checkpoints", "--output", name,
            };

            var (wholeExit, wholeOutput) = RunToEnd(root, Train("whole"));
            Assert.AreEqual(0, wholeExit, wholeOutput);

            // The interrupted run is killed in the middle of training, as soon as epoch 2's checkpoint is the latest: during
            // epoch 3 (or while it removes epoch 1's). Three more epochs separate that from the end of the run, whatever the
            // machine's speed or load (a wait measured in epoch times could be outrun when the load drops); the test resumes
            // from whichever checkpoint the kill left.
            string checkpoints = Path.Combine(root, "killed-checkpoints");
            using (Process child = Start(root, Train("killed")))
            {
                WaitForCheckpoint(child, checkpoints, 2);
                Assert.IsFalse(child.HasExited, "the run ended before it could be killed");
                child.Kill(entireProcessTree: true);
                child.WaitForExit();
            }

            int killedAfter = TrainingCheckpoints.LatestEpoch(checkpoints) ?? 0;
            Assert.IsTrue(killedAfter is >= 2 and < 5, $"the killed run's last complete checkpoint is epoch {killedAfter}");
            Assert.IsFalse(File.Exists(Path.Combine(root, "killed", "model.zip")), "the killed run wrote no model");

            var (resumedExit, resumedOutput) = RunToEnd(root, Train("killed"));
            Assert.AreEqual(0, resumedExit, resumedOutput);
            StringAssert.Contains(resumedOutput, $"Resuming after epoch {killedAfter}");
            Assert.IsTrue(File.Exists(Path.Combine(root, "killed", "model.zip")));

            // CPU, fixed seed: the same weights as the uninterrupted run, bit for bit. The checkpoint holds weights, statistics
            // and optimiser state exactly (float32 as float32), each epoch's data order and augmentation come from the seed and
            // the epoch, and the remaining steps are the same float32 operations.
            using TensorDictionary expected = StateDict.Read(Path.Combine(root, "whole-checkpoints", "epoch-0005", "model.safetensors"));
            using TensorDictionary actual = StateDict.Read(Path.Combine(checkpoints, "epoch-0005", "model.safetensors"));
            CollectionAssert.AreEquivalent(expected.Keys.ToArray(), actual.Keys.ToArray());
            foreach (string key in expected.Keys)
                Assert.IsTrue(actual[key].IsEqualTo(expected[key]), $"{key}: largest difference {(actual[key].to_type(ScalarType.Float64) - expected[key].to_type(ScalarType.Float64)).abs().max().item<double>()}");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void DiskFullWhileCheckpointing_StopsWithAClearError_KeepsTheLastGoodCheckpoint_AndResumesFromIt()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        const int BatchSize = 30;

        // Every file of epoch 2's checkpoint fails as on a full disk; epoch 1's was written.
        InvalidOperationException error;
        using (FaultInjection.OnWrite(path =>
        {
            if (path.Contains("epoch-0002", StringComparison.Ordinal)) throw new IOException("No space left on device : '" + path + "'");
        }))
        {
            error = Assert.ThrowsExactly<InvalidOperationException>(() => new TrainingLoop(Network(1), Options(directory)).Train(
                e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize)));
        }

        StringAssert.Contains(error.Message, "checkpoint of epoch 2");
        StringAssert.Contains(error.Message, "No space left on device");
        StringAssert.Contains(error.Message, "the last good checkpoint is kept");
        Assert.IsInstanceOfType<IOException>(error.InnerException);
        Assert.AreEqual(1, TrainingCheckpoints.LatestEpoch(directory));
        Assert.AreEqual(0, Directory.GetFileSystemEntries(directory, ".*").Length, "no temporary file or folder is left");

        TrainingResult resumed = new TrainingLoop(Network(2), Options(directory)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        Assert.AreEqual(1, resumed.ResumedAfterEpoch);
        Assert.AreEqual(3, resumed.History.Count);
        Assert.AreEqual(3, TrainingCheckpoints.LatestEpoch(directory));
    }

    [TestMethod]
    public void FailureWhileReplacingTheLatestPointer_LeavesThePreviousCheckpointUsable()
    {
        using var train = new TrainingTestData(60, 12, seed: 1);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        const int BatchSize = 30;
        int latestWrites = 0;
        using (FaultInjection.OnWrite(path =>
        {
            // The second epoch's folder is complete and in place; the disk fails as the pointer to it is written.
            if (Path.GetFileName(path).StartsWith(".latest.", StringComparison.Ordinal) && ++latestWrites == 2) throw new IOException("Input/output error");
        }))
        {
            Assert.ThrowsExactly<InvalidOperationException>(() => new TrainingLoop(Network(1), Options(directory)).Train(
                e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize)));
        }

        Assert.AreEqual(1, TrainingCheckpoints.LatestEpoch(directory), "latest still names epoch 1, whose folder is kept");
        TrainingResult resumed = new TrainingLoop(Network(2), Options(directory)).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));
        Assert.AreEqual(1, resumed.ResumedAfterEpoch);
    }

    [TestMethod]
    public void CheckpointOfAnEarlierVersion_WithOptimizerBin_StopsWithAdviceToStartAfresh()
    {
        using var train = new TrainingTestData(30, 12, seed: 1);
        string directory = ModelTestSupport.TempFile(TestContext, "-checkpoints");
        const int BatchSize = 30;
        TrainingOptions firstEpoch = Options(directory);
        firstEpoch.StopAfterEpoch = 1;
        new TrainingLoop(Network(1), firstEpoch).Train(e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize));

        // Earlier versions wrote TorchSharp's optimizer.bin, which is no longer read.
        string checkpoint = Path.Combine(Path.GetFullPath(directory), "epoch-0001");
        File.Move(Path.Combine(checkpoint, "optimizer.safetensors"), Path.Combine(checkpoint, "optimizer.bin"));
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => new TrainingLoop(Network(2), Options(directory)).Train(
            e => train.Epoch(e, BatchSize), train.StepsPerEpoch(BatchSize)));
        StringAssert.Contains(error.Message, checkpoint);
        StringAssert.Contains(error.Message, "earlier version");
        StringAssert.Contains(error.Message, "Delete the checkpoint directory");
    }

    [TestMethod]
    public void LatestEpoch_OfAMissingOrEmptyDirectory_IsNull()
    {
        string directory = ModelTestSupport.TempFile(TestContext, "-none");
        Assert.IsNull(TrainingCheckpoints.LatestEpoch(directory));
        Directory.CreateDirectory(directory);
        Assert.IsNull(TrainingCheckpoints.LatestEpoch(directory));
    }

    // residualml as a separate process, as a user runs it.
    private static ProcessStartInfo Residualml(string workingDirectory, string[] args) =>
        new(TestRepository.DotnetHost(), new[] { Path.Combine(AppContext.BaseDirectory, "residualml.dll") }.Concat(args))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory,
        };

    private static Process Start(string workingDirectory, string[] args)
    {
        Process process = Process.Start(Residualml(workingDirectory, args))!;
        // Drain both streams so that the child never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static (int ExitCode, string Output) RunToEnd(string workingDirectory, string[] args)
    {
        using Process process = Process.Start(Residualml(workingDirectory, args))!;
        var errors = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + errors.Result);
    }

    // Polls until epoch's checkpoint is the latest complete one. The five minutes only stop a hung run from hanging the
    // suite (two epochs take seconds); nothing is concluded from how long it took.
    private static void WaitForCheckpoint(Process child, string directory, int epoch)
    {
        var clock = Stopwatch.StartNew();
        while (TrainingCheckpoints.LatestEpoch(directory) is not int latest || latest < epoch)
        {
            if (child.HasExited) Assert.Fail($"The training process ended (exit {child.ExitCode}) before its checkpoint of epoch {epoch}.");
            if (clock.Elapsed > TimeSpan.FromMinutes(5)) Assert.Fail($"No checkpoint of epoch {epoch} after 5 minutes.");
            Thread.Sleep(5);
        }
    }
}
