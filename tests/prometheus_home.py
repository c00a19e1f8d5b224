"""A deployment home with endpoints, events (errors and latencies) and results whose values the
Prometheus tests know, for checking `/metrics` and a real Prometheus against them."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring

BASE_PERIOD = 10
FEATURES = ["x0", "x1"]
DRIFT = ResultKindApp.data_drift


@dataclass(frozen=True)
class KnownHome:
    now: datetime
    newest_window: Window
    events: dict[str, int]  # per endpoint
    errors: dict[str, int]
    latencies_s: dict[str, list[float]]  # every recorded latency, seconds
    status: dict[tuple[str, str], int]  # (endpoint, result) -> newest status
    value: dict[tuple[str, str], float]
    metric: dict[tuple[str, str], float]  # (endpoint, metric) -> newest value


def _events(
    rng: np.random.Generator, rows: int, start: datetime, errors: int, latency_us: np.ndarray
) -> pd.DataFrame:
    df = pd.DataFrame({f: rng.normal(size=rows) for f in FEATURES})
    df["timestamp"] = [start + timedelta(seconds=i) for i in range(rows)]
    df["latency_us"] = latency_us
    df["error"] = [("boom" if i < errors else None) for i in range(rows)]
    return df


def fill_home(home: Path, clock: Clock = utcnow, database_url: str | None = None) -> KnownHome:
    """Two endpoints ("fraud" drifting, "churn" calm), events in the last window, and results of
    the apps `drift` and `ops` for the two newest windows (the newest ones are exported)."""
    now = clock()
    newest = Window.containing(now - timedelta(minutes=BASE_PERIOD), BASE_PERIOD)
    older = Window.containing(newest.start - timedelta(minutes=1), BASE_PERIOD)
    rng = np.random.default_rng(7)
    known = KnownHome(now, newest, {}, {}, {}, {}, {}, {})
    with Monitoring(home=str(home), database_url=database_url, base_period=BASE_PERIOD, clock=clock) as mm:
        for name, model, rows, errors in (("fraud", "xgb-fraud", 120, 12), ("churn", "lr-churn", 40, 0)):
            mm.create_endpoint(name, feature_names=FEATURES, model_name=model)
            latency_us = rng.gamma(2.0, 20_000.0, size=rows).round()
            latency_us[0] = 5000  # exactly on the bound 0.005 s: counted in le="0.005"
            batch = _events(rng, rows, newest.start + timedelta(seconds=5), errors, latency_us)
            half = rows // 2
            mm.record_events(name, batch.iloc[:half])  # two batches: the buckets add up
            mm.record_events(name, batch.iloc[half:])
            known.events[name] = rows
            known.errors[name] = errors
            known.latencies_s[name] = list(latency_us / 1e6)
        ids = {e.name: e.id for e in mm.list_endpoints()}
        drift_statuses = ((older, ResultStatusApp.no_detection), (newest, ResultStatusApp.detected))
        for window, drift_status in drift_statuses:
            outputs = {}
            for name, status, value in (
                ("fraud", drift_status, 0.4 if window == newest else 0.05),
                ("churn", ResultStatusApp.no_detection, 0.02),
            ):
                outputs[ids[name]] = (
                    [ModelMonitoringApplicationResult("general_drift", value, DRIFT, status)],
                    [ModelMonitoringApplicationMetric("tvd_mean", value / 2)],
                )
                if window == newest:
                    known.status[(name, "general_drift")] = int(status)
                    known.value[(name, "general_drift")] = value
                    known.metric[(name, "tvd_mean")] = value / 2
            mm.results.replace_window("drift", window, outputs)
    return known
