"""What counting latency buckets at ingest costs: `record_events` of many small batches (what a
recorder or an HTTP client sends) with a `latency_us` column, with the buckets counted and
incremented in the acknowledging transaction (as shipped) against the same batches with that
step switched off, interleaved in one run on one database so both see the same machine.

`python bench/latency_ingest.py [BATCHES] [ROWS]` (default 400 batches of 1,000 rows).
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
from common import wide_frame  # noqa: E402

FEATURES = 20


def main() -> None:
    from mm_dagster.core.clock import fixed_clock
    from mm_dagster.events import ingest
    from mm_dagster.monitoring import Monitoring

    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    rng = np.random.default_rng(3)
    frame = wide_frame(rows, numeric=FEATURES, categorical=0, seed=3)
    frame["timestamp"] = [now - timedelta(seconds=i % 600) for i in range(rows)]
    frame["latency_us"] = rng.gamma(2.0, 20_000.0, size=rows).round()
    counting = ingest._latency_counts
    modes = {"off": lambda _table: None, "on": counting}
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home, clock=fixed_clock(now))
        for mode in modes:
            mm.create_endpoint(mode, feature_names=[f"n{i}" for i in range(FEATURES)])
            mm.record_events(mode, frame)  # warm-up
        try:
            for _ in range(batches):
                for mode, count in modes.items():
                    ingest._latency_counts = count  # type: ignore[assignment]
                    started = time.perf_counter()
                    mm.record_events(mode, frame)
                    seconds[mode].append(time.perf_counter() - started)
        finally:
            ingest._latency_counts = counting
            mm.close()
    off, on = (np.asarray(seconds[mode]) for mode in modes)
    print(
        f"record_events of {batches} batches of {rows:,} rows with latencies: buckets off "
        f"{np.median(off) * 1e3:.2f} ms/batch median ({rows * batches / off.sum() / 1e3:.0f}k rows/s), "
        f"buckets on {np.median(on) * 1e3:.2f} ms/batch ({rows * batches / on.sum() / 1e3:.0f}k rows/s); "
        f"ratio on/off {on.sum() / off.sum():.3f} (total time), {np.median(on) / np.median(off):.3f} (median)"
    )


if __name__ == "__main__":
    main()
