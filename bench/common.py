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
