using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Microsoft.ML.Residual.Models;

namespace Microsoft.ML.Residual.Training
{
    /// <summary>
    /// What one epoch did (passed to the progress callback and kept in <see cref="TrainingResult.History"/>).
    /// <c>GpuMemoryMegabytes</c>: on a CUDA device, the megabytes in use on it at the end of the epoch, as <c>nvidia-smi</c>
    /// shows them (libtorch's caching allocator keeps what it reserved, so this is the run's peak so far plus the CUDA context
    /// and any other process on that GPU); null on the CPU or where the CUDA runtime could not be asked.
    /// <c>ValidationClassRecall</c>: per class (index k), the share of its validation images (a segmenter's: pixels) predicted as it,
    /// null for a class without any; <c>ValidationMacroRecall</c>: their mean over the classes present (balanced accuracy), the
    /// figure to watch on imbalanced data. Both null without validation.
    /// </summary>
    public sealed record EpochReport(
        int Epoch,
        int Epochs,
        double TrainingLoss,
        double TrainingAccuracy,
        double? ValidationLoss,
        double? ValidationAccuracy,
        double LearningRate,
        double ImagesPerSecond,
        TimeSpan Elapsed,
        TimeSpan EstimatedRemaining,
        bool IsBest,
        double? ValidationMeanIoU = null,
        double? GpuMemoryMegabytes = null,
        IReadOnlyList<double?>? ValidationClassRecall = null,
        double? ValidationMacroRecall = null);

    /// <summary>
    /// Where training stands after one mini-batch, for live progress displays (passed to a batch progress callback such as
    /// <see cref="Microsoft.ML.Residual.Estimators.ImageTrainerOptions.BatchProgress"/>). Reported on the training thread; keep the handler quick.
    /// </summary>
    /// <param name="Epoch">The current epoch (1-based).</param>
    /// <param name="Epochs">The epochs training runs for.</param>
    /// <param name="Batch">Batches done in this epoch (1-based).</param>
    /// <param name="BatchesPerEpoch">Batches in one epoch.</param>
    /// <param name="Loss">The mean training loss of this epoch so far.</param>
    /// <param name="LearningRate">The learning rate of the batch.</param>
    /// <param name="ImagesPerSecond">Training images per second in this run (validation time excluded).</param>
    /// <param name="Elapsed">Time since this run of training started (validation included).</param>
    /// <param name="EstimatedRemaining">The remaining batches of all epochs at this run's speed so far (validation excluded).</param>
    public sealed record BatchReport(
        int Epoch,
        int Epochs,
        long Batch,
        long BatchesPerEpoch,
        double Loss,
        double LearningRate,
        double ImagesPerSecond,
        TimeSpan Elapsed,
        TimeSpan EstimatedRemaining);

    /// <summary>The outcome of <see cref="TrainingLoop.Train"/>.</summary>
    public sealed class TrainingResult
    {
        internal TrainingResult(IReadOnlyList<EpochReport> history, int bestEpoch, bool stoppedEarly, int resumedAfterEpoch)
        {
            History = history;
            BestEpoch = bestEpoch;
            StoppedEarly = stoppedEarly;
            ResumedAfterEpoch = resumedAfterEpoch;
        }

        /// <summary>Every epoch run, including those before a resume.</summary>
        public IReadOnlyList<EpochReport> History { get; }

        /// <summary>The best epoch by <see cref="TrainingOptions.Monitor"/> (1-based).</summary>
        public int BestEpoch { get; }

        /// <summary>Whether early stopping ended training.</summary>
        public bool StoppedEarly { get; }

        /// <summary>The epoch a checkpoint resumed after (0: started fresh).</summary>
        public int ResumedAfterEpoch { get; }
    }

    /// <summary>Training produced a non-finite loss; the model holds the last good (epoch-start) weights.</summary>
    public sealed class TrainingDivergedException : InvalidOperationException
    {
        /// <summary>Creates the exception.</summary>
        public TrainingDivergedException(string message) : base(message)
        {
        }
    }

    /// <summary>
    /// The training loop of every image task: mini-batches under the optimiser and schedule of <see cref="TrainingOptions"/>,
    /// with the task's loss (cross-entropy with label smoothing by default; a segmentation loss and mean IoU for
    /// segmenters), gradient clipping, per-epoch validation, best-epoch tracking and
    /// early stopping, atomic checkpoints with resume, progress, cancellation. Batches come from a delegate so that
    /// any source (an ML.NET data view, tensors in memory) can feed it; the trainer disposes the batch tensors it
    /// is given.
    /// </summary>
    public sealed class TrainingLoop
    {
        private readonly nn.Module<Tensor, Tensor> model;
        private readonly TrainingOptions options;
        private readonly string? headPrefix;
        private readonly string? backbonePrefix;
        private readonly BackboneParameters backbone;

