"""Ingestion: what `monitored(predict)` adds to a call, batch ingest throughput, window reads.

Every figure is printed next to a baseline measured in the same run:
1. per-call overhead of `monitored(predict)` on a trivial predict (one row, 20 features), as
   p50/p99 of wrapped minus bare call times (targets: p50 < 5 µs, p99 < 20 µs);
2. `record_events` of one 1M-row, 20-feature batch, against writing the same Arrow table to one
   Parquet file (target ≥ 1M rows/s);
3. reading one window freshly written by a recorder (ENDPOINTS x 1,000 events in many small
   files), before and after compaction, against reading the same rows from one Parquet file
   (targets: after compaction ≤ 2x that floor and ≥ 2M rows/s).

`python bench/ingest.py [ENDPOINTS]` (default 200; the issue's figure is 1,000).
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from common import timed, wide_frame  # noqa: E402

FEATURES = 20
EVENTS_PER_ENDPOINT = 1000


def percentile(values: list[int], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def call_overhead(mm: object, calls: int = 200_000) -> None:
    from mm_dagster.monitoring import Monitoring

    assert isinstance(mm, Monitoring)
    recorder = mm.recorder(max_events=50_000, max_seconds=1.0, max_buffered=1_000_000, handle_signals=False)
    row = wide_frame(1, numeric=FEATURES, categorical=0).iloc[0].to_dict()

    def predict(inputs: object) -> list[float]:
        return [0.0]

    serve = mm.monitored(predict, "bench", recorder)
    bare, wrapped = [], []
    for _ in range(calls):  # interleaved, so both see the same machine
        t0 = time.perf_counter_ns()
        predict(row)
        t1 = time.perf_counter_ns()
        serve(row)
        t2 = time.perf_counter_ns()
        bare.append(t1 - t0)
        wrapped.append(t2 - t1)
    recorder.close()
    p50 = (percentile(wrapped, 50) - percentile(bare, 50)) / 1000
    p99 = (percentile(wrapped, 99) - percentile(bare, 99)) / 1000
    print(
        f"monitored(predict) overhead per call: p50 {p50:.2f} µs, p99 {p99:.2f} µs "
        f"(bare predict p50 {percentile(bare, 50) / 1000:.2f} µs, p99 {percentile(bare, 99) / 1000:.2f} µs; "
        f"targets p50 < 5 µs, p99 < 20 µs); {recorder.stats.stored:,} events stored in the background"
    )


def batch_ingest(mm: object, home: str) -> None:
    from mm_dagster.events.validation import validate_events
    from mm_dagster.monitoring import Monitoring

    assert isinstance(mm, Monitoring)
    rows = 1_000_000
    start = datetime(2026, 11, 20, 10, tzinfo=UTC)
    df = wide_frame(rows, numeric=FEATURES, categorical=0, seed=3)
    df["timestamp"] = pd.Timestamp(start) + pd.to_timedelta(np.arange(rows) * (600 / rows), unit="s")
    endpoint = mm.get_endpoint("bench")
    mm.record_events("bench", df.iloc[:1000])  # warm-up: first-call costs of pandas/pyarrow kernels
    seconds, _ = timed(lambda: mm.record_events("bench", df))
    table = validate_events(endpoint, df, mm.clock())
    floor, _ = timed(lambda: pq.write_table(table, f"{home}/floor.parquet"), repeat=2)
    print(
        f"record_events, one {rows:,}-row batch ({FEATURES} features): {seconds:.2f} s = "
        f"{rows / seconds / 1e6:.2f}M rows/s; one pq.write_table of the validated table: {floor:.2f} s "
        f"(ratio {seconds / floor:.1f}x; target ≥ 1M rows/s)"
    )


def window_reads(endpoints: int) -> None:
    from mm_dagster.core.clock import fixed_clock
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    window = Window.containing("2026-11-20T10:00:00Z", 10)
    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home, clock=fixed_clock(window.end + timedelta(hours=2)))
        names = [f"ep{i:04d}" for i in range(endpoints)]
        for name in names:
            mm.create_endpoint(name, feature_names=[f"n{i}" for i in range(FEATURES)])
        recorder = mm.recorder(
            max_events=20_000, max_seconds=60, max_buffered=10_000_000, handle_signals=False
        )
        data = wide_frame(EVENTS_PER_ENDPOINT, numeric=FEATURES, categorical=0, seed=5).to_dict(
            orient="records"
        )
        offsets = np.linspace(0, 599, EVENTS_PER_ENDPOINT)
        started = time.perf_counter()
        for i in range(EVENTS_PER_ENDPOINT):
            ts = window.start + timedelta(seconds=float(offsets[i]))
            for name in names:
                recorder.record(name, data[i], timestamp=ts)
        recorder.close()
        total = endpoints * EVENTS_PER_ENDPOINT
        files = sum(len(f) for f in mm.catalog.live_files(window.start, window.end).values())
        elapsed = time.perf_counter() - started
        print(f"\nrecorder: {total:,} events of {endpoints} endpoints in {elapsed:.1f} s as {files:,} files")
        before, events = timed(lambda: mm.read_window(window), repeat=2)
        assert sum(len(df) for df in events.values()) == total
        report = mm.maintain()
        after, events = timed(lambda: mm.read_window(window), repeat=3)
        assert sum(len(df) for df in events.values()) == total
        files_after = sum(len(f) for f in mm.catalog.live_files(window.start, window.end).values())
        one_file = f"{home}/all.parquet"
        pq.write_table(pq.read_table(mm.settings.events_root, ignore_prefixes=["_", "."]), one_file)
        floor, _ = timed(lambda: pq.read_table(one_file).to_pandas(), repeat=3)
        print(
            f"read the window: {before:.2f} s from {files:,} files ({total / before / 1e6:.2f}M rows/s); "
            f"after compaction ({len(report.compacted)} slots, {files_after} files): {after:.2f} s "
            f"({total / after / 1e6:.2f}M rows/s); the same rows from one Parquet file: {floor:.2f} s"
        )
        print(
            f"ratio to the one-file floor: before {before / floor:.1f}x, after {after / floor:.1f}x "
            f"(target after ≤ 2x and ≥ 2M rows/s)"
        )
        mm.close()


def main() -> None:
    from mm_dagster.monitoring import Monitoring

    endpoints = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        mm.create_endpoint("bench", feature_names=[f"n{i}" for i in range(FEATURES)])
        call_overhead(mm)
        batch_ingest(mm, home)
        mm.close()
    window_reads(endpoints)


if __name__ == "__main__":
    main()
