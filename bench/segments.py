"""Segments: what declaring them costs, and how often a same-distribution window flags a segment.

1. One window of 50 endpoints x 5,000 events (10 numeric features and a `country` with 60
   values of Zipf-like shares), the default drift app: timed without segment columns (the
   baseline), then with `segment_columns=["country"]` at max_segments 10 and 50. Ratios against
   the baseline measured in the same run; splitting the rows alone is timed too.
2. Fifty windows drawn from the reference distribution (one endpoint, 4,000 events, 10
   segments): the share of windows whose endpoint-wide `feature_drift` and whose any segment's
   `feature_drift` is potential or detected (segments multiply the chances of a false alarm).
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
from common import wide_frame  # noqa: E402

ENDPOINTS = 50
EVENTS = 5000
FEATURES = 10
COUNTRIES = np.array([f"C{i:02d}" for i in range(60)])
SHARES = 1 / np.arange(1, 61) ** 1.1
SHARES /= SHARES.sum()


def with_country(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    df["country"] = np.random.default_rng(seed + 99).choice(COUNTRIES, size=len(df), p=SHARES)
    return df


def cost(max_segments: int | None) -> tuple[float, float, int]:
    """Seconds to run the window (best of 2), seconds to split its rows, results stored."""
    from mm_dagster.applications import HistogramDataDriftApplication
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring
    from mm_dagster.runner import segment_runs

    with tempfile.TemporaryDirectory() as home, Monitoring(home=home) as mm:
        window = Window.containing(datetime.now(UTC) - timedelta(hours=1), 10)
        reference = with_country(wide_frame(20_000, numeric=FEATURES, categorical=0, seed=1), 1)
        offsets = np.sort(np.random.default_rng(0).integers(0, 600_000_000, EVENTS))
        columns = [] if max_segments is None else ["country"]
        for e in range(ENDPOINTS):
            mm.create_endpoint(
                f"m{e:03d}", reference=reference, segment_columns=columns, max_segments=max_segments or 50
            )
            events = with_country(wide_frame(EVENTS, numeric=FEATURES, categorical=0, seed=e), e)
            events["timestamp"] = pd.Timestamp(window.start) + pd.to_timedelta(offsets, unit="us")
            mm.record_events(f"m{e:03d}", events)
        apps = [HistogramDataDriftApplication(drift_report="never")]
        events_by_endpoint = mm.read_window(window)
        mm.run_window(apps, window, events_by_endpoint)  # warm-up: null thresholds, caches
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            mm.run_window(apps, window, events_by_endpoint)
            best = min(best, time.perf_counter() - started)
        endpoints = {e.id: e for e in mm.list_endpoints()}
        started = time.perf_counter()
        for endpoint_id, frame in events_by_endpoint.items():
            segment_runs(endpoints[endpoint_id], frame, mm.endpoints, window)
        split = time.perf_counter() - started
        stored = len(mm.results.results(start=window.start, end=window.end, segment=None))
        return best, split, stored


def false_alarms(windows: int = 50) -> tuple[float, float]:
    from mm_dagster.applications import HistogramDataDriftApplication
    from mm_dagster.core.schemas import ResultStatusApp
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as home, Monitoring(home=home) as mm:
        reference = with_country(wide_frame(40_000, numeric=4, categorical=0, seed=1), 1)
        ep = mm.create_endpoint("shop", reference=reference, segment_columns=["country"], max_segments=10)
        app = HistogramDataDriftApplication(drift_report="never")
        first = Window.containing(datetime.now(UTC) - timedelta(days=1), 10)
        whole = anywhere = 0
        for i in range(windows):
            window = Window(first.start + timedelta(minutes=10 * i), first.end + timedelta(minutes=10 * i))
            events = with_country(wide_frame(4000, numeric=4, categorical=0, seed=1000 + i), 1000 + i)
            events["timestamp"] = pd.Timestamp(window.start) + pd.Timedelta(seconds=1)
            (report,) = mm.run_window([app], window, {ep.id: events})
            flagged = ResultStatusApp.potential_detection
            whole += max(r.status for r in report.outputs[ep.id][0]) >= flagged
            anywhere += any(s >= flagged for s in report.segment_statuses().values())
        return whole / windows, anywhere / windows


def main() -> None:
    print(f"{ENDPOINTS} endpoints x {EVENTS} events x {FEATURES} features + country (60 values)")
    print(f"{'segments':<28}{'seconds':>10}{'ratio':>8}{'split s':>10}{'results':>10}")
    baseline, _, stored = cost(None)
    print(f"{'none (baseline)':<28}{baseline:>10.2f}{1.0:>8.2f}{'-':>10}{stored:>10}")
    for cap in (10, 50):
        seconds, split, stored = cost(cap)
        label = f"country, max_segments={cap}"
        print(f"{label:<28}{seconds:>10.2f}{seconds / baseline:>8.2f}{split:>10.2f}{stored:>10}")
    whole, anywhere = false_alarms()
    print("\nwindows from the reference distribution (10 segments + __other__, 4 features):")
    print(f"  endpoint-wide feature_drift flagged: {whole:.0%}")
    print(f"  any segment's feature_drift flagged: {anywhere:.0%}")


if __name__ == "__main__":
    main()
