"""Realized model performance on labelled rows (scikit-learn's metrics), the reference's
performance with its sampling error, and the rule judging a window's drop against it.

Sampling error: a bootstrap on the labelled reference, done once when the reference is stored.
`resamples` draws of `bootstrap_size` rows (with replacement) give each measure's standard
deviation at that size; it is kept as a per-row spread `unit_sd = sd * sqrt(bootstrap_size)`, so
the standard error at a window's labelled size n is `unit_sd / sqrt(n)` (the usual 1/sqrt(n)
scaling of an average-like statistic; NannyML estimates its sampling error the same way). The
drop of a window against the reference (itself a sample of m rows) has the standard error
`unit_sd * sqrt(1/n + 1/m)`; a window is judged by `z = drop / that`, one-sided, with an
effect-size floor.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.class_keys import class_keys

LOWER_IS_BETTER = ("log_loss", "mae", "rmse", "mape")
# The measures a window is judged on by default (each also needs a reference value).
JUDGED: Mapping[TaskKind, tuple[str, ...]] = MappingProxyType(
    {
        TaskKind.binary: ("accuracy", "f1", "roc_auc"),
        TaskKind.multiclass: ("accuracy", "f1_macro", "roc_auc"),
        TaskKind.regression: ("mae", "rmse"),
    }
)
DEFAULT_RESAMPLES = 50  # the spread's relative precision ~ 1/sqrt(2 (resamples - 1)), ~10%
DEFAULT_BOOTSTRAP_SIZE = 1000


def measure_name(prefix: str, class_name: str) -> str:
    """A metric name for a per-class measure (`precision_fraud`), valid as a result name."""
    return f"{prefix}_{re.sub(r'[^a-zA-Z0-9_]', '_', class_name)}"


@dataclass(frozen=True)
class LabelledRows:
    """The rows a performance is computed on: ground truth and prediction (class keys, or
    floats for regression), and the class scores (binary: the positive class's, shape (n,);
    multiclass: one column per class of the task, shape (n, k); NaN where missing)."""

    truth: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.truth)

    def take(self, index: np.ndarray) -> "LabelledRows":
        return LabelledRows(
            self.truth[index], self.predicted[index], None if self.scores is None else self.scores[index]
        )


@dataclass(frozen=True)
class RowSelection:
    rows: LabelledRows
    labelled: int  # rows with a ground truth
    without_prediction: int  # of those, rows left out: no (finite) prediction


def labelled_rows(task: ModelTask, df: pd.DataFrame) -> RowSelection:
    """The rows of `df` with a ground truth (`task.target`) and a prediction."""
    if task.target not in df.columns:
        return RowSelection(LabelledRows(np.array([]), np.array([])), 0, 0)
    truth, predicted = df[task.target], df[task.prediction]
    has_truth = truth.notna().to_numpy()
    usable = has_truth & predicted.notna().to_numpy()
    if task.kind is TaskKind.regression:
        with np.errstate(invalid="ignore"):
            usable &= np.isfinite(predicted.to_numpy(dtype=np.float64, na_value=np.nan))
            usable &= np.isfinite(truth.to_numpy(dtype=np.float64, na_value=np.nan))
        rows = LabelledRows(
            truth[usable].to_numpy(dtype=np.float64), predicted[usable].to_numpy(dtype=np.float64)
        )
    else:
        scores = None
        present = [c for c in task.scores.values() if c in df.columns]
        if task.scores and len(present) == len(task.scores):
            matrix = df[list(task.scores.values())][usable].to_numpy(dtype=np.float64, na_value=np.nan)
            scores = matrix[:, 0] if task.kind is TaskKind.binary else matrix
        rows = LabelledRows(class_keys(truth[usable]), class_keys(predicted[usable]), scores)
    return RowSelection(rows, int(has_truth.sum()), int(has_truth.sum() - usable.sum()))


def _binary(task: ModelTask, rows: LabelledRows) -> dict[str, float]:
    positive = task.positive_class
    truth, predicted = rows.truth == positive, rows.predicted == positive
    out = {"accuracy": float(accuracy_score(truth, predicted))}
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=[True, False], zero_division=0
    )
    out |= {"precision": float(precision[0]), "recall": float(recall[0]), "f1": float(f1[0])}
    out |= {
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
    }
    if rows.scores is not None:
        finite = np.isfinite(rows.scores)
        scored_truth, scores = truth[finite], np.clip(rows.scores[finite], 0.0, 1.0)
        if len(np.unique(scored_truth)) == 2:
            out["roc_auc"] = float(roc_auc_score(scored_truth, scores))
        if len(scored_truth):
            out["log_loss"] = float(log_loss(scored_truth, scores, labels=[False, True]))
    return out


def _multiclass(task: ModelTask, rows: LabelledRows) -> dict[str, float]:
    classes = task.classes
    # Integer codes for the class keys (the task's classes first, then any other label seen):
    # the same measures as on the strings, without scikit-learn sorting Python objects.
    k, n = len(classes), len(rows)
    codes, _ = pd.factorize(np.concatenate([np.array(classes, dtype=object), rows.truth, rows.predicted]))
    truth, predicted, labels = codes[k : k + n], codes[k + n :], list(range(k))
    out = {"accuracy": float(accuracy_score(truth, predicted))}
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    out |= {
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
    }
    for i, name in enumerate(classes):
        out[measure_name("precision", name)] = float(precision[i])
        out[measure_name("recall", name)] = float(recall[i])
        out[measure_name("f1", name)] = float(f1[i])
    if rows.scores is not None:
        known = (truth < k) & np.isfinite(rows.scores).all(axis=1)
        known[known] &= rows.scores[known].clip(0.0, None).sum(axis=1) > 0
        # Scores as probabilities: rows normalised to sum to 1 (scikit-learn requires it).
        probabilities = rows.scores[known].clip(0.0, None)
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        scored = truth[known]
        if len(np.unique(scored)) == k:
            out["roc_auc"] = float(
                roc_auc_score(scored, probabilities, multi_class="ovr", labels=labels, average="macro")
            )
        if len(scored):
            out["log_loss"] = float(log_loss(scored, probabilities, labels=labels))
    return out


def _regression(rows: LabelledRows) -> dict[str, float]:
    truth, predicted = rows.truth, rows.predicted
    out = {
        "mae": float(mean_absolute_error(truth, predicted)),
        "rmse": float(root_mean_squared_error(truth, predicted)),
        "mape": float(mean_absolute_percentage_error(truth, predicted)),
    }
    if len(truth) >= 2:
        out["r2"] = float(r2_score(truth, predicted))
    return out


def measures(task: ModelTask, rows: LabelledRows) -> dict[str, float]:
    """Every measure defined on `rows` (none on no rows; ROC AUC only when every class occurs)."""
    if not len(rows):
        return {}
    # The rows are validated here: scikit-learn need not check its parameters again.
    with sklearn.config_context(skip_parameter_validation=True):
        if task.kind is TaskKind.binary:
            out = _binary(task, rows)
        elif task.kind is TaskKind.multiclass:
            out = _multiclass(task, rows)
        else:
            out = _regression(rows)
    return {k: v for k, v in out.items() if np.isfinite(v)}


@dataclass(frozen=True)
class ReferencePerformance:
    """The labelled reference's measures and each measure's per-row spread (module docstring)."""

    rows: int
    metrics: Mapping[str, float]
    unit_sd: Mapping[str, float]
    bootstrap_size: int
    resamples: int

    def sampling_error(self, measure: str, rows: int) -> float | None:
        """The standard error of `measure` on `rows` rows like the reference's."""
        sd = self.unit_sd.get(measure)
        return None if sd is None or rows < 1 else float(sd) / float(np.sqrt(rows))

    def drop_error(self, measure: str, rows: int) -> float | None:
        """The standard error of a window's difference from the reference value."""
        sd = self.unit_sd.get(measure)
        return None if sd is None or rows < 1 else float(sd) * float(np.sqrt(1 / rows + 1 / self.rows))

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "unit_sd": dict(self.unit_sd),
            "bootstrap_size": self.bootstrap_size,
            "resamples": self.resamples,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ReferencePerformance":
        return cls(
            int(data["rows"]),
            {k: float(v) for k, v in data["metrics"].items()},
            {k: float(v) for k, v in data["unit_sd"].items()},
            int(data["bootstrap_size"]),
            int(data["resamples"]),
        )


