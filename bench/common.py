"""Helpers shared by the benchmarks: data shaped like the issues ask, timing, memory."""

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def wide_frame(
    rows: int, numeric: int = 20, categorical: int = 2, seed: int = 0, shift: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"n{i}": rng.normal(shift * (i % 2), 1 + i % 3, rows) for i in range(numeric)}
    cats = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    for j in range(categorical):
        data[f"c{j}"] = cats[rng.integers(0, len(cats), rows)]
    return pd.DataFrame(data)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of `repeat` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def peak_extra_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated while `fn` runs (numpy and pandas buffers are traced)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def scored(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The frame with a fixed model's `score` and `prediction` and a true `label` drawn from it."""
    frame["score"] = 1 / (1 + np.exp(-(frame["n0"] + 0.5 * frame["n1"])))
    frame["prediction"] = (frame["score"] > 0.5).astype(float)
    frame["label"] = (np.random.default_rng(seed).random(len(frame)) < frame["score"]).astype(float)
    return frame


def populate_window(
    mm: Any, window: Any, endpoints: int, events: int, features: int, *, labelled: bool = False
) -> None:
    """`endpoints` endpoints with a 2,000-row reference and `events` events each in `window`
    (every tenth endpoint drifted), as the window benchmarks use them. `labelled`: the model is
    a binary classifier (`ModelTask`) with a labelled reference, and half the events get labels."""
    from mm_dagster.core.model_task import ModelTask, TaskKind

    task = ModelTask(TaskKind.binary, "prediction", "label", {"1": "score"}) if labelled else None
    outputs = ["prediction", "score"] if labelled else ["prediction"]
    reference = wide_frame(2000, numeric=features, categorical=0, seed=1)
    reference = scored(reference, seed=1) if labelled else reference.assign(prediction=reference["n0"] > 0)
    rng = np.random.default_rng(0)
    offsets = pd.to_timedelta(np.sort(rng.integers(0, 600_000_000, events)), unit="us")
    for e in range(endpoints):
        name = f"model-{e:04d}"
        mm.create_endpoint(
            name, reference=reference.astype({"prediction": float}), label_names=outputs, task=task
        )
        frame = wide_frame(events, numeric=features, categorical=0, seed=e, shift=0.2 * (e % 10 == 0))
        frame = (
            scored(frame, seed=e) if labelled else frame.assign(prediction=(frame["n0"] > 0).astype(float))
        )
        frame["timestamp"] = pd.Timestamp(window.start) + offsets
        frame["latency_us"] = 1000
        frame["request_id"] = [f"{e}-{i}" for i in range(events)]
        mm.record_events(name, frame.drop(columns=["label"], errors="ignore"))
        if labelled:
            mm.record_labels(name, frame[["request_id", "label"]].iloc[: events // 2])
