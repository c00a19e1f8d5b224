"""A real Prometheus server (Debian's package) scrapes a real `mm serve` every second, evaluates
deploy/prometheus/alerts.yml, and its query API returns the values in the stores."""

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tests.prometheus_home import fill_home
from tests.servers import free_port
from tests.service_server import running_service, stop, wait_for_http

PROMETHEUS = shutil.which("prometheus")
RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian package prometheus) is not installed"),
]


@contextmanager
def running_prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """Prometheus on a free loopback port scraping `target` (host:port) every second with the
    shipped alert rules; yields its base URL."""
    assert PROMETHEUS is not None
    shutil.copy(RULES, tmp_path / "alerts.yml")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        f"  - job_name: mm\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("ab")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"{base}/-/ready", process, "prometheus")
        yield base
    finally:
        stop(process)
        log.close()


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _value(base: str, expr: str) -> float:
    result = _query(base, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


def _poll(check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_prometheus_scrapes_the_stores_and_fires_the_drift_alert(tmp_path: Path) -> None:
    home = tmp_path / "home"
    known = fill_home(home)
    with (
        running_service(home) as service,
        running_prometheus(tmp_path, service.removeprefix("http://")) as prom,
    ):
        page = httpx.get(f"{service}/metrics", timeout=30)
        assert page.status_code == 200
        assert page.headers["content-type"] == CONTENT_TYPE_LATEST
        assert "# TYPE mm_endpoint_latency_seconds histogram" in page.text
        scraped = _poll(lambda: _query(prom, 'mm_endpoint_events_total{endpoint="churn"}'))
        assert scraped, f"no scrape of {service}/metrics: see {tmp_path / 'prometheus.log'}"
        assert _value(prom, 'up{job="mm"}') == 1
        for (endpoint, result), status in known.status.items():
            selector = f'endpoint="{endpoint}",app="drift",result="{result}"'
            assert _value(prom, f"mm_result_status{{{selector}}}") == status
            value = _value(prom, f"mm_result_value{{{selector}}}")
            assert value == pytest.approx(known.value[(endpoint, result)])
        for (endpoint, metric), value in known.metric.items():
            selector = f'endpoint="{endpoint}",metric="{metric}"'
            assert _value(prom, f"mm_metric_value{{{selector}}}") == pytest.approx(value)
        for endpoint, events in known.events.items():
            assert _value(prom, f'mm_endpoint_events_total{{endpoint="{endpoint}"}}') == events
            errors = _value(prom, f'mm_endpoint_errors_total{{endpoint="{endpoint}"}}')
            assert errors == known.errors[endpoint]
            latencies = np.asarray(known.latencies_s[endpoint])
            bucket = f'mm_endpoint_latency_seconds_bucket{{endpoint="{endpoint}",le="0.05"}}'
            assert _value(prom, bucket) == int((latencies <= 0.05).sum())
            count = f'mm_endpoint_latency_seconds_count{{endpoint="{endpoint}"}}'
            assert _value(prom, count) == len(latencies)
        lag = _value(prom, 'mm_monitoring_lag_seconds{endpoint="fraud",app="drift"}')
        assert 0 < lag - (known.now - known.newest_window.end).total_seconds() < 120

        def firing() -> list[dict[str, Any]]:
            alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            drift = [a for a in alerts if a["labels"]["alertname"] == "MMDriftDetected"]
            return [a for a in drift if a["state"] == "firing"]

        alerts = _poll(firing)
        assert [a["labels"]["endpoint"] for a in alerts] == ["fraud"]
        assert alerts[0]["annotations"]["dashboard"] == f"{service}/endpoints/fraud"
