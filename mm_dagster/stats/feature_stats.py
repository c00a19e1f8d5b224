"""Feature statistics in MLRun's schema (spec §3), reference and window alike.

Numeric column: count (non-missing), missing (NaN/None), non_finite (±inf, counted apart), mean,
std, min, 25%, 50%, 75%, max of the finite values and `hist = [counts, edges]`: 20 equal-width
bins from the finite min to max, padded with one bin on each side whose outer edges are
-/+sys.float_info.max (22 bins, 23 edges); missing values are not in the histogram.
Categorical column (string, bool, category): count, missing, unique, top, freq and `freqs`, a
frequency table. A window's histogram is always taken on the reference's edges.
"""

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.endpoint import FeatureStats
from mm_dagster.core.errors import MonitoringError

N_BINS = 20
FLOAT_MAX = sys.float_info.max
NUMERIC = "numeric"
CATEGORICAL = "categorical"
MAX_CATEGORIES = 1000


def column_kind(series: pd.Series) -> str:
    """`numeric` for int/float columns, `categorical` for string, bool, category and object."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(series.dtype):
        return NUMERIC
    return CATEGORICAL


def reference_inner_edges(minimum: float, maximum: float) -> np.ndarray:
    """The 21 inner edges of the 20 equal-width bins; a constant column gets [v-0.5, v+0.5]."""
    if minimum == maximum:
        minimum, maximum = minimum - 0.5, maximum + 0.5
    return np.linspace(minimum, maximum, N_BINS + 1)


def padded_edges(inner: np.ndarray) -> np.ndarray:
    return np.concatenate(([-FLOAT_MAX], inner, [FLOAT_MAX]))


def bin_counts(values: np.ndarray, edges: np.ndarray, *, mlrun_compatible: bool = False) -> np.ndarray:
    """Counts of `values` in the 22 padded bins given by the 23 `edges`; NaN is ignored.

    Bins are [e_i, e_i+1). A value equal to the reference max (edges[-2]) counts in the last real
    bin, as it did in the reference histogram; `mlrun_compatible=True` puts it in the overflow bin,
    as MLRun does.
    """
    values = np.asarray(values, dtype=np.float64)
    inner = edges[1:-1]
    # One binary-search pass; NaN sorts last, so it lands in the overflow bin and is taken out.
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(edges) - 1)
    counts = counts.astype(np.int64)
    counts[-1] -= np.count_nonzero(np.isnan(values))
    if not mlrun_compatible:
        at_max = np.count_nonzero(values == inner[-1])
        counts[-2] += at_max
        counts[-1] -= at_max
    return counts


def _numeric_stats(values: np.ndarray, edges: np.ndarray | None) -> dict[str, Any]:
    """`count` is the non-missing values, `missing` the NaN/None ones, `non_finite` the ±inf ones;
    moments, quantiles and bin edges come from the finite values only, and ±inf counts in the
    underflow/overflow bins."""
    missing = np.isnan(values)
    present = values[~missing]
    finite = present[np.isfinite(present)]
    counted = {
        "type": NUMERIC,
        "count": int(present.size),
        "missing": int(missing.sum()),
        "non_finite": int(present.size - finite.size),
    }
    if finite.size == 0:
        return counted
    count = int(finite.size)
    q25, q50, q75 = np.percentile(finite, [25, 50, 75])
    minimum, maximum = float(finite.min()), float(finite.max())
    if edges is None:
        edges = padded_edges(reference_inner_edges(minimum, maximum))
    counts = bin_counts(present, edges)
    return {
        **counted,
        "mean": float(finite.mean()),
        "std": float(finite.std(ddof=1)) if count > 1 else 0.0,
        "min": minimum,
        "25%": float(q25),
        "50%": float(q50),
        "75%": float(q75),
        "max": maximum,
        "hist": [counts.tolist(), edges.tolist()],
    }


def _categorical_stats(series: pd.Series) -> dict[str, Any]:
    counts = series.dropna().astype(str).value_counts()
    if len(counts) > MAX_CATEGORIES:
        counts = counts.iloc[:MAX_CATEGORIES]
    missing = int(series.isna().sum())
    stats: dict[str, Any] = {"type": CATEGORICAL, "count": len(series) - missing, "missing": missing}
    stats["unique"] = int(series.dropna().nunique())
    if len(counts):
        stats["top"] = str(counts.index[0])
        stats["freq"] = int(counts.iloc[0])
    stats["freqs"] = {str(k): int(v) for k, v in counts.items()}
    return stats


def compute_feature_stats(
    df: pd.DataFrame,
    columns: list[str] | None = None,
    reference: Mapping[str, Mapping[str, Any]] | None = None,
) -> FeatureStats:
    """Stats for `columns` of `df`; with `reference`, numeric histograms use its edges."""
    stats: FeatureStats = {}
    for col in columns if columns is not None else list(df.columns):
        if col not in df.columns:
            raise MonitoringError(f"column {col!r} is not in the data (has {list(df.columns)})")
        series = df[col]
        ref = (reference or {}).get(col)
        kind = ref.get("type", NUMERIC) if ref else column_kind(series)
        if kind == NUMERIC:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            edges = np.asarray(ref["hist"][1]) if ref and "hist" in ref else None
            stats[col] = _numeric_stats(values, edges)
        else:
            stats[col] = _categorical_stats(series)
    return stats


def histogram_of(stats: Mapping[str, Any]) -> np.ndarray | None:
    """Counts vector of a numeric column's stats (None if it has no histogram)."""
    hist = stats.get("hist")
    return None if hist is None else np.asarray(hist[0], dtype=np.float64)


def category_counts(reference: Mapping[str, Any], values: pd.Series) -> np.ndarray:
    """Counts of `values` over the reference's categories plus one bucket for unseen ones."""
    categories = list(reference.get("freqs", {}))
    observed = values.value_counts(dropna=True)
    observed.index = observed.index.map(str)
    observed = observed.groupby(level=0).sum() if observed.index.has_duplicates else observed

    known = observed.reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    unseen = float(observed.sum() - known.sum())
    return np.append(known, unseen)


def reference_category_counts(reference: Mapping[str, Any]) -> np.ndarray:
    return np.append(np.asarray(list(reference.get("freqs", {}).values()), dtype=np.float64), 0.0)