        /// <summary>Creates a trainer for <paramref name="model"/>.</summary>
        /// <param name="model">The network (its device is the training device).</param>
        /// <param name="options">The loop's options.</param>
        /// <param name="headPrefix">
        /// State-dict prefix of the classifier head (e.g. <c>"fc."</c>, <see cref="Models.IClassifierModel.ClassifierPrefix"/>), for
        /// <see cref="TrainingOptions.FreezeBackboneEpochs"/> and <see cref="TrainingOptions.BackboneLearningRateFactor"/>.
        /// </param>
        /// <param name="backbonePrefix">
        /// Instead of <paramref name="headPrefix"/>: the state-dict prefix of the backbone (e.g. a U-Net's <c>"encoder."</c>);
        /// everything else is trained in the frozen phase.
        /// </param>
        /// <exception cref="ArgumentException">An option is invalid, or a frozen phase or backbone factor is asked for without a head prefix.</exception>
        public TrainingLoop(nn.Module<Tensor, Tensor> model, TrainingOptions options, string? headPrefix = null, string? backbonePrefix = null)
        {
            this.model = model ?? throw new ArgumentNullException(nameof(model));
            this.options = options ?? throw new ArgumentNullException(nameof(options));
            options.Validate();
            if (headPrefix is not null && backbonePrefix is not null) throw new ArgumentException("Give the head's prefix or the backbone's, not both.", nameof(backbonePrefix));
            if (headPrefix is null && backbonePrefix is null && (options.FreezeBackboneEpochs > 0 || options.BackboneLearningRateFactor != 1.0))
                throw new ArgumentException("FreezeBackboneEpochs and BackboneLearningRateFactor need the head's state-dict prefix (headPrefix, e.g. \"fc.\").", nameof(headPrefix));
            string? prefix = headPrefix ?? backbonePrefix;
            if (prefix is not null && !model.named_parameters().Any(p => p.name.StartsWith(prefix, StringComparison.Ordinal)))
                throw new ArgumentException($"The model has no parameters under the prefix '{prefix}'.", headPrefix is null ? nameof(backbonePrefix) : nameof(headPrefix));
            this.headPrefix = headPrefix;
            this.backbonePrefix = backbonePrefix;
            backbone = new BackboneParameters(model, headPrefix, backbonePrefix);
        }

        /// <summary>
        /// The loss of a batch from logits, targets and the label smoothing to apply (<see cref="TrainingOptions.LabelSmoothing"/> in
        /// training, 0 in validation); default: cross-entropy. Targets of −1 are ignored pixels or rows; a custom loss must ignore them too.
        /// </summary>
        public Func<Tensor, Tensor, double, Tensor>? Loss { get; set; }

        /// <summary>
        /// Also compute the validation mean IoU (over classes present in truth or prediction) from a confusion matrix:
        /// for per-pixel classifiers, whose logits are N×K×H×W and targets N×H×W.
        /// </summary>
        public bool ComputeMeanIoU { get; set; }

        /// <summary>
        /// Several labels per image: targets are float N×K, 1 for each label an image has (<see cref="Data.ImageBatchReader.MultiLabel"/>);
        /// the default loss is the binary cross-entropy of each logit, a label is predicted where its logit is ≥ 0 (probability
        /// ≥ ½), accuracy counts the label decisions that are right, and the validation recall is per label.
        /// </summary>
        public bool MultiLabel { get; set; }

        /// <summary>
        /// The targets are not class labels (a detector's N×M×5 objects): only the loss is summed and reported, accuracy stays 0 and
        /// no confusion matrix is kept. The task measures its own metrics (mAP) afterwards.
        /// </summary>
        internal bool LossOnly { get; set; }

        /// <summary>Applied to every image batch on the training device before the network (e.g. pixel normalisation).</summary>
        public Func<Tensor, Tensor>? Preprocess { get; set; }

