using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// The steps the batch readers (classification and segmentation) share: an epoch's row order, grouping rows into
    /// batches, preparing a batch's rows on several threads, and making the host tensors.
    /// </summary>
    internal static class BatchAssembly
    {
        /// <summary>
        /// The rows of one epoch: from <paramref name="cache"/> when given (read once, then permuted), else streamed through
        /// a shuffle buffer of <paramref name="shuffleBufferSize"/> rows, or in data-view order when <paramref name="shuffle"/> is null.
        /// </summary>
        public static IEnumerable<T> EpochRows<T>(Func<IEnumerable<T>> read, RowCache<T>? cache, Random? shuffle, int shuffleBufferSize)
        {
            if (cache is not null) return cache.Permuted(read, shuffle);
            return shuffle is null ? read() : ImageBatchReader.ShuffleBuffer(read(), shuffleBufferSize, shuffle);
        }

        /// <summary>
        /// Hands <paramref name="onBatch"/> each run of <paramref name="batchSize"/> rows (the last one shorter unless
        /// <paramref name="dropLast"/>) with the place of its first row in the epoch; the list is reused after the call returns.
        /// </summary>
        /// <returns>The number of rows seen.</returns>
        public static long Group<T>(IEnumerable<T> rows, int batchSize, bool dropLast, Action<List<T>, long> onBatch)
        {
            var pending = new List<T>(batchSize);
            long total = 0;
            foreach (T row in rows)
            {
                total++;
                pending.Add(row);
                if (pending.Count < batchSize) continue;
                onBatch(pending, total - pending.Count);
                pending.Clear();
            }

            if (pending.Count > 0 && !dropLast) onBatch(pending, total - pending.Count);
            return total;
        }

        /// <summary>Runs <paramref name="body"/> for 0…<paramref name="count"/>−1 on up to <paramref name="threads"/> threads.</summary>
        /// <remarks>Bodies must write only their own row's output; the first error is rethrown as it is.</remarks>
        public static void ForEachRow(int count, int threads, CancellationToken token, Action<int> body)
        {
            if (threads <= 1 || count <= 1)
            {
                for (int i = 0; i < count; i++)
                {
                    token.ThrowIfCancellationRequested();
                    body(i);
                }

                return;
            }

            try
            {
                Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = token }, body);
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
        }

        /// <summary>
        /// A new CPU batch tensor for rows to be written into with <see cref="Row{T}"/>. Rows are written straight into
        /// libtorch's memory by managed code: no second copy, and no libtorch copy kernel, whose worker threads would
        /// spin on the cores the reading threads need.
        /// </summary>
        public static Tensor Empty(long[] shape, ScalarType type) => empty(shape, type);

        /// <summary>The memory of row <paramref name="index"/> of a CPU tensor made by <see cref="Empty"/>, valid while the tensor lives.</summary>
        public static Span<T> Row<T>(Tensor batch, int index) where T : unmanaged
        {
            using Tensor row = batch[index];
            return MemoryMarshal.Cast<byte, T>(row.bytes);
        }

        /// <summary>
        /// <paramref name="made"/> itself, or when <paramref name="pin"/> (CUDA only) a copy in page-locked memory, which lets its
        /// copy to the GPU run asynchronously (<c>to(device, non_blocking: true)</c>); <paramref name="made"/> is then disposed.
        /// </summary>
        public static Tensor Pinned(Tensor made, bool pin)
        {
            if (!pin) return made;
            using (made)
                return made.pin_memory();
        }
    }

    /// <summary>
    /// Arrays of one length handed back for reuse. A decoded row (600 KB at 224²) lives for a moment, from its reading
    /// thread to its batch; allocating a new one each time costs the garbage collector and, when it returns the memory to
    /// the system, a page fault per 4 KB on the next allocation (measured at a tenth of the input pipeline's time).
    /// </summary>
    internal sealed class ArrayRecycler<T>
    {
        private readonly ConcurrentBag<T[]> free = new();
        private readonly int length, capacity;

        /// <param name="length">The length of every array.</param>
        /// <param name="capacity">Arrays kept at most (the most a reader has in flight); more are left to the garbage collector.</param>
        public ArrayRecycler(int length, int capacity)
        {
            this.length = length;
            this.capacity = capacity;
        }

        /// <summary>A free array (its contents are left over: overwrite them all) or a new one.</summary>
        public T[] Rent() => free.TryTake(out T[]? array) ? array : new T[length];

        /// <summary>Hands <paramref name="array"/> back; the caller no longer uses it.</summary>
        public void Return(T[] array)
        {
            if (array.Length == length && free.Count < capacity) free.Add(array);
        }
    }
}
