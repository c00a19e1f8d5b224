"""A reference's stats turned once into the arrays a window's drift needs (per feature), so a
window pays only for binning its own values; apps cache it per (endpoint, reference version)."""

import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from mm_dagster.stats.category_sketch import CategorySketch
from mm_dagster.stats.feature_stats import NUMERIC, NumericBins, reference_category_counts
from mm_dagster.stats.union_binning import (
    PackedGrids,
    PackedSplit,
    UnionGrid,
    packed_grids_of_unions,
    prepared_bins,
    union_counts,
    union_counts_of_unions,
)


@dataclass(frozen=True)
class FeatureDescription:
    """A reference feature as the window pages show it: its bins' labels and its summary."""

    labels: list[str]
    summary: dict[str, Any]


@dataclass(frozen=True)
class PreparedFeature:
    kind: str
    reference_counts: np.ndarray  # MLRun's view: the histogram or the category buckets
    test_reference: np.ndarray  # the verdict's: counts on the mass-following bins
    edges: np.ndarray | None = None  # numeric: MLRun's 23 edges
    bins: NumericBins | None = None  # numeric with mass-following bins
    # the lookup grid of `bins.union` (stats.union_binning), or how to make it when first asked for
    grid_made: UnionGrid | Callable[[], UnionGrid] | None = None
    quantiles: np.ndarray | None = None
    std: float | None = None
    positions: Mapping[str, int] | None = None  # categorical: bucket of each top value
    sketch: CategorySketch | None = None
    total: float | None = None  # the sum of `reference_counts`, when the maker summed them

    @property
    def has_grid(self) -> bool:
        return self.grid_made is not None

    @functools.cached_property
    def grid(self) -> UnionGrid | None:
        """The lookup grid of `bins.union` (None without union bins)."""
        return self.grid_made() if callable(self.grid_made) else self.grid_made

    @property
    def reference_total(self) -> float:
        """The sum of `reference_counts` (a few dozen counts: Python's sum of the list costs a
        fraction of numpy's call; `prepare_feature` and stored plans sum them once)."""
        return self.total if self.total is not None else _total(self.reference_counts)


def _total(counts: np.ndarray) -> float:
    return float(sum(counts.tolist()))


def prepare_feature(stats: Mapping[str, Any]) -> PreparedFeature | None:
    """None when the feature has nothing to compare against (no histogram, no categories)."""
    if stats.get("type", NUMERIC) == NUMERIC:
        if "hist" not in stats:
            return None
        counts = np.asarray(stats["hist"][0], dtype=np.float64)
        edges = np.asarray(stats["hist"][1], dtype=np.float64)
        if "drift_edges" not in stats:  # stored before mass-following bins: test on the histogram
            return PreparedFeature(
                NUMERIC, counts, counts, edges=edges, std=stats.get("std"), total=_total(counts)
            )
        bins, grid = prepared_bins(edges, np.asarray(stats["drift_edges"], dtype=np.float64))
        return PreparedFeature(
            NUMERIC,
            counts,
            np.asarray(stats["drift_counts"], dtype=np.float64),
            edges=edges,
            bins=bins,
            grid_made=grid,
            quantiles=np.asarray(stats["quantiles"], dtype=np.float64),
            std=stats.get("std"),
            total=_total(counts),
        )
    freqs = stats.get("freqs")
    if not freqs:
        return None
    counts = reference_category_counts(stats)
    return PreparedFeature(
        stats["type"],
        counts,
        counts,
        positions={key: i for i, key in enumerate(freqs)},
        sketch=CategorySketch.from_json(stats["sketch"]) if "sketch" in stats else None,
        total=_total(counts),
    )


@dataclass(frozen=True)
class PackedReferenceCounts:
    """The reference side of a set of features with union bins, in the set's order, one feature
    after another: histogram counts ending at `histogram_ends`, counts on the drift bins ending
    at `drift_ends` (as `PackedSplit` lays out a window's), and each feature's total."""

    histograms: np.ndarray
    histogram_ends: np.ndarray
    tests: np.ndarray
    drift_ends: np.ndarray
    totals: np.ndarray


