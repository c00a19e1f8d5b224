"""`/metrics`: the collector's exposition parsed back with prometheus_client's parser, against
the values stored; latency buckets counted at ingest; the route on a real service."""

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.latency import BUCKET_LABELS, LATENCY_BUCKETS_SECONDS, LatencyCounts
from mm_dagster.core.links import UiLinks
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.service.prometheus import StoreCollector
from mm_dagster.service.settings import ServiceSettings
from mm_dagster.simulation import reference_frame
from tests.prometheus_home import BASE_PERIOD, KnownHome, fill_home

UI_URL = "https://mm.example.com"
NOW = datetime(2026, 11, 20, 12, 3, 30, tzinfo=UTC)


def _scrape(mm: Monitoring, per_feature_metrics: bool = False) -> dict[str, list[Sample]]:
    registry = CollectorRegistry(auto_describe=False)
    settings = ServiceSettings(mm.settings, UiLinks(UI_URL), per_feature_metrics=per_feature_metrics)
    registry.register(StoreCollector(lambda: mm, settings))
    text = generate_latest(registry).decode()
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _one(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


@pytest.fixture()
def known(tmp_path: Path) -> KnownHome:
    return fill_home(tmp_path, fixed_clock(NOW))


def test_exposition_matches_the_stores(tmp_path: Path, known: KnownHome) -> None:
    with Monitoring(home=str(tmp_path), base_period=BASE_PERIOD, clock=fixed_clock(NOW)) as mm:
        samples = _scrape(mm)
    for (endpoint, result), status in known.status.items():
        assert _one(samples, "mm_result_status", endpoint=endpoint, app="drift", result=result) == status
        value = _one(samples, "mm_result_value", endpoint=endpoint, app="drift", result=result)
        assert value == pytest.approx(known.value[(endpoint, result)])
    # the newest window's, not the older one's
    assert _one(samples, "mm_result_status", endpoint="fraud", result="general_drift") == 2
    for (endpoint, metric), value in known.metric.items():
        assert _one(samples, "mm_metric_value", endpoint=endpoint, metric=metric) == pytest.approx(value)
    end = known.newest_window.end
    for endpoint in ("fraud", "churn"):
        assert _one(samples, "mm_result_window_end_timestamp_seconds", endpoint=endpoint, app="drift") == (
            end.timestamp()
        )
        assert _one(samples, "mm_monitoring_lag_seconds", endpoint=endpoint, app="drift") == (
            (NOW - end).total_seconds()
        )
        model = {"fraud": "xgb-fraud", "churn": "lr-churn"}[endpoint]
        events = _one(samples, "mm_endpoint_events_total", endpoint=endpoint, model=model)
        assert events == known.events[endpoint]
        assert _one(samples, "mm_endpoint_errors_total", endpoint=endpoint) == known.errors[endpoint]
        last = _one(samples, "mm_endpoint_last_request_timestamp_seconds", endpoint=endpoint)
        assert known.newest_window.start.timestamp() < last < end.timestamp()

        latencies = np.asarray(known.latencies_s[endpoint])
        for le, bound in zip(BUCKET_LABELS, (*LATENCY_BUCKETS_SECONDS, np.inf), strict=True):
            counted = _one(samples, "mm_endpoint_latency_seconds_bucket", endpoint=endpoint, le=le)
            assert counted == int((latencies <= bound).sum()), f"{endpoint} le={le}"
        assert _one(samples, "mm_endpoint_latency_seconds_count", endpoint=endpoint) == len(latencies)
        total = _one(samples, "mm_endpoint_latency_seconds_sum", endpoint=endpoint)
        assert total == pytest.approx(latencies.sum())
    # Bounded cardinality: one series per endpoint/app/result, no segment or feature labels.
    assert len(samples["mm_result_status"]) == 2
    assert all(set(s.labels) == {"endpoint", "app", "result"} for s in samples["mm_result_status"])
    assert samples["mm_scrape_duration_seconds"][0].value > 0
    assert _one(samples, "mm_base_period_seconds") == BASE_PERIOD * 60
    assert _one(samples, "mm_service_info", ui_url=UI_URL) == 1


def test_latency_buckets_count_the_bound_in_and_skip_missing_latencies() -> None:
    counts = LatencyCounts.of(np.array([1000.0, 1000.5, np.nan, 2e9, 5000.0]))
    by_le = {b.le: (b.count, b.sum_seconds) for b in counts}
    assert by_le["0.001"] == (1, pytest.approx(0.001))  # 1 ms lies on the bound: le="0.001"
    assert by_le["0.0025"] == (1, pytest.approx(0.0010005))
    assert by_le["0.005"] == (1, pytest.approx(0.005))
    assert by_le["+Inf"] == (1, pytest.approx(2000.0))
    assert sum(b.count for b in counts) == 4  # NaN (no latency) is not an observation
    assert not LatencyCounts.of(np.array([np.nan]))


def test_events_without_latency_leave_the_histogram_out(tmp_path: Path) -> None:
    import pandas as pd

    with Monitoring(home=str(tmp_path), base_period=BASE_PERIOD, clock=fixed_clock(NOW)) as mm:
        mm.create_endpoint("quiet", feature_names=["x0"])
        mm.record_events("quiet", pd.DataFrame({"x0": [1.0, 2.0], "timestamp": [NOW, NOW]}))
        samples = _scrape(mm)
        assert _one(samples, "mm_endpoint_events_total", endpoint="quiet") == 2
        assert "mm_endpoint_latency_seconds_bucket" not in samples
        mm.delete_endpoint("quiet")
        assert "mm_endpoint_events_total" not in _scrape(mm)


def test_concurrent_batches_of_one_endpoint_add_up(tmp_path: Path) -> None:
    """Writers acknowledging batches of one endpoint at once lose no bucket increment."""
    import pandas as pd

    rows, batches, writers = 50, 5, 4
    latency_us = np.linspace(100.0, 3e6, rows).round()
    with Monitoring(home=str(tmp_path), base_period=BASE_PERIOD, clock=fixed_clock(NOW)) as mm:
        mm.create_endpoint("busy", feature_names=["x0"])
        frame = pd.DataFrame({"x0": np.arange(rows, dtype=float), "timestamp": NOW, "latency_us": latency_us})

        def write() -> None:
            for _ in range(batches):
                mm.record_events("busy", frame)

        threads = [threading.Thread(target=write) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        samples = _scrape(mm)
    total = rows * batches * writers
    assert _one(samples, "mm_endpoint_events_total", endpoint="busy") == total
    assert _one(samples, "mm_endpoint_latency_seconds_count", endpoint="busy") == total
    expected = int((latency_us <= 0.1e6).sum()) * batches * writers
    assert _one(samples, "mm_endpoint_latency_seconds_bucket", endpoint="busy", le="0.1") == expected
    assert _one(samples, "mm_endpoint_latency_seconds_sum", endpoint="busy") == pytest.approx(
        latency_us.sum() / 1e6 * batches * writers
    )


def test_per_feature_metrics_only_when_asked(tmp_path: Path) -> None:
    with Monitoring(home=str(tmp_path), base_period=BASE_PERIOD, clock=fixed_clock(NOW)) as mm:
        endpoint = mm.create_endpoint("quality", reference=reference_frame(200))
        window = Window.containing(NOW - timedelta(minutes=30), BASE_PERIOD)
        metrics = [ModelMonitoringApplicationMetric(n, 0.25) for n in ("missing_rate__f0", "invalid_events")]
        mm.results.replace_window("data-quality", window, {endpoint.id: ([], metrics)})
        default = {s.labels["metric"] for s in _scrape(mm)["mm_metric_value"]}
        assert default == {"invalid_events"}
        every = {s.labels["metric"] for s in _scrape(mm, per_feature_metrics=True)["mm_metric_value"]}
        assert every == {"invalid_events", "missing_rate__f0"}
