"""Per-feature drift between a window and its reference (pure logic behind the default app).

Two views of each feature, from one pass over its column:
- MLRun's: TVD, Hellinger and KLD between the window's and the reference's equal-width histograms
  (spec §3; `general_drift` and the `*_mean` metrics come from these, unchanged);
- the verdict's: counts on bins that follow the reference's mass, tested for a significant change
  within the window's false-alarm budget and measured by the feature's drift method
  (stats.drift_test, stats.drift_methods).

The window-level budget: the features of one family (inputs for `feature_drift`, outputs for
`prediction_drift`) share the window's error rates by Bonferroni's rule — a feature is
`potential_detection` when its p-value is <= alpha_potential / F and `detected` when <=
alpha_detected / F (F tested features), and only when its distance exceeds its threshold. The
chance that a window drawn from the reference raises anything is then at most alpha_potential
and alpha_detected, whatever F and whatever the dependence between features. The budget is 1% of
windows potential and 0.1% detected; the default levels are half of that (0.005, 0.0005), the
margin absorbing the test's approximation error at small windows (bench/detection.py measures
the rates).
"""

import math
import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.window_events import NumberBlock
from mm_dagster.stats.column_summary import column_summaries
from mm_dagster.stats.distances import hellinger, normalise, symmetric_kl, total_variation
from mm_dagster.stats.drift_methods import (
    CATEGORICAL,
    DEFAULT_METHOD,
    DriftInput,
    DriftMethod,
    FeaturePolicy,
)
from mm_dagster.stats.drift_test_batch import HomogeneityTests, homogeneity_tests
from mm_dagster.stats.feature_stats import (
    NUMERIC,
    QUANTILE_LEVELS,
    bin_counts,
    bucket_counts,
    histogram_and_drift_counts,
)
from mm_dagster.stats.packed_drift import row_measured, verdict_statuses
from mm_dagster.stats.reference_plan import PreparedFeature, PreparedReference, prepare_reference
from mm_dagster.stats.union_binning import column_counts, split_counts

PARALLEL_MIN_ROWS = 100_000
MAX_THREADS = 4
DEFAULT_POLICY = FeaturePolicy()


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    window_rows: int
    reference_rows: int
    window_counts: np.ndarray  # MLRun's histogram (categorical: the category buckets)
    reference_counts: np.ndarray
    tvd: float
    hellinger: float
    kld: float
    test_window: np.ndarray  # counts on the reference's mass-following bins
    test_reference: np.ndarray
    window_quantiles: np.ndarray | None = None
    reference_quantiles: np.ndarray | None = None
    reference_std: float | None = None
    window_summary: dict[str, float] | None = None  # numeric, when asked: finite values' moments


DriftParts = dict[str, Any]  # a `FeatureDrift`'s fields but its distances


def _numbers(values: pd.Series | pd.DataFrame) -> np.ndarray:
    """`values` as float64, missing values NaN (extension dtypes' NA too)."""
    dtypes = values.dtypes if isinstance(values, pd.DataFrame) else [values.dtype]
    if any(isinstance(dtype, pd.api.extensions.ExtensionDtype) for dtype in dtypes):
        converted: np.ndarray = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return converted
    # no copy for float64; `to_numpy` skips numpy's array-protocol probes of the Series
    numbers: np.ndarray = values.to_numpy(dtype=np.float64, copy=False)
    return numbers


