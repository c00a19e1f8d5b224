"""Per-feature drift between a window and its reference (pure logic behind the default app)."""

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.distances import hellinger, normalise, symmetric_kl, total_variation
from mm_dagster.stats.feature_stats import (
    NUMERIC,
    bin_counts,
    category_counts,
    histogram_of,
    reference_category_counts,
)
from mm_dagster.stats.null_thresholds import NullThresholdCache, upper_bound_quantile

PARALLEL_MIN_ROWS = 100_000
MAX_THREADS = 4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str
    window_rows: int
    reference_rows: int
    window_counts: np.ndarray
    reference_counts: np.ndarray
    tvd: float
    hellinger: float
    kld: float


def window_counts_for(
    reference: Mapping[str, Any], values: pd.Series, *, mlrun_compatible: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """(window counts, reference counts) on the reference's bins, or None without a histogram."""
    if reference.get("type", NUMERIC) == NUMERIC:
        ref_counts = histogram_of(reference)
        if ref_counts is None:
            return None
        edges = np.asarray(reference["hist"][1], dtype=np.float64)
        if isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            numbers = np.asarray(values, dtype=np.float64)  # no copy for float64

        return bin_counts(numbers, edges, mlrun_compatible=mlrun_compatible), ref_counts
    if not reference.get("freqs"):
        return None
    return category_counts(reference, values), reference_category_counts(reference)


def feature_drifts(
    reference_stats: Mapping[str, Mapping[str, Any]],
    window: pd.DataFrame,
    *,
    mlrun_compatible_binning: bool = False,
) -> list[FeatureDrift]:
    """Distances for every reference column present in `window` that has a histogram.

    Columns are binned in parallel threads for large windows (numpy and Arrow release the GIL).
    """

    def one(feature: str) -> FeatureDrift | None:
        ref = reference_stats[feature]
        counts = window_counts_for(ref, window[feature], mlrun_compatible=mlrun_compatible_binning)
        if counts is None:
            return None
        w_counts, r_counts = counts
        if w_counts.sum() == 0 or r_counts.sum() == 0:
            return None
        t, u = normalise(w_counts), normalise(r_counts)
        return FeatureDrift(
            feature=feature,
            kind=ref.get("type", NUMERIC),
            window_rows=int(w_counts.sum()),
            reference_rows=int(r_counts.sum()),
            window_counts=w_counts,
            reference_counts=r_counts,
            tvd=float(total_variation(t, u)),
            hellinger=float(hellinger(t, u)),
            kld=float(symmetric_kl(t, u)),
        )

    features = [f for f in reference_stats if f in window.columns]
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
    tvd: float
    threshold_potential: float
    threshold_detected: float
    status: ResultStatusApp


def feature_verdict(
    drift: FeatureDrift, cache: NullThresholdCache, effect_size_floor: float
) -> FeatureVerdict:
    """Flag a feature when its TVD exceeds the null quantile at its window size and the floor."""
    p = normalise(drift.reference_counts)
    bound = upper_bound_quantile(p, drift.window_rows, drift.reference_rows, cache.alpha_detected)
    if bound <= effect_size_floor:
        pot = det = effect_size_floor  # large window: the floor decides, no simulation needed
    else:
        q = cache.quantiles(p, drift.window_rows, drift.reference_rows)
        pot = max(q.potential, effect_size_floor)
        det = max(q.detected, effect_size_floor)
    if drift.tvd > det:
        status = ResultStatusApp.detected
    elif drift.tvd > pot:
        status = ResultStatusApp.potential_detection
    else:
        status = ResultStatusApp.no_detection
    return FeatureVerdict(drift.feature, drift.tvd, pot, det, status)
