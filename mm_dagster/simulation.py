"""Synthetic reference data and served traffic, for the demo, tests and benchmarks."""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

CATEGORIES = ("web", "mobile", "partner", "batch")
CATEGORY_P = (0.5, 0.3, 0.15, 0.05)


@dataclass(frozen=True)
class TrafficShape:
    """How a window's traffic differs from the reference."""

    mean_shift: float = 0.0  # added to the first `drifted_features` numeric features, in SDs
    drifted_features: int = 0
    error_rate: float = 0.0


def reference_frame(
    rows: int,
    numeric_features: int = 4,
    categorical_features: int = 1,
    seed: int = 0,
    with_label: bool = True,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(numeric_features):
        data[f"f{i}"] = rng.normal(loc=i, scale=1 + i % 3, size=rows)
    for j in range(categorical_features):
        data[f"c{j}"] = rng.choice(CATEGORIES, size=rows, p=CATEGORY_P)
    df = pd.DataFrame(data)
    if with_label:
        score = df[[c for c in df.columns if c.startswith("f")]].sum(axis=1)
        df["prediction"] = (score > score.median()).astype(float)
    return df


def traffic_frame(
    rows: int,
    start: datetime,
    end: datetime,
    shape: TrafficShape = TrafficShape(),
    numeric_features: int = 4,
    categorical_features: int = 1,
    seed: int = 0,
    with_label: bool = True,
) -> pd.DataFrame:
    """`rows` events spread uniformly over [start, end) with the given drift and error rate."""
    df = reference_frame(rows, numeric_features, categorical_features, seed, with_label)
    for i in range(min(shape.drifted_features, numeric_features)):
        df[f"f{i}"] += shape.mean_shift * (1 + i % 3)
    rng = np.random.default_rng(seed + 7919)
    span_us = int((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() * 1e6)
    offsets = np.sort(rng.integers(0, span_us, size=rows))
    df.insert(0, "timestamp", pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us"))
    df["latency_us"] = rng.gamma(4.0, 2500.0, size=rows).round()
    errors = rng.random(rows) < shape.error_rate
    df["error"] = pd.Series(errors).map({True: "TimeoutError: model backend timed out", False: None})
    if with_label:
        df.loc[errors, "prediction"] = np.nan
    return df
