"""The drift of many app runs' numeric features at once, as arrays (the default app's common case).

`stats.drift` computes a run's drift feature by feature, one Python object per feature and step,
which at thousands of endpoints x 20 features was most of the default app's time. Here the
features of every run of a window lie one after another in flat arrays (`PackedCounts`: each
feature's counts at `starts[i]:starts[i] + widths[i]`), and each step is one numpy pass or one
compiled call over all of them: the window's rows per feature, MLRun's distances (TVD, Hellinger,
KLD, on rows of one width at a time, as `with_distances` computes them), the homogeneity tests
(`drift_test_batch`) and the methods' row measures on the merged bins, then the statuses within
each family's budget (`verdict_statuses`, which `families_verdicts` uses too). Every number is
computed row by row by the same functions as `stats.drift`'s, so each feature's numbers are the
ones `stats.drift` gives it, whatever it is packed with (tests/test_packed_drift.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.distances import hellinger, normalise, symmetric_kl, total_variation
from mm_dagster.stats.drift_methods import DriftMethod
from mm_dagster.stats.drift_test_batch import UNGROUPED, HomogeneityTests, padded_homogeneity_tests


@dataclass(frozen=True)
class PackedCounts:
    """Counts of many features, one after another: feature i's are
    `values[starts[i]:starts[i] + widths[i]]` (every width >= 1)."""

    values: np.ndarray
    widths: np.ndarray

    @classmethod
    def of(cls, parts: Sequence[np.ndarray], ends: Sequence[np.ndarray]) -> "PackedCounts":
        """`parts[k]` holds features one after another, ending at `ends[k]` (cumulative)."""
        if not parts:
            return cls(np.zeros(0), np.zeros(0, dtype=np.int64))
        sizes = np.fromiter((len(e) for e in ends), dtype=np.int64, count=len(ends))
        flat = np.concatenate(ends).astype(np.int64)
        widths = np.diff(flat, prepend=0)
        firsts = (np.cumsum(sizes) - sizes)[sizes > 0]  # each part's first feature starts at 0
        widths[firsts] = flat[firsts]
        return cls(np.concatenate(parts), widths)

    @cached_property
    def starts(self) -> np.ndarray:
        starts: np.ndarray = np.cumsum(self.widths) - self.widths
        return starts

    def rows(self, members: np.ndarray, width: int) -> np.ndarray:
        """The counts of `members` (features of this `width`) as a (members x width) array."""
        rows: np.ndarray = self.values[self.starts[members][:, None] + np.arange(width)]
        return rows

    def padded(self, members: np.ndarray) -> np.ndarray:
        """The counts of `members` as a float64 (members x widest) array, zero-padded."""
        widths = self.widths[members]
        out = np.zeros((members.size, int(widths.max(initial=0))))
        row = np.repeat(np.arange(members.size), widths)
        column = np.arange(row.size) - np.repeat(np.cumsum(widths) - widths, widths)
        out[row, column] = self.values[np.repeat(self.starts[members], widths) + column]
        return out

    def totals(self) -> np.ndarray:
        """Each feature's sum (exact for integer counts)."""
        if not self.widths.size:
            return np.zeros(0, dtype=self.values.dtype)
        totals: np.ndarray = np.add.reduceat(self.values, self.starts)
        return totals


@dataclass(frozen=True)
class PackedDistances:
    """Per feature: the window's rows, whether the feature is compared (`kept`: rows in the
    window and in the reference; `stats.drift` leaves the others out) and MLRun's distances
    between its window and reference histograms (0 where not kept)."""

    window_rows: np.ndarray
    kept: np.ndarray
    tvd: np.ndarray
    hellinger: np.ndarray
    kld: np.ndarray


def packed_distances(
    window: PackedCounts, reference: PackedCounts, reference_totals: np.ndarray
) -> PackedDistances:
    """MLRun's distances of every feature (histograms of the window and of the reference, with
    the same widths), computed on the rows of one width at a time, as `with_distances` does."""
    window_rows = window.totals()
    kept = (window_rows > 0) & (reference_totals > 0)
    distances = np.zeros((3, window.widths.size))
    kept_widths = window.widths[kept]
    for width in np.unique(kept_widths).tolist():
        members = np.flatnonzero(kept)[kept_widths == width]
        t, u = normalise(window.rows(members, width)), normalise(reference.rows(members, width))
        distances[:, members] = total_variation(t, u), hellinger(t, u), symmetric_kl(t, u)
    return PackedDistances(window_rows, kept, distances[0], distances[1], distances[2])


def packed_tests(window: PackedCounts, reference: PackedCounts, members: np.ndarray) -> HomogeneityTests:
    """`homogeneity_tests` of the numeric features `members` (their counts on the test bins)."""
    widths = window.widths[members]
    groups = np.full((members.size, max(int(widths.max(initial=0)), 1)), UNGROUPED, dtype=np.int64)
    return padded_homogeneity_tests(window.padded(members), reference.padded(members), widths, groups)


def row_measured(method: DriftMethod, tests: HomogeneityTests, members: np.ndarray) -> np.ndarray:
    """The distances of `members` (rows of `tests`) by `method`'s row measure on their merged
    bins, rows of one merged width at a time (a row's sums never see another row's padding)."""
    measure = method.row_measure  # type: ignore[attr-defined]
    out = np.zeros(members.size)
    widths = tests.groups[members]
    for width in np.unique(widths).tolist():
        at = np.flatnonzero(widths == width)
        rows = members[at]
        measured = measure(normalise(tests.windows[rows, :width]), normalise(tests.references[rows, :width]))
        out[at] = np.asarray(measured, dtype=np.float64)
    return out


def verdict_statuses(
    distances: np.ndarray,
    thresholds: np.ndarray,
    p_values: np.ndarray,
    potential_levels: np.ndarray,
    detected_levels: np.ndarray,
) -> np.ndarray:
    """Each feature's status (`ResultStatusApp` values): detected when its distance exceeds its
    threshold and its p-value is within its family's detected level (alpha / F), potential when
    within the potential level, else no detection."""
    large = distances > thresholds
    statuses = np.full(distances.size, int(ResultStatusApp.no_detection), dtype=np.int64)
    statuses[large & (p_values <= potential_levels)] = int(ResultStatusApp.potential_detection)
    statuses[large & (p_values <= detected_levels)] = int(ResultStatusApp.detected)
    return statuses
