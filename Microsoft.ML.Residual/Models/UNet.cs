using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Models
{
    /// <summary>
    /// The U-Net of Ronneberger, Fischer and Brox (2015), with BatchNorm and "same" padding: a contracting path of
    /// <see cref="Depth"/> levels (two 3×3 convolution → BatchNorm → ReLU steps, then 2×2 max pooling), a bottom
    /// level, and an expanding path that upsamples ×2, concatenates the contracting path's feature map of the same
    /// resolution and applies two more 3×3 steps; a 1×1 convolution maps the first level's width to the classes.
    /// Widths are <see cref="BaseWidth"/>·2^level. The output has the input's height and width.
    /// </summary>
    /// <remarks>
    /// <para>State-dict names: <c>encoder.{0…Depth}</c> are the contracting levels (<c>encoder.{Depth}</c> is the
    /// bottom), each with <c>conv1, bn1, conv2, bn2</c>; <c>decoder.{0…Depth−1}</c> are the expanding levels from the
    /// deepest to the shallowest, each with <c>up</c> (the 2×2 transposed convolution, or the 1×1 convolution of an
    /// interpolating block), <c>conv1, bn1, conv2, bn2</c> and, for residual blocks, <c>shortcut.0</c>/<c>shortcut.1</c>;
    /// <c>segmentation_head</c> is the final 1×1 convolution. A decoder's <c>conv1</c> reads <c>[upsampled, skip]</c>
    /// channels in that order.</para>
    /// <para>Sides that are not multiples of <see cref="SizeMultiple"/> = 2^Depth are padded at the bottom and right
    /// by reflection and the output is cropped back; when a side is not longer than its padding (reflection impossible), both sides are padded by edge replication instead.</para>
    /// </remarks>
    public sealed class UNet : ResidualModule, ISegmentationModel
    {
        private const int MaxDepth = 16;
        private readonly ModuleList<UNetBlock> encoder;
        private readonly ModuleList<UNetBlock> decoder;
        private readonly Dropout? dropout;
        private readonly Conv2d head;

        /// <summary>Builds a U-Net.</summary>
        /// <param name="inChannels">Input channels (3 for RGB).</param>
        /// <param name="numClasses">Output channels: one logit per class and pixel.</param>
        /// <param name="options">
        /// <see cref="UNetOptions.Depth"/> (default 4), <see cref="UNetOptions.BaseWidth"/> (64),
        /// <see cref="UNetOptions.Upsampling"/> (<see cref="UNetUpsampling.TransposedConvolution"/>),
        /// <see cref="UNetOptions.DecoderResidual"/> (false), <see cref="ModelOptions.DropRate"/>, <see cref="ModelOptions.Seed"/>.
        /// <see cref="UNetOptions.DecoderChannels"/>, <see cref="UNetOptions.Encoder"/> and <see cref="UNetOptions.EncoderOptions"/> belong to the encoder U-Nets and must be null.
        /// </param>
        /// <exception cref="ArgumentException">An option is out of range or does not apply; the message names it.</exception>
        public UNet(int inChannels, int numClasses, UNetOptions? options = null) : base(nameof(UNet))
        {
            UNetOptions.CheckCounts(inChannels, numClasses);
            options ??= new UNetOptions();
            if (options.DecoderChannels != null)
            {
                throw new ArgumentException(
                    "UNetOptions.DecoderChannels applies to the encoder U-Nets (unet_resnet18, …). The classic 'unet' doubles its widths per level: set BaseWidth and Depth instead.",
                    nameof(options));
            }

            if (options.Encoder != null || options.EncoderOptions != null)
            {
                throw new ArgumentException(
                    $"UNetOptions.{(options.Encoder != null ? "Encoder" : "EncoderOptions")} applies to the encoder U-Nets (ResidualModels.Create(\"unet\", …) "
                    + "with Encoder = \"resnet18\", …); this constructor builds the classic U-Net, which has its own contracting path. Leave it null.",
                    nameof(options));
            }

            int depth = options.Depth ?? 4;
            if (depth < 1 || depth > MaxDepth)
            {
                throw new ArgumentException(
                    $"UNetOptions.Depth must be between 1 and {MaxDepth} (got {depth}): it is the number of 2×2 downsamplings; the paper uses 4.",
                    nameof(options));
            }

            int baseWidth = options.BaseWidth ?? 64;
            if (baseWidth < 1)
                throw new ArgumentException($"UNetOptions.BaseWidth must be at least 1 (got {baseWidth}): it is the width of the first level; the paper uses 64.", nameof(options));
            if (((long)baseWidth << depth) > int.MaxValue)
                throw new ArgumentException($"UNetOptions.BaseWidth {baseWidth} doubled {depth} times (UNetOptions.Depth) exceeds the largest channel count; use a smaller width or depth.", nameof(options));
            ModelOptions.CheckProbability(options.DropRate, nameof(ModelOptions.DropRate));
            if (options.Seed is long seed) torch.manual_seed(seed);

            InChannels = inChannels;
            NumClasses = numClasses;
            Depth = depth;
            BaseWidth = baseWidth;
            Upsampling = options.Upsampling ?? UNetUpsampling.TransposedConvolution;
            DecoderResidual = options.DecoderResidual ?? false;

            var contracting = new List<UNetBlock>();
            for (int level = 0; level <= depth; level++)
            {
                int input = level == 0 ? inChannels : baseWidth << (level - 1);
                contracting.Add(new UNetBlock(input, 0, baseWidth << level, residual: false));
            }

            var expanding = new List<UNetBlock>();
            for (int level = depth - 1; level >= 0; level--)
            {
                int width = baseWidth << level;
                expanding.Add(new UNetBlock(width * 2, width, width, DecoderResidual, Upsampling, upChannels: width));
            }

            encoder = nn.ModuleList(contracting.ToArray());
            decoder = nn.ModuleList(expanding.ToArray());
            head = nn.Conv2d(baseWidth, numClasses, 1);
            register_module("encoder", encoder);
            if (options.DropRate is double rate && rate > 0)
            {
                dropout = nn.Dropout(rate);
                register_module("dropout", dropout);
            }

            register_module("decoder", decoder);
            register_module("segmentation_head", head);
        }

        /// <summary>Input channels.</summary>
        public int InChannels { get; }

        /// <inheritdoc />
        public int NumClasses { get; }

        /// <summary>Number of 2×2 downsamplings.</summary>
        public int Depth { get; }

        /// <summary>Channels of the first level; level <c>l</c> has <c>BaseWidth·2^l</c>.</summary>
        public int BaseWidth { get; }

        /// <summary>How the expanding path upsamples.</summary>
        public UNetUpsampling Upsampling { get; }

        /// <summary>Whether the expanding path's blocks are residual.</summary>
        public bool DecoderResidual { get; }

        /// <inheritdoc />
        public string HeadPrefix => "segmentation_head.";

        /// <summary>2^<see cref="Depth"/>.</summary>
        public int SizeMultiple => 1 << Depth;

        /// <summary>Per-pixel logits, <c>N × NumClasses × H × W</c>, for an <c>N × InChannels × H × W</c> input of any size.</summary>
        public override T Forward<T>(IOperations<T> ops, T input)
        {
            T x = SegmentationPadding.PadToMultiple(ops, input, SizeMultiple);
            var skips = new T[Depth];
            for (int level = 0; level < Depth; level++)
            {
                x = ops.Call(encoder[level], x);
                skips[level] = x;
                x = ops.MaxPool(x, 2, 2);
            }

            x = ops.Call(encoder[Depth], x);
            if (dropout != null) x = ops.Call(dropout, x);
            for (int i = 0; i < Depth; i++) x = ops.Call(decoder[i], decoder[i].Merge(ops, x, skips[Depth - 1 - i]));
            long[] shape = ops.Shape(input);
            return SegmentationPadding.Crop(ops, ops.Call(head, x), shape[2], shape[3]);
        }
    }
}
