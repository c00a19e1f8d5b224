"""Data quality of a window against its reference (pure logic behind DataQualityApplication).

Per feature: the missing rate, the non-finite rate (numeric), the share of values outside the
reference's [min, max] (numeric; ±inf included, as Evidently's `OutRangeValueCount`) and the share
of values the reference never had (categorical, as `OutListValueCount` against the reference's
values). Per endpoint: events the recorder rejected (type problems and the like).

Each window rate is compared with the rate the reference implies, with a size-aware rule: a
one-sided binomial test of the window's count against the reference rate, within the window's
false-alarm budget shared by all tests (Bonferroni, as the drift verdicts), and an absolute floor
on the increase, so a 200-row window does not alarm on noise and a 1M-row window does not alarm
on a 0.01% blip. The reference rates: its own missing and non-finite rates; for out-of-range
2 / (m + 1), the chance that one more draw falls outside the range of m (the order statistics of
a continuous feature); for never-seen values the Good-Turing estimate (share of the reference's
rows holding a value seen once).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.feature_stats import NUMERIC, bucket_counts, unseen_share
from mm_dagster.stats.reference_plan import PreparedFeature, prepare_feature

MISSING, NON_FINITE, OUT_OF_RANGE, UNSEEN, INVALID = (
    "missing",
    "non_finite",
    "out_of_range",
    "unseen",
    "invalid_events",
)


@dataclass(frozen=True)
class RateCheck:
    """One rate of one feature (feature None: the endpoint) in one window."""

    feature: str | None
    check: str
    count: int
    total: int
    reference_rate: float

    @property
    def rate(self) -> float:
        return self.count / self.total if self.total else 0.0

    @property
    def p_value(self) -> float:
        """P(count or more | reference rate), the one-sided binomial tail."""
        if self.count == 0:
            return 1.0
        return float(stats.binom.sf(self.count - 1, self.total, min(self.reference_rate, 1.0)))


def _numeric_checks(feature: str, reference: Mapping[str, Any], values: np.ndarray) -> list[RateCheck]:
    rows = values.size
    missing = np.isnan(values)
    present = values[~missing]
    ref_rows = reference.get("count", 0) + reference.get("missing", 0)
    checks = [
        RateCheck(
            feature,
            MISSING,
            int(missing.sum()),
            rows,
            reference.get("missing", 0) / ref_rows if ref_rows else 0.0,
        ),
        RateCheck(
            feature,
            NON_FINITE,
            int(np.isinf(present).sum()),
            int(present.size),
            reference.get("non_finite", 0) / reference["count"] if reference.get("count") else 0.0,
        ),
    ]
    if "min" in reference:
        outside = (present < reference["min"]) | (present > reference["max"])
        finite_reference = reference["count"] - reference.get("non_finite", 0)
        checks.append(
            RateCheck(
                feature, OUT_OF_RANGE, int(outside.sum()), int(present.size), 2.0 / (finite_reference + 1)
            )
        )
    return checks


def _categorical_checks(
    feature: str, reference: Mapping[str, Any], prepared: PreparedFeature | None, values: pd.Series
) -> list[RateCheck]:
    missing = int(values.isna().sum())
    ref_rows = reference.get("count", 0) + reference.get("missing", 0)
    checks = [
        RateCheck(
            feature,
            MISSING,
            missing,
            len(values),
            reference.get("missing", 0) / ref_rows if ref_rows else 0.0,
        )
    ]
    if reference.get("freqs"):
        prepared = prepared or prepare_feature(reference)
        unseen = (
            0
            if prepared is None
            else int(bucket_counts(prepared.positions or {}, prepared.sketch, values)[-1])
        )
        checks.append(RateCheck(feature, UNSEEN, unseen, len(values) - missing, unseen_share(reference)))
    return checks


def rate_checks(
    reference_stats: Mapping[str, Mapping[str, Any]],
    window: pd.DataFrame,
    invalid_events: Mapping[str, int] | None = None,
    prepared: Mapping[str, PreparedFeature] | None = None,
) -> list[RateCheck]:
    """Every check of every reference column present in the window, then the endpoint's
    invalid events (against the window's stored plus rejected events). `prepared`:
    `prepare_reference(reference_stats)` when the caller keeps it across windows (the
    categorical buckets and the Bloom filter of rare values are then not rebuilt per window)."""
    checks: list[RateCheck] = []
    for feature, reference in reference_stats.items():
        if feature not in window.columns:
            continue
        column = window[feature]
        if reference.get("type", NUMERIC) == NUMERIC:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            checks.extend(_numeric_checks(feature, reference, values))
        else:
            checks.extend(_categorical_checks(feature, reference, (prepared or {}).get(feature), column))
    rejected = sum((invalid_events or {}).values())
    checks.append(RateCheck(None, INVALID, rejected, len(window) + rejected, 0.0))
    return checks


def check_status(
    check: RateCheck, tests: int, alpha_potential: float, alpha_detected: float, min_increase: float
) -> ResultStatusApp:
    """Flag when the rate rose by at least `min_increase` over the reference's and the count is
    significant within the window's budget (`tests` checks share it)."""
    if check.total == 0 or check.rate - check.reference_rate < min_increase:
        return ResultStatusApp.no_detection
    p_value = check.p_value
    if p_value <= alpha_detected / tests:
        return ResultStatusApp.detected
    if p_value <= alpha_potential / tests:
        return ResultStatusApp.potential_detection
    return ResultStatusApp.no_detection
