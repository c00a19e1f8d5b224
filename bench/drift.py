"""Default drift app vs Evidently 0.7 DataDriftPreset vs a bare numpy floor, same data, same run.

Reference 100k rows, window 1M rows x (20 numeric + 2 categorical). Prints rows/s and ratios, the
extra peak memory of our computation against the window's in-memory size, and the read speed of
one 1M-event window from the Parquet event store.
"""

import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import peak_extra_bytes, timed, wide_frame

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.drift import feature_drifts, feature_verdict
from mm_dagster.stats.feature_stats import compute_feature_stats
from mm_dagster.stats.null_thresholds import NullThresholdCache

REFERENCE_ROWS = 100_000
WINDOW_ROWS = 1_000_000
EVIDENTLY_LIMIT_S = 120
SKIP_EVIDENTLY = "--skip-evidently" in sys.argv


def ours(reference_stats: dict, window: pd.DataFrame) -> int:
    cache = NullThresholdCache()
    drifts = feature_drifts(reference_stats, window)
    verdicts = [feature_verdict(d, cache, 0.1) for d in drifts]
    return sum(v.status >= ResultStatusApp.potential_detection for v in verdicts)


def numpy_floor(reference_stats: dict, window: pd.DataFrame) -> int:
    total = 0
    for col, ref in reference_stats.items():
        if ref["type"] == "numeric":
            edges = np.asarray(ref["hist"][1][1:-1])
            idx = np.searchsorted(edges, window[col].to_numpy(), side="right")
            total += int(np.bincount(idx, minlength=22).sum())
        else:
            total += int(window[col].value_counts().sum())
    return total


def run_evidently(reference: pd.DataFrame, window: pd.DataFrame, queue: "mp.Queue[float]") -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c.startswith("n")],
        categorical_columns=[c for c in reference.columns if c.startswith("c")],
    )
    started = time.perf_counter()
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(window, data_definition=definition)
    Report([DataDriftPreset()]).run(cur, ref)
    queue.put(time.perf_counter() - started)


def evidently_seconds(reference: pd.DataFrame, window: pd.DataFrame) -> float | None:
    ctx = mp.get_context("fork")
    queue: mp.Queue[float] = ctx.Queue()
    proc = ctx.Process(target=run_evidently, args=(reference, window, queue))
    proc.start()
    proc.join(EVIDENTLY_LIMIT_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return queue.get() if not queue.empty() else None


def event_store_read() -> tuple[float, int]:
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    with tempfile.TemporaryDirectory() as home:
        mm = Monitoring(home=home)
        frame = wide_frame(WINDOW_ROWS, seed=3)
        mm.create_endpoint("bench", reference=frame.head(10_000))
        window = Window.containing("2026-11-20T10:00", 10)
        frame["timestamp"] = pd.Timestamp(window.start) + pd.to_timedelta(
            np.sort(np.random.default_rng(0).integers(0, 600_000_000, WINDOW_ROWS)), unit="us"
        )
        mm.record_events("bench", frame)
        seconds, events = timed(lambda: mm.read_window(window), repeat=3)
        return seconds, sum(len(df) for df in events.values())


def main() -> None:
    print(f"reference {REFERENCE_ROWS:,} rows, window {WINDOW_ROWS:,} rows x 20 numeric + 2 categorical")
    reference = wide_frame(REFERENCE_ROWS, seed=1)
    window = wide_frame(WINDOW_ROWS, seed=2, shift=0.3)
    # As apps receive it from the event store: strings stay in Arrow memory.
    app_window = window.astype({c: "string[pyarrow]" for c in window.columns if c.startswith("c")})
    reference_stats = compute_feature_stats(reference)
    window_bytes = int(window.memory_usage(deep=True).sum())

    ours_s, flagged = timed(lambda: ours(reference_stats, app_window), repeat=3)
    floor_s, _ = timed(lambda: numpy_floor(reference_stats, app_window), repeat=3)
    extra = peak_extra_bytes(lambda: ours(reference_stats, app_window))

    ev_rows = WINDOW_ROWS
    ev_s = None if SKIP_EVIDENTLY else evidently_seconds(reference, window)
    note = ""
    if ev_s is None and not SKIP_EVIDENTLY:
        ev_rows = 100_000
        note = f" (full size took over {EVIDENTLY_LIMIT_S} s: measured on a {ev_rows:,}-row window sample)"
        ev_s = evidently_seconds(reference, window.sample(ev_rows, random_state=0))
    read_s, read_rows = event_store_read()

    def row(label: str, seconds: float, rows: int, extra: str = "") -> None:
        print(f"{label:<38}{seconds:>10.3f}{rows / seconds:>16,.0f}{extra}")

    print(f"\n{'computation':<38}{'seconds':>10}{'rows/s':>16}")
    row("mm_dagster default app", ours_s, WINDOW_ROWS, f"   ({flagged} features flagged)")
    row("numpy floor (searchsorted+bincount)", floor_s, WINDOW_ROWS)
    if ev_s is not None:
        row("evidently 0.7 DataDriftPreset", ev_s, ev_rows, note)
        ratio = (WINDOW_ROWS / ours_s) / (ev_rows / ev_s)
        print(f"\nthroughput vs Evidently: {ratio:,.0f}x  (target >= 100x)")
    else:
        print("evidently did not finish within the limit even on the sample")
    print(f"time vs numpy floor:     {ours_s / floor_s:.2f}x  (target <= 3x)")
    print(
        f"extra peak memory:       {extra / 1e6:,.0f} MB = {extra / window_bytes:.2f}x the window's "
        f"{window_bytes / 1e6:,.0f} MB  (target <= 1x)"
    )
    print(
        f"event store read:        {read_rows:,} events in {read_s:.3f} s = "
        f"{read_rows / read_s:,.0f} rows/s (target >= 2M rows/s)"
    )


if __name__ == "__main__":
    main()
