"""The estimated-performance app (CBPE/DLE) beside the histogram drift app, per endpoint.

1,000 endpoints x 1,000 events (a third binary, a third multiclass, a third regression; labelled
reference samples of 2,000 rows), each app called per endpoint as the window runner calls it.
Prints, per task and overall, the drift app's cost per endpoint, the estimation app's cost on a
window once fitted (the steady state: fitting happens once per reference) and on the first window
(fit included), and the ratio against the drift app measured in the same run (target <= 3x).

    PYTHONPATH=. .venv/bin/python bench/estimation.py [--endpoints 1000] [--events 1000]
"""

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pandas as pd

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent.parent))

from mm_dagster.applications import EstimatedPerformanceApplication, HistogramDataDriftApplication  # noqa: E402
from mm_dagster.applications.base import ModelMonitoringApplicationBase  # noqa: E402
from mm_dagster.core.endpoint import ModelEndpoint  # noqa: E402
from mm_dagster.core.model_task import ModelTask, TaskKind  # noqa: E402
from mm_dagster.core.windows import Window  # noqa: E402
from mm_dagster.monitoring import Monitoring  # noqa: E402
from mm_dagster.runner import run_app_on_endpoint  # noqa: E402
from tests.estimation_data import CLASSES, binary_frame, multiclass_frame, regression_frame  # noqa: E402

Generator = Callable[..., pd.DataFrame]
TASKS: dict[str, tuple[Generator, ModelTask, list[str]]] = {
    "binary": (
        binary_frame,
        ModelTask(TaskKind.binary, "prediction", "label", {"1": "score"}),
        ["x1", "x2"],
    ),
    "multiclass": (
        multiclass_frame,
        ModelTask(TaskKind.multiclass, "prediction", "label", {c: f"p_{c}" for c in CLASSES}),
        ["x1", "x2"],
    ),
    "regression": (
        regression_frame,
        ModelTask(TaskKind.regression, "prediction", "label"),
        ["x1", "colour"],
    ),
}


def create_endpoints(mm: Monitoring, count: int, reference_rows: int) -> list[tuple[str, ModelEndpoint]]:
    endpoints = []
    for i in range(count):
        kind = list(TASKS)[i % len(TASKS)]
        generate, task, features = TASKS[kind]
        reference = generate(reference_rows, seed=i)
        outputs = [c for c in reference.columns if c not in [*features, "label"]]
        endpoint = mm.create_endpoint(
            f"{kind}-{i}", reference=reference, feature_names=features, label_names=outputs
        )
        mm.references.save(endpoint.id, reference)  # the labelled sample CBPE/DLE fit on
        endpoints.append((kind, dataclasses.replace(endpoint, task=task)))
    return endpoints


def windows(endpoints: list[tuple[str, ModelEndpoint]], events: int, seed: int) -> list[pd.DataFrame]:
    return [
        TASKS[kind][0](events, seed=seed + i).drop(columns="label") for i, (kind, _) in enumerate(endpoints)
    ]


def time_pass(
    app: ModelMonitoringApplicationBase,
    mm: Monitoring,
    endpoints: list[tuple[str, ModelEndpoint]],
    frames: list[pd.DataFrame],
    window: Window,
) -> dict[str, float]:
    """Seconds per task for one call of `app` on every endpoint."""
    spent: dict[str, float] = defaultdict(float)
    for (kind, endpoint), frame in zip(endpoints, frames, strict=True):
        started = time.perf_counter()
        run_app_on_endpoint(app, endpoint, window, frame, mm.artifacts, mm.references)
        spent[kind] += time.perf_counter() - started
    return dict(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--reference-rows", type=int, default=2000)
    args = parser.parse_args()
    window = Window.containing("2026-11-20T10:00", 10)
    with tempfile.TemporaryDirectory() as home, Monitoring(home=home) as mm:
        started = time.perf_counter()
        endpoints = create_endpoints(mm, args.endpoints, args.reference_rows)
        first, second = windows(endpoints, args.events, 10_000), windows(endpoints, args.events, 20_000)
        print(
            f"{args.endpoints:,} endpoints x {args.events:,} events, references of {args.reference_rows:,} "
            f"labelled rows (set up in {time.perf_counter() - started:.0f} s)"
        )
        drift, estimation = HistogramDataDriftApplication(), EstimatedPerformanceApplication()
        time_pass(drift, mm, endpoints, first, window)  # warm the drift app's null-threshold cache
        drift_s = time_pass(drift, mm, endpoints, second, window)
        cold_s = time_pass(estimation, mm, endpoints, first, window)
        warm_s = time_pass(estimation, mm, endpoints, second, window)
    counts = {kind: sum(1 for k, _ in endpoints if k == kind) for kind in TASKS}
    header = f"{'task':<12}{'drift ms/ep':>13}{'estimated ms/ep':>17}{'ratio':>8}"
    print(f"\n{header}{'first window (fit) ms/ep':>27}")
    for kind in [*TASKS, "all"]:
        n = sum(counts.values()) if kind == "all" else counts[kind]
        if n == 0:
            continue

        def per_endpoint(spent: dict[str, float], kind: str = kind, n: int = n) -> float:
            return 1000 * (sum(spent.values()) if kind == "all" else spent[kind]) / n

        d, w, c = per_endpoint(drift_s), per_endpoint(warm_s), per_endpoint(cold_s)
        print(f"{kind:<12}{d:>13.2f}{w:>17.2f}{w / d:>7.2f}x{c:>27.1f}")
    ratio = sum(warm_s.values()) / sum(drift_s.values())
    print(f"\nestimated performance vs drift app per endpoint, once fitted: {ratio:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
