"""The framework's cost per (app, endpoint) for a user app without the batch hook.

A trivial app (one metric: the window's row count) on every endpoint of a window, through
`run_apps_on_window` with the window's events already read: what is left is the runner's own
work per endpoint (endpoint views, contexts, the deadline thread, validation, storing). Prints
the time per endpoint of the run, of its parts, and of the trivial app's own calls as baseline.

    python bench/app_overhead.py [endpoints]   # default 5,000 endpoints x 100 events
"""

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from scale_data import create_fleet, write_window

from mm_dagster.applications import ModelMonitoringApplicationBase, MonitoringApplicationContext
from mm_dagster.applications.endpoint_view import monitored_endpoint
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.runner import run_apps_on_window

ENDPOINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
EVENTS = 100


class RowCount(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        return {"rows": float(len(monitoring_context.sample_df))}


def best(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        window = Window.containing(datetime.now(UTC) - timedelta(hours=1), 10)
        write_window(mm, create_fleet(mm, ENDPOINTS, 4), window, EVENTS, shift=0.0)
        events = mm.read_window(window)
        app = RowCount()

        def run() -> None:
            run_apps_on_window([app], window, events, mm.endpoints, mm.results, mm.artifacts)

        run_s = best(run)
        endpoints = mm.endpoints.list(ids=sorted(events))
        list_s = best(lambda: mm.endpoints.list(ids=sorted(events)))
        views_s = best(lambda: [monitored_endpoint(e) for e in endpoints])
        views = [monitored_endpoint(e) for e in endpoints]
        contexts = [
            MonitoringApplicationContext(
                application_name=app.name,
                endpoint=v,
                window=window,
                sample_df=events[v.id],
                artifacts=mm.artifacts,
            )
            for v in views
        ]
        calls_s = best(lambda: [app.do_tracking(c) for c in contexts])
        mm.close()
    n = len(events)
    print(f"trivial app on {n:,} endpoints x {EVENTS} events (events read beforehand)")
    print(f"{'':<44}{'seconds':>9}{'us/endpoint':>13}")
    for label, seconds in (
        ("run_apps_on_window", run_s),
        ("  of which: load the endpoints", list_s),
        ("  of which: read-only endpoint views", views_s),
        ("the app's own do_tracking calls (baseline)", calls_s),
    ):
        print(f"{label:<44}{seconds:>9.2f}{seconds / n * 1e6:>13.0f}")
    print(f"framework cost per endpoint: {(run_s - calls_s) / n * 1e6:,.0f} us")


if __name__ == "__main__":
    main()
