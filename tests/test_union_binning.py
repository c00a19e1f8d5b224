"""The compiled grid binning gives exactly the counts of the binary-search implementation."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mm_dagster.stats.feature_stats import (
    NumericBins,
    compute_feature_stats,
    histogram_and_drift_counts,
    split_union_counts,
)
from mm_dagster.stats.union_binning import (
    FINE_CELLS,
    FINE_VALUES_PER_CELL,
    PackedGrids,
    PackedSplit,
    UnionGrid,
    column_counts,
    prepared_bins,
    split_counts,
    union_counts,
    union_counts_of_unions,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def _bins(reference: np.ndarray) -> NumericBins:
    stats = compute_feature_stats(pd.DataFrame({"x": reference}))["x"]
    return NumericBins.of(np.asarray(stats["hist"][1]), np.asarray(stats["drift_edges"]))


@st.composite
def reference_and_window(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A reference (continuous, discrete with atoms, or constant) and a window mixing fresh
    values with the reference's own values, its bin edges, the max, NaN and ±inf."""
    shape = draw(st.sampled_from(["continuous", "atoms", "constant", "tiny_range"]))
    size = draw(st.integers(min_value=2, max_value=300))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    if shape == "continuous":
        reference = rng.normal(draw(finite), draw(st.floats(1e-3, 1e3)), size)
    elif shape == "atoms":
        reference = rng.choice(np.asarray(draw(st.lists(finite, min_size=1, max_size=6))), size)
    elif shape == "constant":
        reference = np.full(size, draw(finite))
    else:
        base = draw(finite)
        reference = base + rng.integers(0, 3, size) * np.spacing(base if base else 1.0)
    bins = _bins(reference)
    specials = np.concatenate(
        (bins.union, bins.edges[1:-1], np.nextafter(bins.union, np.inf), np.nextafter(bins.union, -np.inf))
    )
    window = draw(arrays(np.float64, st.integers(0, 200), elements=st.floats(allow_nan=True, width=64)))
    picked = rng.choice(np.concatenate((specials, reference, [np.nan, np.inf, -np.inf])), 200)
    return reference, np.concatenate((window, picked, rng.permutation(reference)))


@settings(max_examples=300, deadline=None)
@given(reference_and_window())
def test_compiled_preparation_equals_numericbins_and_uniongrid(data: tuple[np.ndarray, np.ndarray]) -> None:
    expected = _bins(data[0])
    bins, grid = prepared_bins(expected.edges, expected.drift_edges)
    expected_grid = UnionGrid.of(expected.union)
    for name in ("edges", "drift_edges", "union", "histogram_of_union", "drift_of_union"):
        np.testing.assert_array_equal(getattr(bins, name), getattr(expected, name), err_msg=name)
        assert getattr(bins, name).dtype == getattr(expected, name).dtype, name
    assert bins.at_max == expected.at_max
    np.testing.assert_array_equal(grid.edges, expected_grid.edges)
    assert (grid.low, grid.scale) == (expected_grid.low, expected_grid.scale)
    np.testing.assert_array_equal(grid.table, expected_grid.table)
    assert grid.table.dtype == expected_grid.table.dtype


@settings(max_examples=300, deadline=None)
@given(reference_and_window(), st.booleans())
def test_grid_counts_equal_the_binary_search(data: tuple[np.ndarray, np.ndarray], mlrun: bool) -> None:
    reference, window = data
    bins = _bins(reference)
    grid = UnionGrid.of(bins.union)
    expected_histogram, expected_drift = histogram_and_drift_counts(window, bins, mlrun_compatible=mlrun)
    for counts in (
        column_counts(window, grid),
        union_counts(window[:, None], PackedGrids.of([grid])),
    ):
        [(histogram, drift)] = split_counts(counts, [bins], mlrun)
        np.testing.assert_array_equal(histogram, expected_histogram)
        np.testing.assert_array_equal(drift, expected_drift)
    union = np.bincount(
        np.searchsorted(bins.union, window[~np.isnan(window)], side="right"), minlength=bins.union.size + 1
    )
    np.testing.assert_array_equal(column_counts(window, grid), union)
    # Columns of several chunks: on the grid kept, or (many more values) on a finer grid made for
    # the call (the same counts).
    if window.size:
        for size in (2 * grid.table.size, FINE_VALUES_PER_CELL * FINE_CELLS * grid.table.size):
            repeated = np.resize(window, size + window.size)
            present = repeated[~np.isnan(repeated)]
            expected = np.bincount(
                np.searchsorted(bins.union, present, side="right"), minlength=bins.union.size + 1
            )
            np.testing.assert_array_equal(column_counts(repeated, grid), expected)


