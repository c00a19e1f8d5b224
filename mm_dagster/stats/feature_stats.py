"""Feature statistics in MLRun's schema (spec §3), reference and window alike.

Numeric column: count (non-missing), missing (NaN/None), non_finite (±inf, counted apart), mean,
std, min, 25%, 50%, 75%, max of the finite values and `hist = [counts, edges]`: 20 equal-width
bins from the finite min to max, padded with one bin on each side whose outer edges are
-/+sys.float_info.max (22 bins, 23 edges); missing values are not in the histogram.
Categorical column (string, bool, category): count, missing, unique, top, freq and `freqs`, the
frequency table of the `MAX_CATEGORIES` most frequent values. A window's histogram is always taken
on the reference's edges.

Reference stats also carry what the per-feature drift test needs (stats.drift_test):
- numeric: `quantiles` (41 levels, 0 to 1 by 0.025, values of the data) and `drift_edges` /
  `drift_counts`, bins that follow the reference's mass: edges at the 5% quantiles, and every value
  holding >= 5% of the mass (an atom, e.g. the zeros of a skewed or discrete feature) gets a bin
  of its own;
- categorical: `other`, the count of values beyond the top `MAX_CATEGORIES`, `sketch`, a
  compact set of those values (stats.category_sketch), so "unseen" means not in the reference
  (beyond `MAX_CATEGORIES` values, the top ones are chosen on half the rows and counted on the
  other half, see `_split_top_categories`),
  and `singletons`, the count of values seen once (the Good-Turing estimate of unseen mass).
"""

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.endpoint import FeatureStats
from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.category_counting import KnownCategories, arrow_text, known_counts, rest_value_counts
from mm_dagster.stats.category_sketch import CategorySketch

N_BINS = 20
FLOAT_MAX = sys.float_info.max
NUMERIC = "numeric"
CATEGORICAL = "categorical"
MAX_CATEGORIES = 1000
QUANTILE_LEVELS = tuple(float(q) for q in np.linspace(0.0, 1.0, 41))
DRIFT_BIN_MASS = 0.05


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


def drift_bin_edges(finite: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Edges of the mass-following bins [e_i, e_i+1) (see the module docstring)."""
    distinct, counts = np.unique(finite, return_counts=True)
    atoms = np.flatnonzero(counts >= DRIFT_BIN_MASS * finite.size)
    after_atoms = distinct[np.minimum(atoms + 1, distinct.size - 1)]
    every = round(DRIFT_BIN_MASS / (QUANTILE_LEVELS[1] - QUANTILE_LEVELS[0]))
    return np.unique(np.concatenate((quantiles[::every], distinct[atoms], after_atoms)))


def drift_bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of the non-missing `values` in the len(edges)+1 bins (-inf, e_0), [e_0, e_1), ..."""
    present = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)


@dataclass(frozen=True)
class NumericBins:
    """A numeric feature's two sets of reference bins, prepared once per reference for
    `histogram_and_drift_counts`: the union of both edge sets (no union edge lies inside a bin of
    either set, so each union bin falls in one bin of each), where each union bin goes in each
    set, and the union bin holding exactly the reference max (for `bin_counts`' rule)."""

    edges: np.ndarray
    drift_edges: np.ndarray
    union: np.ndarray
    histogram_of_union: np.ndarray
    drift_of_union: np.ndarray
    at_max: int

    @classmethod
    def of(cls, edges: np.ndarray, drift_edges: np.ndarray) -> "NumericBins":
        inner = edges[1:-1]
        maximum = inner[-1]
        union = np.unique(np.concatenate((inner, drift_edges, [np.nextafter(maximum, np.inf)])))
        starts = np.concatenate(([-np.inf], union))
        return cls(
            edges=edges,
            drift_edges=drift_edges,
            union=union,
            histogram_of_union=np.searchsorted(inner, starts, side="right"),
            drift_of_union=np.searchsorted(drift_edges, starts, side="right"),
            at_max=int(np.searchsorted(union, maximum, side="right")),
        )


def histogram_and_drift_counts(
    values: np.ndarray, bins: NumericBins, *, mlrun_compatible: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`bin_counts(values, edges)` and `drift_bin_counts(values, drift_edges)` from one
    binary-search pass over the union of both edge sets (see `NumericBins`)."""
    combined = np.bincount(np.searchsorted(bins.union, values, side="right"), minlength=bins.union.size + 1)
    combined[-1] -= np.count_nonzero(np.isnan(values))
    return split_union_counts(combined, bins, mlrun_compatible=mlrun_compatible)


def split_union_counts(
    combined: np.ndarray, bins: NumericBins, *, mlrun_compatible: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The (histogram, drift) counts of values whose counts on the union of both edge sets are
    `combined` (without NaN)."""
    histogram = np.bincount(bins.histogram_of_union, combined, bins.edges.size - 1).astype(np.int64)
    drift = np.bincount(bins.drift_of_union, combined, bins.drift_edges.size + 1).astype(np.int64)
    if not mlrun_compatible:
        at_max = combined[bins.at_max]
        histogram[-2] += at_max
        histogram[-1] -= at_max
    return histogram, drift


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
    reference_extras: dict[str, Any] = {}
    if edges is None:
        edges = padded_edges(reference_inner_edges(minimum, maximum))
        quantiles = np.quantile(finite, QUANTILE_LEVELS, method="inverted_cdf")
        drift_edges = drift_bin_edges(finite, quantiles)
        reference_extras = {
            "quantiles": quantiles.tolist(),
            "drift_edges": drift_edges.tolist(),
            "drift_counts": drift_bin_counts(present, drift_edges).tolist(),
        }
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
        **reference_extras,
    }


