"""Serving-latency histograms with fixed buckets, counted as events arrive (exported to Prometheus
as `mm_endpoint_latency_seconds`). Each bucket holds the events with latency in (previous bound,
bound]; the last bucket (bound `+Inf`) takes the rest."""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Upper bounds in seconds: Prometheus's default buckets with 1 ms and 2.5 ms for fast models.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
INF_BOUND = "+Inf"


def bound_label(bound: float) -> str:
    """A bucket bound as Prometheus writes it in `le` ("0.005", "1.0", "+Inf")."""
    return INF_BOUND if bound == float("inf") else repr(float(bound))


BUCKET_LABELS: tuple[str, ...] = (*(bound_label(b) for b in LATENCY_BUCKETS_SECONDS), INF_BOUND)


@dataclass(frozen=True)
class LatencyBucket:
    le: str  # one of BUCKET_LABELS
    count: int  # events in this bucket only (not cumulative)
    sum_seconds: float  # their latencies summed


@dataclass(frozen=True)
class LatencyCounts:
    """One batch's events counted into the fixed buckets (empty buckets left out)."""

    buckets: tuple[LatencyBucket, ...]

    @classmethod
    def of(cls, latency_us: npt.NDArray[np.float64]) -> "LatencyCounts":
        """Count latencies in microseconds; NaN (no latency recorded) is not counted."""
        values = latency_us[np.isfinite(latency_us)]
        if values.size == 0:
            return cls(())
        bounds_us = np.asarray(LATENCY_BUCKETS_SECONDS) * 1e6
        index = np.searchsorted(bounds_us, values, side="left")  # value <= bound goes in bound's bucket
        counts = np.bincount(index, minlength=len(BUCKET_LABELS))
        sums = np.bincount(index, weights=values, minlength=len(BUCKET_LABELS)) / 1e6
        return cls(
            tuple(
                LatencyBucket(BUCKET_LABELS[i], int(counts[i]), float(sums[i]))
                for i in np.flatnonzero(counts)
            )
        )

    def __iter__(self) -> Iterator[LatencyBucket]:
        return iter(self.buckets)

    def __bool__(self) -> bool:
        return bool(self.buckets)


@dataclass(frozen=True)
class LatencyHistogram:
    """An endpoint's histogram over every event recorded, in Prometheus's cumulative form."""

    cumulative: tuple[tuple[str, int], ...]  # (le, events with latency <= le), ending with +Inf
    count: int
    sum_seconds: float

    @classmethod
    def from_buckets(cls, per_bucket: dict[str, tuple[int, float]]) -> "LatencyHistogram":
        """From stored (count, sum) per bucket label; missing buckets are empty."""
        running, cumulative, total = 0, [], 0.0
        for le in BUCKET_LABELS:
            count, seconds = per_bucket.get(le, (0, 0.0))
            running += count
            total += seconds
            cumulative.append((le, running))
        return cls(tuple(cumulative), running, total)
