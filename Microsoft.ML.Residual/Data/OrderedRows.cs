using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.ML.Data;

namespace Microsoft.ML.Residual.Data
{
    /// <summary>
    /// A row that cannot be used. Thrown by a row reader of <see cref="OrderedRows"/>, which knows the row's position in the
    /// data view only once the row's turn comes, and then throws <see cref="InvalidOperationException"/> with the message
    /// <see cref="Describe"/> writes for that position.
    /// </summary>
    internal sealed class RowReadException : Exception
    {
        public RowReadException(Func<long, string> describe, Exception? inner = null)
            : base(describe(-1), inner)
        {
            Describe = describe;
        }

        /// <summary>The message for the row at a position (0-based, in data-view order).</summary>
        public Func<long, string> Describe { get; }

        /// <summary>The error to report for the row at <paramref name="row"/>.</summary>
        public InvalidOperationException ForRow(long row) => new(Describe(row), InnerException);
    }

    /// <summary>
    /// Reads the rows of a data view on several threads and gives them back in the order one cursor would. ML.NET's cursor
    /// set (<see cref="IDataView.GetRowCursorSet"/>) hands each thread its own cursor over blocks of rows, and each cursor
    /// computes its getters (loading, resizing and extracting images) on that thread; the blocks are put back in order by
    /// their <see cref="DataViewRow.Batch"/>, as ML.NET's own consolidation does.
    /// </summary>
    internal static class OrderedRows
    {
        /// <summary>
        /// Rows each reading thread may hold while an earlier block is consumed. ML.NET's cursor sets hand out blocks of 64
        /// (text files) to 128 rows (in-memory data), so a thread can finish its block while the one before is read; memory
        /// is at most this many rows per thread.
        /// </summary>
        internal const int RowsHeldPerThread = 128;

        /// <summary>
        /// The rows of <paramref name="data"/> in data-view order with their positions, each made by a reader that
        /// <paramref name="createReader"/> builds for the cursor it reads (once per thread).
        /// </summary>
        /// <param name="data">The data view.</param>
        /// <param name="columns">The columns the readers use.</param>
        /// <param name="threads">Cursors read at once; 1 reads on the caller's thread. The data view may give fewer.</param>
        /// <param name="createReader">Builds the reader of a cursor's current row; it throws <see cref="RowReadException"/> for an unusable row.</param>
        /// <param name="token">Stops the reading threads.</param>
        /// <exception cref="InvalidOperationException">A row cannot be used (the message names it), in its turn.</exception>
        public static IEnumerable<(long Row, T Value)> Read<T>(
            IDataView data, IReadOnlyList<DataViewSchema.Column> columns, int threads, Func<DataViewRowCursor, Func<T>> createReader, CancellationToken token)
        {
            DataViewRowCursor[] cursors = threads <= 1 ? new[] { data.GetRowCursor(columns) } : data.GetRowCursorSet(columns, threads);
            foreach (var row in cursors.Length == 1 ? OnThisThread(cursors[0], createReader, token) : Merged(cursors, createReader, token))
                yield return row;
        }

        private static IEnumerable<(long Row, T Value)> OnThisThread<T>(DataViewRowCursor cursor, Func<DataViewRowCursor, Func<T>> createReader, CancellationToken token)
        {
            using (cursor)
            {
                Func<T> read = createReader(cursor);
                for (long row = 0; cursor.MoveNext(); row++)
                {
                    token.ThrowIfCancellationRequested();
                    yield return (row, ReadRow(read, row));
                }
            }
        }

        private static T ReadRow<T>(Func<T> read, long row)
        {
            try
            {
                return read();
            }
            catch (RowReadException e)
            {
                throw e.ForRow(row);
            }
        }

        private static IEnumerable<(long Row, T Value)> Merged<T>(DataViewRowCursor[] cursors, Func<DataViewRowCursor, Func<T>> createReader, CancellationToken token)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
            var queues = cursors.Select(_ => new BlockingCollection<Item<T>>(RowsHeldPerThread)).ToArray();
            var workers = new Task[cursors.Length];
            for (int i = 0; i < cursors.Length; i++)
            {
                DataViewRowCursor cursor = cursors[i];
                BlockingCollection<Item<T>> queue = queues[i];
                workers[i] = Task.Factory.StartNew(() => Work(cursor, queue, createReader, stop.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }

            try
            {
                // The next item of each thread (null: not taken yet), and whether the thread has more.
                var heads = new Item<T>?[queues.Length];
                var open = Enumerable.Repeat(true, queues.Length).ToArray();
                long row = 0;
                while (true)
                {
                    // The block with the lowest Batch comes next; every thread's next block must be known to find it.
                    int next = -1;
                    for (int i = 0; i < queues.Length; i++)
                    {
                        if (heads[i] is null && open[i]) heads[i] = Take(queues[i], stop.Token);
                        if (heads[i] is null) open[i] = false;
                        else if (next < 0 || heads[i]!.Batch < heads[next]!.Batch) next = i;
                    }

                    if (next < 0) break;
                    long batch = heads[next]!.Batch;
                    Item<T>? item = heads[next];
                    while (item is not null && item.Batch == batch)
                    {
                        if (item.Error is RowReadException unusable) throw unusable.ForRow(row);
                        if (item.Error is not null) ExceptionDispatchInfo.Capture(item.Error).Throw();
                        token.ThrowIfCancellationRequested();
                        yield return (row++, item.Value);
                        item = Take(queues[next], stop.Token);
                    }

                    // The first item of the thread's next block, or null at its end.
                    heads[next] = item;
                    open[next] = item is not null;
                }
            }
            finally
            {
                stop.Cancel();
                try
                {
                    Task.WaitAll(workers);
                }
                catch (AggregateException)
                {
                }

                foreach (var queue in queues) queue.Dispose();
            }
        }

        private static Item<T>? Take<T>(BlockingCollection<Item<T>> queue, CancellationToken token) =>
            queue.TryTake(out Item<T>? item, Timeout.Infinite, token) ? item : null;

        private static void Work<T>(DataViewRowCursor cursor, BlockingCollection<Item<T>> queue, Func<DataViewRowCursor, Func<T>> createReader, CancellationToken token)
        {
            try
            {
                using (cursor)
                {
                    Func<T> read = createReader(cursor);
                    while (cursor.MoveNext())
                    {
                        long batch = cursor.Batch;
                        T value;
                        try
                        {
                            value = read();
                        }
                        catch (Exception e) when (e is not OperationCanceledException)
                        {
                            queue.Add(new Item<T>(batch, default!, e), token);
                            return;
                        }

                        queue.Add(new Item<T>(batch, value, null), token);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                // The cursor itself failed: the lowest block number makes the merge report it next.
                try
                {
                    queue.Add(new Item<T>(long.MinValue, default!, e), token);
                }
                catch (OperationCanceledException)
                {
                }
            }
            finally
            {
                queue.CompleteAdding();
            }
        }

        private sealed record Item<T>(long Batch, T Value, Exception? Error);
    }
}
