"""Each built-in app on one window of 1,000 endpoints x 1,000 events (20 features), timed alone
on the same events in one run; per-endpoint cost beside the histogram drift app's (the limit: 3x).
The endpoints are binary classifiers with a labelled reference and half their events labelled.
Models that fit on the reference (estimation, multivariate) fit once per reference, in the
warm-up call, as in production where the fitted model outlives the window.
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from common import populate_window  # noqa: E402

ENDPOINTS = 1000 if "--quick" not in sys.argv else 100
EVENTS = 1000
FEATURES = 20
LIMIT = 3.0


def built_in_apps() -> list[Any]:
    from mm_dagster import applications

    return [
        applications.HistogramDataDriftApplication(),
        applications.DataQualityApplication(),
        applications.MultivariateDriftApplication(),
        applications.PerformanceApplication(),
        applications.EstimatedPerformanceApplication(),
        applications.OperationalApplication(),
    ]


def main() -> None:
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        window = Window.containing(datetime.now(UTC) - timedelta(hours=1), 10)
        started = time.perf_counter()
        populate_window(mm, window, ENDPOINTS, EVENTS, FEATURES, labelled=True)
        events = mm.read_window(window)
        print(f"setup: {ENDPOINTS} endpoints x {EVENTS} events in {time.perf_counter() - started:.0f} s")

        def timed(app: Any) -> float:
            t0 = time.perf_counter()
            mm.run_window([app], window, events)
            return time.perf_counter() - t0

        apps = built_in_apps()
        costs: dict[str, float] = {}
        for app in apps:
            mm.run_window([app], window, events)  # warm-up (and fits, once per reference)
            costs[app.name] = min(timed(app) for _ in range(2))
        baseline = costs[apps[0].name]
        print(f"\n{'app':<28}{'ms / endpoint':>14}{'x drift app':>13}")
        for name, seconds in costs.items():
            print(f"{name:<28}{seconds / ENDPOINTS * 1000:>14.2f}{seconds / baseline:>13.2f}")
        worst = max(costs.values()) / baseline
        verdict = "ok" if worst <= LIMIT else "OVER"
        print(f"costliest app: {worst:.2f}x the drift app (limit {LIMIT:g}x): {verdict}")


if __name__ == "__main__":
    main()