def _number_block(window: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """`columns` of `window` as one float64 (rows x columns) array, column-major, missing values
    NaN: one multi-column conversion (a fresh frame's first access to each column costs ~25 µs)."""
    return np.asfortranarray(_numbers(window[columns]))


def _one_feature(
    feature: str,
    reference: PreparedFeature,
    values: pd.Series | np.ndarray,
    *,
    mlrun_compatible: bool,
    with_quantiles: bool,
    binned: tuple[np.ndarray, np.ndarray] | None = None,
    summary: dict[str, float] | None = None,
    with_summary: bool = False,
) -> DriftParts | None:
    """The feature's `FeatureDrift` fields but its distances (computed for all features at once
    by `with_distances`). `binned`: the column's (histogram, drift) counts when already
    counted; `summary` its summary when already computed (else computed when `with_summary`)."""
    quantiles = None
    if reference.kind == NUMERIC:
        numbers = values if isinstance(values, np.ndarray) else _numbers(values)
        if with_summary and summary is None:
            summary = column_summaries(numbers[:, None])[0]
        if binned is not None:
            w_counts, test_window = binned
        elif reference.grid is not None and reference.bins is not None:
            w_counts, test_window = split_counts(
                column_counts(numbers, reference.grid), [reference.bins], mlrun_compatible
            )[0]
        elif reference.bins is not None:
            w_counts, test_window = histogram_and_drift_counts(
                numbers, reference.bins, mlrun_compatible=mlrun_compatible
            )
        else:
            w_counts = test_window = bin_counts(numbers, reference.edges, mlrun_compatible=mlrun_compatible)  # type: ignore[arg-type]
        if with_quantiles:
            finite = numbers[np.isfinite(numbers)]
            if finite.size:
                quantiles = np.quantile(finite, QUANTILE_LEVELS, method="inverted_cdf")
    else:
        w_counts = test_window = bucket_counts(reference.positions or {}, reference.sketch, pd.Series(values))
    window_rows = int(w_counts.sum())
    if window_rows == 0 or reference.reference_total == 0:
        return None
    return {
        "feature": feature,
        "kind": reference.kind,
        "window_rows": window_rows,
        "reference_rows": int(reference.reference_total),
        "window_counts": w_counts,
        "reference_counts": reference.reference_counts,
        "test_window": np.asarray(test_window, dtype=np.float64),
        "test_reference": reference.test_reference,
        "window_quantiles": quantiles,
        "reference_quantiles": reference.quantiles,
        "reference_std": reference.std,
        "window_summary": summary if reference.kind == NUMERIC and with_summary else None,
    }


def with_distances(windows: Sequence[Sequence[DriftParts]]) -> list[list[FeatureDrift]]:
    """Each window's `FeatureDrift`s with MLRun's distances, computed for the features of all
    `windows` with the same number of bins at once (row by row: a feature's numbers do not depend
    on the others it is computed with)."""
    features = [f for parts in windows for f in parts]
    by_bins: dict[int, list[int]] = {}
    for i, f in enumerate(features):
        by_bins.setdefault(len(f["window_counts"]), []).append(i)
    distances: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(features)
    for members in by_bins.values():
        t = normalise(np.vstack([features[i]["window_counts"] for i in members]))
        u = normalise(np.vstack([features[i]["reference_counts"] for i in members]))
        rows = zip(
            total_variation(t, u).tolist(), hellinger(t, u).tolist(), symmetric_kl(t, u).tolist(), strict=True
        )
        for i, row in zip(members, rows, strict=True):
            distances[i] = row
    drifts = iter(
        FeatureDrift(**f, tvd=tvd, hellinger=h, kld=kld)
        for f, (tvd, h, kld) in zip(features, distances, strict=True)
    )
    return [[next(drifts) for _ in parts] for parts in windows]


def feature_drifts(
    reference: Mapping[str, Mapping[str, Any]] | PreparedReference, window: pd.DataFrame, **options: Any
) -> list[FeatureDrift]:
    """Both views of every reference column present in `window` (`options`:
    `feature_drift_parts`' keywords)."""
    return with_distances([feature_drift_parts(reference, window, **options)])[0]


def feature_drift_parts(
    reference: Mapping[str, Mapping[str, Any]] | PreparedReference,
    window: pd.DataFrame,
    *,
    mlrun_compatible_binning: bool = False,
    quantile_features: Collection[str] = (),
    summaries: bool = False,
    numbers: NumberBlock | None = None,
) -> list[DriftParts]:
    """Both views but MLRun's distances (`with_distances` adds them, for many windows at once)
    of every reference column present in `window` that has a histogram (`quantile_features`
    also get the window's quantiles, for methods that need them).
    `reference`: the reference stats, or `prepare_reference` of them when the caller keeps
    that across windows.
    `summaries`: numeric features also get their window values' mean/std/min/max.
    `numbers`: `window`'s float columns as one array, when the caller has it (else read from
    `window`).

    Columns are binned in parallel threads for large windows (numpy and Arrow release the GIL).
    """
    references = reference if isinstance(reference, PreparedReference) else prepare_reference(reference)
    features = [f for f in references if f in window.columns]
    columns: dict[str, pd.Series | np.ndarray] = {}
    binned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    summarised: dict[str, dict[str, float]] = {}
    numeric = [f for f in features if references[f].kind == NUMERIC]
    if len(window) < PARALLEL_MIN_ROWS and numeric:
        # Small windows: one conversion of every numeric column at once (pandas' per-column
        # access costs more than binning a thousand values); columns contiguous for the kernels.
        taken = None if numbers is None else numbers.of(window)
        selected = None if taken is None else taken.select(numeric)
        block = _number_block(window, numeric) if selected is None else selected
        columns.update({f: block[:, i] for i, f in enumerate(numeric)})
        if summaries:
            summarised.update(zip(numeric, column_summaries(block), strict=True))
        # Every column with union bins counted in one kernel call (stats.union_binning).
        gridded = [i for i, f in enumerate(numeric) if references[f].has_grid]
        if gridded:
            names = tuple(numeric[i] for i in gridded)
            gridded_block = block[:, gridded] if len(gridded) < len(numeric) else block
            counts = references.union_counts(gridded_block, names)
            split = references.packed_split(names).split(counts, mlrun_compatible_binning)
            binned.update({numeric[i]: pair for i, pair in zip(gridded, split, strict=True)})

    def one(feature: str) -> dict[str, Any] | None:
        return _one_feature(
            feature,
            references[feature],
            columns[feature] if feature in columns else window[feature],
            mlrun_compatible=mlrun_compatible_binning,
            with_quantiles=feature in quantile_features,
            binned=binned.get(feature),
            summary=summarised.get(feature),
            with_summary=summaries,
        )

    if len(window) >= PARALLEL_MIN_ROWS and len(features) > 1:
        workers = min(MAX_THREADS, os.cpu_count() or 1, len(features))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mm-drift") as pool:
            drifts = list(pool.map(one, features))
    else:
        drifts = [one(f) for f in features]
    return [d for d in drifts if d is not None]


@dataclass(frozen=True)
class FeatureVerdict:
    feature: str
    method: str
    distance: float
    threshold: float
    p_value: float
    weight: float
    status: ResultStatusApp

    @property
    def relative_distance(self) -> float:
        return relative_distance(self.distance, self.threshold)


def relative_distance(distance: float, threshold: float) -> float:
    """The distance in units of the feature's threshold (1.0 = at the threshold)."""
    return distance / threshold if threshold > 0 else distance


@dataclass(frozen=True)
class Family:
    """Features judged together within one false-alarm budget (one app run's inputs, or its
    outputs): their drifts, policies and the budget's levels."""

    drifts: Sequence[FeatureDrift]
    policies: Mapping[str, FeaturePolicy]
    alpha_potential: float = 0.005
    alpha_detected: float = 0.0005


def family_verdicts(
    drifts: Sequence[FeatureDrift],
    *,
    methods: Mapping[str, DriftMethod],
    policies: Mapping[str, FeaturePolicy] | None = None,
    default_method: str = DEFAULT_METHOD,
    alpha_potential: float = 0.005,
    alpha_detected: float = 0.0005,
) -> list[FeatureVerdict]:
    """One verdict per feature of the family that is not excluded (see the module docstring).
    A method that does not apply to a feature's kind falls back to `tvd`."""
    family = Family(drifts, policies or {}, alpha_potential, alpha_detected)
    return families_verdicts([family], methods=methods, default_method=default_method)[0]


def families_verdicts(
    families: Sequence[Family], *, methods: Mapping[str, DriftMethod], default_method: str = DEFAULT_METHOD
) -> list[list[FeatureVerdict]]:
    """`family_verdicts` of each family, the features of all families tested and measured at
    once (a feature's numbers do not depend on the others it is batched with)."""
    tested: list[FeatureDrift] = []
    kept: list[FeaturePolicy] = []
    sizes: list[int] = []
    for family in families:
        judged = [(d, family.policies.get(d.feature, DEFAULT_POLICY)) for d in family.drifts]
        members = [(d, policy) for d, policy in judged if not policy.exclude]
        tested += [d for d, _ in members]
        kept += [policy for _, policy in members]
        sizes.append(len(members))
    chosen = [_method_of(d, policy, methods, default_method) for d, policy in zip(tested, kept, strict=True)]
    tests = homogeneity_tests(
        [d.test_window for d in tested],
        [d.test_reference for d in tested],
        [d.kind == CATEGORICAL for d in tested],
    )
    distances = _distances(tested, chosen, tests)
    thresholds = [
        method.default_threshold if policy.threshold is None else policy.threshold
        for method, policy in zip(chosen, kept, strict=True)
    ]
    bonferroni = np.repeat([max(size, 1) for size in sizes], sizes)
    statuses = verdict_statuses(
        distances,
        np.asarray(thresholds, dtype=np.float64),
        tests.p_values,
        np.repeat([family.alpha_potential for family in families], sizes) / bonferroni,
        np.repeat([family.alpha_detected for family in families], sizes) / bonferroni,
    ).tolist()
    p_values = tests.p_values.tolist()
    measured = distances.tolist()
    verdicts: list[list[FeatureVerdict]] = []
    start = 0
    for size in sizes:
        verdicts.append(
            [
                FeatureVerdict(
                    tested[i].feature,
                    chosen[i].name,
                    measured[i],
                    thresholds[i],
                    p_values[i],
                    kept[i].weight,
                    ResultStatusApp(statuses[i]),
                )
                for i in range(start, start + size)
            ]
        )
        start += size
    return verdicts


def _method_of(
    drift: FeatureDrift, policy: FeaturePolicy, methods: Mapping[str, DriftMethod], default_method: str
) -> DriftMethod:
    method = methods[policy.method or default_method]
    return method if drift.kind in method.kinds else methods[DEFAULT_METHOD]


def _distances(
    drifts: Sequence[FeatureDrift], chosen: Sequence[DriftMethod], tests: HomogeneityTests
) -> np.ndarray:
    """Each feature's distance by its method on its merged test bins: one call per method and
    merged width for the methods measuring rows at once (`row_measured`), one call per feature
    for the others."""
    distances = np.zeros(len(drifts))
    by_method: dict[str, list[int]] = {}
    for i, method in enumerate(chosen):
        by_method.setdefault(method.name, []).append(i)
    for members in by_method.values():
        method = chosen[members[0]]
        if getattr(method, "row_measure", None) is not None:
            rows = np.asarray(members, dtype=np.int64)
            distances[rows] = row_measured(method, tests, rows)
            continue
        for i in members:
            window, reference = tests.merged(i)
            distances[i] = method.distance(
                DriftInput(
                    kind=drifts[i].kind,
                    window=window,
                    reference=reference,
                    window_quantiles=drifts[i].window_quantiles,
                    reference_quantiles=drifts[i].reference_quantiles,
                    reference_std=drifts[i].reference_std,
                )
            )
    return distances


@dataclass(frozen=True)
class FamilyVerdicts:
    """One family's verdicts as columns, in the family's order (what a result reports)."""

    features: list[str]
    methods: list[str]
    distances: list[float]
    thresholds: list[float]
    p_values: list[float]
    weights: list[float]
    statuses: list[ResultStatusApp]

    @classmethod
    def of(cls, verdicts: Sequence[FeatureVerdict]) -> "FamilyVerdicts":
        return cls(
            [v.feature for v in verdicts],
            [v.method for v in verdicts],
            [v.distance for v in verdicts],
            [v.threshold for v in verdicts],
            [v.p_value for v in verdicts],
            [v.weight for v in verdicts],
            [v.status for v in verdicts],
        )

    @property
    def relative_distances(self) -> list[float]:
        """Each distance in units of its feature's threshold (1.0 = at the threshold)."""
        return [relative_distance(d, t) for d, t in zip(self.distances, self.thresholds, strict=True)]


def drift_score(verdicts: FamilyVerdicts) -> float:
    """Importance-weighted mean of the features' relative distances (0 when nothing is weighted);
    sums exactly rounded (`math.fsum`: a few dozen values, where numpy's call costs ~10x more)."""
    total = math.fsum(verdicts.weights)
    if total <= 0:
        return 0.0
    return (
        math.fsum(w * r for w, r in zip(verdicts.weights, verdicts.relative_distances, strict=True)) / total
    )