def test_a_block_of_features_is_counted_column_by_column() -> None:
    rng = np.random.default_rng(3)
    references = [rng.normal(i, 1 + i, 500) for i in range(5)]
    bins = [_bins(r) for r in references]
    block = rng.normal(2, 3, (1000, 5))
    block[::7, 1] = np.nan
    block[::11, 2] = np.inf
    block[3, 4] = bins[4].edges[-2]  # the reference max
    got = split_counts(union_counts(block, PackedGrids.of([UnionGrid.of(b.union) for b in bins])), bins)
    for i, b in enumerate(bins):
        expected = histogram_and_drift_counts(block[:, i], b)
        np.testing.assert_array_equal(got[i][0], expected[0])
        np.testing.assert_array_equal(got[i][1], expected[1])
    assert got[4][0][-2] >= 1 and got[4][0][-1] == np.count_nonzero(block[:, 4] > bins[4].edges[-2])


@settings(max_examples=200, deadline=None)
@given(st.lists(reference_and_window(), min_size=1, max_size=4), st.sampled_from([1, 10, 3, 40, 200]))
def test_counts_on_grids_made_for_the_block_equal_the_binary_search(
    data: list[tuple[np.ndarray, np.ndarray]], repeat: int
) -> None:
    # Blocks of a few to tens of thousands of rows: the longest columns are tallied on the finer
    # grid made from the one made in the call.
    unions = [_bins(reference).union for reference, _ in data]
    rows = min(window.size for _, window in data) * repeat
    block = np.column_stack([np.resize(window, rows) for _, window in data])
    starts = np.concatenate(([0], np.cumsum([u.size for u in unions]))).astype(np.int64)
    got = union_counts_of_unions(block, np.concatenate(unions), starts)
    np.testing.assert_array_equal(got, union_counts(block, PackedGrids.of([UnionGrid.of(u) for u in unions])))
    at = 0
    for i, union in enumerate(unions):
        column = block[:, i][~np.isnan(block[:, i])]
        expected = np.bincount(np.searchsorted(union, column, side="right"), minlength=union.size + 1)
        np.testing.assert_array_equal(got[at : at + union.size + 1], expected)
        at += union.size + 1


def test_counts_on_made_grids_refuse_a_block_that_does_not_match_its_unions() -> None:
    edges, starts = np.array([0.0, 1.0, 2.0]), np.array([0, 3])
    try:
        union_counts_of_unions(np.zeros((3, 2)), edges, starts)
    except ValueError as exc:
        assert "does not match 1 feature unions" in str(exc)
    else:
        raise AssertionError("a block of 2 columns was counted on 1 union")
    assert union_counts_of_unions(np.zeros((0, 1)), edges, starts).tolist() == [0, 0, 0, 0]
    for rows in (3, 0):  # a union of no edge is refused, whether or not there is a row to count
        with pytest.raises(ValueError, match="unions must hold 1 to 32767 edges, got 0 to 3"):
            union_counts_of_unions(np.zeros((rows, 2)), edges, np.array([0, 0, 3]))


def test_a_block_that_does_not_match_its_grids_is_refused() -> None:
    grid = UnionGrid.of(np.array([0.0, 1.0, 2.0]))
    try:
        union_counts(np.zeros((3, 2)), PackedGrids.of([grid]))
    except ValueError as exc:
        assert "does not match 1 feature grids" in str(exc)
    else:
        raise AssertionError("a block of 2 columns was counted on 1 grid")


def test_a_union_too_wide_for_16_bit_tables_gets_32_bit_ones_and_the_same_counts() -> None:
    rng = np.random.default_rng(3)
    narrow = _bins(rng.normal(size=500))
    edges = narrow.edges
    drift_edges = np.unique(rng.uniform(edges[1], edges[-2], 40_000))
    bins, grid = prepared_bins(edges, drift_edges)
    assert grid.table.dtype == np.int32
    values = np.concatenate((rng.normal(size=5_000), drift_edges[::100], [np.nan, np.inf]))
    expected = histogram_and_drift_counts(values, bins)
    narrow_grid = UnionGrid.of(narrow.union)
    assert narrow_grid.table.dtype == np.int16
    both = union_counts(np.column_stack((values, values)), PackedGrids.of([narrow_grid, grid]))
    [_, (histogram, drift)] = split_counts(both, [narrow, bins])
    np.testing.assert_array_equal(histogram, expected[0])
    np.testing.assert_array_equal(drift, expected[1])


