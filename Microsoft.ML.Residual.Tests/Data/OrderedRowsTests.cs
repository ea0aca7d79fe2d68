using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Residual.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Data;

[TestClass]
public sealed class OrderedRowsTests
{
    /// <summary>
    /// A data view of the values 0…count−1 whose cursor set deals blocks of uneven sizes to its cursors in turn, as ML.NET's
    /// splitter does; <paramref name="failAt"/> makes reading that value throw.
    /// </summary>
    private sealed class BlockView : IDataView
    {
        private readonly int count, cursors;
        private readonly int? failAt;

        public BlockView(int count, int cursors, int? failAt = null)
        {
            this.count = count;
            this.cursors = cursors;
            this.failAt = failAt;
            var builder = new DataViewSchema.Builder();
            builder.AddColumn("Value", NumberDataViewType.Int32);
            Schema = builder.ToSchema();
        }

        public DataViewSchema Schema { get; }

        public bool CanShuffle => false;

        /// <summary>Values handed to readers so far (the rows read ahead of the consumer included).</summary>
        public int Read;

        public long? GetRowCount() => count;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            new Cursor(this, Enumerable.Range(0, count).Select(v => (0L, v)).ToList());

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        {
            var shares = Enumerable.Range(0, cursors).Select(_ => new List<(long, int)>()).ToArray();
            int start = 0;
            for (long block = 0; start < count; block++)
            {
                int size = (int)(block % 4) * 7 + 3; // 3, 10, 17, 24, 3, …
                for (int v = start; v < Math.Min(count, start + size); v++) shares[block % cursors].Add((block, v));
                start += size;
            }

            return shares.Select(s => (DataViewRowCursor)new Cursor(this, s)).ToArray();
        }

        private sealed class Cursor : DataViewRowCursor
        {
            private readonly BlockView view;
            private readonly List<(long Block, int Value)> rows;
            private int index = -1;

            public Cursor(BlockView view, List<(long, int)> rows)
            {
                this.view = view;
                this.rows = rows;
            }

            public override DataViewSchema Schema => view.Schema;

            public override long Position => index;

            public override long Batch => rows[index].Block;

            public override bool MoveNext() => ++index < rows.Count;

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => (ref TValue value) =>
            {
                int v = rows[index].Value;
                if (v == view.failAt) throw new FormatException($"value {v} is unreadable");
                Interlocked.Increment(ref view.Read);
                value = (TValue)(object)v;
            };

            public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)rows[index].Value, 0);

            public override bool IsColumnActive(DataViewSchema.Column column) => true;
        }
    }

    private static Func<DataViewRowCursor, Func<int>> ValueReader(IDataView view) => cursor =>
    {
        var getter = cursor.GetGetter<int>(view.Schema[0]);
        return () =>
        {
            int value = 0;
            try
            {
                getter(ref value);
            }
            catch (FormatException e)
            {
                throw new RowReadException(row => $"Column 'Value', row {row}: {e.Message}.", e);
            }

            return value;
        };
    };

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(5)]
    public void RowsComeInDataViewOrderWithTheirPositions(int threads)
    {
        var view = new BlockView(500, cursors: threads);
        var rows = OrderedRows.Read(view, new[] { view.Schema[0] }, threads, ValueReader(view), CancellationToken.None).ToList();
        CollectionAssert.AreEqual(Enumerable.Range(0, 500).ToArray(), rows.Select(r => r.Value).ToArray());
        CollectionAssert.AreEqual(Enumerable.Range(0, 500).Select(i => (long)i).ToArray(), rows.Select(r => r.Row).ToArray());
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(3)]
    public void AnUnreadableRowIsNamedByItsPositionAfterTheRowsBeforeIt(int threads)
    {
        var view = new BlockView(300, cursors: threads, failAt: 211);
        var delivered = new List<int>();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() =>
        {
            foreach (var (_, value) in OrderedRows.Read(view, new[] { view.Schema[0] }, threads, ValueReader(view), CancellationToken.None)) delivered.Add(value);
        });
        StringAssert.Contains(error.Message, "row 211");
        StringAssert.Contains(error.Message, "'Value'");
        Assert.IsInstanceOfType<FormatException>(error.InnerException);
        CollectionAssert.AreEqual(Enumerable.Range(0, 211).ToArray(), delivered);
    }

    [TestMethod]
    public void StoppingEarlyEndsTheReadingThreadsAndBoundsTheRowsReadAhead()
    {
        const int threads = 3;
        var view = new BlockView(100_000, cursors: threads);
        var reading = OrderedRows.Read(view, new[] { view.Schema[0] }, threads, ValueReader(view), CancellationToken.None);
        using (var rows = reading.GetEnumerator())
        {
            for (int i = 0; i < 10; i++) Assert.IsTrue(rows.MoveNext());

            // Each thread holds at most RowsHeldPerThread rows plus the one it is adding, whenever this is read.
            int bound = 10 + threads * (OrderedRows.RowsHeldPerThread + 1) + threads;
            Assert.IsTrue(view.Read <= bound, $"{view.Read} rows read ahead, more than {bound}");
        }

        // Disposing the enumerator waits for the threads: no row is read after it.
        int afterStop = view.Read;
        Thread.Sleep(50);
        Assert.AreEqual(afterStop, view.Read);
        Assert.IsTrue(afterStop < 100_000);
    }

    [TestMethod]
    public void CancellationStopsTheRead()
    {
        var view = new BlockView(10_000, cursors: 3);
        using var cancel = new CancellationTokenSource();
        int taken = 0;
        Assert.ThrowsExactly<OperationCanceledException>(() =>
        {
            foreach (var _ in OrderedRows.Read(view, new[] { view.Schema[0] }, 3, ValueReader(view), cancel.Token))
            {
                if (++taken == 20) cancel.Cancel();
            }
        });
        Assert.AreEqual(20, taken);
    }
}
