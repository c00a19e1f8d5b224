"""The example Evidently app vs the default drift app on the same 100k-row window, and the
Evidently app's memory over 300 windows (each stores a snapshot).

Prints seconds per window for both (target: Evidently app under 10 s per window on 2 cores) and
RSS after 50, 150 and 300 windows (target: flat, not growing with stored snapshots).
"""

import sys
import tempfile
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent.parent))

WINDOW_ROWS = 100_000
MEMORY_WINDOWS = 300


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def main() -> None:
    from apps.evidently_drift import EvidentlyDataDriftApplication
    from mm_dagster.applications import HistogramDataDriftApplication
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        mm.create_endpoint(
            "big",
            reference=reference_frame(100_000, numeric_features=20, categorical_features=2),
            label_names=["prediction"],
        )
        window = Window.containing("2026-11-20T10:00", 10)
        shape = TrafficShape(mean_shift=0.5, drifted_features=5)
        mm.record_events("big", traffic_frame(WINDOW_ROWS, window.start, window.end, shape, 20, 2, seed=1))
        events = mm.read_window(window)
        evidently_app = EvidentlyDataDriftApplication(f"{home}/evidently", uuid.uuid4())
        default_app = HistogramDataDriftApplication(drift_report="never")
        mm.run_window([evidently_app], Window.containing("2026-11-20T09:00", 10), events={})  # import
        import evidently  # noqa: F401 - imported before timing

        timings = {}
        for name, app in (("default drift app", default_app), ("evidently example app", evidently_app)):
            started = time.perf_counter()
            (report,) = mm.run_window([app], window, events)
            timings[name] = time.perf_counter() - started
            assert not report.failures, report.failures
        print(f"one window of {WINDOW_ROWS:,} events x 22 features (+label), reference 100,000 rows:")
        for name, seconds in timings.items():
            print(f"  {name:<24}{seconds:>8.2f} s")
        print(
            f"  evidently / default: {timings['evidently example app'] / timings['default drift app']:.0f}x; "
            f"evidently under 10 s: {timings['evidently example app'] < 10}"
        )

        small = EvidentlyDataDriftApplication(
            f"{home}/evidently-rss", uuid.uuid4(), sample_rows=500, snapshots="always"
        )
        mm.create_endpoint("small", reference=reference_frame(5000, seed=3), label_names=["prediction"])
        start = Window.containing("2026-11-18T00:00", 10)
        print(f"\nEvidently app over {MEMORY_WINDOWS} windows, a snapshot stored each time:")
        for i in range(MEMORY_WINDOWS):
            w = Window(start.start + timedelta(minutes=10 * i), start.end + timedelta(minutes=10 * i))
            frame = traffic_frame(500, w.start, w.end, seed=i)
            (report,) = mm.run_window([small], w, {mm.get_endpoint("small").id: frame})
            assert not report.failures
            if i + 1 in (50, 150, 300):
                snapshots = len(list(Path(home, "evidently-rss").rglob("snapshots/*.json")))
                print(f"  after {i + 1:>3} windows: RSS {rss_mb():7.1f} MB, {snapshots} snapshots stored")


if __name__ == "__main__":
    main()