@settings(max_examples=100, deadline=None)
@given(st.lists(reference_and_window(), min_size=1, max_size=4), st.booleans(), st.integers(0, 2**32 - 1))
def test_a_packed_split_splits_as_split_union_counts_does(
    data: list[tuple[np.ndarray, np.ndarray]], mlrun: bool, seed: int
) -> None:
    bins = [_bins(reference) for reference, _ in data]
    counts = np.random.default_rng(seed).integers(0, 1000, sum(b.union.size + 1 for b in bins))
    got = PackedSplit.of(bins).split(counts, mlrun)
    starts = np.cumsum([0, *(b.union.size + 1 for b in bins)])
    expected = [
        split_union_counts(counts[lo:hi], b, mlrun_compatible=mlrun)
        for b, lo, hi in zip(bins, starts, starts[1:], strict=False)
    ]
    assert len(got) == len(expected)
    for (histogram, drift), (expected_histogram, expected_drift) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(histogram, expected_histogram)
        np.testing.assert_array_equal(drift, expected_drift)
        assert histogram.dtype == expected_histogram.dtype and drift.dtype == expected_drift.dtype
        assert not histogram.flags.writeable and not drift.flags.writeable
    assert PackedSplit.of([]).split(np.zeros(0, dtype=np.int64)) == []
    mismatch = f"{counts.size - 1} union counts do not match a split of {counts.size} union bins"
    with pytest.raises(ValueError, match=mismatch):
        PackedSplit.of(bins).split(counts[:-1], mlrun)
    # a damaged split's indexes past the arrays are refused, not written through
    split = PackedSplit.of(bins)
    damaged = [
        dataclasses.replace(split, histogram_of_union=split.histogram_of_union + split.histogram_ends[-1]),
        dataclasses.replace(split, drift_of_union=split.drift_of_union - split.drift_ends[-1]),
    ]
    if not mlrun:  # the reference max's bins are moved
        damaged.append(dataclasses.replace(split, at_max=split.at_max + counts.size))
    for bad in damaged:
        with pytest.raises(ValueError, match="past its histograms or drift bins"):
            bad.split(counts, mlrun)


def test_a_long_column_binned_in_chunks_counts_values_at_and_beside_every_edge() -> None:
    # The finer grid's cells holding an edge are marked in its table; every value in one of
    # them is compared with the edges, every other value takes its cell's bin. Values on each
    # edge and its neighbouring floats, NaN and the infinities, over several chunks and a
    # partial last one.
    bins = _bins(np.random.default_rng(5).lognormal(0, 1, 5_000))
    grid = UnionGrid.of(bins.union)
    beside = np.concatenate([np.nextafter(bins.union, -np.inf), bins.union, np.nextafter(bins.union, np.inf)])
    special = np.concatenate((beside, [np.nan, np.inf, -np.inf, bins.union[0] - 1, bins.union[-1] + 1]))
    size = FINE_VALUES_PER_CELL * FINE_CELLS * grid.table.size + 777
    column = np.resize(np.random.default_rng(6).permutation(special), size)
    column[::3] = np.random.default_rng(7).lognormal(0, 1, column[::3].size)
    present = column[~np.isnan(column)]
    expected = np.bincount(np.searchsorted(bins.union, present, side="right"), minlength=bins.union.size + 1)
    np.testing.assert_array_equal(column_counts(column, grid), expected)


def test_a_span_too_narrow_for_a_finer_grid_keeps_its_own() -> None:
    # cells / span is finite, FINE_CELLS times it is not: the column is counted on the grid kept.
    grid = UnionGrid.of(np.array([0.0, 1e-306, 2e-306]))
    assert np.isfinite(grid.scale) and not np.isfinite(grid.scale * FINE_CELLS)
    values = np.resize(np.array([-1.0, 0.0, 5e-307, 1e-306, 1.5e-306, 2e-306, 1.0, np.nan]), 10_000)
    present = values[~np.isnan(values)]
    expected = np.bincount(np.searchsorted(grid.edges, present, side="right"), minlength=4)
    np.testing.assert_array_equal(column_counts(values, grid), expected)
