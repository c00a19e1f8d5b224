"""CBPE and DLE maths (mm_dagster.stats.cbpe, .dle, .performance_estimation) on synthetic data whose
truth is known: estimates track the realized performance, bands cover it, bad references fail
with clear errors."""

import threading
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mm_dagster.applications.model_cache import FittedModelCache
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.stats.cbpe import (
    _expected_calibration_error,
    expected_roc_auc,
    fit_cbpe,
    invalid_score_rows,
    realized_classification,
)
from mm_dagster.stats.dle import fit_dle
from mm_dagster.stats.performance_estimation import (
    DropRule,
    class_labels,
    estimate_with_band,
)

from .estimation_data import CLASSES, binary_frame, multiclass_frame, regression_frame

SCORE_COLUMNS = [f"p_{c}" for c in CLASSES]


def fit_binary(reference: pd.DataFrame):
    return fit_cbpe(
        reference[["score"]], reference["prediction"], reference["label"], ["1"], multiclass=False
    )


def realized_binary(window: pd.DataFrame) -> dict[str, float]:
    return realized_classification(
        class_labels(window["label"]),
        class_labels(window["prediction"]),
        window[["score"]].to_numpy(),
        ["1"],
        multiclass=False,
    )


def test_class_labels_put_numbers_bools_and_strings_in_one_form() -> None:
    assert list(class_labels([1, 0, 1])) == ["1", "0", "1"]
    assert list(class_labels([1.0, 0.0, None])) == ["1", "0", None]
    assert list(class_labels(pd.Series(["a", None, "b"], dtype="string"))) == ["a", None, "b"]
    assert list(class_labels([0.5, 1.0])) == ["0.5", "1.0"]


@settings(max_examples=60, deadline=None)
@given(
    truth=st.lists(st.booleans(), min_size=2, max_size=60).filter(lambda t: 0 < sum(t) < len(t)),
    seed=st.integers(0, 2**16),
)
def test_expected_roc_auc_with_known_labels_is_the_realized_auc(truth: list[bool], seed: int) -> None:
    """When the calibrated probability is the label itself (0 or 1), the expected AUC is the AUC."""
    scores = np.round(np.random.default_rng(seed).random(len(truth)), 1)  # ties included
    y = np.array(truth)
    assert expected_roc_auc(y.astype(float), scores) == pytest.approx(roc_auc_score(y, scores))


def test_expected_roc_auc_is_undefined_without_expected_positives_or_negatives() -> None:
    assert np.isnan(expected_roc_auc(np.zeros(5), np.linspace(0, 1, 5)))
    assert np.isnan(expected_roc_auc(np.ones(5), np.linspace(0, 1, 5)))


def test_invalid_score_rows_flag_nan_inf_and_values_outside_0_1() -> None:
    scores = np.array([[0.0], [1.0], [np.nan], [1.2], [-0.1], [np.inf], [0.3]])
    assert list(invalid_score_rows(scores)[:, 0]) == [False, False, True, True, True, True, False]


def test_binary_cbpe_tracks_the_realized_performance_of_shifted_windows() -> None:
    estimator = fit_binary(binary_frame(5000, seed=1))
    assert estimator.calibrators[0] is not None  # the model's scores are over-confident
    for spread, seed in [(1.0, 2), (0.3, 3), (0.6, 4)]:
        window = binary_frame(4000, seed=seed, spread=spread)
        estimates = estimator.estimate(window[["score"]].to_numpy(), class_labels(window["prediction"]))
        realized = realized_binary(window)
        assert set(estimates) == {"roc_auc", "accuracy", "precision", "recall", "f1"}
        for measure, estimate in estimates.items():
            assert abs(estimate.value - realized[measure]) < 0.035, (spread, measure)
            assert estimate.lower <= estimate.value <= estimate.upper


def test_binary_cbpe_bands_cover_the_realized_accuracy() -> None:
    """Over 60 same-distribution windows, the realized measure is inside the +-3 SE band in at
    least 90% of them, and the estimate is unbiased."""
    estimator = fit_binary(binary_frame(20_000, seed=1))
    inside: dict[str, int] = {}
    differences = []
    for seed in range(100, 160):
        window = binary_frame(500, seed=seed)
        estimates = estimator.estimate(window[["score"]].to_numpy(), class_labels(window["prediction"]))
        realized = realized_binary(window)
        differences.append(estimates["accuracy"].value - realized["accuracy"])
        for measure in ("accuracy", "precision", "recall", "f1"):
            inside[measure] = inside.get(measure, 0) + (
                estimates[measure].lower <= realized[measure] <= estimates[measure].upper
            )
    assert all(count >= 54 for count in inside.values()), inside
    assert abs(np.mean(differences)) < 0.01


