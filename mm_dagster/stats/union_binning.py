"""Every numeric feature of a window binned on its reference's union bins in one compiled pass.

`NumericBins.union` holds both edge sets of a feature (MLRun's equal-width histogram and the
verdict's mass-following bins); `histogram_and_drift_counts` finds each value's union bin with a
binary search. Here a feature's union bins get a lookup grid (`UnionGrid`): equal-width cells over
the union's range, each knowing how many union edges lie wholly before it, which is the union bin
of every value of a cell without an edge; a cell holding an edge is marked in the table, and its
values are compared with the neighbouring edges until each lies between two of them. The answer is
always the binary search's (`searchsorted(union, x, side="right")`), whatever the rounding of the
cell: the table is made with the kernel's own arithmetic, and cells never decrease as values grow,
so an edge of an earlier cell is below every value of a later one. NaN is skipped, as
`histogram_and_drift_counts` leaves it out.

A column is binned a chunk at a time: first each value's cell, a loop of arithmetic alone that the
compiler turns into vector instructions, then each cell's table entry (one load tells the bin, or
that the value is compared with the edges: ~5% of normal data), tallied. A long column
(`FINE_VALUES_PER_CELL`) is tallied on a grid `FINE_CELLS` times finer, made for the call, where a
quarter as many values lie in a cell holding an edge. Measured on one thread: 1M-row normal columns
1.2 ms a column, where binning and tallying each value in one loop took 2.8 ms and comparing every
value with its cell's edges 4.3 ms; a 1,000-row window of 20 features 28 us, where a loop comparing
each value took 65 us; on some virtual machines a tally stored as each value is binned also held
the next value's loads back (10-12 ms a 1M-row column in some processes).

`union_counts` runs the loop for all numeric columns of a window in one call of a numba kernel
(compiled once per machine, cached on disk: `cache=True`); `stats.feature_stats` keeps the
numpy reference implementation the property tests compare with.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from mm_dagster.stats.column_summary import columns_readable
from mm_dagster.stats.feature_stats import NumericBins

CELLS_PER_EDGE = 32  # as fast as 64 on normal, exponential and log-normal references (measured)
# Table entries count edges: 16 bits hold any union of up to 32,767 edges (a feature's union has
# ~20-100); a grid is kept per feature of every endpoint's reference, so its size is memory per
# endpoint (10,000 endpoints x 20 features: 0.5 GB in int16 at 32 cells, 2.4 GB in int32 at 64).
TABLE_DTYPE = np.int16
MAX_TABLE_EDGES = int(np.iinfo(TABLE_DTYPE).max)
# A column of at least FINE_VALUES_PER_CELL values per cell of a grid FINE_CELLS times finer is
# tallied on that grid, made for the call (a 41-edge union: 12,000 values 1.6 -> 1.2 ns a value,
# 1M 2.0 -> 1.5 ns; 8 times finer 3% more; at 6,000 values the grid kept is as fast; measured).
FINE_CELLS = 4
FINE_VALUES_PER_CELL = 2
# A column's cells are computed a chunk at a time into a buffer, then looked up and tallied.
CHUNK_VALUES = 1024


@njit(cache=True, nogil=True)
def _count_column(
    values: np.ndarray, edges: np.ndarray, low: float, scale: float, table: np.ndarray, counts: np.ndarray
) -> None:  # pragma: no cover - compiled; tests/test_union_binning.py checks it against numpy
    fine_scale = scale * FINE_CELLS
    # (a span so narrow that the finer scale overflows keeps its grid)
    if values.size >= FINE_VALUES_PER_CELL * FINE_CELLS * table.size and np.isfinite(fine_scale):
        fine = np.empty(FINE_CELLS * table.size, dtype=table.dtype)
        _fill_table(edges, low, fine_scale, fine)
        _count_in_chunks(values, edges, low, fine_scale, fine, counts)
    else:
        _count_in_chunks(values, edges, low, scale, table, counts)


@njit(cache=True, nogil=True)
def _union_bin(x: float, edges: np.ndarray, n_edges: int, k: int) -> int:  # pragma: no cover - compiled
    """`searchsorted(edges, x, side="right")`, starting from the cell's count of edges before it."""
    while k < n_edges and edges[k] <= x:
        k += 1
    while k > 0 and edges[k - 1] > x:
        k -= 1
    return k


