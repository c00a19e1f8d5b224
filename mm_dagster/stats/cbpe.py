"""CBPE (confidence-based performance estimation, as in NannyML 0.13): classification performance
of a window estimated from the model's scores, without labels.

Fit, on a labelled reference (once per reference):
  1. per class k (binary: the positive class only), an isotonic regression of the one-vs-rest
     target 1[y=k] on the score s_k, kept only when it lowers the expected calibration error (ECE,
     10 equal-count bins; tied scores count with their mean truth) on 10 stratified 90/10 splits
     and the scores do not already separate the classes (ROC AUC ≤ 0.999) — NannyML's
     `needs_calibration`, without its dependence on how the CPU's sort orders ties;
  2. the unit sampling errors SE1 (below) and the realized reference performance (scikit-learn).

Estimate, per window: p_ik = calibrated score of row i for class k (multiclass: renormalised so
each row sums to 1), ŷ_ik = 1 when row i is predicted k. Each row adds its expected share to the
one-vs-rest confusion matrix of class k:
  TP_k = Σ_i p_ik ŷ_ik,  FP_k = Σ_i (1-p_ik) ŷ_ik,  FN_k = Σ_i p_ik (1-ŷ_ik),  TN_k = Σ_i (1-p_ik)(1-ŷ_ik)
  precision_k = TP_k/(TP_k+FP_k),  recall_k = TP_k/(TP_k+FN_k),  F1_k = TP_k/(TP_k + (FP_k+FN_k)/2)
  accuracy = (TP+TN)/n (binary), Σ_k TP_k / n (multiclass: the mean probability of the predicted class)
  ROC AUC_k = the area under the ROC curve of the raw scores s_k where row i counts as a positive
              with weight p_ik and as a negative with weight 1-p_ik (scikit-learn's weighted curve)
Multiclass measures are macro averages over classes.

Unit sampling errors SE1 (a window of n rows has standard error SE1/√n), from the reference's
one-vs-rest indicators per class k: var_k is the variance of a 0/1 observation over the rows that
decide the measure and frac_k the share of those rows; SE1 = √(Σ_k var_k / frac_k) / K:
  precision: over rows predicted k, 1[y=k];     frac_k = share predicted k
  recall:    over rows of class k, 1[ŷ=k];      frac_k = share of class k
  F1:        over TP, FP and FN rows, 1[TP];    frac_k = their share; binary: times the factor
             m/(TP + (FP+FN)/2), m = TP+FP+FN (NannyML's correction)
  ROC AUC:   over the minority side's rows, sorted by score, the share of the other side scored
             below each (the Mann-Whitney view of AUC); frac_k = its share; multiclass * 1.2
  accuracy:  SE1 = std(1[ŷ=y]) over all rows.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    auc,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedShuffleSplit

from mm_dagster.core.errors import MonitoringError
from mm_dagster.stats.performance_estimation import (
    CLASSIFICATION_MEASURES,
    Estimate,
    class_labels,
    class_name,
    estimate_with_band,
)

MIN_REFERENCE_ROWS = 100
CALIBRATION_SPLITS = 10
CALIBRATION_BINS = 10
SEPARATED_AUC = 0.999
MULTICLASS_AUC_ERROR_FACTOR = 1.2


def _score_matrix(scores: object, classes: int) -> np.ndarray:
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[1] != classes:
        raise MonitoringError(f"expected a score column per class ({classes}), got shape {matrix.shape}")
    return matrix


def invalid_score_rows(scores: np.ndarray) -> np.ndarray:
    """Per column, which rows are not a probability (NaN, ±inf or outside [0, 1])."""
    with np.errstate(invalid="ignore"):
        return ~((scores >= 0.0) & (scores <= 1.0))


def _expected_calibration_error(truth: np.ndarray, scores: np.ndarray) -> float:
    """ECE over equal-count bins of the rows sorted by score (NannyML's bin edges).

    Rows with equal scores count with their group's mean truth, so a group that straddles a bin
    edge adds the same share of positives to both bins whatever order the sort left it in.
    NannyML keeps the order of numpy's default (unstable) argsort, whose order of ties depends on
    the SIMD code numpy picks for the CPU, so with many ties (scores of two decimals) its decision
    can differ between machines. Without ties across an edge the two ECEs are equal."""
    n = len(scores)
    bins = CALIBRATION_BINS if n > 2 * CALIBRATION_BINS else n // 2
    edges = np.arange(0, n + 1, n // bins)
    edges[-1] = n
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
    sizes = np.diff(np.r_[starts, n])
    tie_truth = np.repeat(np.add.reduceat(truth[order].astype(float), starts) / sizes, sizes)
    counts = np.diff(edges)
    mean_score = np.add.reduceat(ranked, edges[:-1]) / counts
    mean_truth = np.add.reduceat(tie_truth, edges[:-1]) / counts
    return float(np.sum(counts / n * np.abs(mean_score - mean_truth)))


def _calibration_helps(truth: np.ndarray, scores: np.ndarray) -> bool:
    if truth.min() == truth.max() or roc_auc_score(truth, scores) > SEPARATED_AUC:
        return False
    splitter = StratifiedShuffleSplit(n_splits=CALIBRATION_SPLITS, test_size=0.1, random_state=42)
    try:
        splits = list(splitter.split(scores, truth))
    except ValueError:  # a class with a single row: too little data to tell
        return False
    held_truth, raw, calibrated = [], [], []
    for train, test in splits:
        fold = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores[train], truth[train])
        held_truth.append(truth[test])
        raw.append(scores[test])
        calibrated.append(fold.predict(scores[test]))
    truth_all = np.concatenate(held_truth)
    before = _expected_calibration_error(truth_all, np.concatenate(raw))
    after = _expected_calibration_error(truth_all, np.concatenate(calibrated))
    return before > after


def fit_calibrator(truth: np.ndarray, scores: np.ndarray) -> IsotonicRegression | None:
    """An isotonic calibration of `scores` against 0/1 `truth`, or None when it would not help."""
    if not _calibration_helps(truth, scores):
        return None
    return IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores, truth.astype(float))


def expected_roc_auc(probabilities: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of `scores` when each row is a positive with weight p and a negative with 1 - p:
    scikit-learn's weighted ROC curve (one point per distinct score, ties on one segment) and the
    trapezoid rule, without its input checks (this runs per class and window; the tests compare it
    with `roc_auc_score(..., sample_weight=...)`)."""
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked_p = scores[order], probabilities[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked_scores)), len(ranked_scores) - 1]
    true_positives = np.cumsum(ranked_p)[last_of_tie]
    false_positives = np.cumsum(1.0 - ranked_p)[last_of_tie]
    if true_positives[-1] <= 0 or false_positives[-1] <= 0:
        return float("nan")
    tpr = np.r_[0.0, true_positives / true_positives[-1]]
    fpr = np.r_[0.0, false_positives / false_positives[-1]]
    return float(auc(fpr, tpr))


