using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>What a network's definition gives <see cref="ClassifierNetwork"/>: a consistency check and the stages.</summary>
    internal interface INetworkDefinition
    {
        /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
        void Validate();

        /// <summary>The stage outputs: channels and reduction.</summary>
        IReadOnlyList<StageInfo> Stages { get; }

        /// <summary>Seed for weight initialisation (null: TorchSharp's global generator).</summary>
        long? Seed { get; }
    }

    /// <summary>
    /// A classifier backbone: its stage outputs (<see cref="IStageEncoder"/>), the pooled features they lead to and, with
    /// classes, dropout and a linear head (<see cref="IClassifierModel"/>). A subclass computes the stages (the last is the map
    /// the features pool), any layers after the pooling (<see cref="FeaturesFromPooled"/>), and registers the head under its
    /// state-dict name; the forward pass (last stage map, pooling, those layers, dropout, head) is this class's, so Grad-CAM
    /// can start it from the map.
    /// </summary>
    public abstract class ClassifierNetwork : ResidualModule, IClassifierModel, IStageEncoder
    {
        /// <summary>Checks <paramref name="definition"/> and creates the network with its stages, whose last one is pooled into the features.</summary>
        private protected ClassifierNetwork(string name, INetworkDefinition definition)
            : this(name, Prepared(definition).Stages, definition.Stages[^1].Channels)
        {
        }

        /// <summary>Creates the network with the stages and the feature length its subclass builds.</summary>
        private protected ClassifierNetwork(string name, IReadOnlyList<StageInfo> stages, long featureDimension)
            : base(name)
        {
            StageChannels = stages.Select(s => s.Channels).ToList();
            StageReductions = stages.Select(s => s.Reduction).ToList();
            FeatureDimension = featureDimension;
        }

        /// <inheritdoc />
        public abstract string ClassifierPrefix { get; }

        /// <inheritdoc />
        public long FeatureDimension { get; }

        /// <inheritdoc />
        public IReadOnlyList<int> StageChannels { get; }

        /// <inheritdoc />
        public IReadOnlyList<int> StageReductions { get; }

        /// <inheritdoc />
        public abstract IReadOnlyList<T> ForwardStages<T>(IOperations<T> ops, T input)
            where T : class;

        /// <inheritdoc />
        public Tensor ForwardFeatures(Tensor input) => FeaturesFromMap(TensorOperations.Instance, LastStageMap(TensorOperations.Instance, input));

        /// <summary>Logits, or the features the head reads when built with <c>NumClasses = 0</c>.</summary>
        public override T Forward<T>(IOperations<T> ops, T input) => OutputFromMap(ops, LastStageMap(ops, input));

        /// <summary>The classes the head scores; 0 for a network built without classes.</summary>
        internal int ClassCount => Head is null ? 0 : (int)Head.weight!.shape[0];

        /// <summary>The last stage's output (N×C×h×w, the map the features pool; <see cref="IStageEncoder.ForwardStages"/>' last).</summary>
        internal virtual T LastStageMap<T>(IOperations<T> ops, T input)
            where T : class => ForwardStages(ops, input)[^1];

        /// <summary>
        /// The network's output from its last stage's map: average pooling, the family's layers after it
        /// (<see cref="FeaturesFromPooled"/>), then dropout and the head. Grad-CAM differentiates it with respect to the map.
        /// </summary>
        internal T OutputFromMap<T>(IOperations<T> ops, T map)
            where T : class
        {
            T x = FeaturesFromMap(ops, map);
            return Head == null ? x : ops.Call(Head, ops.Dropout(x, HeadDropRate, training));
        }

        /// <summary>
        /// With <paramref name="classes"/> &gt; 0, creates the head (features → classes) registered as <paramref name="name"/>, read
        /// after dropout of <paramref name="dropRate"/>; without classes the network returns its features.
        /// </summary>
        private protected void RegisterHead(string name, int classes, double dropRate)
        {
            HeadDropRate = dropRate;
            if (classes <= 0) return;
            Linear head = nn.Linear(FeatureDimension, classes);
            register_module(name, head);
            Head = head;
        }

        /// <summary>The head (the last linear layer, registered by the network), or null without classes.</summary>
        private protected Linear? Head { get; set; }

        /// <summary>The dropout before the head.</summary>
        private protected double HeadDropRate { get; set; }

        /// <summary>
        /// Checks <paramref name="definition"/> and seeds TorchSharp's generator with its seed, if any: what every network does
        /// before it creates its layers.
        /// </summary>
        private protected static T Prepared<T>(T definition)
            where T : class, INetworkDefinition
        {
            if (definition is null) throw new ArgumentNullException(nameof(definition));
            definition.Validate();
            if (definition.Seed is long seed) torch.manual_seed(seed);
            return definition;
        }

        /// <summary>The layers a family puts between the pooled last stage map (N×C) and the head; none by default.</summary>
        internal virtual T FeaturesFromPooled<T>(IOperations<T> ops, T pooled)
            where T : class => pooled;

        /// <summary>The vector the head reads, or the network's output without a head: the map averaged, then <see cref="FeaturesFromPooled"/>.</summary>
        private T FeaturesFromMap<T>(IOperations<T> ops, T map)
            where T : class => FeaturesFromPooled(ops, ops.Flatten(ops.GlobalAveragePool(map)));
    }
}
