"""CBPE and DLE against NannyML 0.13 on its shipped synthetic datasets (golden numbers made by
tests/golden/nannyml_performance.py in a side virtualenv; NannyML is not a dependency).

Per chunk (reference and analysis periods): our estimate lies inside NannyML's confidence band,
our sampling error matches NannyML's, and over the analysis chunks our estimated-vs-realized mean
absolute error is at least as good as NannyML's, within the margin stated per dataset."""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.stats.cbpe import CBPEEstimator, fit_cbpe, realized_classification
from mm_dagster.stats.dle import fit_dle
from mm_dagster.stats.performance_estimation import Estimate, class_labels

GOLDEN = Path(__file__).parent / "golden"
# Our estimated-vs-realized mean absolute error over the analysis chunks may exceed NannyML's by
# this factor. CBPE is the same method (identical numbers up to float error, see below). DLE's
# regressor differs (HistGradientBoosting with 15 trees, not LightGBM with 100): ours 6.47 (MAE)
# and 13.04 (RMSE) against NannyML's 9.01 and 13.57, but the chunks' own sampling noise (SE ~ 8 on
# MAE ~ 850) moves these by about 20% between regressor settings, so this is parity, not a win.
AGREEMENT_MARGIN = {"binary": 1.0, "multiclass": 1.0, "regression": 1.0}
# NannyML rounds its ROC curve counts to 5 decimals: equal methods differ by up to ~1e-6.
FLOAT_TOLERANCE = 1e-5


@cache
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / "nannyml_performance.json").read_text())
    return data


@cache
def periods(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_parquet(GOLDEN / golden()["datasets"][dataset]["data"])
    reference = frame[frame["period"] == "reference"].reset_index(drop=True)
    analysis = frame[frame["period"] == "analysis"].reset_index(drop=True)
    return reference, analysis


Estimator = Callable[[pd.DataFrame], dict[str, Estimate]]


@cache
def fitted_cbpe(dataset: str) -> CBPEEstimator:
    task = ModelTask.from_json(golden()["datasets"][dataset]["task"])
    reference, _ = periods(dataset)
    return fit_cbpe(
        reference[list(task.scores.values())],
        reference[task.prediction],
        reference[task.target],
        task.classes,
        multiclass=task.kind is TaskKind.multiclass,
    )


@cache
def fitted(dataset: str) -> Estimator:
    spec = golden()["datasets"][dataset]
    task = ModelTask.from_json(spec["task"])
    reference, _ = periods(dataset)
    if task.kind is TaskKind.regression:
        dle = fit_dle(
            reference, reference[task.prediction], reference[task.target], feature_names=spec["features"]
        )
        return lambda chunk: dle.estimate(chunk[spec["features"]], chunk[task.prediction].to_numpy())
    columns = list(task.scores.values())
    cbpe = fitted_cbpe(dataset)
    return lambda chunk: cbpe.estimate(chunk[columns].to_numpy(), class_labels(chunk[task.prediction]))


@cache
def comparison(dataset: str) -> list[tuple[dict[str, Any], pd.DataFrame, dict[str, Estimate]]]:
    reference, analysis = periods(dataset)
    rows = []
    for chunk in golden()["datasets"][dataset]["chunks"]:
        frame = (reference if chunk["period"] == "reference" else analysis).iloc[
            chunk["start"] : chunk["end"]
        ]
        rows.append((chunk, frame, fitted(dataset)(frame)))
    return rows


DATASETS = [
    "binary",
    pytest.param("multiclass", marks=pytest.mark.slow),
    pytest.param("regression", marks=pytest.mark.slow),
]


def test_golden_file_is_nannyml_0_13_with_every_chunk() -> None:
    assert golden()["nannyml_version"].startswith("0.13")
    for spec in golden()["datasets"].values():
        assert {c["period"] for c in spec["chunks"]} == {"reference", "analysis"}
        assert len(spec["chunks"]) == 20


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_chunk_estimate_is_inside_nannymls_band(dataset: str) -> None:
    outside = []
    for chunk, _, ours in comparison(dataset):
        for measure, theirs in chunk["metrics"].items():
            if not theirs["lower"] <= ours[measure].value <= theirs["upper"]:
                outside.append((chunk["period"], chunk["start"], measure, ours[measure].value, theirs))
    assert not outside


@pytest.mark.parametrize("dataset", DATASETS)
def test_sampling_errors_match_nannymls(dataset: str) -> None:
    for chunk, _, ours in comparison(dataset):
        for measure, theirs in chunk["metrics"].items():
            assert ours[measure].sampling_error == pytest.approx(theirs["sampling_error"], rel=0.01), measure


@pytest.mark.parametrize("dataset", DATASETS)
def test_estimated_vs_realized_agreement_is_at_least_nannymls(dataset: str) -> None:
    analysis = [(chunk, ours) for chunk, _, ours in comparison(dataset) if chunk["period"] == "analysis"]
    for measure in analysis[0][0]["metrics"]:
        ours_error = np.mean([abs(o[measure].value - c["metrics"][measure]["realized"]) for c, o in analysis])
        theirs_error = np.mean(
            [abs(c["metrics"][measure]["estimated"] - c["metrics"][measure]["realized"]) for c, _ in analysis]
        )
        assert ours_error <= theirs_error * AGREEMENT_MARGIN[dataset] + FLOAT_TOLERANCE, (
            measure,
            ours_error,
            theirs_error,
        )


@pytest.mark.parametrize("dataset", ["binary", "multiclass"])
def test_cbpe_calibration_decisions_are_nannymls(dataset: str) -> None:
    """NannyML's decisions depend on how its CPU's argsort orders tied scores (the multiclass
    `prepaid_card` flips between machines, see tests/golden/nannyml_performance.py); ours do not."""
    estimator = fitted_cbpe(dataset)
    ours = {
        c: calibrator is not None
        for c, calibrator in zip(estimator.classes, estimator.calibrators, strict=True)
    }
    assert ours == golden()["datasets"][dataset]["calibrated"], golden()["numpy_simd"]


@pytest.mark.parametrize("dataset", ["binary", pytest.param("multiclass", marks=pytest.mark.slow)])
def test_cbpe_estimates_are_nannymls(dataset: str) -> None:
    """Same calibration decisions, same estimates: CBPE is NannyML's method, not an approximation."""
    for chunk, _, ours in comparison(dataset):
        for measure, theirs in chunk["metrics"].items():
            assert ours[measure].value == pytest.approx(theirs["estimated"], abs=FLOAT_TOLERANCE), measure


@pytest.mark.parametrize("dataset", ["binary", pytest.param("multiclass", marks=pytest.mark.slow)])
def test_realized_classification_matches_nannymls_realized(dataset: str) -> None:
    task = ModelTask.from_json(golden()["datasets"][dataset]["task"])
    columns = list(task.scores.values())
    for chunk, frame, _ in comparison(dataset):
        realized = realized_classification(
            class_labels(frame[task.target]),
            class_labels(frame[task.prediction]),
            frame[columns].to_numpy(),
            task.classes,
            multiclass=task.kind is TaskKind.multiclass,
        )
        for measure, theirs in chunk["metrics"].items():
            assert realized[measure] == pytest.approx(theirs["realized"], abs=1e-9), measure
