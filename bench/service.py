"""HTTP ingestion: sustained `POST /v1/endpoints/{name}/events` from 4 client processes.

Every figure is printed next to a baseline measured in the same run, on the same deployment:
1. baseline: 1, then 4 processes calling `Monitoring.record_events` in-process, 1,000-row
   batches (20 features) back to back for a fixed time: rows/s and p99 latency of one batch;
2. the same batches sent by 4 processes through `MonitoringClient.record_events` (Arrow IPC) to
   `mm serve` running in a subprocess (`--workers` 1, then 2): rows/s, p99 latency of one
   1,000-row POST, and the ratio to the better baseline's rows/s (target >= 50%).

3. the endpoints overview with OVERVIEW_ENDPOINTS endpoints (3 windows of 4 apps each): time to
   render `GET /` (first page, sorted by status; a later page by name; filtered by status), against
   the floor of reading the endpoints' rows once in the same run (target: < 1 s).

`python bench/service.py [SECONDS]` (default 8 per phase; about 2.5 minutes in all).
"""

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import wide_frame  # noqa: E402

FEATURES = 20
BATCH_ROWS = 1000
CLIENTS = 4
ENDPOINT = "bench"
OVERVIEW_ENDPOINTS = 10_000


def batch(seed: int) -> pd.DataFrame:
    frame = wide_frame(BATCH_ROWS, numeric=FEATURES, categorical=0, seed=seed)
    frame["prediction"] = (frame["n0"] > 0).astype(float)
    frame["latency_us"] = 1000
    return frame


def stamped(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    out = frame.copy()
    out["timestamp"] = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=1)
    out["request_id"] = [f"{prefix}-{i}" for i in range(len(out))]
    return out


def timed_batches(record: Any, worker: int, prefix: str, seconds: float) -> list[float]:
    """`record` one warm-up batch, then batches back to back for `seconds`: each one's latency."""
    frame = batch(worker)
    record(stamped(frame, f"warm-{prefix}-{worker}"))
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        body = stamped(frame, f"{prefix}-{worker}-{n}-{os.getpid()}")
        started = time.perf_counter()
        record(body)
        latencies.append(time.perf_counter() - started)
        n += 1
    return latencies


def in_process_writer(home: str, worker: int, seconds: float, results: Any) -> None:
    from mm_dagster.monitoring import Monitoring

    with Monitoring(home=home) as mm:
        results.put(timed_batches(lambda b: mm.record_events(ENDPOINT, b), worker, "local", seconds))


def http_writer(base: str, token: str, worker: int, seconds: float, results: Any) -> None:
    from mm_dagster.client import MonitoringClient

    with MonitoringClient(base, token, timeout=60) as client:
        results.put(timed_batches(lambda b: client.record_events(ENDPOINT, b), worker, "http", seconds))


def run_clients(
    target: Any, args: tuple[Any, ...], seconds: float, clients: int = CLIENTS
) -> tuple[float, float]:
    """rows/s over all clients, and the p99 latency (s) of one batch."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=target, args=(*args, w, seconds, results)) for w in range(clients)]
    for w in workers:
        w.start()
    latencies = [lat for _ in workers for lat in results.get(timeout=seconds + 120)]
    for w in workers:
        w.join()
    rows = len(latencies) * BATCH_ROWS
    return rows / seconds, float(np.percentile(latencies, 99))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(home: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MM_HOME": home, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "mm_dagster.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("mm serve did not start within 90 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(seconds: float) -> None:
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.storage.api_tokens import PROJECT_SCOPE, ApiTokenStore

    with tempfile.TemporaryDirectory() as home:
        with Monitoring(home=home) as mm:
            reference = batch(99)
            mm.create_endpoint(
                ENDPOINT, reference=reference.drop(columns="latency_us"), label_names=["prediction"]
            )
            token = ApiTokenStore(mm.engine).create("bench", PROJECT_SCOPE).secret
        base_rate = 0.0
        for clients in (1, CLIENTS):
            rate, p99 = run_clients(in_process_writer, (home,), seconds, clients)
            base_rate = max(base_rate, rate)
            print(
                f"baseline, {clients} process(es) calling record_events in-process ({BATCH_ROWS:,}-row "
                f"batches, {FEATURES} features): {rate:,.0f} rows/s, p99 {p99 * 1000:.1f} ms per batch"
            )
        for workers in (1, 2):
            process, base = serve(home, workers)
            try:
                rate, p99 = run_clients(http_writer, (base, token), seconds)
            finally:
                stop(process)
            print(
                f"HTTP, {CLIENTS} client processes -> mm serve --workers {workers} (Arrow IPC): "
                f"{rate:,.0f} rows/s, p99 {p99 * 1000:.1f} ms per {BATCH_ROWS:,}-row POST; "
                f"{rate / base_rate:.0%} of the better baseline (target >= 50%)"
            )
        with Monitoring(home=home) as mm:
            stored = mm.get_endpoint(ENDPOINT).event_count
        print(f"events stored in all: {stored:,} (on {os.cpu_count()} CPUs)")
    overview(OVERVIEW_ENDPOINTS)


def overview(endpoints: int) -> None:
    from datetime import UTC, datetime

    from common import timed
    from fastapi.testclient import TestClient

    from bench.overview_data import populate_overview
    from mm_dagster.core.clock import fixed_clock
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring, StorageSettings
    from mm_dagster.service import ServiceSettings, create_app
    from mm_dagster.storage.dashboard_queries import endpoint_headlines

    now = Window.containing(datetime.now(UTC), 10).start
    with tempfile.TemporaryDirectory() as home:
        with Monitoring(home=home, clock=fixed_clock(now)) as mm:
            populate_overview(mm, endpoints, now)
            floor, _ = timed(lambda: endpoint_headlines(mm.engine), repeat=3)
        settings = ServiceSettings.resolve(storage=StorageSettings.resolve(home=home))
        with TestClient(create_app(settings, clock=fixed_clock(now))) as client:
            for query in ("/", "/?sort=name&page=100", "/?status=detected&sort=last_request"):
                took, answer = timed(lambda q=query: client.get(q), repeat=3)
                assert answer.status_code == 200, answer.text
                print(
                    f"overview {query} with {endpoints:,} endpoints: {took * 1000:.0f} ms "
                    f"({took / floor:.1f}x reading the endpoints' rows, {floor * 1000:.0f} ms; target < 1 s)"
                )


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 8.0)
