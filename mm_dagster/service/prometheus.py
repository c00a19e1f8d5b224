"""`GET /metrics`: the stores in Prometheus's exposition format, computed at scrape time.

Families (labels bounded: endpoint, model, app, result or metric name; no per-feature labels, and
per-feature metrics `<family>__<feature>` only with `MM_METRICS_PER_FEATURE=1`). Latest values are
read from the heads tables (`storage.result_heads`), so a scrape does not grow with history:

| family | labels | what |
| --- | --- | --- |
| `mm_result_value`, `mm_result_status` | endpoint, app, result | latest window's result (status -1..2) |
| `mm_metric_value` | endpoint, app, metric | latest window's metric |
| `mm_result_window_end_timestamp_seconds` | endpoint, app | end of the newest analysed window |
| `mm_monitoring_lag_seconds` | endpoint, app | now minus that end |
| `mm_endpoint_events_total`, `mm_endpoint_errors_total` | endpoint, model | events, errors recorded |
| `mm_endpoint_last_request_timestamp_seconds` | endpoint, model | newest event's timestamp |
| `mm_endpoint_latency_seconds` | endpoint, model | histogram of every event's latency |
| `mm_base_period_seconds` | | the deployment's base period (window length) |
| `mm_service_info` | ui_url | 1; the pages' base URL, for links in alert annotations |
| `mm_scrape_duration_seconds` | | time the scrape took to read the stores and encode the rest |
"""

import time
from collections.abc import Callable, Iterator
from datetime import datetime

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from mm_dagster.monitoring import Monitoring
from mm_dagster.service.settings import ServiceSettings
from mm_dagster.storage.metrics_queries import ScrapeSnapshot, scrape_snapshot

METRICS_PATH = "/metrics"
_ENDPOINT = ("endpoint", "model")


class StoreCollector(Collector):
    """Reads the stores at each scrape through `monitoring` (called then: the service's stores
    open at startup, after the collector is registered)."""

    def __init__(self, monitoring: Callable[[], Monitoring], settings: ServiceSettings) -> None:
        self.monitoring = monitoring
        self.links = settings.links
        self.per_feature_metrics = settings.per_feature_metrics

    def describe(self) -> list[Metric]:
        return []  # families are known only at scrape time; registering must not query

    def collect(self) -> Iterator[Metric]:
        mm = self.monitoring()
        started = time.perf_counter()
        snapshot = scrape_snapshot(mm.engine, self.per_feature_metrics)
        now = mm.clock()
        yield from _families(snapshot, now)
        base_period = GaugeMetricFamily(
            "mm_base_period_seconds", "The deployment's base period: the length of a window"
        )
        base_period.add_metric([], mm.settings.base_period * 60.0)
        info = GaugeMetricFamily(
            "mm_service_info", "Always 1; ui_url is the base URL of the service's pages", labels=["ui_url"]
        )
        info.add_metric([self.links.base_url], 1.0)
        yield from (base_period, info)
        duration = GaugeMetricFamily(
            "mm_scrape_duration_seconds",
            "Seconds this scrape took to read the stores and encode the families before this one",
        )
        duration.add_metric([], time.perf_counter() - started)
        yield duration


def _families(snapshot: ScrapeSnapshot, now: datetime) -> Iterator[Metric]:
    names = {e.endpoint_id: e.name for e in snapshot.endpoints}
    result_value = GaugeMetricFamily(
        "mm_result_value", "Value of the newest window's result", labels=["endpoint", "app", "result"]
    )
    result_status = GaugeMetricFamily(
        "mm_result_status",
        "Status of the newest window's result: -1 irrelevant, 0 no detection, 1 potential, 2 detected",
        labels=["endpoint", "app", "result"],
    )
    metric_value = GaugeMetricFamily(
        "mm_metric_value", "Value of the newest window's metric", labels=["endpoint", "app", "metric"]
    )
    newest_end: dict[tuple[str, str], datetime] = {}
    for r in snapshot.results:
        if r.endpoint_id not in names:
            continue  # an endpoint deleted between the queries
        labels = [names[r.endpoint_id], r.app, r.name]
        result_value.add_metric(labels, r.value)
        result_status.add_metric(labels, float(r.status if r.status is not None else -1))
        key = (r.endpoint_id, r.app)
        newest_end[key] = max(newest_end.get(key, r.window_end), r.window_end)
    for m in snapshot.metrics:
        if m.endpoint_id not in names:
            continue
        metric_value.add_metric([names[m.endpoint_id], m.app, m.name], m.value)
        key = (m.endpoint_id, m.app)
        newest_end[key] = max(newest_end.get(key, m.window_end), m.window_end)
    window_end = GaugeMetricFamily(
        "mm_result_window_end_timestamp_seconds",
        "End (Unix seconds) of the newest window the app analysed",
        labels=["endpoint", "app"],
    )
    lag = GaugeMetricFamily(
        "mm_monitoring_lag_seconds",
        "Seconds from the end of the newest window the app analysed to now",
        labels=["endpoint", "app"],
    )
    for (endpoint_id, app), end in sorted(newest_end.items()):
        window_end.add_metric([names[endpoint_id], app], end.timestamp())
        lag.add_metric([names[endpoint_id], app], max((now - end).total_seconds(), 0.0))
    yield from (result_value, result_status, metric_value, window_end, lag)
    yield from _endpoint_families(snapshot)


def _endpoint_families(snapshot: ScrapeSnapshot) -> Iterator[Metric]:
    events = CounterMetricFamily("mm_endpoint_events", "Events recorded for the endpoint", labels=_ENDPOINT)
    errors = CounterMetricFamily(
        "mm_endpoint_errors", "Events recorded with an error for the endpoint", labels=_ENDPOINT
    )
    last_request = GaugeMetricFamily(
        "mm_endpoint_last_request_timestamp_seconds",
        "Timestamp (Unix seconds) of the endpoint's newest recorded event",
        labels=_ENDPOINT,
    )
    latency = HistogramMetricFamily(
        "mm_endpoint_latency_seconds",
        "Serving latency of every event recorded with one",
        labels=_ENDPOINT,
        unit="",
    )
    for e in snapshot.endpoints:
        labels = [e.name, e.model]
        events.add_metric(labels, e.events)
        errors.add_metric(labels, e.errors)
        if e.last_request is not None:
            last_request.add_metric(labels, e.last_request.timestamp())
        histogram = snapshot.latencies.get(e.endpoint_id)
        if histogram is not None:
            latency.add_metric(
                labels,
                buckets=[(le, float(n)) for le, n in histogram.cumulative],
                sum_value=histogram.sum_seconds,
            )
    yield from (events, errors, last_request, latency)


def metrics_router(app: FastAPI, settings: ServiceSettings) -> APIRouter:
    """The `/metrics` route over `app`'s stores (opened at startup, after this runs), with a
    registry of its own (`app.state.prometheus`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(lambda: app.state.mm.monitoring, settings))
    app.state.prometheus = registry
    router = APIRouter()

    @router.get(
        METRICS_PATH,
        summary="Prometheus metrics",
        description="Latest results, metrics, lag, event counters and latency histograms of every endpoint.",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
