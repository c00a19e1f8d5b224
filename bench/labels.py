"""Ground truth and realized performance: what labels cost, measured against baselines in the
same run.

- the window read with labels joined (`Monitoring.read_window`) vs the plain event read;
- `PerformanceApplication` per endpoint vs `HistogramDataDriftApplication` on the same window;
- `record_labels` per label, and the reference performance (bootstrap) per endpoint creation.

`python bench/labels.py [endpoints] [events]` (default 200 x 1,000, binary classifiers).
"""

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

ENDPOINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
REFERENCE_ROWS = 5000
FEATURES = 20


def model_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] + x[:, 1])))
    frame = pd.DataFrame(x, columns=[f"n{i}" for i in range(FEATURES)])
    frame["prediction"] = (p > 0.5).astype(float)
    frame["score"] = p
    frame["label"] = (rng.random(rows) < p).astype(float)
    return frame


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    from mm_dagster.applications import HistogramDataDriftApplication, PerformanceApplication
    from mm_dagster.core.clock import fixed_clock
    from mm_dagster.core.model_task import ModelTask, TaskKind
    from mm_dagster.core.windows import Window
    from mm_dagster.monitoring import Monitoring

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    window = Window.containing(now - timedelta(hours=2), 10)
    task = ModelTask(TaskKind.binary, "prediction", "label", {"1": "score"})
    with tempfile.TemporaryDirectory() as home, Monitoring(home=home, clock=fixed_clock(now)) as mm:
        reference = model_frame(REFERENCE_ROWS, seed=0)
        started = time.perf_counter()
        for i in range(ENDPOINTS):
            mm.create_endpoint(f"m{i}", reference=reference, label_names=["prediction", "score"], task=task)
        create_s = (time.perf_counter() - started) / ENDPOINTS
        plain = mm.create_endpoint(
            "plain", reference=reference.drop(columns="label"), label_names=["prediction", "score"]
        )
        started = time.perf_counter()
        mm.create_endpoint(
            "plain-again", reference=reference.drop(columns="label"), label_names=["prediction", "score"]
        )
        plain_create_s = time.perf_counter() - started
        del plain

        label_s = 0.0
        for i in range(ENDPOINTS):
            frame = model_frame(EVENTS, seed=i + 1)
            events = frame.drop(columns="label")
            offsets = np.sort(np.random.default_rng(i).integers(0, 600_000_000, EVENTS))
            events.insert(0, "timestamp", pd.Timestamp(window.start) + pd.to_timedelta(offsets, unit="us"))
            events["request_id"] = [f"{i}-{j}" for j in range(EVENTS)]
            mm.record_events(f"m{i}", events)
            labels = pd.DataFrame({"request_id": events["request_id"], "label": frame["label"]}).iloc[
                : EVENTS // 2
            ]
            started = time.perf_counter()
            mm.record_labels(f"m{i}", labels)
            label_s += time.perf_counter() - started
        labels_total = ENDPOINTS * (EVENTS // 2)

        plain_read = best(lambda: mm.events.read_window(window))
        joined_read = best(lambda: mm.read_window(window))
        events = mm.read_window(window)
        drift = HistogramDataDriftApplication()
        performance = PerformanceApplication()
        drift_s = best(lambda: mm.run_window([drift], window, events), repeat=2)
        performance_s = best(lambda: mm.run_window([performance], window, events), repeat=2)

    print(f"{ENDPOINTS} endpoints x {EVENTS} events, half labelled, {FEATURES} features")
    print(
        f"create_endpoint with a labelled {REFERENCE_ROWS}-row reference: {create_s * 1e3:.0f} ms "
        f"(without labels: {plain_create_s * 1e3:.0f} ms, ratio {create_s / plain_create_s:.1f}x)"
    )
    print(f"record_labels: {label_s / labels_total * 1e6:.1f} us per label ({EVENTS // 2} per batch)")
    print(
        f"window read: events only {plain_read:.3f} s, with labels joined {joined_read:.3f} s "
        f"(ratio {joined_read / plain_read:.2f}x)"
    )
    print(
        f"per endpoint: histogram drift {drift_s / ENDPOINTS * 1e3:.2f} ms, model performance "
        f"{performance_s / ENDPOINTS * 1e3:.2f} ms (ratio {performance_s / drift_s:.2f}x)"
    )


if __name__ == "__main__":
    main()
