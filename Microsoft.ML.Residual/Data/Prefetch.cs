using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// Runs a producer on a background task at most <c>capacity</c> items ahead of the consumer, so reading and decoding
    /// overlap training. A producer error is rethrown to the consumer; a consumer that stops early cancels the producer.
    /// </summary>
    internal static class Prefetch
    {
        /// <param name="produce">Adds items through its first argument; must honour the token.</param>
        /// <param name="capacity">Items prepared ahead of the consumer.</param>
        /// <param name="convert">Runs on the consumer's thread (e.g. moves tensors into its dispose scope); owns the item from then on.</param>
        /// <param name="discard">Releases an item the consumer never took (it stopped early, or the producer failed after making it).</param>
        public static IEnumerable<TOut> Run<TItem, TOut>(
            Action<Action<TItem>, CancellationToken> produce, int capacity, Func<TItem, TOut> convert, Action<TItem>? discard = null)
        {
            using var cancel = new CancellationTokenSource();
            using var queue = new BlockingCollection<TItem>(capacity);
            Exception? error = null;
            var producer = Task.Factory.StartNew(() =>
            {
                try
                {
                    produce(item =>
                    {
                        try
                        {
                            queue.Add(item, cancel.Token);
                        }
                        catch
                        {
                            discard?.Invoke(item);
                            throw;
                        }
                    }, cancel.Token);
                }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested)
                {
                }
                catch (Exception ex)
                {
                    error = ex;
                }
                finally
                {
                    queue.CompleteAdding();
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            try
            {
                foreach (TItem item in queue.GetConsumingEnumerable())
                    yield return convert(item);
                producer.Wait();
                if (error is not null) ExceptionDispatchInfo.Capture(error).Throw();
            }
            finally
            {
                cancel.Cancel();
                try { producer.Wait(); } catch (AggregateException) { }
                if (discard is not null)
                    while (queue.TryTake(out TItem? left)) discard(left);
            }
        }

        /// <summary>The items of <paramref name="rows"/> in a uniform random order drawn from <paramref name="random"/>, or in order when it is null.</summary>
        public static IEnumerable<T> Permuted<T>(IReadOnlyList<T> rows, Random? random)
        {
            int[] order = new int[rows.Count];
            for (int i = 0; i < order.Length; i++) order[i] = i;
            if (random is not null)
            {
                for (int i = order.Length - 1; i > 0; i--)
                {
                    int j = random.Next(i + 1);
                    (order[i], order[j]) = (order[j], order[i]);
                }
            }

            foreach (int i in order) yield return rows[i];
        }
    }

    /// <summary>Rows read once, by the first epoch that asks for them, and served from memory after that in a new order each time.</summary>
    internal sealed class RowCache<T>
    {
        private readonly object gate = new();
        private List<T>? rows;

        /// <summary>The cached rows (read by <paramref name="read"/> the first time) permuted by <paramref name="shuffle"/>, or in order when it is null.</summary>
        public IEnumerable<T> Permuted(Func<IEnumerable<T>> read, Random? shuffle)
        {
            List<T> cached;
            lock (gate) cached = rows ??= read().ToList();
            return Prefetch.Permuted(cached, shuffle);
        }

        /// <summary>
        /// As many cached rows as there are, drawn with replacement from <paramref name="random"/>: a class (by
        /// <paramref name="classOf"/>; rows of a negative class, unlabelled, are never drawn) uniformly among those present, then a row of it uniformly.
        /// </summary>
        public IEnumerable<T> Balanced(Func<IEnumerable<T>> read, Random random, Func<T, long> classOf)
        {
            List<T> cached;
            lock (gate) cached = rows ??= read().ToList();
            int[][] classes = Enumerable.Range(0, cached.Count).Where(i => classOf(cached[i]) >= 0).GroupBy(i => classOf(cached[i])).OrderBy(g => g.Key).Select(g => g.ToArray()).ToArray();
            for (int n = 0; n < cached.Count && classes.Length > 0; n++)
            {
                int[] members = classes[random.Next(classes.Length)];
                yield return cached[members[random.Next(members.Length)]];
            }
        }
    }
}