        /// <summary>Trains for <see cref="TrainingOptions.Epochs"/> epochs (resuming from the checkpoint directory if it holds one).</summary>
        /// <param name="trainingBatches">The batches of epoch <c>e</c> (1-based), images N×C×H×W and int64 class indices N (or N×H×W masks).</param>
        /// <param name="stepsPerEpoch">Batches per epoch, for the schedule.</param>
        /// <param name="validationBatches">Validation batches, or null.</param>
        /// <param name="progress">Receives a report after every epoch.</param>
        /// <param name="cancellationToken">Stops between batches; the model keeps the weights of its last step.</param>
        /// <param name="batchProgress">Receives a report after every training batch.</param>
        /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public TrainingResult Train(
            Func<int, IEnumerable<(Tensor Images, Tensor Labels)>> trainingBatches,
            long stepsPerEpoch,
            Func<IEnumerable<(Tensor Images, Tensor Labels)>>? validationBatches = null,
            IProgress<EpochReport>? progress = null,
            CancellationToken cancellationToken = default,
            IProgress<BatchReport>? batchProgress = null)
        {
            if (trainingBatches is null) throw new ArgumentNullException(nameof(trainingBatches));
            using IDisposable allocator = NativeAllocator.EnterTraining();
            using IDisposable tf32 = Tf32Settings.Enter(options.AllowTf32);
            MonitoredMetric monitor = validationBatches == null ? MonitoredMetric.TrainingLoss : options.Monitor;
            Device device = model.parameters().First().device;
            // With gradient accumulation a step takes several batches; the schedule and the step count go by steps.
            int accumulation = options.GradientAccumulationSteps;
            long updatesPerEpoch = (stepsPerEpoch + accumulation - 1) / accumulation;
            var schedule = new PhasedSchedule(options, updatesPerEpoch);
            // Called in this order before the epochs and at an epoch's start, in reverse after: a resume reads the checkpoint
            // before the freeze phase is chosen and before the tracker replays its history; an epoch is judged before it is saved;
            // a batch is laid out before it is mixed.
            var hooks = new List<TrainingHook>();
            if (options.CheckpointDirectory is not null) hooks.Add(new CheckpointHook(new CheckpointStore(options.CheckpointDirectory)));
            if (options.ModelEmaDecay is double decay) hooks.Add(new ModelEmaHook(decay, options.ModelEmaWarmup));
            hooks.Add(new FreezePhasesHook(backbone, options.FreezeBackboneEpochs, CreateOptimizer));
            hooks.Add(new BestEpochHook(new BestEpochTracker(monitor, options.EarlyStoppingPatience)));
            hooks.AddRange(BatchHooks(device));
            hooks.AddRange(Hooks);
            var state = new TrainingState(model, options, updatesPerEpoch);
            DynamicLossScaler? scaler = state.Scaler = lossScaler = options.Precision == TrainingPrecision.Float16 ? new DynamicLossScaler(InitialLossScale) : null;
            double rate = schedule.At(0);
            try
            {
                foreach (TrainingHook hook in hooks) hook.BeforeOptimizer(state);
                state.Optimizer = CreateOptimizer(state.BackboneFrozen);
                foreach (TrainingHook hook in hooks) hook.BeforeRun(state);
                int resumedAfter = state.StartEpoch - 1;
                long step = state.Step;
                var clock = Stopwatch.StartNew();
                var trainingClock = new Stopwatch();
                long imagesSeen = 0, batchesThisRun = 0;
                long totalBatches = (long)options.Epochs * stepsPerEpoch;
                int lastEpoch = options.StopAfterEpoch ?? options.Epochs;
                for (int epoch = state.StartEpoch; epoch <= lastEpoch && !state.Stop; epoch++)
                {
                    state.Epoch = epoch;
                    if (options.Seed is long seed) torch.manual_seed(seed * 7919 + epoch);
                    Dictionary<string, Tensor> epochStart = Snapshot(model);
                    try
                    {
                        model.train();
                        foreach (TrainingHook hook in hooks) hook.BeforeEpoch(state);
                        TrainingOptimizer optimizer = state.Optimizer;
                        using var totals = new DeviceTotals(device);
                        (double LossSum, long Correct, long Labelled) sums = default;
                        long images = 0, batch = 0, checkedSteps = step;
                        long inGroup = 0, groupSize = 1;   // batches summed since the last step, and the size of their group
                        bool unread = false;    // the last batch's loss is not in `sums` yet
                        int interval = ReadInterval(device);
                        trainingClock.Start();
                        foreach (var (batchImages, labels) in DeviceStaging.OneAhead(trainingBatches(epoch), device))
                        {
                            using var scope = NewDisposeScope();
                            scope.Attach(new IDisposable[] { batchImages, labels });
                            cancellationToken.ThrowIfCancellationRequested();
                            // A group's size is fixed when it starts (the epoch's last group may be shorter, and batches beyond the
                            // stated count step one by one); each loss is divided by it.
                            if (inGroup == 0) groupSize = Math.Clamp(stepsPerEpoch - batch, 1, accumulation);
                            rate = schedule.At(step);
                            optimizer.SetLearningRate(rate);
                            Tensor x = batchImages.to(device);
                            Tensor y = labels.to(device);
                            if (Preprocess != null) x = Preprocess(x);
                            if (inGroup == 0) optimizer.ZeroGrad();
                            (Tensor loss, Tensor logits, y) = BatchLoss(hooks, state, x, y, training: true);

                            long n = y.shape[0];
                            Tensor predictedLabels = Predicted(logits, y);
                            totals.Add(loss, n, predictedLabels, LossOnly ? predictedLabels : y);
                            images += n;
                            batch++;
                            batchesThisRun++;
                            // The host reads the sums, and so waits for the device, only every `interval` batches (every batch
                            // on the CPU, where nothing runs ahead): the divergence check and the batch report happen there.
                            bool read = batch % interval == 0;
                            unread = !read;
                            bool endsGroup = ++inGroup == groupSize;
                            if (read)
                            {
                                sums = ReadChecked(totals, epoch, checkedSteps, step + 1, rate, epochStart);
                                checkedSteps = endsGroup ? step + 1 : step;   // the steps whose every batch loss is checked
                            }

                            Backward(groupSize == 1 ? loss : loss.Times(1.0 / groupSize), scaler);
                            if (endsGroup)
                            {
                                TakeStep(hooks, state, optimizer, scaler, ref step);
                                inGroup = 0;
                            }

                            if (read && batchProgress != null)
                            {
                                double trainingSeconds = Math.Max(trainingClock.Elapsed.TotalSeconds, 1e-9);
                                batchProgress.Report(new BatchReport(
                                    epoch, options.Epochs, batch, stepsPerEpoch, sums.LossSum / images, rate, (imagesSeen + images) / trainingSeconds, clock.Elapsed,
                                    TimeSpan.FromSeconds(trainingSeconds / batchesThisRun * Math.Max(0, totalBatches - (epoch - 1) * stepsPerEpoch - batch))));
                            }
                        }

                        if (inGroup > 0)
                        {
                            // The epoch gave fewer batches than it said: the group's gradient is the mean over the batches it got.
                            using (no_grad())
                            {
                                foreach (Tensor parameter in model.parameters())
                                {
                                    using Tensor? grad = parameter.grad;
                                    grad?.TimesInPlace((double)groupSize / inGroup);
                                }
                            }
                            TakeStep(hooks, state, optimizer, scaler, ref step);
                        }

                        trainingClock.Stop();

                        if (images == 0) throw new InvalidOperationException($"Epoch {epoch} received no training batches: the training data is empty.");
                        if (unread) sums = ReadChecked(totals, epoch, checkedSteps, step, rate, epochStart);
                        var (lossSum, correct, count) = sums;
                        imagesSeen += images;
                        for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].BeforeValidation(state);
                        double? validationLoss = null, validationAccuracy = null, validationMeanIoU = null;
                        double?[]? recall = null;
                        if (validationBatches != null) (validationLoss, validationAccuracy, validationMeanIoU, recall) = Evaluate(validationBatches(), hooks, state, device, cancellationToken);
                        if (LossOnly && validationBatches != null) (validationAccuracy, recall) = (null, null);
                        double elapsed = clock.Elapsed.TotalSeconds;
                        int remainingEpochs = options.Epochs - epoch;
                        var report = new EpochReport(
                            epoch, options.Epochs, lossSum / images, count == 0 ? 0 : (double)correct / count, validationLoss, validationAccuracy,
                            rate, imagesSeen / Math.Max(elapsed, 1e-9), clock.Elapsed,
                            TimeSpan.FromSeconds(elapsed / (epoch - resumedAfter) * remainingEpochs), false, validationMeanIoU,
                            GpuMemory.InUseMegabytes(device), recall, recall is null ? null : MacroRecall(recall));
                        state.Step = step;
                        state.History.Add(report);
                        for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].AfterEpoch(state);
                        progress?.Report(state.Report);
                    }
                    finally
                    {
                        Dispose(epochStart);
                    }
                }