def test_multiclass_cbpe_tracks_the_realized_macro_performance() -> None:
    reference = multiclass_frame(6000, seed=1)
    estimator = fit_cbpe(
        reference[SCORE_COLUMNS], reference["prediction"], reference["label"], CLASSES, multiclass=True
    )
    for spread, seed in [(1.0, 2), (0.3, 3)]:
        window = multiclass_frame(4000, seed=seed, spread=spread)
        estimates = estimator.estimate(window[SCORE_COLUMNS].to_numpy(), class_labels(window["prediction"]))
        realized = realized_classification(
            class_labels(window["label"]),
            class_labels(window["prediction"]),
            window[SCORE_COLUMNS].to_numpy(),
            CLASSES,
            multiclass=True,
        )
        for measure, estimate in estimates.items():
            assert abs(estimate.value - realized[measure]) < 0.035, (spread, measure)
    calibrated = estimator.calibrated(window[SCORE_COLUMNS].to_numpy())
    assert np.allclose(calibrated.sum(axis=1), 1.0)


def test_multiclass_predictions_outside_the_classes_are_unknown() -> None:
    reference = multiclass_frame(2000, seed=1)
    estimator = fit_cbpe(
        reference[SCORE_COLUMNS], reference["prediction"], reference["label"], CLASSES, multiclass=True
    )
    assert list(estimator.unknown_predictions(class_labels(["a", "zebra", None]))) == [False, True, True]


def test_dle_tracks_the_error_of_a_shifted_window() -> None:
    reference = regression_frame(6000, seed=1)
    estimator = fit_dle(reference[["x1", "colour"]], reference["prediction"], reference["label"])
    assert estimator.categorical == ("colour",)
    for shift, seed in [(0.0, 2), (1.0, 3)]:
        window = regression_frame(3000, seed=seed, shift=shift)
        estimates = estimator.estimate(window[["x1", "colour"]], window["prediction"].to_numpy())
        error = window["label"] - window["prediction"]
        realized = {"mae": float(error.abs().mean()), "rmse": float(np.sqrt((error**2).mean()))}
        for measure, estimate in estimates.items():
            assert abs(estimate.value - realized[measure]) / realized[measure] < 0.08, (shift, measure)
    # The shift makes the model worse, and the estimate says so by far more than its band.
    base = estimator.estimate(reference[["x1", "colour"]], reference["prediction"].to_numpy())
    assert estimates["mae"].lower > base["mae"].upper


def test_dle_handles_unseen_and_missing_categories() -> None:
    reference = regression_frame(2000, seed=1)
    estimator = fit_dle(reference[["x1", "colour"]], reference["prediction"], reference["label"])
    window = regression_frame(200, seed=2)
    window["colour"] = window["colour"].astype(object)
    window.loc[:50, "colour"] = "ultraviolet"
    window.loc[51:60, "colour"] = None
    estimates = estimator.estimate(window[["x1", "colour"]], window["prediction"].to_numpy())
    assert np.isfinite(estimates["mae"].value) and estimates["mae"].value > 0


def test_sampling_error_shrinks_with_the_square_root_of_the_window() -> None:
    small, large = (
        estimate_with_band("accuracy", 0.8, 0.4, 100),
        estimate_with_band("accuracy", 0.8, 0.4, 400),
    )
    assert small.sampling_error == pytest.approx(0.04) and large.sampling_error == pytest.approx(0.02)
    assert (small.lower, small.upper) == pytest.approx((0.68, 0.92))
    clipped = estimate_with_band("accuracy", 0.98, 0.4, 100)
    assert clipped.upper == 1.0
    assert estimate_with_band("mae", 0.05, 1.0, 100).lower == 0.0


@pytest.mark.parametrize(
    ("measure", "estimate", "sampling_error", "reference", "expected"),
    [
        ("accuracy", 0.90, 0.01, 0.90, ResultStatusApp.no_detection),
        ("accuracy", 0.87, 0.01, 0.90, ResultStatusApp.detected),  # 3.0 SE drop, over the 2% floor
        ("accuracy", 0.875, 0.01, 0.90, ResultStatusApp.potential_detection),  # 2.5 SE
        ("accuracy", 0.895, 0.001, 0.90, ResultStatusApp.no_detection),  # 5 SE but under the floor
        ("accuracy", 0.95, 0.01, 0.90, ResultStatusApp.no_detection),  # better than the reference
        ("mae", 1.2, 0.05, 1.0, ResultStatusApp.detected),  # errors: higher is worse
        ("mae", 0.8, 0.05, 1.0, ResultStatusApp.no_detection),
    ],
)
def test_drop_rule(
    measure: str, estimate: float, sampling_error: float, reference: float, expected: ResultStatusApp
) -> None:
    value = estimate_with_band(measure, estimate, sampling_error, 1)
    assert DropRule().status(measure, value, reference) == expected


def test_fit_cbpe_refuses_references_it_cannot_use() -> None:
    reference = binary_frame(500, seed=1)
    with pytest.raises(MonitoringError, match="rows with a target, a prediction and scores"):
        fit_cbpe(reference[["score"]], reference["prediction"], [None] * 500, ["1"], multiclass=False)
    scores = reference[["score"]].to_numpy() * 2
    with pytest.raises(MonitoringError, match=r"reference rows have a score for class '1' outside \[0, 1\]"):
        fit_cbpe(scores, reference["prediction"], reference["label"], ["1"], multiclass=False)
    with pytest.raises(MonitoringError, match="must contain every class"):
        fit_cbpe(reference[["score"]], reference["prediction"], np.zeros(500), ["1"], multiclass=False)
    multi = multiclass_frame(500, seed=1)
    labels = multi["label"].where(multi.index % 7 != 0, "dog")
    with pytest.raises(MonitoringError, match=r"reference targets \['dog'\] are not among the classes"):
        fit_cbpe(multi[SCORE_COLUMNS], multi["prediction"], labels, CLASSES, multiclass=True)