class PreparedReference(Mapping[str, PreparedFeature]):
    """Each feature of a reference that has something to compare against, by name; with the
    packed grids of feature sets binned together, packed once per set (a window of the
    reference usually has the same numeric columns as the last one).

    `features` may be a function making them (a stored plan's): they are made when one is first
    asked for, and `names`, `gridded` (the numeric features with union bins) and the packed sets
    given with it answer until then, so a run that needs only the packed sets makes no
    per-feature objects. `unions` are the concatenated union edges and their starts of a set (a
    stored plan's): its counts are made on grids made in the counting call (`union_counts`), and
    its packed grids each time they are asked for, not kept (a run bins each endpoint's window once)."""

    def __init__(
        self,
        features: Mapping[str, PreparedFeature] | Callable[[], Mapping[str, PreparedFeature]],
        *,
        names: Sequence[str] | None = None,
        gridded: Collection[str] | None = None,
        described: Mapping[str, FeatureDescription]
        | Callable[[], Mapping[str, FeatureDescription]]
        | None = None,
        packed: Mapping[tuple[str, ...], PackedGrids] | None = None,
        unions: Mapping[tuple[str, ...], tuple[np.ndarray, np.ndarray]] | None = None,
        splits: Mapping[tuple[str, ...], PackedSplit] | None = None,
        counts: Mapping[tuple[str, ...], PackedReferenceCounts] | None = None,
        stats_features: int | None = None,
    ) -> None:
        if callable(features):
            if names is None or gridded is None or stats_features is None:
                raise ValueError("features made later need their names, gridded names and stats_features")
            self._features: Mapping[str, PreparedFeature] | None = None
            self._make = features
        else:
            self._features = dict(features)
            names = list(self._features)
            if gridded is None:
                gridded = [n for n, f in self._features.items() if f.kind == NUMERIC and f.has_grid]
        self._names = tuple(names)
        self._known = frozenset(self._names)
        self.gridded = frozenset(gridded)
        # the reference's features in its stats (also those with nothing to compare against)
        self.stats_features = len(self._names) if stats_features is None else stats_features
        self._packed: dict[tuple[str, ...], PackedGrids] = dict(packed or {})
        self._unions = dict(unions or {})
        self._splits: dict[tuple[str, ...], PackedSplit] = dict(splits or {})
        self._counts: dict[tuple[str, ...], PackedReferenceCounts] = dict(counts or {})
        self._described = described

    @property
    def features(self) -> Mapping[str, PreparedFeature]:
        if self._features is None:
            self._features = self._make()
        return self._features

    def __getitem__(self, name: str) -> PreparedFeature:
        return self.features[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._known

    @property
    def has_descriptions(self) -> bool:
        """Whether this is a stored plan, with its features' descriptions (see `described`)."""
        return self._described is not None

    @property
    def described(self) -> Mapping[str, FeatureDescription] | None:
        """A stored plan's bin labels and reference summaries (read from it on first use)."""
        if callable(self._described):
            self._described = self._described()
        return self._described

    def packed_split(self, names: tuple[str, ...]) -> PackedSplit:
        """How the union counts of `names` (features with union bins, in that order) split."""
        return _remembered(self._splits, names, lambda: PackedSplit.of([self[n].bins for n in names]))  # type: ignore[misc]

    def packed_counts(self, names: tuple[str, ...]) -> PackedReferenceCounts:
        """The reference counts of `names` (features with union bins), in that order."""

        def make() -> PackedReferenceCounts:
            split = self.packed_split(names)
            features = [self[n] for n in names]
            return PackedReferenceCounts(
                np.concatenate([f.reference_counts for f in features]).astype(np.float64),
                split.histogram_ends,
                np.concatenate([f.test_reference for f in features]).astype(np.float64),
                split.drift_ends,
                np.array([f.reference_total for f in features], dtype=np.float64),
            )

        return _remembered(self._counts, names, make)

    def packed_grids(self, names: tuple[str, ...]) -> PackedGrids:
        """The grids of `names` (features with union bins), in that order, for one kernel call."""
        unions = self._unions_only(names)
        if unions is not None:
            # made again when asked again, not kept: ~55 KB an endpoint at 20 features, which at
            # 10,000 endpoints held 0.55 GB of tables used once per window
            return packed_grids_of_unions(*unions)
        return _remembered(self._packed, names, lambda: PackedGrids.of([self[n].grid for n in names]))  # type: ignore[misc]

    def union_counts(self, block: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """`block`'s counts (its columns: `names`, features with union bins) in their union bins,
        concatenated: on grids made for the block when the set's unions are given (a stored
        plan's), else on the packed grids kept."""
        unions = self._unions_only(names)
        if unions is not None:
            return union_counts_of_unions(block, *unions)
        return union_counts(block, self.packed_grids(names))

    def _unions_only(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """The unions given for `names` when no packed grids of theirs are kept."""
        return None if names in self._packed else self._unions.get(names)


Packed = TypeVar("Packed")


def _remembered(
    sets: dict[tuple[str, ...], Packed], names: tuple[str, ...], make: Callable[[], Packed]
) -> Packed:
    """`sets[names]`, made by `make` when missing (and kept, up to `MAX_PACKED_SETS` sets)."""
    packed = sets.get(names)
    if packed is None:
        packed = make()
        if len(sets) < MAX_PACKED_SETS:
            sets[names] = packed
    return packed


MAX_PACKED_SETS = 8  # feature sets remembered per reference


def prepare_reference(reference_stats: Mapping[str, Mapping[str, Any]]) -> PreparedReference:
    prepared = {name: prepare_feature(stats) for name, stats in reference_stats.items()}
    return PreparedReference(
        {name: feature for name, feature in prepared.items() if feature is not None},
        stats_features=len(reference_stats),
    )
