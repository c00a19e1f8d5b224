"""Operational-health app cost per endpoint beside the histogram drift app's, in one run.

200 endpoints x 1,000 events (20 features) in one window, with the previous window and the
same window a week earlier analysed (so every comparison is read). Prints seconds per endpoint
for each app and the ratio (issue 11 asks for no built-in app above 3x the drift app), and the
cost of finding silent endpoints (the arrival-log query) per window.
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from common import timed, wide_frame  # noqa: E402

ENDPOINTS = 200
EVENTS = 1000
FEATURES = 20


def main() -> None:
    from mm_dagster.applications import HistogramDataDriftApplication, OperationalApplication
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        window = Window.containing(datetime.now(UTC) - timedelta(hours=1), 10)
        step = window.end - window.start
        earlier = [Window(window.start - ago, window.end - ago) for ago in (timedelta(weeks=1), step)]
        reference = wide_frame(2000, numeric=FEATURES, categorical=0, seed=1)
        reference["prediction"] = (reference["n0"] > 0).astype(float)
        rng = np.random.default_rng(0)
        offsets = pd.to_timedelta(np.sort(rng.integers(0, 600_000_000, EVENTS)), unit="us")
        setup = time.perf_counter()
        for e in range(ENDPOINTS):
            mm.create_endpoint(f"model-{e:04d}", reference=reference, label_names=["prediction"])
            for w in (*earlier, window):
                events = wide_frame(EVENTS, numeric=FEATURES, categorical=0, seed=e)
                events["prediction"] = (events["n0"] > 0).astype(float)
                events["timestamp"] = pd.Timestamp(w.start) + offsets
                events["latency_us"] = rng.gamma(4.0, 2500.0, EVENTS).round().astype(int)
                events["error"] = np.where(rng.random(EVENTS) < 0.01, "boom", None)
                mm.record_events(f"model-{e:04d}", events)
        took = time.perf_counter() - setup
        print(f"setup: {ENDPOINTS} endpoints x {EVENTS} events x 3 windows in {took:.0f} s")
        operational = OperationalApplication()
        for w in earlier:
            mm.run_window([operational], w)
        events = mm.read_window(window)
        drift_s, _ = timed(lambda: mm.run_window([HistogramDataDriftApplication()], window, events), repeat=3)
        ops_s, reports = timed(lambda: mm.run_window([operational], window, events), repeat=3)
        assert not reports[0].failures
        compared = len(
            mm.results.metrics(app=operational.name, name="requests_vs_last_week", start=window.start)
        )
        traffic_s, _ = timed(lambda: mm.recent_traffic(window, 3), repeat=3)
        per = 1e3 / ENDPOINTS
        print(f"histogram-data-drift: {drift_s * per:.2f} ms per endpoint")
        print(
            f"operational-health:   {ops_s * per:.2f} ms per endpoint "
            f"({ops_s / drift_s:.2f}x the drift app; {compared} endpoints compared with last week)"
        )
        print(f"silent-endpoint lookup (arrival log, 3 windows back): {traffic_s * 1e3:.1f} ms per window")
        mm.close()


if __name__ == "__main__":
    main()
