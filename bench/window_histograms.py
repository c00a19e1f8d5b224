"""What storing every window's histogram counts costs at run time, against the page render it
replaced (pages are now rendered on request by the service).

N endpoints x 1,000 events in one window (half of them drifted), the histogram drift app run on
the window as the runner runs it, with and without storing the counts (`drift_report="never"`),
each timed after a warm-up run (references prepared); then the store's bytes per window and the
window page's render time (what each flagged endpoint used to cost at run time).

    PYTHONPATH=. .venv/bin/python bench/window_histograms.py [--endpoints 200]
"""

import argparse
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent.parent))

from mm_dagster.applications import HistogramDataDriftApplication  # noqa: E402
from mm_dagster.applications.drift_histograms import DriftHistograms  # noqa: E402
from mm_dagster.core.windows import Window  # noqa: E402
from mm_dagster.monitoring import Monitoring  # noqa: E402
from mm_dagster.reports.window_page import WindowLinks, render_window_page  # noqa: E402
from mm_dagster.runner import app_context  # noqa: E402
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame  # noqa: E402
from mm_dagster.stats.drift import feature_drifts  # noqa: E402
from mm_dagster.storage import database as db  # noqa: E402
from mm_dagster.storage.window_histograms import WindowHistogramStore, encode  # noqa: E402


def timed_runs(
    mm: Monitoring, apps: list[HistogramDataDriftApplication], window: Window, repeats: int
) -> list[float]:
    """Best time of each app on the window, runs interleaved (so load from elsewhere hits both)."""
    events = mm.read_window(window)
    for app in apps:
        mm.run_window([app], window, events)  # warm-up: references prepared, labels cached
    best = [float("inf")] * len(apps)
    for _ in range(repeats):
        for i, app in enumerate(apps):
            start = time.perf_counter()
            mm.run_window([app], window, events)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def histogram_cost(mm: Monitoring, endpoint: str, window: Window, repeats: int = 200) -> float:
    """Seconds per endpoint to build, check and encode the histograms (what the run adds besides
    writing the row), the drifts computed beforehand."""
    ep = mm.get_endpoint(endpoint)
    context = app_context(
        HistogramDataDriftApplication(), ep, window, mm.read_window(window)[ep.id], mm.artifacts
    )
    drifts = feature_drifts(context.feature_stats, context.sample_df)
    histograms = DriftHistograms()
    encode([h.checked("bench") for h in histograms.of(context, drifts)])
    start = time.perf_counter()
    for _ in range(repeats):
        encode([h.checked("bench") for h in histograms.of(context, drifts)])
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, Monitoring(home=home) as mm:
        window = Window.containing(datetime(2026, 11, 20, 11, 0, tzinfo=UTC), 10)
        reference = reference_frame(8000, seed=1)
        for i in range(args.endpoints):
            mm.create_endpoint(f"ep-{i}", reference=reference, label_names=["prediction"])
            shape = TrafficShape(mean_shift=1.0, drifted_features=2) if i % 2 else TrafficShape()
            mm.record_events(f"ep-{i}", traffic_frame(args.events, window.start, window.end, shape, seed=i))
        apps = [HistogramDataDriftApplication(drift_report="never"), HistogramDataDriftApplication()]
        never, stored = timed_runs(mm, apps, window, args.repeats)
        n = args.endpoints
        print(f"{n} endpoints x {args.events} events, best of {args.repeats}")
        print(f"  run without counts : {never:.3f} s ({1000 * never / n:.2f} ms/endpoint)")
        print(f"  run storing counts : {stored:.3f} s ({1000 * stored / n:.2f} ms/endpoint)")
        print(f"  storing costs      : {1000 * (stored - never) / n:+.2f} ms/endpoint")
        with mm.engine.connect() as conn:
            sizes = [len(d) for (d,) in conn.execute(sa.select(db.window_histograms.c.data))]
        print(
            f"  stored             : {len(sizes)} rows, {sum(sizes) / len(sizes):.0f} bytes/row (6 features)"
        )
        ep = mm.get_endpoint("ep-1")
        print(f"  of which in-process: {1000 * histogram_cost(mm, ep.name, window):.2f} ms/endpoint")
        app = HistogramDataDriftApplication.NAME
        results = mm.results.results(ep.id, app, start=window.start, end=window.end)
        histograms = WindowHistogramStore(mm.engine).window(ep.id, app, window.start)
        assert histograms is not None
        render_window_page(  # warm-up: plotly imported
            ep.name, window.key, app, "", results, histograms.features, WindowLinks("/"), plotly_src="/p.js"
        )
        start = time.perf_counter()
        for _ in range(5):
            render_window_page(
                ep.name,
                window.key,
                app,
                "",
                results,
                histograms.features,
                WindowLinks("/"),
                plotly_src="/p.js",
            )
        render = (time.perf_counter() - start) / 5
        print(f"  window page render : {1000 * render:.1f} ms (now on request; was per flagged endpoint)")


if __name__ == "__main__":
    main()