@njit(cache=True, nogil=True)
def _grid_cell(x: float, low: float, scale: float, last: float) -> int:  # pragma: no cover - compiled
    """The cell of `x` on a grid of `last` + 1 cells (below it and NaN: the first; past it:
    the last), without a branch."""
    c = (x - low) * scale
    c = c if c > 0.0 else 0.0
    c = c if c < last else last
    return int(c)


@njit(cache=True, nogil=True)
def _cells_of_chunk(
    chunk: np.ndarray, low: float, scale: float, last: float, cells: np.ndarray
) -> None:  # pragma: no cover - compiled
    """`_grid_cell` of each value of `chunk` into `cells` (a loop of arithmetic alone, which the
    compiler turns into vector instructions)."""
    for i in range(chunk.size):
        cells[i] = _grid_cell(chunk[i], low, scale, last)


@njit(cache=True, nogil=True)
def _count_in_chunks(
    values: np.ndarray, edges: np.ndarray, low: float, scale: float, table: np.ndarray, counts: np.ndarray
) -> None:  # pragma: no cover - compiled
    """`table`: made by `_fill_table` (or `UnionGrid.of`) for `low` and `scale`."""
    n_edges = edges.size
    last = float(table.size - 1)
    cells = np.empty(CHUNK_VALUES, dtype=np.int32)
    tallies = np.zeros((2, counts.size + 1), dtype=np.int64)  # + NaN's
    for start in range(0, values.size, CHUNK_VALUES):
        chunk = values[start : start + CHUNK_VALUES]
        _cells_of_chunk(chunk, low, scale, last, cells)
        for j in range(chunk.size):  # two tallies: a run of one bin does not wait on its own stores
            k = table[cells[j]]
            if k < 0:  # a cell holding an edge
                x = chunk[j]
                k = _union_bin(x, edges, n_edges, -1 - k) if x == x else n_edges + 1
            tallies[j & 1, k] += 1
    for j in range(counts.size):
        counts[j] += tallies[0, j] + tallies[1, j]


