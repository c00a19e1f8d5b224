"""A scan's float64 columns gathered batch by batch into one column-major array.

A window read keeps its float columns (a model's numeric inputs and outputs, most of its bytes)
as one (rows x columns) array the frames and the built-in apps share. Gathering them from each
scanned batch as it arrives, instead of from the scanned table, means the Arrow copy of those
columns never exists whole: a batch's buffers are reused for the next one, and the read holds
one copy of the numbers instead of two. Measured on 3,000 endpoints x 1,000 events x 21 float
columns: the read's peak memory 1.96 -> 1.32-1.40 GB, a whole run's through Dagster 2.91 ->
2.32 GB (its time within noise: 14.0-14.6 s vs 13.5-14.8 s).

A window read in parts gathers each part into the memory the previous part used
(`FloatBuffer`): on this project's 2-core VM, memory a process touches for the first time costs
~1.5 ns a byte in kernel time (a 2,500-endpoint part's 0.42 GB block: ~0.7 s), memory it touched
before costs nothing.
"""

import sys
import threading
from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def float_columns(schema: pa.Schema, leave_out: Sequence[str] = ()) -> tuple[str, ...]:
    """The float64 columns of `schema`, in its order, but `leave_out`."""
    return tuple(f.name for f in schema if pa.types.is_float64(f.type) and f.name not in leave_out)


class FloatBuffer:
    """Memory for one `FloatBlock` at a time, kept between blocks: a block asks for its array
    here, and gets it in the memory the last block used when that block is gone (nothing holds
    a view of the memory any more: CPython's reference count says so) and it is large enough;
    otherwise in new memory, kept for the next block if larger. Thread-safe; the memory is freed
    with the buffer."""

    def __init__(self) -> None:
        self._memory = np.empty(0, dtype=np.float64)
        self._lock = threading.Lock()
        self.reused = 0  # blocks that got the memory of an earlier one

    def array(self, rows: int, columns: int) -> np.ndarray:
        """A (rows x columns) column-major float64 array, its values undefined."""
        size = rows * columns
        with self._lock:
            # held here and by getrefcount's argument only: no block or view of one is alive
            free = sys.getrefcount(self._memory) == 2
            if free and 0 < size <= self._memory.size:
                self.reused += 1
                memory = self._memory
            else:  # room for a next block a little larger (the part of a window next to this
                # one): memory never written to costs nothing
                memory = np.empty(size + size // 4, dtype=np.float64)
                if free and size > self._memory.size:
                    self._memory = memory
        return memory[:size].reshape((rows, columns), order="F")


class FloatBlock:
    """Float columns `names` of the rows added so far, in the order added; `capacity` is how
    many rows are expected (more are accepted: the array grows); `buffer`: where the array is
    taken from (new memory without one)."""

    def __init__(self, names: Sequence[str], capacity: int, buffer: FloatBuffer | None = None) -> None:
        self.names = tuple(names)
        rows = max(capacity, 0)
        if buffer is None:
            self._values = np.empty((rows, len(self.names)), dtype=np.float64, order="F")
        else:
            self._values = buffer.array(rows, len(self.names))
        self.rows = 0

    def add(self, batch: pa.RecordBatch, keep: np.ndarray | None = None) -> None:
        """Append `batch`'s rows (those where `keep` is true, when given); nulls become NaN."""
        count = batch.num_rows if keep is None else int(np.count_nonzero(keep))
        if self.rows + count > self._values.shape[0]:
            self._grow(self.rows + count)
        stop = self.rows + count
        for j, name in enumerate(self.names):
            column = batch.column(name).to_numpy(zero_copy_only=False)  # nulls as NaN
            self._values[self.rows : stop, j] = column if keep is None else column[keep]
        self.rows = stop

    def _grow(self, needed: int) -> None:
        rows = max(needed, 2 * self._values.shape[0])
        grown = np.empty((rows, len(self.names)), dtype=np.float64, order="F")
        grown[: self.rows] = self._values[: self.rows]
        self._values = grown

    def values(self, order: np.ndarray | None = None) -> np.ndarray:
        """The (rows x columns) array, column-major; with `order`, its rows put in that order
        first (in place, one column-sized temporary at a time)."""
        values = self._values[: self.rows]
        if order is not None:
            for j in range(values.shape[1]):
                values[:, j] = values[order, j]
        return values
