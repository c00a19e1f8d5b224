"""Synthetic labelled model outputs for the performance-estimation tests and bench: the truth is
known, so the realized performance of every window can be checked against the estimate."""

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

CLASSES = ("a", "b", "c")
COLOURS = np.array(["red", "green", "blue"])


def binary_frame(rows: int, seed: int, *, spread: float = 1.0, shift: float = 0.0) -> pd.DataFrame:
    """Features x1, x2; the model's `score` is over-confident (calibration needed); `label` is drawn
    from the true probability. A small `spread` puts rows near the boundary: lower accuracy."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, spread, rows)
    x2 = rng.normal(0.0, spread, rows)
    logit = 2.0 * x1 - x2
    score = expit(1.6 * logit)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "score": score,
            "prediction": (score >= 0.5).astype(int),
            "label": (rng.random(rows) < expit(logit)).astype(int),
        }
    )


def multiclass_frame(rows: int, seed: int, *, spread: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, spread, (rows, 2))
    logits = x @ np.array([[2.0, -1.0, -1.0], [0.0, 1.5, -1.5]])
    truth = softmax(logits, axis=1)
    scores = softmax(1.4 * logits, axis=1)
    drawn = (truth.cumsum(axis=1) > rng.random(rows)[:, None]).argmax(axis=1)
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]})
    for k, c in enumerate(CLASSES):
        frame[f"p_{c}"] = scores[:, k]
    frame["prediction"] = np.array(CLASSES)[scores.argmax(axis=1)]
    frame["label"] = np.array(CLASSES)[drawn]
    return frame


def regression_frame(rows: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """The error grows with |x1| and with the colour: shifting x1 makes the model worse."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, rows)
    colour = COLOURS[rng.integers(0, 3, rows)]
    noise_scale = 0.5 + np.abs(x1) + (colour == "blue") * 1.0
    prediction = 3.0 * x1 + 1.0
    return pd.DataFrame(
        {
            "x1": x1,
            "colour": colour,
            "prediction": prediction,
            "label": prediction + rng.normal(0.0, 1.0, rows) * noise_scale,
        }
    )