@njit(cache=True, nogil=True)
def _count_block(
    block: np.ndarray,
    edges: np.ndarray,
    edge_starts: np.ndarray,
    lows: np.ndarray,
    scales: np.ndarray,
    tables: np.ndarray,
    table_starts: np.ndarray,
    counts: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for feature in range(block.shape[1]):
        e0, e1 = edge_starts[feature], edge_starts[feature + 1]
        _count_column(
            block[:, feature],
            edges[e0:e1],
            lows[feature],
            scales[feature],
            tables[table_starts[feature] : table_starts[feature + 1]],
            counts[e0 + feature : e1 + feature + 1],
        )


@dataclass(frozen=True)
class UnionGrid:
    """The lookup grid of one feature's union edges (see the module docstring). `table[c]`: how
    many edges lie in cells before cell c, the union bin of each value of the cell; for a cell
    whose values are compared with the edges -1 - that count (the cells holding an edge, the
    first, which also takes NaN and values below the grid, and the last, which takes values past
    it)."""

    edges: np.ndarray
    low: float
    scale: float
    table: np.ndarray

    @classmethod
    def of(cls, union: np.ndarray) -> "UnionGrid":
        edges = np.ascontiguousarray(union, dtype=np.float64)
        cells = max(CELLS_PER_EDGE * edges.size, 1)
        low, high = float(edges[0]), float(edges[-1])
        span = high - low
        scale = cells / span if span > 0 and np.isfinite(span) and np.isfinite(cells / span) else 0.0
        position = (edges - low) * scale
        cell_of_edge = np.where(position < 0, 0, np.where(position >= cells - 1, cells - 1, position))
        cell_of_edge = cell_of_edge.astype(np.int64)
        # How many edges lie in cells before each cell: never more than the edges <= any of its values.
        table = np.searchsorted(np.sort(cell_of_edge), np.arange(cells), side="left")
        compared = np.ones(cells, dtype=bool)
        compared[1:-1] = table[2:] != table[1:-1]
        table = np.where(compared, -1 - table, table)
        return cls(
            edges, low, scale, table.astype(TABLE_DTYPE if edges.size <= MAX_TABLE_EDGES else np.int32)
        )


@dataclass(frozen=True)
class PackedGrids:
    """Several features' grids in the flat arrays the kernel reads (one window's numeric
    columns, in the order of the block's columns)."""

    edges: np.ndarray
    edge_starts: np.ndarray
    lows: np.ndarray
    scales: np.ndarray
    tables: np.ndarray
    table_starts: np.ndarray

    @classmethod
    def of(cls, grids: Sequence[UnionGrid]) -> "PackedGrids":
        def starts(sizes: list[int]) -> np.ndarray:
            return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)

        empty = np.zeros(0, dtype=np.float64)
        return cls(
            edges=np.concatenate([g.edges for g in grids]) if grids else empty,
            edge_starts=starts([g.edges.size for g in grids]),
            lows=np.asarray([g.low for g in grids], dtype=np.float64),
            scales=np.asarray([g.scale for g in grids], dtype=np.float64),
            tables=np.concatenate([g.table for g in grids]) if grids else np.zeros(0, dtype=TABLE_DTYPE),
            table_starts=starts([g.table.size for g in grids]),
        )

    @property
    def bins(self) -> int:
        """Union bins of all features together (each has one more bin than edges)."""
        return int(self.edges.size + self.lows.size)

    def grid(self, i: int) -> UnionGrid:
        """Feature i's grid (views of the packed arrays)."""
        e0, e1 = int(self.edge_starts[i]), int(self.edge_starts[i + 1])
        t0, t1 = int(self.table_starts[i]), int(self.table_starts[i + 1])
        return UnionGrid(self.edges[e0:e1], float(self.lows[i]), float(self.scales[i]), self.tables[t0:t1])

    def grids(self) -> list[UnionGrid]:
        """Each feature's grid (views of the packed arrays)."""
        edge_starts, table_starts = self.edge_starts.tolist(), self.table_starts.tolist()
        return [
            UnionGrid(self.edges[e0:e1], low, scale, self.tables[t0:t1])
            for e0, e1, low, scale, t0, t1 in zip(
                edge_starts,
                edge_starts[1:],
                self.lows.tolist(),
                self.scales.tolist(),
                table_starts,
                table_starts[1:],
                strict=False,
            )
        ]


def union_counts(block: np.ndarray, grids: PackedGrids) -> np.ndarray:
    """Counts of `block`'s non-NaN values (rows x features, float64) in each feature's union
    bins, concatenated in column order: `searchsorted(union, x, side="right")` per value."""
    if block.ndim != 2 or block.shape[1] != grids.lows.size:
        raise ValueError(f"block of shape {block.shape} does not match {grids.lows.size} feature grids")
    counts = np.zeros(grids.bins, dtype=np.int64)
    if block.shape[0]:
        _count_block(
            columns_readable(block),
            grids.edges,
            grids.edge_starts,
            grids.lows,
            grids.scales,
            grids.tables,
            grids.table_starts,
            counts,
        )
    return counts


@njit(cache=True, nogil=True)
def _count_block_on_made_grids(
    block: np.ndarray, edges: np.ndarray, edge_starts: np.ndarray, counts: np.ndarray
) -> bool:  # pragma: no cover - compiled
    """False, nothing counted, when a union holds no edge or more than `MAX_TABLE_EDGES`."""
    most = 1
    for feature in range(block.shape[1]):
        size = edge_starts[feature + 1] - edge_starts[feature]
        if size < 1 or size > MAX_TABLE_EDGES:
            return False
        most = max(most, _cells(size))
    table_of_one = np.empty(most, dtype=TABLE_DTYPE)  # each feature's table in turn
    for feature in range(block.shape[1]):
        e0, e1 = edge_starts[feature], edge_starts[feature + 1]
        union = edges[e0:e1]
        table = table_of_one[: _cells(union.size)]
        low, scale = _grid_scale(union)
        _fill_table(union, low, scale, table)
        _count_column(block[:, feature], union, low, scale, table, counts[e0 + feature : e1 + feature + 1])
    return True


