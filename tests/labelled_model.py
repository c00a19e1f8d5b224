"""A small labelled model for the ground-truth tests: features, its outputs and the true label."""

from datetime import datetime

import numpy as np
import pandas as pd

from mm_dagster.core.model_task import ModelTask, TaskKind

BINARY = ModelTask(TaskKind.binary, "prediction", "label", {"1": "score"})
MULTICLASS = ModelTask(
    TaskKind.multiclass, "prediction", "label", {"a": "score_a", "b": "score_b", "c": "score_c"}
)
REGRESSION = ModelTask(TaskKind.regression, "prediction", "label")
OUTPUTS = {
    TaskKind.binary: ["prediction", "score"],
    TaskKind.multiclass: ["prediction", "score_a", "score_b", "score_c"],
    TaskKind.regression: ["prediction"],
}


def binary_frame(rows: int, seed: int, flip: float = 0.0) -> pd.DataFrame:
    """A logistic model's outputs with labels drawn from its own probabilities (so calibrated);
    `flip` of the predictions are turned wrong-way round (a model that got worse)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] + x[:, 1])))
    label = (rng.random(rows) < p).astype(float)
    prediction = (p > 0.5).astype(float)
    score = p.copy()
    flipped = rng.random(rows) < flip
    prediction[flipped] = 1 - prediction[flipped]
    score[flipped] = 1 - score[flipped]
    return pd.DataFrame(
        {
            "f0": x[:, 0],
            "f1": x[:, 1],
            "f2": x[:, 2],
            "prediction": prediction,
            "score": score,
            "label": label,
        }
    )


def multiclass_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    logits = np.column_stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]]) * 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = np.array(["a", "b", "c"])
    label = classes[[rng.choice(3, p=row) for row in p]]
    return pd.DataFrame(
        {
            "f0": x[:, 0],
            "f1": x[:, 1],
            "f2": x[:, 2],
            "prediction": classes[p.argmax(axis=1)],
            "score_a": p[:, 0],
            "score_b": p[:, 1],
            "score_c": p[:, 2],
            "label": label,
        }
    )


def regression_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    truth = 10 + 3 * x[:, 0] - 2 * x[:, 1] + rng.normal(scale=1.0, size=rows)
    prediction = 10 + 3 * x[:, 0] - 2 * x[:, 1]
    return pd.DataFrame(
        {"f0": x[:, 0], "f1": x[:, 1], "f2": x[:, 2], "prediction": prediction, "label": truth}
    )


def as_events(frame: pd.DataFrame, start: datetime, prefix: str = "r") -> pd.DataFrame:
    """The frame as served events (one a second from `start`, request ids `<prefix><i>`), without
    the label."""
    events = frame.drop(columns="label").copy()
    events.insert(0, "timestamp", pd.date_range(start, periods=len(frame), freq="1s"))
    events["request_id"] = [f"{prefix}{i}" for i in range(len(frame))]
    return events


def as_labels(frame: pd.DataFrame, prefix: str = "r") -> pd.DataFrame:
    return pd.DataFrame({"request_id": [f"{prefix}{i}" for i in range(len(frame))], "label": frame["label"]})
