using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.ML.Residual.Weights;
using TorchSharp;
using Microsoft.ML.Residual.IO;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// Per-epoch checkpoints in a directory, each written completely before it becomes visible:
    /// <c>epoch-NNNN/</c> (model weights as safetensors, optimiser state, history, the weights' moving average if any) is written under a temporary
    /// name and renamed, then the one-line file <c>latest</c> is replaced atomically to point at it, and only then
    /// are older epochs removed. A crash at any moment leaves the previous checkpoint usable. The best epoch's
    /// weights are kept in <c>best-epoch-NNNN.safetensors</c>, named by epoch so that the file a checkpoint's history
    /// calls best is never replaced before <c>latest</c> moves on.
    /// </summary>
    internal sealed class CheckpointStore
    {
        private const string LatestFile = "latest";
        private const string BestPrefix = "best-epoch-";
        private const string WeightsFile = "model.safetensors";
        private const string OptimizerFile = "optimizer.safetensors";
        // The optimiser state of checkpoints written while the library used TorchSharp's optimisers (TorchSharp's own format).
        private const string OldOptimizerFile = "optimizer.bin";
        private const string HistoryFile = "history.json";
        // The moving average of the weights (TrainingOptions.ModelEmaDecay), by state-dict key.
        private const string AveragedWeightsFile = "averaged-weights.safetensors";
        // Float16 training's loss scale (TrainingPrecision.Float16), so that a resumed run scales as an uninterrupted one.
        private const string LossScaleFile = "loss-scale.json";

        private readonly string directory;

        public CheckpointStore(string directory)
        {
            this.directory = Path.GetFullPath(directory);
            try
            {
                Directory.CreateDirectory(this.directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"Cannot create the checkpoint directory '{this.directory}': {e.Message} Choose a writable CheckpointDirectory.", e);
            }
        }

        public sealed record Resumed(int Epoch, IReadOnlyList<EpochReport> History, Dictionary<string, Tensor>? AveragedWeights);

        private sealed record LossScaleState(double Scale, int GoodSteps);

        public void Save(nn.Module model, TrainingOptimizer optimizer, int epoch, IReadOnlyList<EpochReport> history, Dictionary<string, Tensor>? bestWeights,
            DynamicLossScaler? lossScaler = null, Dictionary<string, Tensor>? averagedWeights = null)
        {
            string name = $"epoch-{epoch:D4}";
            string final = Path.Combine(directory, name);
            string temporary = Path.Combine(directory, $".{name}.{Guid.NewGuid():N}.tmp");
            try
            {
                Directory.CreateDirectory(temporary);
                StateDict.Save(model, Path.Combine(temporary, WeightsFile));
                optimizer.SaveState(Path.Combine(temporary, OptimizerFile));   // written atomically, as the weights are
                if (averagedWeights != null) SafeTensors.Write(Path.Combine(temporary, AveragedWeightsFile), averagedWeights);
                AtomicFile.Write(Path.Combine(temporary, HistoryFile), file => File.WriteAllText(file, JsonSerializer.Serialize(history)));
                if (lossScaler?.State is var (scale, goodSteps))
                    AtomicFile.Write(Path.Combine(temporary, LossScaleFile), file => File.WriteAllText(file, JsonSerializer.Serialize(new LossScaleState(scale, goodSteps))));
                if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
                Directory.Move(temporary, final);
                if (bestWeights != null) SafeTensors.Write(BestFile(epoch), bestWeights);
                AtomicFile.Write(Path.Combine(directory, LatestFile), temporary => File.WriteAllText(temporary, name));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                AtomicFile.TryDeleteDirectory(temporary);
                throw new InvalidOperationException(
                    $"Could not write the checkpoint of epoch {epoch} to '{directory}': {e.Message} Training stopped; the last good checkpoint is kept. "
                    + "Free disk space or choose another CheckpointDirectory, then train again to resume.", e);
            }

            foreach (string old in Directory.GetDirectories(directory, "epoch-*").Where(d => Path.GetFileName(d) != name)) AtomicFile.TryDeleteDirectory(old);
            string? best = BestEpoch(history) is int bestEpoch ? BestFile(bestEpoch) : null;
            foreach (string old in Directory.GetFiles(directory, BestPrefix + "*.safetensors").Where(f => f != best)) AtomicFile.TryDeleteFile(old);
        }

        private string BestFile(int epoch) => Path.Combine(directory, $"{BestPrefix}{epoch:D4}.safetensors");

        // The epoch the history last marked as best (null: none).
        private static int? BestEpoch(IReadOnlyList<EpochReport> history) => history.LastOrDefault(r => r.IsBest)?.Epoch;

        /// <summary>The epoch of the latest checkpoint, or null when the directory holds none.</summary>
        public int? LatestEpoch() => Latest()?.Epoch;

        /// <summary>
        /// Loads the latest checkpoint into the model, optimiser and loss scaler; with <paramref name="averagedWeights"/> also its
        /// moving average of the weights, on the model's device (a checkpoint without one starts the average from its weights).
        /// Null when the directory holds none.
        /// </summary>
        public Resumed? TryLoadLatest(nn.Module model, TrainingOptimizer optimizer, DynamicLossScaler? lossScaler = null, bool averagedWeights = false)
        {
            if (Latest() is not var (epoch, folder)) return null;
            string optimizerState = Path.Combine(folder, OptimizerFile);
            if (!File.Exists(optimizerState))
            {
                string why = File.Exists(Path.Combine(folder, OldOptimizerFile))
                    ? $"was written by an earlier version of this library (its optimiser state is {OldOptimizerFile}, a format no longer read)"
                    : $"has no optimiser state ({OptimizerFile})";
                throw new InvalidOperationException($"The checkpoint '{folder}' {why}, so training cannot resume from it. "
                    + $"Delete the checkpoint directory '{directory}' (or choose another CheckpointDirectory) to start afresh.");
            }

            StateDict.Load(model, Path.Combine(folder, WeightsFile), strict: true);
            optimizer.LoadState(optimizerState);
            var history = JsonSerializer.Deserialize<List<EpochReport>>(File.ReadAllText(Path.Combine(folder, HistoryFile))) ?? new List<EpochReport>();
            // A checkpoint from another precision has no loss scale: float16 then starts from the initial scale.
            string lossScale = Path.Combine(folder, LossScaleFile);
            if (lossScaler != null && File.Exists(lossScale) && JsonSerializer.Deserialize<LossScaleState>(File.ReadAllText(lossScale)) is { } state)
                lossScaler.Restore((state.Scale, state.GoodSteps));
            string averages = Path.Combine(folder, AveragedWeightsFile);
            return new Resumed(epoch, history, averagedWeights && File.Exists(averages) ? ReadTensors(averages, model.parameters().First().device) : null);
        }

        private (int Epoch, string Folder)? Latest() => Latest(directory);

        /// <summary>The latest checkpoint of <paramref name="directory"/>, or null when it holds none (or does not exist).</summary>
        internal static (int Epoch, string Folder)? Latest(string directory)
        {
            string latest = Path.Combine(directory, LatestFile);
            if (!File.Exists(latest)) return null;
            string name = File.ReadAllText(latest).Trim();
            string folder = Path.Combine(directory, name);
            if (!name.StartsWith("epoch-", StringComparison.Ordinal) || !int.TryParse(name.AsSpan(6), out int epoch) || !Directory.Exists(folder))
                throw new InvalidOperationException($"The checkpoint directory '{directory}' names '{name}' as its latest checkpoint, which is missing. Delete the directory to start afresh.");
            return (epoch, folder);
        }

        /// <summary>The best epoch's weights according to <paramref name="history"/> (a resumed checkpoint's), or null when none were saved.</summary>
        public Dictionary<string, Tensor>? LoadBestWeights(IReadOnlyList<EpochReport> history)
        {
            if (BestEpoch(history) is not int epoch) return null;
            string path = BestFile(epoch);
            if (!File.Exists(path)) return null;
            return ReadTensors(path, null);
        }

        // A safetensors file's tensors, owned by the caller (copied to `device` when given).
        private static Dictionary<string, Tensor> ReadTensors(string path, Device? device)
        {
            using TensorDictionary tensors = StateDict.Read(path);
            return tensors.ToDictionary(kv => kv.Key, kv => (device is null ? kv.Value.clone() : kv.Value.to(device, copy: true)).DetachFromDisposeScope(), StringComparer.Ordinal);
        }

    }
}
