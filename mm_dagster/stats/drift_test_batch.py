"""`stats.drift_test` for every feature of a family at once: bins merged, 2 x G tables tested.

The per-feature functions of `stats.drift_test` cost ~80 µs a feature in numpy call overheads,
most of the drift app's time at thousands of endpoints. Here the features' test counts are
stacked, zero-padded, into (features x bins) arrays; one numba kernel merges each numeric
feature's bins (the same greedy rule as `merge_groups`: categorical features, whose rule breaks
ties at random, are grouped by `merge_groups` itself) and computes each table's Cressie-Read
statistic; one vectorised call gives the p-values. The kernel sums in bin order, so a feature's
numbers do not depend on the others it is batched with; tests/test_drift_test_batch.py checks
them against the per-feature functions.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import special

from mm_dagster.stats.drift_test import LAMBDA, MIN_EXPECTED, merge_groups

UNGROUPED = -1


@njit(cache=True, nogil=True)
def _greedy_groups(
    window: np.ndarray, reference: np.ndarray, bins: int, groups: np.ndarray
) -> None:  # pragma: no cover - compiled
    """`merge_groups(categorical=False)` for one feature, written into `groups[:bins]`."""
    window_total = 0.0
    total = 0.0
    for j in range(bins):
        window_total += window[j]
        total += window[j] + reference[j]
    group = 0
    filled = 0.0
    for j in range(bins):
        pooled = window[j] + reference[j]
        groups[j] = group
        filled += window_total * pooled / total if total > 0 else pooled
        if filled >= MIN_EXPECTED:
            group += 1
            filled = 0.0
    if bins > 0 and groups[bins - 1] == group and group > 0:  # a remainder short of MIN_EXPECTED
        for j in range(bins):
            if groups[j] == group:
                groups[j] = group - 1


@njit(cache=True, nogil=True)
def _tables(
    windows: np.ndarray,
    references: np.ndarray,
    bins: np.ndarray,
    groups: np.ndarray,
    merged_windows: np.ndarray,
    merged_references: np.ndarray,
    group_counts: np.ndarray,
    statistics: np.ndarray,
    degrees: np.ndarray,
) -> None:  # pragma: no cover - compiled; checked against stats.drift_test
    scale = 2.0 / (LAMBDA * (LAMBDA + 1.0))
    for i in range(windows.shape[0]):
        b = bins[i]
        if b > 0 and groups[i, 0] == UNGROUPED:
            _greedy_groups(windows[i], references[i], b, groups[i])
        count = 0
        for j in range(b):
            g = groups[i, j]
            merged_windows[i, g] += windows[i, j]
            merged_references[i, g] += references[i, j]
            if g + 1 > count:
                count = g + 1
        group_counts[i] = count
        window_rows = 0.0
        reference_rows = 0.0
        columns = 0
        for g in range(count):
            window_rows += merged_windows[i, g]
            reference_rows += merged_references[i, g]
            if merged_windows[i, g] + merged_references[i, g] > 0:
                columns += 1
        degrees[i] = columns - 1
        if columns < 2 or window_rows == 0 or reference_rows == 0:
            statistics[i] = -1.0  # nothing to test: p = 1
            continue
        rows = window_rows + reference_rows
        statistic = 0.0
        for g in range(count):
            column = merged_windows[i, g] + merged_references[i, g]
            if column == 0:
                continue
            observed = merged_windows[i, g]
            if observed > 0:
                statistic += observed * ((observed / (window_rows * column / rows)) ** LAMBDA - 1.0)
            observed = merged_references[i, g]
            if observed > 0:
                statistic += observed * ((observed / (reference_rows * column / rows)) ** LAMBDA - 1.0)
        statistics[i] = max(scale * statistic, 0.0)


@dataclass(frozen=True)
class HomogeneityTests:
    """Per feature (in the order given): the p-value and the merged test counts, zero-padded
    rows of which the first `groups[i]` are the feature's merged bins."""

    p_values: np.ndarray
    windows: np.ndarray
    references: np.ndarray
    groups: np.ndarray

    def merged(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Feature `i`'s merged (window, reference) counts, as `stats.drift_test.merged` gives."""
        g = int(self.groups[i])
        return self.windows[i, :g], self.references[i, :g]


def homogeneity_tests(
    windows: Sequence[np.ndarray], references: Sequence[np.ndarray], categorical: Sequence[bool]
) -> HomogeneityTests:
    """`merge_groups`, `merged` and `power_divergence_p_value` for each feature (`windows[i]`
    and `references[i]`: its counts on the test bins; `categorical[i]`: how its bins merge)."""
    n = len(windows)
    bins = np.fromiter((len(w) for w in windows), dtype=np.int64, count=n)
    width = int(bins.max(initial=0))
    window_counts = np.zeros((n, width))
    reference_counts = np.zeros((n, width))
    groups = np.full((n, max(width, 1)), UNGROUPED, dtype=np.int64)
    for i, (window, reference, apart) in enumerate(zip(windows, references, categorical, strict=True)):
        b = bins[i]
        window_counts[i, :b] = window
        reference_counts[i, :b] = reference
        if apart and b:
            groups[i, :b] = merge_groups(window, reference, categorical=True)
    return padded_homogeneity_tests(window_counts, reference_counts, bins, groups)


def padded_homogeneity_tests(
    window_counts: np.ndarray, reference_counts: np.ndarray, bins: np.ndarray, groups: np.ndarray
) -> HomogeneityTests:
    """`homogeneity_tests` of features whose counts are already stacked: row i's first `bins[i]`
    entries of `window_counts` and `reference_counts` (float64, zero-padded (features x width)),
    `groups` (features x max(width, 1), int64) -1 where the kernel merges a numeric feature's bins,
    else the categorical grouping."""
    n, width = window_counts.shape
    merged_windows = np.zeros((n, width))
    merged_references = np.zeros((n, width))
    group_counts = np.zeros(n, dtype=np.int64)
    statistics = np.zeros(n)
    degrees = np.zeros(n, dtype=np.int64)
    _tables(
        window_counts,
        reference_counts,
        bins,
        groups,
        merged_windows,
        merged_references,
        group_counts,
        statistics,
        degrees,
    )
    tested = statistics >= 0
    p_values = np.ones(n)
    p_values[tested] = special.chdtrc(degrees[tested], statistics[tested])  # the chi2 survival function
    return HomogeneityTests(p_values, merged_windows, merged_references, group_counts)
