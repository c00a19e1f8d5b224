"""Serving statistics of a window (pure): against numpy, and the edge cases."""

import math

import numpy as np
import pytest

from mm_dagster.stats.serving import change_ratio, serving_summary


def test_summary_against_numpy() -> None:
    rng = np.random.default_rng(7)
    latency = rng.gamma(4.0, 2500.0, size=1000)
    latency[::50] = np.nan  # requests without a recorded latency
    failed = rng.random(1000) < 0.03
    summary = serving_summary(failed, latency, 600.0)
    finite = latency[~np.isnan(latency)]
    assert summary.requests == 1000 and summary.errors == int(failed.sum())
    assert summary.error_rate == pytest.approx(failed.mean())
    assert summary.predictions_per_second == pytest.approx((~failed).sum() / 600)
    assert summary.latency_us == pytest.approx(
        {
            "latency_p50_us": np.percentile(finite, 50),
            "latency_p95_us": np.percentile(finite, 95),
            "latency_p99_us": np.percentile(finite, 99),
            "latency_max_us": finite.max(),
        }
    )


def test_no_latency_no_requests() -> None:
    summary = serving_summary(np.zeros(3, dtype=bool), np.full(3, np.nan), 60.0)
    assert summary.latency_us == {} and "latency_p99_us" not in summary.metrics()
    empty = serving_summary(np.zeros(0, dtype=bool), np.zeros(0), 60.0)
    assert empty.error_rate == 0.0 and empty.predictions_per_second == 0.0
    assert all(math.isfinite(v) for v in empty.metrics().values())


@pytest.mark.parametrize(
    ("current", "past", "expected"),
    [(2.0, 4.0, 0.5), (3.0, None, None), (3.0, 0.0, None), (3.0, float("nan"), None), (0.0, 2.0, 0.0)],
)
def test_change_ratio(current: float, past: float | None, expected: float | None) -> None:
    assert change_ratio(current, past) == expected