def _split_top_categories(text: pd.Series) -> tuple[pd.Series, int]:
    """Top `MAX_CATEGORIES` values chosen on one random half of the reference and counted on the
    other, and the other half's count of the remaining values. Counting the values on the rows
    that chose them would overstate them (winner's curse: with 3,000 equally likely zip codes in
    5,000 rows, the top 1,000 hold 68% of the sample and 33% of the distribution), and every
    calm window would look like drift."""
    order = np.random.default_rng(0).permutation(len(text))
    half = len(text) // 2
    keys = text.iloc[order[:half]].value_counts().index[:MAX_CATEGORIES]
    counted = text.iloc[order[half:]].value_counts()
    kept = counted.reindex(keys, fill_value=0)
    return kept, int(counted.sum() - kept.sum())


def _categorical_stats(series: pd.Series, *, reference: bool) -> dict[str, Any]:
    text = series.dropna().astype(str)
    all_counts = text.value_counts()
    missing = int(series.isna().sum())
    stats: dict[str, Any] = {"type": CATEGORICAL, "count": len(series) - missing, "missing": missing}
    stats["unique"] = len(all_counts)
    if len(all_counts):
        stats["top"] = str(all_counts.index[0])
        stats["freq"] = int(all_counts.iloc[0])
    counts, other = all_counts.iloc[:MAX_CATEGORIES], 0
    if reference:
        if len(all_counts) > MAX_CATEGORIES:
            counts, other = _split_top_categories(text)
            rest = all_counts.index[~all_counts.index.isin(counts.index)]
            stats["sketch"] = CategorySketch.of(rest.to_numpy()).to_json()
        stats["other"] = other
        stats["singletons"] = int((all_counts == 1).sum())
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
            stats[col] = _categorical_stats(series, reference=reference is None)
    return stats


def histogram_of(stats: Mapping[str, Any]) -> np.ndarray | None:
    """Counts vector of a numeric column's stats (None if it has no histogram)."""
    hist = stats.get("hist")
    return None if hist is None else np.asarray(hist[0], dtype=np.float64)


def category_counts(reference: Mapping[str, Any], values: pd.Series) -> np.ndarray:
    """Counts of `values` over the reference's top categories, then its other (rarer) values,
    then values never seen in the reference."""
    positions = {key: i for i, key in enumerate(reference.get("freqs", {}))}
    sketch = CategorySketch.from_json(reference["sketch"]) if "sketch" in reference else None
    return bucket_counts(positions, sketch, values)


def bucket_counts(
    positions: Mapping[str, int], sketch: CategorySketch | None, values: pd.Series
) -> np.ndarray:
    """`category_counts` with the reference's buckets already looked up."""
    counts = np.zeros(len(positions) + 2, dtype=np.float64)
    text = arrow_text(values)
    if text is None:
        observed = values.value_counts(dropna=True)
        pairs = zip(observed.index, observed.to_numpy(), strict=True)
    else:  # Arrow strings: the known categories counted in one compiled pass
        names = sorted(positions, key=positions.__getitem__)
        known, rest = known_counts(text, KnownCategories.of(names))
        counts[[positions[name] for name in names]] = known
        pairs = zip(*rest_value_counts(rest), strict=True)
    rest_values, rest_counts = [], []
    for value, count in pairs:
        i = positions.get(value if isinstance(value, str) else str(value))
        if i is None:
            rest_values.append(str(value))
            rest_counts.append(count)
        else:
            counts[i] += count
    if rest_values:
        rest = np.asarray(rest_counts, dtype=np.float64)
        if sketch is not None:
            counts[-2] = rest[sketch.contains(np.asarray(rest_values, dtype=object))].sum()
        counts[-1] = rest.sum() - counts[-2]
    return counts


def unseen_share(reference: Mapping[str, Any]) -> float:
    """The Good-Turing estimate of the share of values a categorical reference never saw: the
    share of its rows holding a value seen exactly once."""
    rows = reference.get("count", 0)
    return min(reference.get("singletons", 0) / rows, 1.0) if rows else 0.0


def reference_category_counts(reference: Mapping[str, Any]) -> np.ndarray:
    """The reference's counts on the same buckets as `category_counts`. The never-seen bucket
    gets the Good-Turing estimate of the mass of values the reference sample missed, the share
    of its rows holding a value seen exactly once (a 5,000-row sample of 3,000 zip codes expects
    ~19% of a window to be values it never saw). When the top values were counted on held-out
    rows, that mass comes out of `other` (which holds it); otherwise it is added (the seen buckets
    keep their whole counts: scaling them would order equal counts by the reference's own)."""
    known = np.asarray(list(reference.get("freqs", {}).values()), dtype=np.float64)
    other = float(reference.get("other", 0))
    missed_share = unseen_share(reference)
    total = known.sum() + other
    missed = total * missed_share
    if "sketch" in reference:
        taken = min(missed, other)
        return np.append(known, [other - taken, taken])
    return np.append(known, [other, missed])
