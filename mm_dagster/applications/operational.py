"""Operational health of each endpoint per window (issue 11 §5): traffic, errors and latency,
compared with the previous window and the same window a season (a week) earlier, and silence."""

from collections.abc import Mapping
from datetime import timedelta

import numpy as np

from mm_dagster.applications.base import ModelMonitoringApplicationBase
from mm_dagster.applications.context import MonitoringApplicationContext
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.thresholds import Bounds, Thresholds
from mm_dagster.core.traffic import check_lookback
from mm_dagster.stats.serving import ServingSummary, change_ratio, serving_summary

Output = ModelMonitoringApplicationMetric | ModelMonitoringApplicationResult
# Metrics compared with the previous window and with the same window a season earlier.
COMPARED = ("requests", "error_rate", "latency_p50_us", "latency_p95_us", "latency_p99_us")


class OperationalApplication(ModelMonitoringApplicationBase):
    """Per endpoint and window: `requests`, `predictions_per_second`, `error_rate`, latency
    p50/p95/p99/max (`latency_*_us`), `invalid_events`, and `<metric>_vs_previous` /
    `<metric>_vs_last_week` (this window's value over that window's, when it was positive).

    Results (kind `system_performance`): `error_rate` and `latency_p99` against their bounds
    (`irrelevant` under `min_requests`), and `no_traffic`: `detected` on an endpoint that had
    events in each of the `no_traffic_after` windows before this one and has none in it,
    `no_detection` on every window with events (so its latest value says traffic is back).
    """

    NAME = "operational-health"
    RESULT_NAMES = ("error_rate", "latency_p99", "no_traffic")

    def __init__(
        self,
        potential_error_rate: float = 0.02,
        detected_error_rate: float = 0.1,
        potential_latency_p99_us: float = 250_000.0,
        detected_latency_p99_us: float = 1_000_000.0,
        min_requests: int = 10,
        no_traffic_after: int = 3,
        seasonality: timedelta = timedelta(weeks=1),
    ) -> None:
        self.error_rate_bounds = Thresholds(
            potential_error_rate,
            detected_error_rate,
            what="error rate (potential_error_rate, detected_error_rate)",
        )
        self.latency_bounds = Bounds(
            potential_latency_p99_us,
            detected_latency_p99_us,
            what="p99 latency in µs (potential_latency_p99_us, detected_latency_p99_us)",
        )
        if seasonality <= timedelta(0):
            raise MonitoringError(f"seasonality must be a positive timedelta, got {seasonality!r}")
        self.min_requests = check_lookback(min_requests, "min_requests")
        self.seasonality = seasonality
        self.silent_endpoint_windows = check_lookback(no_traffic_after, "no_traffic_after")

    def result_thresholds(self) -> dict[str, tuple[float, float]]:
        return {
            "error_rate": (self.error_rate_bounds.potential, self.error_rate_bounds.detected),
            "latency_p99": (self.latency_bounds.potential, self.latency_bounds.detected),
        }

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> list[Output]:
        ctx = monitoring_context
        df = ctx.sample_df
        window = ctx.window.end - ctx.window.start
        previous = ctx.metric_history(window)
        last_week = ctx.metric_history(self.seasonality)
        invalid = float(sum(ctx.invalid_events.values()))
        if df.empty:
            return self._silent(ctx, previous, invalid)
        summary = serving_summary(
            df["error"].notna().to_numpy(dtype=bool),
            df["latency_us"].to_numpy(dtype="float64", na_value=np.nan),
            window.total_seconds(),
        )
        current = summary.metrics()
        outputs: list[Output] = [ModelMonitoringApplicationMetric(k, v) for k, v in current.items()]
        outputs.append(ModelMonitoringApplicationMetric("invalid_events", invalid))
        changes: dict[str, dict[str, float | None]] = {}
        for name in COMPARED:
            if name not in current:
                continue
            changes[name] = {
                "previous": previous.get(name),
                "last_week": last_week.get(name),
                "vs_previous": change_ratio(current[name], previous.get(name)),
                "vs_last_week": change_ratio(current[name], last_week.get(name)),
            }
            for key in ("vs_previous", "vs_last_week"):
                ratio = changes[name][key]
                if ratio is not None:
                    outputs.append(ModelMonitoringApplicationMetric(f"{name}_{key}", ratio))
        outputs += self._results(summary, changes)
        return outputs

    def _results(self, summary: ServingSummary, changes: dict[str, dict[str, float | None]]) -> list[Output]:
        small = summary.requests < self.min_requests
        error_status = (
            ResultStatusApp.irrelevant if small else self.error_rate_bounds.status(summary.error_rate)
        )
        outputs: list[Output] = [
            ModelMonitoringApplicationResult(
                name="error_rate",
                value=summary.error_rate,
                kind=ResultKindApp.system_performance,
                status=error_status,
                extra_data={
                    "errors": summary.errors,
                    "requests": summary.requests,
                    "potential": self.error_rate_bounds.potential,
                    "detected": self.error_rate_bounds.detected,
                    **changes["error_rate"],
                },
            ),
            ModelMonitoringApplicationResult(
                name="no_traffic",
                value=float(summary.requests),
                kind=ResultKindApp.system_performance,
                status=ResultStatusApp.no_detection,
                extra_data=dict(changes["requests"]),
            ),
        ]
        p99 = summary.latency_us.get("latency_p99_us")
        if p99 is not None:
            outputs.append(
                ModelMonitoringApplicationResult(
                    name="latency_p99",
                    value=p99,
                    kind=ResultKindApp.system_performance,
                    status=ResultStatusApp.irrelevant if small else self.latency_bounds.status(p99),
                    extra_data={
                        "unit": "us",
                        "potential": self.latency_bounds.potential,
                        "detected": self.latency_bounds.detected,
                        **changes["latency_p99_us"],
                    },
                )
            )
        return outputs

    def _silent(
        self, ctx: MonitoringApplicationContext, previous: Mapping[str, float], invalid: float
    ) -> list[Output]:
        """An endpoint with steady traffic before this window and none in it (the runner gives
        this app such endpoints with an empty `sample_df`)."""
        last = ctx.latest_request
        ctx.logger.info("no traffic after steady traffic", windows_before=self.silent_endpoint_windows)
        return [
            ModelMonitoringApplicationMetric("requests", 0.0),
            ModelMonitoringApplicationMetric("predictions_per_second", 0.0),
            ModelMonitoringApplicationMetric("invalid_events", invalid),
            ModelMonitoringApplicationResult(
                name="no_traffic",
                value=0.0,
                kind=ResultKindApp.system_performance,
                status=ResultStatusApp.detected,
                extra_data={
                    "windows_with_traffic_before": self.silent_endpoint_windows,
                    "previous_requests": previous.get("requests"),
                    "last_request": None if last is None else last.isoformat(),
                },
            ),
        ]
