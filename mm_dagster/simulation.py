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
    concept_drift: float = 0.0  # share of rows whose true label turns against the model


def reference_frame(
    rows: int,
    numeric_features: int = 4,
    categorical_features: int = 1,
    seed: int = 0,
    with_label: bool = True,
    with_truth: bool = False,
) -> pd.DataFrame:
    """Numeric features `f<i>` and categorical `c<j>`; `with_label`: the model's output
    `prediction` (1 when the features' sum is above its median); `with_truth`: a fixed model's
    `score` (a calibrated probability) and `prediction`, the true `label` drawn from the score
    and a `request_id`."""
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
        if with_truth:
            _score_with_fixed_model(df, numeric_features, seed)
            df["request_id"] = [f"{seed}-{i}" for i in range(rows)]
    return df


def _score_with_fixed_model(df: pd.DataFrame, numeric_features: int, seed: int) -> None:
    """`score`, `prediction` and the true `label` of a fixed model: a logistic function of the
    features' sum standardised by its reference mean and SD (so shifted features shift the
    scores), with labels drawn from the score (the model is calibrated on the reference)."""
    total = df[[f"f{i}" for i in range(numeric_features)]].sum(axis=1)
    center = sum(range(numeric_features))
    scale = np.sqrt(sum((1 + i % 3) ** 2 for i in range(numeric_features)))
    df["score"] = 1 / (1 + np.exp(-2.5 * (total - center) / scale))
    df["prediction"] = (df["score"] > 0.5).astype(float)
    df["label"] = (np.random.default_rng([seed, 1]).random(len(df)) < df["score"]).astype(float)


def traffic_frame(
    rows: int,
    start: datetime,
    end: datetime,
    shape: TrafficShape = TrafficShape(),
    numeric_features: int = 4,
    categorical_features: int = 1,
    seed: int = 0,
    with_label: bool = True,
    with_truth: bool = False,
) -> pd.DataFrame:
    """`rows` events spread uniformly over [start, end) with the given drift and error rate
    (`with_truth`: the true `label` too, for `record_labels`; see `reference_frame`)."""
    df = reference_frame(rows, numeric_features, categorical_features, seed, with_label, with_truth)
    for i in range(min(shape.drifted_features, numeric_features)):
        df[f"f{i}"] += shape.mean_shift * (1 + i % 3)
    if with_truth and shape.drifted_features:  # the fixed model scores the shifted features
        _score_with_fixed_model(df, numeric_features, seed)
    rng = np.random.default_rng(seed + 7919)
    span_us = int((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() * 1e6)
    offsets = np.sort(rng.integers(0, span_us, size=rows))
    df.insert(0, "timestamp", pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us"))
    df["latency_us"] = rng.gamma(4.0, 2500.0, size=rows).round()
    errors = rng.random(rows) < shape.error_rate
    df["error"] = pd.Series(errors).map({True: "TimeoutError: model backend timed out", False: None})
    if with_label:
        df.loc[errors, "prediction"] = np.nan
    if with_truth:
        df.loc[errors, "score"] = np.nan
        turned = np.random.default_rng([seed, 2]).random(rows) < shape.concept_drift
        df.loc[turned, "label"] = 1.0 - df.loc[turned, "label"]
    return df


FEATURE_SHAPES = (
    "normal",
    "lognormal",
    "uniform",
    "discrete",
    "zero_inflated",
    "categorical",
    "high_cardinality",
)
ZIPF_CATEGORIES = 200
HIGH_CARDINALITY = 3000


def draw_feature(shape: str, rows: int, rng: np.random.Generator) -> np.ndarray:
    """`rows` values of a feature of the given shape (see FEATURE_SHAPES)."""
    if shape == "normal":
        return rng.normal(size=rows)
    if shape == "lognormal":
        return rng.lognormal(0.0, 1.5, size=rows)
    if shape == "uniform":
        return rng.uniform(size=rows)
    if shape == "discrete":
        return rng.poisson(2.0, size=rows).astype(np.float64)
    if shape == "zero_inflated":
        return np.where(rng.random(rows) < 0.7, 0.0, rng.exponential(100.0, size=rows))
    if shape == "categorical":  # Zipf-like shares over 200 values: a long tail of rare ones
        shares = 1.0 / np.arange(1, ZIPF_CATEGORIES + 1)
        return rng.choice(ZIPF_CATEGORIES, size=rows, p=shares / shares.sum()).astype(str).astype(object)
    if shape == "high_cardinality":
        return rng.integers(0, HIGH_CARDINALITY, size=rows).astype(str).astype(object)
    raise ValueError(f"unknown feature shape {shape!r}; known: {FEATURE_SHAPES}")


def move_mass(shape: str, values: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """The same draw with `share` of its probability mass moved elsewhere (true TVD = share):
    the lowest `share` of the values are redrawn from the top quartile's range (numeric, so a
    skewed feature's bottom moves onto its top), or from values the reference never had
    (categorical)."""
    if shape in ("categorical", "high_cardinality"):
        moved = rng.random(values.size) < share
        out = values.copy()
        out[moved] = np.char.add("new-", rng.integers(0, 50, size=int(moved.sum())).astype(str))
        return out
    if shape == "normal":
        # A location shift by 2 * Phi^-1((1 + share) / 2) SDs has TVD exactly `share`.
        from scipy.stats import norm

        shifted: np.ndarray = values + 2 * norm.ppf((1 + share) / 2)
        return shifted
    if shape == "uniform":
        return values + share
    order = np.argsort(values, kind="stable")
    low = order[: round(share * values.size)]
    top = np.sort(values)[int(0.75 * values.size) :]
    out = values.astype(np.float64).copy()
    if shape == "discrete":  # onto counts above the largest seen
        out[low] = values.max() + 1 + rng.poisson(1.0, size=low.size)
    else:
        out[low] = rng.choice(top, size=low.size)
    return out