def union_counts_of_unions(block: np.ndarray, edges: np.ndarray, edge_starts: np.ndarray) -> np.ndarray:
    """`union_counts(block, packed_grids_of_unions(edges, edge_starts))` in one compiled call
    that makes each feature's grid in turn in one table and keeps none: for unions binned once
    (a stored plan's, once per window of 1,000 rows: making the packed grids first cost 76 us
    an endpoint of 20 features in a 10,000-endpoint run, counting on them 105 us)."""
    features = len(edge_starts) - 1
    if block.ndim != 2 or block.shape[1] != features:
        raise ValueError(f"block of shape {block.shape} does not match {features} feature unions")
    counts = np.zeros(int(edge_starts[-1]) + features, dtype=np.int64)
    # the unions' sizes are checked in the kernel (numpy's reductions on them cost as much as
    # counting a feature), and here when it found one that does not fit, or has no rows to count
    if not block.shape[0] or not _count_block_on_made_grids(
        columns_readable(block),
        np.ascontiguousarray(edges, dtype=np.float64),
        np.ascontiguousarray(edge_starts, dtype=np.int64),
        counts,
    ):
        union_sizes(edge_starts)
    return counts


def column_counts(values: np.ndarray, grid: UnionGrid) -> np.ndarray:
    """One column's counts in its union bins (for columns binned in parallel threads: the
    kernel releases the GIL)."""
    counts = np.zeros(grid.edges.size + 1, dtype=np.int64)
    _count_column(
        np.ascontiguousarray(values, dtype=np.float64), grid.edges, grid.low, grid.scale, grid.table, counts
    )
    return counts