def _auroc_component(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    if truth.mean() > 0.5:
        truth, scores = ~truth, -scores
    ranked = truth[np.argsort(scores, kind="stable")]
    positions = np.flatnonzero(ranked)
    negatives = len(truth) - len(positions)
    below = (positions - np.arange(len(positions))) / negatives
    return float(np.var(below)), len(positions) / len(truth)


def _component(observations: np.ndarray, share: float, factor: float = 1.0) -> tuple[float, float]:
    if observations.size == 0:
        return float("nan"), 0.0
    return float(np.var(observations)) * factor**2, share


def _combined(components: Sequence[tuple[float, float]]) -> float:
    usable = [(var, frac) for var, frac in components if frac > 0 and np.isfinite(var)]
    if not usable:
        return float("nan")
    return float(np.sqrt(sum(var / frac for var, frac in usable)) / len(usable))


def unit_sampling_errors(
    truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray, *, multiclass: bool
) -> dict[str, float]:
    """SE1 per measure from reference one-vs-rest indicators `truth`/`predicted` (n * K booleans)."""
    n = len(truth)
    correct = (truth == predicted).all(axis=1)
    components: dict[str, list[tuple[float, float]]] = {m: [] for m in CLASSIFICATION_MEASURES}
    for k in range(truth.shape[1]):
        t, p = truth[:, k], predicted[:, k]
        components["precision"].append(_component(t[p].astype(float), p.mean()))
        components["recall"].append(_component(p[t].astype(float), t.mean()))
        relevant = t | p
        tp, fp_fn = int((t & p).sum()), int((t ^ p).sum())
        factor = 1.0
        if not multiclass and relevant.any():
            factor = int(relevant.sum()) / (tp + 0.5 * fp_fn)
        components["f1"].append(_component((t & p)[relevant].astype(float), relevant.sum() / n, factor))
        if 0 < t.sum() < n:
            components["roc_auc"].append(_auroc_component(t, scores[:, k]))
    errors = {m: _combined(c) for m, c in components.items() if m != "accuracy"}
    if multiclass:
        errors["roc_auc"] *= MULTICLASS_AUC_ERROR_FACTOR
    errors["accuracy"] = float(np.std(correct))
    return errors


def realized_classification(
    truth_labels: np.ndarray,
    predicted_labels: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    *,
    multiclass: bool,
) -> dict[str, float]:
    """Realized accuracy, precision, recall, F1 and ROC AUC (multiclass: macro, one-vs-rest)."""
    scores = _score_matrix(scores, len(classes))
    if multiclass:
        labels = list(classes)
        truth, predicted = truth_labels.astype(str), predicted_labels.astype(str)
        aucs = [
            roc_auc_score(truth == c, scores[:, k])
            for k, c in enumerate(labels)
            if 0 < (truth == c).sum() < len(truth)
        ]
        macro = {"labels": labels, "average": "macro", "zero_division": 0}
        return {
            "roc_auc": float(np.mean(aucs)) if len(aucs) == len(labels) else float("nan"),
            "accuracy": float(accuracy_score(truth, predicted)),
            "precision": float(precision_score(truth, predicted, **macro)),
            "recall": float(recall_score(truth, predicted, **macro)),
            "f1": float(f1_score(truth, predicted, **macro)),
        }
    positive = classes[0]
    y, y_hat = truth_labels == positive, predicted_labels == positive
    both = 0 < y.sum() < len(y)
    return {
        "roc_auc": float(roc_auc_score(y, scores[:, 0])) if both else float("nan"),
        "accuracy": float(accuracy_score(y, y_hat)),
        "precision": float(precision_score(y, y_hat, zero_division=0)),
        "recall": float(recall_score(y, y_hat, zero_division=0)),
        "f1": float(f1_score(y, y_hat, zero_division=0)),
    }


def _mean_defined(values: np.ndarray) -> float:
    defined = values[np.isfinite(values)]
    return float(defined.mean()) if defined.size else float("nan")


@dataclass(frozen=True)
class CBPEEstimator:
    """A fitted CBPE: `classes` are the score columns' classes (binary: the positive class)."""

    classes: tuple[str, ...]
    multiclass: bool
    calibrators: tuple[IsotonicRegression | None, ...]
    unit_errors: Mapping[str, float]
    reference: Mapping[str, float]
    reference_rows: int
    known_labels: frozenset[str] = frozenset()

    def one_hot(self, predicted_labels: np.ndarray) -> np.ndarray:
        """n * K: whether row i is predicted class k (labels as `class_labels` gives them)."""
        hot: np.ndarray = np.asarray(predicted_labels, dtype=object)[:, None] == np.array(
            self.classes, dtype=object
        )
        return hot

    def unknown_predictions(self, predicted_labels: np.ndarray) -> np.ndarray:
        """Rows whose prediction is missing or a class the reference never had (multiclass: not one
        of the classes; binary: neither a reference target nor a reference prediction)."""
        labels = np.asarray(predicted_labels, dtype=object)
        if self.multiclass:
            known: np.ndarray = np.any(self.one_hot(labels), axis=1)
        else:
            known = pd.Series(labels, dtype=object).isin(self.known_labels).to_numpy(dtype=bool)
        return ~known

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        scores = _score_matrix(scores, len(self.classes))
        columns = [
            scores[:, k] if calibrator is None else calibrator.predict(scores[:, k])
            for k, calibrator in enumerate(self.calibrators)
        ]
        probabilities = np.column_stack(columns) if columns else scores
        if self.multiclass:
            totals = probabilities.sum(axis=1, keepdims=True)
            uniform = np.full_like(probabilities, 1.0 / len(self.classes))
            probabilities = np.divide(probabilities, totals, out=uniform, where=totals != 0)
        return probabilities

    def point_estimates(self, scores: np.ndarray, predicted_labels: np.ndarray) -> dict[str, float]:
        """The estimated measures (no band) for rows with valid scores and known predictions."""
        raw = _score_matrix(scores, len(self.classes))
        p = self.calibrated(raw)
        y_hat = self.one_hot(predicted_labels)
        tp = (p * y_hat).sum(axis=0)
        fp = ((1.0 - p) * y_hat).sum(axis=0)
        fn = (p * ~y_hat).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = tp / (tp + fp)
            recall = tp / (tp + fn)
            f1 = tp / (tp + 0.5 * (fp + fn))
        if self.multiclass:
            accuracy = float(tp.sum() / len(p))
        else:
            accuracy = float((tp[0] + ((1.0 - p) * ~y_hat).sum()) / len(p))
        aucs = np.array([expected_roc_auc(p[:, k], raw[:, k]) for k in range(len(self.classes))])
        return {
            "roc_auc": _mean_defined(aucs),
            "accuracy": accuracy,
            "precision": _mean_defined(precision),
            "recall": _mean_defined(recall),
            "f1": _mean_defined(f1),
        }

    def estimate(self, scores: np.ndarray, predicted_labels: np.ndarray) -> dict[str, Estimate]:
        """Each defined measure with its sampling-error band (rows must be valid, see the app)."""
        if len(predicted_labels) == 0:
            return {}
        values = self.point_estimates(scores, predicted_labels)
        return {
            measure: estimate_with_band(measure, value, self.unit_errors[measure], len(predicted_labels))
            for measure, value in values.items()
            if np.isfinite(value) and np.isfinite(self.unit_errors.get(measure, np.nan))
        }


def fit_cbpe(
    scores: object,
    predicted: object,
    target: object,
    classes: Sequence[str],
    *,
    multiclass: bool,
) -> CBPEEstimator:
    """Fit CBPE on a labelled reference. `scores` is n * K (K = len(classes); binary: the positive
    class's score). Rows without a target, a prediction or a score are left out; raises
    MonitoringError when the reference cannot support an estimate (too few labelled rows, scores
    outside [0, 1], a class never seen in the target)."""
    classes = tuple(class_name(c) for c in classes)
    if not classes or (multiclass and len(classes) < 2):
        raise MonitoringError(f"CBPE needs a score column per class, got classes {list(classes)}")
    matrix = _score_matrix(scores, len(classes))
    truth_labels, predicted_labels = class_labels(target), class_labels(predicted)
    if not (len(truth_labels) == len(predicted_labels) == len(matrix)):
        raise MonitoringError("reference scores, predictions and targets differ in length")
    usable = (
        np.array([t is not None for t in truth_labels], dtype=bool)
        & np.array([p is not None for p in predicted_labels], dtype=bool)
        & ~np.isnan(matrix).any(axis=1)
    )
    if usable.sum() < MIN_REFERENCE_ROWS:
        raise MonitoringError(
            f"the reference has {int(usable.sum())} rows with a target, a prediction and scores; "
            f"CBPE needs at least {MIN_REFERENCE_ROWS}"
        )
    matrix, truth_labels, predicted_labels = matrix[usable], truth_labels[usable], predicted_labels[usable]
    bad = invalid_score_rows(matrix).sum(axis=0)
    if bad.any():
        worst = int(np.argmax(bad))
        raise MonitoringError(
            f"{int(bad[worst])} reference rows have a score for class {classes[worst]!r} outside [0, 1]"
        )
    estimator_classes = np.array(classes, dtype=object)
    truth = truth_labels[:, None] == estimator_classes
    predicted_hot = predicted_labels[:, None] == estimator_classes
    if multiclass:
        unknown = sorted({str(t) for t in truth_labels[~truth.any(axis=1)]})
        if unknown:
            raise MonitoringError(
                f"reference targets {unknown[:5]} are not among the classes {list(classes)}"
            )
    counts = truth.sum(axis=0)
    if (counts == 0).any() or (not multiclass and counts[0] == len(truth)):
        seen = sorted({str(t) for t in truth_labels})[:10]
        raise MonitoringError(
            f"the reference target must contain every class {list(classes)} (and, binary, other rows); "
            f"it holds {seen}"
        )
    calibrators = tuple(fit_calibrator(truth[:, k], matrix[:, k]) for k in range(len(classes)))
    return CBPEEstimator(
        classes=classes,
        multiclass=multiclass,
        calibrators=calibrators,
        unit_errors=unit_sampling_errors(truth, predicted_hot, matrix, multiclass=multiclass),
        reference=realized_classification(
            truth_labels, predicted_labels, matrix, classes, multiclass=multiclass
        ),
        reference_rows=int(usable.sum()),
        known_labels=frozenset(str(label) for label in np.r_[truth_labels, predicted_labels]),
    )
