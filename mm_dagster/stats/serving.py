"""Serving statistics of one window (pure numpy): traffic, errors, latency, and change ratios."""

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

LATENCY_QUANTILES = MappingProxyType({"latency_p50_us": 50.0, "latency_p95_us": 95.0, "latency_p99_us": 99.0})


@dataclass(frozen=True)
class ServingSummary:
    """Requests, errors and latency of one endpoint in one window."""

    requests: int
    errors: int
    seconds: float
    latency_us: dict[str, float]  # p50/p95/p99 and max; empty when no request has a latency

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def predictions_per_second(self) -> float:
        """Requests answered without an error, per second of the window."""
        return (self.requests - self.errors) / self.seconds

    def metrics(self) -> dict[str, float]:
        return {
            "requests": float(self.requests),
            "predictions_per_second": self.predictions_per_second,
            "error_rate": self.error_rate,
            **self.latency_us,
        }


def serving_summary(
    failed: npt.NDArray[np.bool_], latency_us: npt.NDArray[np.float64], seconds: float
) -> ServingSummary:
    """`failed`: one flag per request (it has an error); `latency_us`: one value per request, NaN
    where none was recorded. Percentiles are linear-interpolated (numpy's default)."""
    latency = latency_us[np.isfinite(latency_us)]
    quantiles: dict[str, float] = {}
    if latency.size:
        values = np.percentile(latency, list(LATENCY_QUANTILES.values()))
        quantiles = {name: float(v) for name, v in zip(LATENCY_QUANTILES, values, strict=True)}
        quantiles["latency_max_us"] = float(latency.max())
    return ServingSummary(int(failed.size), int(failed.sum()), seconds, quantiles)


def change_ratio(current: float, past: float | None) -> float | None:
    """current / past, or None when there is no past value or it is not a positive number."""
    if past is None or not math.isfinite(past) or past <= 0 or not math.isfinite(current):
        return None
    return current / past
