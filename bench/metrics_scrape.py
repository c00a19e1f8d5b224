"""Prometheus scrape time: `GET /metrics` over a deployment with many endpoints.

ENDPOINTS endpoints, each with WINDOWS stored windows of 3 apps (2 results and 4 metrics per app
and window), events counted and a latency histogram: times the scrape's queries alone and the
whole exposition (queries + encoding, what `/metrics` does), best of 3, on SQLite.

`python bench/metrics_scrape.py [ENDPOINTS] [WINDOWS]` (default 10,000 endpoints, 6 windows).
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from common import timed  # noqa: E402

APPS = ("histogram-data-drift", "data-quality", "operational")
NOW = datetime(2026, 11, 20, 12, 5, tzinfo=UTC)


def main() -> None:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from mm_dagster.core.clock import fixed_clock
    from mm_dagster.core.latency import LatencyCounts
    from mm_dagster.core.links import UiLinks
    from mm_dagster.core.outputs import ModelMonitoringApplicationMetric as Metric
    from mm_dagster.core.outputs import ModelMonitoringApplicationResult as Result
    from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.service.prometheus import StoreCollector
    from mm_dagster.service.settings import ServiceSettings
    from mm_dagster.storage.latency_buckets import LatencyBucketWriter
    from mm_dagster.storage.metrics_queries import scrape_snapshot

    endpoints = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    windows = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home, clock=fixed_clock(NOW))
        started = time.perf_counter()
        ids = [
            mm.create_endpoint(f"ep{i:05d}", feature_names=["x0", "x1"], model_name=f"model{i % 50}").id
            for i in range(endpoints)
        ]
        buckets = LatencyBucketWriter(mm.engine.dialect.name)
        with mm.engine.begin() as conn:
            for endpoint_id in ids:
                buckets.add(conn, endpoint_id, LatencyCounts.of(rng.gamma(2.0, 20_000.0, size=200)))
                mm.endpoints.note_requests(conn, endpoint_id, first=NOW, last=NOW, events=200, errors=3)
        newest = Window.containing(NOW - timedelta(minutes=10), 10)
        for w in range(windows):
            window = Window.containing(newest.start - timedelta(minutes=10 * w), 10)
            for app in APPS:
                outputs = {
                    endpoint_id: (
                        [
                            Result(
                                f"{app[:4]}_a", 0.1, ResultKindApp.data_drift, ResultStatusApp.no_detection
                            ),
                            Result(f"{app[:4]}_b", 0.2, ResultKindApp.data_drift, ResultStatusApp.detected),
                        ],
                        [Metric(f"{app[:4]}_m{k}", float(k)) for k in range(4)],
                    )
                    for endpoint_id in ids
                }
                mm.results.replace_window(app, window, outputs)
        print(
            f"set up {endpoints:,} endpoints x {windows} windows x {len(APPS)} apps "
            f"in {time.perf_counter() - started:.0f} s"
        )

        queries, snapshot = timed(lambda: scrape_snapshot(mm.engine), repeat=3)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(lambda: mm, ServiceSettings(mm.settings, UiLinks())))
        scrape, text = timed(lambda: generate_latest(registry), repeat=3)
        series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        print(
            f"scrape of {endpoints:,} endpoints: queries {queries:.2f} s "
            f"({len(snapshot.results):,} results, {len(snapshot.metrics):,} metrics), "
            f"whole exposition {scrape:.2f} s = {series:,} series, {len(text) / 1e6:.1f} MB"
        )
        mm.close()


if __name__ == "__main__":
    main()