                for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].AfterRun(state);
                return new TrainingResult(state.History, state.BestEpoch, state.Stop, resumedAfter);
            }
            finally
            {
                try
                {
                    for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].Cleanup(state);
                }
                finally
                {
                    state.Optimizer?.Dispose();
                }
            }
        }

        /// <summary>
        /// The learning-rate finder (fastai's <c>lr_find</c>): trains <see cref="LearningRateFinderOptions.Steps"/> steps with the
        /// options' optimiser at a learning rate growing geometrically from the start rate to the end rate, records each batch's
        /// loss and its moving average, stops once the average passes the stop factor times its lowest value, and reads the
        /// suggested rates from the curve. The model's weights and buffers are put back afterwards, exactly; the optimiser is
        /// the sweep's own. Mixup/CutMix, the seed, precision and channels-last apply as in <see cref="Train"/>; with
        /// <see cref="TrainingOptions.FreezeBackboneEpochs"/> the sweep is that of the frozen first phase (the head alone). Each step reads its loss on the host (the sweep needs it to stop), so it waits for the device.
        /// </summary>
        /// <param name="trainingBatches">The batches of epoch <c>e</c> (1-based), as for <see cref="Train"/>; further epochs are read as needed.</param>
        /// <param name="finder">The sweep's range and length (null: the defaults).</param>
        /// <param name="cancellationToken">Stops between batches; the weights are put back.</param>
        /// <returns>Every step's rate and loss, and the rates suggested from them.</returns>
        /// <exception cref="OperationCanceledException">Cancelled.</exception>
        public LearningRateFinderResult FindLearningRate(
            Func<int, IEnumerable<(Tensor Images, Tensor Labels)>> trainingBatches, LearningRateFinderOptions? finder = null, CancellationToken cancellationToken = default)
        {
            if (trainingBatches is null) throw new ArgumentNullException(nameof(trainingBatches));
            finder ??= new LearningRateFinderOptions();
            finder.Validate();
            using IDisposable allocator = NativeAllocator.EnterTraining();
            using IDisposable tf32 = Tf32Settings.Enter(options.AllowTf32);
            Device device = model.parameters().First().device;
            // With a frozen first phase, the sweep is that phase's: the head alone, backbone batch norm on its running statistics.
            bool frozen = options.FreezeBackboneEpochs > 0;
            backbone.SetFrozen(frozen);
            List<TrainingHook> hooks = BatchHooks(device);
            var state = new TrainingState(model, options, 0);
            Dictionary<string, Tensor>? start = null;
            TrainingOptimizer? optimizer = null;
            DynamicLossScaler? scaler = options.Precision == TrainingPrecision.Float16 ? new DynamicLossScaler(InitialLossScale) : null;
            var points = new List<LearningRatePoint>();
            double growth = Math.Log(finder.EndLearningRate / finder.StartLearningRate) / (finder.Steps - 1);
            double average = 0, lowest = double.PositiveInfinity;
            bool stoppedEarly = false;
            try
            {
                start = Snapshot(model);
                foreach (TrainingHook hook in hooks) hook.BeforeOptimizer(state);
                optimizer = CreateOptimizer(frozen);
                model.train();
                if (frozen) backbone.SetBatchNormEval();
                for (int epoch = 1; points.Count < finder.Steps && !stoppedEarly; epoch++)
                {
                    if (options.Seed is long seed) torch.manual_seed(seed * 7919 + epoch);
                    state.Epoch = epoch;
                    foreach (TrainingHook hook in hooks) hook.BeforeEpoch(state);
                    int before = points.Count;
                    foreach (var (batchImages, labels) in DeviceStaging.OneAhead(trainingBatches(epoch), device))
                    {
                        using var scope = NewDisposeScope();
                        scope.Attach(new IDisposable[] { batchImages, labels });
                        cancellationToken.ThrowIfCancellationRequested();
                        double rate = finder.StartLearningRate * Math.Exp(growth * points.Count);
                        optimizer.SetLearningRate(rate);
                        Tensor x = batchImages.to(device);
                        Tensor y = labels.to(device);
                        if (Preprocess != null) x = Preprocess(x);
                        optimizer.ZeroGrad();
                        Tensor loss = BatchLoss(hooks, state, x, y, training: true).Loss;

                        double value = loss.detach().to_type(ScalarType.Float64).item<double>();
                        if (!double.IsFinite(value))
                        {
                            stoppedEarly = true;
                            break;
                        }

                        average = finder.Smoothing * average + (1 - finder.Smoothing) * value;
                        double smoothed = average / (1 - Math.Pow(finder.Smoothing, points.Count + 1));
                        points.Add(new LearningRatePoint(rate, value, smoothed));
                        lowest = Math.Min(lowest, smoothed);
                        if (smoothed > finder.StopFactor * lowest)
                        {
                            stoppedEarly = true;
                            break;
                        }

                        Backward(loss, scaler);
                        Update(optimizer, scaler);

                        if (points.Count == finder.Steps) break;
                    }

                    if (points.Count == before && !stoppedEarly)
                        throw new InvalidOperationException($"Epoch {epoch} of the learning-rate finder received no training batches: the training data is empty.");
                }

                return new LearningRateFinderResult(points, stoppedEarly);
            }
            finally
            {
                optimizer?.Dispose();
                for (int i = hooks.Count - 1; i >= 0; i--) hooks[i].Cleanup(state);
                try
                {
                    if (start != null) Restore(model, start);
                }
                finally
                {
                    Dispose(start);
                    backbone.SetFrozen(false);
                }

                foreach (Tensor parameter in model.parameters())
                {
                    using Tensor? grad = parameter.grad;
                    grad?.zero_();
                }
            }
        }

        /// <summary>
        /// Batches between two reads of the training sums on a device that runs ahead of the host (a GPU); null for the
        /// default, 100: a read makes the host wait and the device then idles for about one step's launch time, so reading
        /// every 100th step costs under 1 %. On the CPU the default is every batch (nothing runs ahead there).
        /// </summary>
        internal int? DeviceReadInterval { get; set; }

        /// <summary>How many times training and validation have copied their running sums from the device to the host.</summary>
        internal long DeviceReads { get; private set; }

        private int ReadInterval(Device device) => DeviceReadInterval ?? (device.type == DeviceType.CPU ? 1 : 100);

        // Reads the epoch's sums; a non-finite loss sum means a loss in steps (checkedSteps, lastStep] was: the epoch-start
        // weights come back and training stops.
        private (double LossSum, long Correct, long Labelled) ReadChecked(DeviceTotals totals, int epoch, long checkedSteps, long lastStep, double rate, Dictionary<string, Tensor> epochStart)
        {
            var sums = totals.Read();
            DeviceReads++;
            if (double.IsFinite(sums.LossSum)) return sums;
            Restore(model, epochStart);
            string steps = lastStep == checkedSteps + 1 ? $"step {lastStep}" : $"in steps {checkedSteps + 1}–{lastStep}";
            throw new TrainingDivergedException(
                $"The training loss became {sums.LossSum} in epoch {epoch} ({steps}, learning rate {rate:G3}). The model keeps the weights it had "
                + $"at the start of epoch {epoch}. Try a lower LearningRate, e.g. {options.LearningRate / 10:G3}, a warm-up (WarmupEpochs), or GradientClipNorm; "
                + "also check the input for NaN pixels."
                + (options.Precision == TrainingPrecision.Float16
                    ? " In Float16 the forward pass can also overflow (its largest number is 65,504): train in BFloat16 or Float32."
                    : string.Empty));
        }

        // The network's logits, computed in options.Precision (the library's networks; others compute as they are written),
        // in float32 for the loss.
        private Tensor Forward(Tensor images)
        {
            using (Autocast.Enter(options.Precision))
                return Autocast.ToFloat32(model.call(images));
        }

        /// <summary>Hooks run after the loop's own (freeze phases, best epoch, checkpoints, layout, mixing), e.g. a gradient-flow probe.</summary>
        internal List<TrainingHook> Hooks { get; } = new List<TrainingHook>();

        // The hooks that shape batches, in the order they apply: the network's memory layout (TrainingOptions.ChannelsLast; null:
        // on the CPU), then mixup/CutMix.
        private List<TrainingHook> BatchHooks(Device device)
        {
            var hooks = new List<TrainingHook>();
            if (options.ChannelsLast ?? device.type == DeviceType.CPU) hooks.Add(new ChannelsLastHook());
            if (options.MixupAlpha > 0 || options.CutMixAlpha > 0) hooks.Add(new MixingHook());
            return hooks;
        }

        // A batch's loss, logits and the labels accuracy counts against, once the hooks have shaped it (label smoothing in training).
        private (Tensor Loss, Tensor Logits, Tensor Labels) BatchLoss(List<TrainingHook> hooks, TrainingState state, Tensor images, Tensor labels, bool training)
        {
            var batch = new TrainingBatch(images, labels, training, (logits, targets) => LossOf(logits, targets, smoothing: training));
            foreach (TrainingHook hook in hooks) hook.BeforeBatch(state, batch);
            Tensor logits = Forward(batch.Images);
            return (batch.Loss(logits), logits, batch.Labels);
        }

        // The backward pass, which adds to the gradients; in float16 it is scaled.
        private static void Backward(Tensor loss, DynamicLossScaler? scaler) => (scaler is null ? loss : scaler.Scaled(loss)).backward();

        // The update from the gradients summed since the last one (clipped to GradientClipNorm); in float16 a step whose gradients
        // overflowed is skipped.
        private void Update(TrainingOptimizer optimizer, DynamicLossScaler? scaler)
        {
            if (scaler is not null && !scaler.UnscaleAndUpdate(model.parameters())) return;
            if (options.GradientClipNorm is double clip) GradientClipping.ClipByTotalNorm(model.parameters(), clip);
            optimizer.Step();
        }

        // One optimiser step of Train, counted, then the hooks' AfterStep (the weight average).
        private void TakeStep(List<TrainingHook> hooks, TrainingState state, TrainingOptimizer optimizer, DynamicLossScaler? scaler, ref long step)
        {
            Update(optimizer, scaler);
            state.Step = ++step;
            foreach (TrainingHook hook in hooks) hook.AfterStep(state);
        }

        private DynamicLossScaler? lossScaler;

        /// <summary>Steps of the last <see cref="Train"/> skipped because their float16 gradients overflowed (<see cref="TrainingPrecision.Float16"/>).</summary>
        internal long SkippedSteps => lossScaler?.SkippedSteps ?? 0;

        /// <summary>The float16 loss scale a run starts from (PyTorch's GradScaler's, 65,536); tests lower it.</summary>
        internal double InitialLossScale { get; set; } = 65536.0;

        /// <summary>The float16 loss scale at the end of the last <see cref="Train"/>; null in other precisions.</summary>
        internal double? LossScale => lossScaler?.Scale;

        private TrainingOptimizer CreateOptimizer(bool frozen) =>
            TrainingOptimizer.Create(model, options, backbone.Defined ? backbone.IsBackbone : null,
                frozen ? 1.0 : options.BackboneLearningRateFactor, frozen, headPrefix ?? "everything outside " + backbonePrefix);

        private (double Loss, double Accuracy, double? MeanIoU, double?[] Recall) Evaluate(
            IEnumerable<(Tensor Images, Tensor Labels)> batches, List<TrainingHook> hooks, TrainingState state, Device device, CancellationToken cancellationToken)
        {
            model.eval();
            long images = 0, classes = 0;
            using var totals = new DeviceTotals(device);
            Tensor? confusion = null;
            try
            {
                using var noGrad = no_grad();
                foreach (var (batchImages, labels) in DeviceStaging.OneAhead(batches, device))
                {
                    using var scope = NewDisposeScope();
                    scope.Attach(new IDisposable[] { batchImages, labels });
                    cancellationToken.ThrowIfCancellationRequested();
                    Tensor x = batchImages.to(device);
                    Tensor y = labels.to(device);
                    if (Preprocess != null) x = Preprocess(x);
                    (Tensor loss, Tensor logits, y) = BatchLoss(hooks, state, x, y, training: false);
                    long n = y.shape[0];
                    images += n;
                    Tensor predicted = Predicted(logits, y);
                    totals.Add(loss, n, predicted, LossOnly ? predicted : y);
                    if (LossOnly) continue;
                    if (MultiLabel)
                    {
                        // Per label: the images that have it, and those of them predicted to (confusion holds K of each).
                        classes = logits.shape[1];
                        confusion ??= zeros(2 * classes, dtype: ScalarType.Float64, device: device).DetachFromDisposeScope();
                        confusion.PlusInPlace(cat(new[] { y.sum(new long[] { 0 }), predicted.mul(y).sum(new long[] { 0 }) }).to_type(ScalarType.Float64));
                    }
                    else
                    {
                        // confusion[truth·K + predicted] counted on the device; an ignored target (−1) gives −K + predicted,
                        // moved by K² + K into K cells after the matrix, which are dropped.
                        classes = logits.shape[1];
                        confusion ??= zeros(classes * (classes + 1), dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
                        Tensor ignored = y.NotBelow(0).logical_not().to_type(ScalarType.Int64);
                        Tensor cells = y.Times(classes).Plus(predicted).Plus(ignored.Times(classes * (classes + 1))).flatten();
                        confusion.scatter_add_(0, cells, ones_like(cells));
                    }
                }

                if (images == 0) throw new InvalidOperationException("The validation data is empty.");
                var (lossSum, correct, count) = totals.Read();
                DeviceReads++;
                if (LossOnly) return (lossSum / images, 0, null, Array.Empty<double?>());
                using Tensor counts = confusion!.cpu();
                DeviceReads++;
                if (MultiLabel)
                {
                    double[] sums = counts.data<double>().ToArray();
                    double?[] recall = Enumerable.Range(0, (int)classes).Select(k => sums[k] == 0 ? (double?)null : sums[classes + k] / sums[k]).ToArray();
                    return (lossSum / images, count == 0 ? 0 : (double)correct / count, null, recall);
                }

                long[] matrix = counts.data<long>().ToArray()[..(int)(classes * classes)];
                return (lossSum / images, count == 0 ? 0 : (double)correct / count, ComputeMeanIoU ? MeanIoU(matrix) : null, ClassRecall(matrix));
            }
            finally
            {
                confusion?.Dispose();
            }
        }

        // Per class, the share of its targets predicted as it (null: no targets); confusion[truth·K + predicted].
        internal static double?[] ClassRecall(long[] confusion)
        {
            int classes = (int)Math.Round(Math.Sqrt(confusion.Length));
            var recall = new double?[classes];
            for (int k = 0; k < classes; k++)
            {
                long truth = 0;
                for (int j = 0; j < classes; j++) truth += confusion[k * classes + j];
                recall[k] = truth == 0 ? null : (double)confusion[k * classes + k] / truth;
            }

            return recall;
        }

        // The mean recall over the classes that have targets (0 when none has).
        internal static double MacroRecall(IReadOnlyList<double?> recall) =>
            recall.Any(r => r.HasValue) ? recall.Where(r => r.HasValue).Average(r => r!.Value) : 0;

        // Mean over classes whose union (in truth or prediction) is not empty; confusion[truth·K + predicted].
        internal static double MeanIoU(long[] confusion)
        {
            int classes = (int)Math.Round(Math.Sqrt(confusion.Length));
            double sum = 0;
            int present = 0;
            for (int k = 0; k < classes; k++)
            {
                long truth = 0, predicted = 0;
                for (int j = 0; j < classes; j++)
                {
                    truth += confusion[k * classes + j];
                    predicted += confusion[j * classes + k];
                }

                long intersection = confusion[k * classes + k], union = truth + predicted - intersection;
                if (union == 0) continue;
                sum += (double)intersection / union;
                present++;
            }

            return present == 0 ? 0 : sum / present;
        }

        private Tensor LossOf(Tensor logits, Tensor targets, bool smoothing = true) =>
            Loss?.Invoke(logits, targets, smoothing ? options.LabelSmoothing : 0.0)
            ?? (MultiLabel ? ClassificationLosses.BinaryCrossEntropy(logits, targets, null, smoothing ? options.LabelSmoothing : 0.0)
                : nn.functional.cross_entropy(logits, targets, ignore_index: -1, label_smoothing: smoothing ? options.LabelSmoothing : 0.0));

        // The predictions accuracy counts against the targets: the arg-max class, or for several labels each label whose logit is ≥ 0.
        // A loss-only task compares nothing: an empty tensor, counted neither correct nor labelled.
        private Tensor Predicted(Tensor logits, Tensor targets) => LossOnly ? empty(new long[] { 0 }, ScalarType.Int64, device: logits.device) : MultiLabel ? logits.NotBelow(0L).to_type(targets.dtype) : logits.argmax(1);

        /// <summary>A copy of every parameter and buffer, on the model's device (no copy to the host, no wait for the device).</summary>
        internal static Dictionary<string, Tensor> Snapshot(nn.Module model)
        {
            var copy = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            foreach (var (key, value) in model.state_dict()) copy[key] = scope.Detach(value.detach().clone());
            return copy;
        }

        /// <summary>Copies a <see cref="Snapshot"/> back into the model's parameters and buffers.</summary>
        internal static void Restore(nn.Module model, Dictionary<string, Tensor> snapshot)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            foreach (var (key, value) in model.state_dict()) value.copy_(snapshot[key]);
        }

        /// <summary>Disposes a snapshot's tensors (null: nothing).</summary>
        internal static void Dispose(Dictionary<string, Tensor>? tensors)
        {
            if (tensors == null) return;
            foreach (Tensor tensor in tensors.Values) tensor.Dispose();
            tensors.Clear();
        }
    }

    /// <summary>Tracks the best epoch by a metric and counts epochs without improvement.</summary>
    internal sealed class BestEpochTracker
    {
        private readonly MonitoredMetric metric;
        private readonly int? patience;
        private double best = double.NaN;
        private int sinceBest;

        public BestEpochTracker(MonitoredMetric metric, int? patience)
        {
            this.metric = metric;
            this.patience = patience;
        }

        public int BestEpoch { get; private set; }

        public bool ShouldStop => patience is int p && BestEpoch > 0 && sinceBest >= p;

        /// <summary>Records an epoch; true when it is the best so far.</summary>
        public bool Observe(EpochReport report)
        {
            double value = metric switch
            {
                MonitoredMetric.ValidationAccuracy => report.ValidationAccuracy ?? double.NaN,
                MonitoredMetric.ValidationLoss => report.ValidationLoss ?? double.NaN,
                MonitoredMetric.ValidationMeanIoU => report.ValidationMeanIoU ?? double.NaN,
                _ => report.TrainingLoss,
            };
            bool higherIsBetter = metric is MonitoredMetric.ValidationAccuracy or MonitoredMetric.ValidationMeanIoU;
            bool improved = double.IsNaN(best) || (higherIsBetter ? value > best : value < best);
            if (improved && !double.IsNaN(value))
            {
                best = value;
                BestEpoch = report.Epoch;
                sinceBest = 0;
                return true;
            }

            sinceBest++;
            return false;
        }
    }
}