def test_fit_dle_refuses_class_labels_and_too_few_rows() -> None:
    reference = regression_frame(500, seed=1)
    with pytest.raises(MonitoringError, match=r"target holds 500 non-numeric values \(e.g. 'cat'\)"):
        fit_dle(reference[["x1"]], reference["prediction"], ["cat"] * 500)
    with pytest.raises(MonitoringError, match="DLE needs at least 100"):
        fit_dle(reference[["x1"]].head(50), reference["prediction"].head(50), reference["label"].head(50))


def test_bounded_cache_evicts_the_least_recently_used() -> None:
    cache: FittedModelCache[str, int] = FittedModelCache(2)
    assert cache.get_or_fit("a", lambda: 1) == 1
    assert cache.get_or_fit("b", lambda: 2) == 2
    assert cache.get_or_fit("a", lambda: 99) == 1  # a is now the most recent
    cache.get_or_fit("c", lambda: 3)
    assert "b" not in cache and "a" in cache and len(cache) == 2


def test_bounded_cache_gives_every_thread_the_same_value() -> None:
    cache: FittedModelCache[str, object] = FittedModelCache(8)
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        seen.append(cache.get_or_fit("key", object))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(value is seen[0] for value in seen)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(2, 80))
def test_expected_roc_auc_is_sklearns_weighted_auc(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(rows), 1)
    p = rng.random(rows)
    truth = np.r_[np.ones(rows, dtype=bool), np.zeros(rows, dtype=bool)]
    expected = roc_auc_score(truth, np.r_[scores, scores], sample_weight=np.r_[p, 1 - p])
    assert expected_roc_auc(p, scores) == pytest.approx(expected)


def nannyml_ece(truth: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """NannyML's `_calculate_expected_calibration_error`: rows sorted by score, `bins` bins of
    n // bins rows (the last takes the rest), each weighted by its share of rows."""
    order = np.argsort(scores, kind="stable")
    ranked_truth, ranked_scores = truth[order].astype(float), scores[order]
    edges = list(range(0, len(scores) + 1, len(scores) // bins))
    edges[-1] = len(scores)
    return sum(
        (right - left) / len(scores) * abs(ranked_scores[left:right].mean() - ranked_truth[left:right].mean())
        for left, right in pairwise(edges)
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(21, 300))
def test_calibration_error_is_nannymls_without_ties(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.permutation(rows) / rows  # distinct
    truth = rng.random(rows) < scores
    assert _expected_calibration_error(truth, scores) == pytest.approx(nannyml_ece(truth, scores))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(21, 300))
def test_calibration_error_does_not_depend_on_the_order_of_tied_scores(seed: int, rows: int) -> None:
    """Tied scores straddling a bin edge: any order of the rows gives the same ECE (NannyML's
    depends on the order numpy's unstable argsort leaves ties in, which depends on the CPU)."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(rows), 1)
    truth = rng.random(rows) < scores
    expected = _expected_calibration_error(truth, scores)
    for _ in range(3):
        shuffled = rng.permutation(rows)
        assert _expected_calibration_error(truth[shuffled], scores[shuffled]) == pytest.approx(expected)


def test_class_names_agree_across_types() -> None:
    assert list(class_labels(pd.Series([True, False]))) == ["1", "0"]
    assert list(class_labels(["True", "false", "b"])) == ["1", "0", "b"]
    assert list(class_labels([1.0, 0.0])) == ["1", "0"]


def test_binary_task_declaring_true_matches_integer_and_boolean_outputs() -> None:
    reference = binary_frame(2000, seed=1)
    estimator = fit_cbpe(
        reference[["score"]],
        reference["prediction"].astype(bool),
        reference["label"],
        ["True"],
        multiclass=False,
    )
    assert estimator.classes == ("1",)
    window = binary_frame(500, seed=2)
    window["prediction"] = window["prediction"].map({1: "yes", 0: False}).astype(object)
    unknown = estimator.unknown_predictions(class_labels(window["prediction"]))
    assert unknown.sum() == (window["prediction"] == "yes").sum() > 0


def test_dle_with_numeric_features_only() -> None:
    reference = regression_frame(4000, seed=1)
    estimator = fit_dle(reference[["x1"]], reference["prediction"], reference["label"])
    assert estimator.categorical == () and estimator.numeric == ("x1",)
    window = regression_frame(2000, seed=2, shift=1.0)
    error = window["label"] - window["prediction"]
    estimate = estimator.estimate(window[["x1"]], window["prediction"].to_numpy())["mae"]
    assert abs(estimate.value - error.abs().mean()) / error.abs().mean() < 0.1