def reference_performance(
    task: ModelTask,
    reference: pd.DataFrame,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    bootstrap_size: int = DEFAULT_BOOTSTRAP_SIZE,
    seed: int = 0,
) -> ReferencePerformance | None:
    """The reference's performance, or None when it has no labelled rows with a prediction."""
    if resamples < 2 or bootstrap_size < 1:
        raise MonitoringError(
            f"need resamples >= 2 and bootstrap_size >= 1, got {resamples}, {bootstrap_size}"
        )
    rows = labelled_rows(task, reference).rows
    if not len(rows):
        return None
    size = min(len(rows), bootstrap_size)
    rng = np.random.default_rng(seed)
    draws = [measures(task, rows.take(rng.integers(0, len(rows), size))) for _ in range(resamples)]
    frame = pd.DataFrame(draws)
    unit_sd = {
        name: float(frame[name].std(ddof=1) * np.sqrt(size))
        for name in frame.columns
        if frame[name].notna().sum() >= max(2, resamples // 2)
    }
    return ReferencePerformance(len(rows), measures(task, rows), unit_sd, size, resamples)


def higher_is_better(measure: str) -> bool:
    return measure not in LOWER_IS_BETTER


@dataclass(frozen=True)
class PerformanceRule:
    """A measure's drop is `potential` at z >= z_potential (one-sided p ~ 0.01), `detected` at
    z >= z_detected (p ~ 0.001), and only if it is at least `min_relative_drop` of the reference
    value (so a negligible but significant drop on a huge window does not alarm)."""

    z_potential: float = 2.33
    z_detected: float = 3.09
    min_relative_drop: float = 0.02
    judged: Mapping[TaskKind, tuple[str, ...]] = field(default_factory=lambda: dict(JUDGED))

    def __post_init__(self) -> None:
        if not 0 < self.z_potential < self.z_detected:
            raise MonitoringError(
                f"need 0 < z_potential < z_detected, got {self.z_potential}, {self.z_detected}"
            )
        if self.min_relative_drop < 0:
            raise MonitoringError(f"min_relative_drop must be >= 0, got {self.min_relative_drop}")


@dataclass(frozen=True)
class MeasureVerdict:
    measure: str
    value: float
    reference: float
    drop: float  # how much worse than the reference (positive = worse)
    sampling_error: float  # of the drop: the window's and the reference's
    z: float
    status: ResultStatusApp

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "reference": self.reference,
            "drop": self.drop,
            "sampling_error": self.sampling_error,
            "z": self.z,
            "status": int(self.status),
        }


def judge(
    measure: str, value: float, reference: ReferencePerformance, rows: int, rule: PerformanceRule
) -> MeasureVerdict | None:
    """The verdict on one measure of a window with `rows` labelled rows (None without a
    reference value or sampling error for it)."""
    expected = reference.metrics.get(measure)
    error = reference.drop_error(measure, rows)
    if expected is None or error is None:
        return None
    drop = expected - value if higher_is_better(measure) else value - expected
    # A measure that never varied on the reference: any drop is far beyond its sampling error.
    z = drop / error if error > 0 else float(np.sign(drop)) * 1e9
    status = ResultStatusApp.no_detection
    if drop >= rule.min_relative_drop * abs(expected):
        if z >= rule.z_detected:
            status = ResultStatusApp.detected
        elif z >= rule.z_potential:
            status = ResultStatusApp.potential_detection
    return MeasureVerdict(measure, value, expected, float(drop), float(error), float(z), status)
