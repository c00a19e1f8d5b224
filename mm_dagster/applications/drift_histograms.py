"""The drift app's per-feature histograms of a window, as the window page needs them.

Cheap by design (it runs on every analysed window): a reference with a stored plan gives only the
window side (its labels and reference side are joined from the plan when the page is read);
otherwise bin labels and reference summaries are made once per reference. The window's numeric
summaries come from one numpy conversion of its numeric columns (mean/std/min/max), categorical
ones from the category buckets already counted (the top bucket).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.applications.model_cache import FittedModelCache
from mm_dagster.core.histograms import (
    NUMERIC,
    CheckedHistogram,
    FeatureHistogram,
    PlannedHistogram,
    bin_labels,
    counts_list,
    numbered_bins,
    plain_counts,
    plain_summary,
    reference_summary,
    top_bucket,
)
from mm_dagster.stats.drift import FeatureDrift
from mm_dagster.stats.reference_plan import PreparedReference


@dataclass
class _Described:
    """A reference feature's bin labels and summary; its counts as stored, on first use (plain
    and checked)."""

    labels: list[str]
    summary: dict[str, Any]
    counts: list[float] | None = None


Described = dict[str, _Described]


def _describe(reference_stats: Mapping[str, Mapping[str, Any]]) -> Described:
    return {
        f: _Described(
            bin_labels(stats), plain_summary(reference_summary(stats), f"feature {f!r}: reference_summary")
        )
        for f, stats in reference_stats.items()
    }


def _described(ctx: MonitoringApplicationContext, prepared: PreparedReference | None) -> Described:
    if prepared is not None and prepared.described is not None:
        return {f: _Described(d.labels, d.summary) for f, d in prepared.described.items()}
    return _describe(ctx.shared_feature_stats)


def numeric_summaries(sample: pd.DataFrame, features: Sequence[str]) -> dict[str, dict[str, float]]:
    """mean/std/min/max of each column's finite values (columns without any left out)."""
    out: dict[str, dict[str, float]] = {}
    for feature in features:
        column = sample[feature]
        if isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.asarray(column, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            out[feature] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "min": float(values.min()),
                "max": float(values.max()),
            }
    return out


class DriftHistograms:
    """Turns an app's `FeatureDrift`s into `FeatureHistogram`s, labels cached per reference."""

    def __init__(self, max_references: int = 10_000) -> None:
        self._described: FittedModelCache[tuple[str, int, str], Described] = FittedModelCache(max_references)

    def of(
        self,
        ctx: MonitoringApplicationContext,
        drifts: Sequence[FeatureDrift],
        prepared: PreparedReference | None = None,
    ) -> list[FeatureHistogram]:
        """`prepared`: the reference's prepared stats. When they are the endpoint's stored plan, a
        feature whose bins are the plan's gets a `PlannedHistogram`: its window side only, the
        rest joined from the plan when the window is read (no labels made at run time, under half the
        stored bytes). Otherwise a whole histogram, the reference's labels and summaries made
        once per reference (from a stored plan's descriptions when there is one)."""
        numeric = {
            d.feature: d.window_summary
            if d.window_summary is not None
            else numeric_summaries(ctx.shared_sample_df, [d.feature]).get(d.feature, {})
            for d in drifts
            if d.kind == NUMERIC
        }
        planned = prepared is not None and prepared.has_descriptions and not ctx.segment_key
        version = ctx.reference_key[1]
        described: Described | None = None
        histograms: list[FeatureHistogram] = []
        for d in drifts:
            if planned and len(d.window_counts) == len(d.reference_counts):
                histograms.append(
                    PlannedHistogram.window_side(
                        d.feature,
                        d.kind,
                        counts_list(d.window_counts),
                        d.window_rows,
                        numeric.get(d.feature, {}),
                        version,
                    )
                )
                continue
            if described is None:
                described = self._described.get_or_fit(ctx.reference_key, lambda: _described(ctx, prepared))
            reference = described.get(d.feature) or _Described([], {})
            labels = reference.labels
            if len(labels) != len(d.window_counts):  # a binning the labels do not describe
                labels = numbered_bins(len(d.window_counts))
            if reference.counts is None or len(reference.counts) != len(d.reference_counts):
                reference.counts = plain_counts(
                    counts_list(d.reference_counts), f"feature {d.feature!r}: reference_counts"
                )
            # Labels are str, window counts counted (whole, >= 0), summaries plain floats and
            # the reference's parts checked above: stored without a check per window, unless
            # the two histograms do not fit together (then `checked` says so).
            fits = len(reference.counts) == len(labels)
            histograms.append(
                (CheckedHistogram if fits else FeatureHistogram)(
                    feature=d.feature,
                    kind=d.kind,
                    labels=labels,
                    reference_counts=reference.counts,
                    window_counts=counts_list(d.window_counts),
                    window_rows=d.window_rows,
                    reference_summary=reference.summary,
                    window_summary=numeric.get(d.feature, {})
                    if d.kind == NUMERIC
                    else top_bucket(labels, counts_list(d.window_counts)),
                )
            )
        return histograms