@dataclass(frozen=True)
class PackedSplit:
    """How the union counts of a set of features split into their histograms and drift bins
    (`feature_stats.split_union_counts` of each, its vectorised form), made once per set (a
    window of the reference usually has the same numeric columns as the last one): where each
    union bin of each feature goes in the concatenated histograms and drift bins, so all
    features split in one compiled pass."""

    histogram_of_union: np.ndarray  # into the concatenated histograms
    drift_of_union: np.ndarray  # into the concatenated drift bins
    at_max: np.ndarray  # each feature's union bin holding its reference max (into the counts)
    histogram_ends: np.ndarray  # where each feature's histogram ends in the concatenated ones
    drift_ends: np.ndarray

    @classmethod
    def of(cls, bins: Sequence[NumericBins]) -> "PackedSplit":
        def ends(sizes: list[int]) -> np.ndarray:
            return np.cumsum([0, *sizes], dtype=np.int64)

        histogram_ends = ends([b.edges.size - 1 for b in bins])
        drift_ends = ends([b.drift_edges.size + 1 for b in bins])
        union_ends = ends([b.union.size + 1 for b in bins])
        return cls(
            np.concatenate(
                [[], *(b.histogram_of_union + histogram_ends[i] for i, b in enumerate(bins))]
            ).astype(np.int64),
            np.concatenate([[], *(b.drift_of_union + drift_ends[i] for i, b in enumerate(bins))]).astype(
                np.int64
            ),
            np.asarray([b.at_max for b in bins], dtype=np.int64) + union_ends[:-1],
            histogram_ends[1:],
            drift_ends[1:],
        )

    def split(
        self, counts: np.ndarray, mlrun_compatible: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`split_union_counts` of each of the `bins` this was made of, on its part of `counts`
        (in the same order); the arrays are read-only views of two shared ones."""
        if not self.at_max.size:
            return []
        histograms, drifts = self.split_packed(counts, mlrun_compatible)
        h_ends, d_ends = self.histogram_ends.tolist(), self.drift_ends.tolist()
        return [
            (histograms[h0:h1], drifts[d0:d1])
            for h0, h1, d0, d1 in zip([0, *h_ends[:-1]], h_ends, [0, *d_ends[:-1]], d_ends, strict=True)
        ]

    def split_packed(
        self, counts: np.ndarray, mlrun_compatible: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """`split`'s histograms and drift counts, each feature's after the one before (ending at
        `histogram_ends` and `drift_ends`), as two read-only int64 arrays."""
        if counts.shape != self.histogram_of_union.shape:
            bins = self.histogram_of_union.size
            raise ValueError(f"{counts.size} union counts do not match a split of {bins} union bins")
        histograms = np.zeros(int(self.histogram_ends[-1]), dtype=np.int64)
        drifts = np.zeros(int(self.drift_ends[-1]), dtype=np.int64)
        if not _split_into(
            np.ascontiguousarray(counts, dtype=np.int64),
            self.histogram_of_union,
            self.drift_of_union,
            self.at_max,
            self.histogram_ends,
            mlrun_compatible,
            histograms,
            drifts,
        ):
            raise ValueError("a split sends union counts past its histograms or drift bins (damaged)")
        histograms.flags.writeable = drifts.flags.writeable = False
        return histograms, drifts


@njit(cache=True, nogil=True)
def _split_into(
    counts: np.ndarray,
    histogram_of_union: np.ndarray,
    drift_of_union: np.ndarray,
    at_max: np.ndarray,
    histogram_ends: np.ndarray,
    mlrun_compatible: bool,
    histograms: np.ndarray,
    drifts: np.ndarray,
) -> bool:  # pragma: no cover - compiled; tests/test_union_binning.py checks it against numpy
    """Each union bin's count added to its histogram bin and its drift bin (one pass where two
    `bincount`s, their conversions and the max's move cost ~8 numpy calls an endpoint). False
    when an index lies outside the arrays (a damaged split; the kernel checks no bounds itself)."""
    histogram_bins, drift_bins = histograms.size, drifts.size
    for j in range(counts.size):
        h, d = histogram_of_union[j], drift_of_union[j]
        if h < 0 or h >= histogram_bins or d < 0 or d >= drift_bins:
            return False
        histograms[h] += counts[j]
        drifts[d] += counts[j]
    if not mlrun_compatible:  # the reference max's bin: counted in the last finite bin, not "> max"
        for f in range(at_max.size):
            at, end = at_max[f], histogram_ends[f]
            if at < 0 or at >= counts.size or end < 2 or end > histogram_bins:
                return False
            histograms[end - 2] += counts[at]
            histograms[end - 1] -= counts[at]
    return True


def split_counts(
    counts: np.ndarray, bins: Sequence[NumericBins], mlrun_compatible: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each feature's (histogram counts, drift counts) from its union counts, exactly as
    `feature_stats.histogram_and_drift_counts` gives them (read-only; `PackedSplit` keeps the
    split of a feature set that is split again and again)."""
    return PackedSplit.of(bins).split(counts, mlrun_compatible)


@njit(cache=True, nogil=True)
def _prepare_union(
    edges: np.ndarray, drift_edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float, float, np.ndarray]:  # pragma: no cover - compiled
    inner = edges[1:-1]
    maximum = inner[-1]
    pooled = np.sort(np.concatenate((inner, drift_edges, np.array([np.nextafter(maximum, np.inf)]))))
    keep = np.ones(pooled.size, dtype=np.bool_)
    for i in range(1, pooled.size):
        keep[i] = pooled[i] != pooled[i - 1]
    union = pooled[keep]
    starts = np.empty(union.size + 1)
    starts[0] = -np.inf
    starts[1:] = union
    histogram_of_union = np.searchsorted(inner, starts, side="right")
    drift_of_union = np.searchsorted(drift_edges, starts, side="right")
    at_max = np.searchsorted(union, maximum, side="right")
    low, scale = _grid_scale(union)
    table = np.empty(_cells(union.size), dtype=TABLE_DTYPE)
    _fill_table(union, low, scale, table)
    return union, histogram_of_union, drift_of_union, at_max, low, scale, table


@njit(cache=True, nogil=True)
def _cells(edges: int) -> int:  # pragma: no cover - compiled
    return max(CELLS_PER_EDGE * edges, 1)


@njit(cache=True, nogil=True)
def _grid_scale(union: np.ndarray) -> tuple[float, float]:  # pragma: no cover - compiled
    """The grid's first edge and cells per unit of the union's span (0 for an empty or
    non-finite span: every value falls in the first cell)."""
    cells = _cells(union.size)
    low, high = union[0], union[-1]
    span = high - low
    scale = 0.0
    if span > 0 and np.isfinite(span) and np.isfinite(cells / span):
        scale = cells / span
    return low, scale


@njit(cache=True, nogil=True)
def _fill_table(
    union: np.ndarray, low: float, scale: float, table: np.ndarray
) -> None:  # pragma: no cover - compiled
    """The grid's table (see `UnionGrid`). The union is sorted and its cells never decrease:
    each edge's index fills the cells after the edge before it up to its own, which holds it
    (filled a run at a time: a cell at a time cost 5 us a 41-edge union, more than binning its
    window's values)."""
    cells = table.size
    last_cell = float(cells - 1)
    cell = 0
    for edge in range(union.size):
        last = _grid_cell(union[edge], low, scale, last_cell)
        if last >= cell:
            table[cell:last] = edge
            table[last] = -1 - edge
            cell = last + 1
    table[cell:] = union.size
    for end in (0, cells - 1):
        if table[end] >= 0:
            table[end] = -1 - table[end]


@njit(cache=True, nogil=True)
def _fill_grids(
    edges: np.ndarray,
    edge_starts: np.ndarray,
    lows: np.ndarray,
    scales: np.ndarray,
    tables: np.ndarray,
    table_starts: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for feature in range(lows.size):
        union = edges[edge_starts[feature] : edge_starts[feature + 1]]
        low, scale = _grid_scale(union)
        lows[feature] = low
        scales[feature] = scale
        _fill_table(union, low, scale, tables[table_starts[feature] : table_starts[feature + 1]])


def union_sizes(edge_starts: np.ndarray) -> np.ndarray:
    """The sizes of the unions `edge_starts` delimits, each checked to hold 1 to `MAX_TABLE_EDGES` edges."""
    sizes = np.diff(edge_starts)
    if sizes.size and (sizes.min() < 1 or sizes.max() > MAX_TABLE_EDGES):
        raise ValueError(f"unions must hold 1 to {MAX_TABLE_EDGES} edges, got {sizes.min()} to {sizes.max()}")
    return sizes


def packed_grids_of_unions(edges: np.ndarray, edge_starts: np.ndarray) -> PackedGrids:
    """The packed grids of several features' unions, given concatenated (`edges`, feature i's
    union `edges[edge_starts[i]:edge_starts[i + 1]]`, each of at most `MAX_TABLE_EDGES`), built
    in one compiled call: the same grids as `prepared_bins` makes one by one."""
    sizes = union_sizes(edge_starts)
    table_starts = np.concatenate(([0], np.cumsum(np.maximum(CELLS_PER_EDGE * sizes, 1)))).astype(np.int64)
    grids = PackedGrids(
        edges=np.ascontiguousarray(edges, dtype=np.float64),
        edge_starts=np.ascontiguousarray(edge_starts, dtype=np.int64),
        lows=np.zeros(sizes.size),
        scales=np.zeros(sizes.size),
        tables=np.empty(int(table_starts[-1]), dtype=TABLE_DTYPE),
        table_starts=table_starts,
    )
    if sizes.size:
        _fill_grids(
            grids.edges, grids.edge_starts, grids.lows, grids.scales, grids.tables, grids.table_starts
        )
    return grids


def prepared_bins(edges: np.ndarray, drift_edges: np.ndarray) -> tuple[NumericBins, UnionGrid]:
    """`NumericBins.of(edges, drift_edges)` and the `UnionGrid.of` its union, from one compiled
    call (the numpy versions cost ~100 µs a feature in call overheads, paid per feature of every
    endpoint's reference in every window's process)."""
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    drift_edges = np.ascontiguousarray(drift_edges, dtype=np.float64)
    if edges.size + drift_edges.size > MAX_TABLE_EDGES:  # a table of wider entries: the numpy versions
        bins = NumericBins.of(edges, drift_edges)
        return bins, UnionGrid.of(bins.union)
    union, histogram_of_union, drift_of_union, at_max, low, scale, table = _prepare_union(edges, drift_edges)
    bins = NumericBins(edges, drift_edges, union, histogram_of_union, drift_of_union, int(at_max))
    return bins, UnionGrid(union, float(low), float(scale), table)
