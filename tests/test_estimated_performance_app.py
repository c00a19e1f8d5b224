"""EstimatedPerformanceApplication: CBPE/DLE per window on endpoints that declare a ModelTask and
keep a labelled reference sample; bad input is reported, never a crash of the window."""

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import EstimatedPerformanceApplication
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.model_task import ModelTask, TaskKind
from mm_dagster.core.outputs import ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.monitoring import Monitoring
from mm_dagster.runner import run_app_on_endpoint, run_apps_on_window
from mm_dagster.storage.endpoint_registry import EndpointRegistry, StoredEndpoint
from mm_dagster.storage.reference_store import ReferenceStore

from .conftest import past_window
from .estimation_data import CLASSES, binary_frame, multiclass_frame, regression_frame

BINARY = ModelTask(TaskKind.binary, prediction="prediction", target="label", scores={"1": "score"})
MULTICLASS = ModelTask(
    TaskKind.multiclass, prediction="prediction", target="label", scores={c: f"p_{c}" for c in CLASSES}
)
REGRESSION = ModelTask(TaskKind.regression, prediction="prediction", target="label")


def endpoint_with(
    mm: Monitoring, name: str, reference: pd.DataFrame, task: ModelTask | None, features: list[str]
) -> ModelEndpoint:
    """An endpoint whose stored reference sample keeps the target (as worker `labels` makes
    `create_endpoint` do) and which declares `task`."""
    outputs = [c for c in reference.columns if c not in [*features, "label"]]
    endpoint = mm.create_endpoint(name, reference=reference, feature_names=features, label_names=outputs)
    mm.references.save(endpoint.id, reference)
    return dataclasses.replace(endpoint, task=task)


def run(
    app: EstimatedPerformanceApplication, mm: Monitoring, endpoint: ModelEndpoint, window: pd.DataFrame
) -> tuple[dict[str, ModelMonitoringApplicationResult], dict[str, float]]:
    (results, metrics), _ = run_app_on_endpoint(
        app, endpoint, past_window(), window.drop(columns="label"), mm.artifacts, mm.references
    )
    return {r.name: r for r in results}, {m.name: m.value for m in metrics}


@pytest.fixture
def binary_endpoint(mm: Monitoring) -> ModelEndpoint:
    return endpoint_with(mm, "binary-model", binary_frame(5000, seed=1), BINARY, ["x1", "x2"])


def test_binary_window_like_the_reference_is_not_flagged(
    mm: Monitoring, binary_endpoint: ModelEndpoint
) -> None:
    results, metrics = run(EstimatedPerformanceApplication(), mm, binary_endpoint, binary_frame(2000, seed=2))
    assert set(results) == {"estimated_performance"}
    result = results["estimated_performance"]
    assert result.kind == ResultKindApp.model_performance
    assert result.status == ResultStatusApp.no_detection
    assert result.value == metrics["estimated_roc_auc"]
    for measure in ("roc_auc", "accuracy", "precision", "recall", "f1"):
        assert metrics[f"estimated_{measure}_lower"] < metrics[f"estimated_{measure}"]
        assert metrics[f"estimated_{measure}"] < metrics[f"estimated_{measure}_upper"]
        detail = result.extra_data["measures"][measure]
        assert detail["reference"] is not None and detail["status"] == 0
    assert result.extra_data["method"] == "cbpe"
    assert result.extra_data["rows_estimated"] == 2000
    assert result.extra_data["calibrated_classes"] == ["1"]


def test_binary_window_near_the_decision_boundary_is_detected(
    mm: Monitoring, binary_endpoint: ModelEndpoint
) -> None:
    results, metrics = run(
        EstimatedPerformanceApplication(), mm, binary_endpoint, binary_frame(2000, seed=3, spread=0.3)
    )
    result = results["estimated_performance"]
    assert result.status == ResultStatusApp.detected
    assert result.extra_data["measures"]["accuracy"]["drop"] > 0.1
    assert metrics["estimated_accuracy_upper"] < result.extra_data["measures"]["accuracy"]["reference"]


def test_small_windows_are_irrelevant(mm: Monitoring, binary_endpoint: ModelEndpoint) -> None:
    app = EstimatedPerformanceApplication(min_window_rows=100)
    results, metrics = run(app, mm, binary_endpoint, binary_frame(60, seed=4, spread=0.3))
    assert results["estimated_performance"].status == ResultStatusApp.irrelevant
    assert "estimated_accuracy" in metrics


def test_scores_outside_0_1_are_counted_reported_and_left_out(
    mm: Monitoring, binary_endpoint: ModelEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    window = binary_frame(1000, seed=5)
    window.loc[:29, "score"] = 1.7
    window.loc[30:34, "score"] = np.nan
    with caplog.at_level(logging.WARNING, logger="mm_dagster.apps.estimated-performance"):
        results, _ = run(EstimatedPerformanceApplication(), mm, binary_endpoint, window)
    invalid = results["invalid_model_outputs"]
    assert invalid.kind == ResultKindApp.mm_app_anomaly and invalid.status == ResultStatusApp.detected
    assert invalid.value == 35
    assert invalid.extra_data["columns"] == {"score": {"missing": 5, "outside_0_1": 30}}
    assert results["estimated_performance"].extra_data["rows_estimated"] == 965
    message = caplog.records[-1].getMessage()
    assert "'binary-model'" in message and "35 of 1000 rows" in message
    assert "column 'score': 5 missing, 30 outside 0 1" in message


def test_a_window_of_only_invalid_scores_gives_the_anomaly_alone(
    mm: Monitoring, binary_endpoint: ModelEndpoint
) -> None:
    window = binary_frame(200, seed=6)
    window["score"] = -0.5
    results, metrics = run(EstimatedPerformanceApplication(), mm, binary_endpoint, window)
    assert set(results) == {"invalid_model_outputs"} and not metrics


def test_reference_without_labels_warns_and_gives_no_result(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    reference = binary_frame(2000, seed=1)
    endpoint = endpoint_with(mm, "unlabelled", reference, BINARY, ["x1", "x2"])
    mm.references.save(endpoint.id, reference.drop(columns="label"))
    with caplog.at_level(logging.WARNING, logger="mm_dagster.apps.estimated-performance"):
        results, metrics = run(EstimatedPerformanceApplication(), mm, endpoint, binary_frame(500, seed=2))
    assert not results and not metrics
    assert "the reference sample has no labels (target column 'label'" in caplog.text
    assert "endpoint='unlabelled'" in caplog.text


def test_reference_without_score_columns_warns_and_gives_no_result(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    reference = binary_frame(2000, seed=1)
    endpoint = endpoint_with(mm, "no-scores", reference, BINARY, ["x1", "x2"])
    mm.references.save(endpoint.id, reference.drop(columns="score"))
    with caplog.at_level(logging.WARNING, logger="mm_dagster.apps.estimated-performance"):
        results, _ = run(EstimatedPerformanceApplication(), mm, endpoint, binary_frame(500, seed=2))
    assert not results
    assert "lacks the model output columns ['score']" in caplog.text


def test_regression_reference_with_class_labels_warns(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    reference = regression_frame(1000, seed=1)
    reference["label"] = np.where(reference["label"] > 0, "high", "low")
    endpoint = endpoint_with(mm, "regressor", reference, REGRESSION, ["x1", "colour"])
    with caplog.at_level(logging.WARNING, logger="mm_dagster.apps.estimated-performance"):
        results, _ = run(EstimatedPerformanceApplication(), mm, endpoint, regression_frame(300, seed=2))
    assert not results
    assert "non-numeric values" in caplog.text and "a regression task needs numbers" in caplog.text


def test_endpoint_without_a_task_gives_no_result(mm: Monitoring) -> None:
    endpoint = endpoint_with(mm, "no-task", binary_frame(500, seed=1), None, ["x1", "x2"])
    results, metrics = run(EstimatedPerformanceApplication(), mm, endpoint, binary_frame(200, seed=2))
    assert not results and not metrics


def test_fits_once_per_endpoint_and_reference_version(
    mm: Monitoring, binary_endpoint: ModelEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    original = ReferenceStore.load

    def counting_load(self: ReferenceStore, endpoint_id: str) -> pd.DataFrame | None:
        loads.append(endpoint_id)
        return original(self, endpoint_id)

    monkeypatch.setattr(ReferenceStore, "load", counting_load)
    app = EstimatedPerformanceApplication()
    for seed in range(3):
        run(app, mm, binary_endpoint, binary_frame(300, seed=10 + seed))
    assert loads == [binary_endpoint.id]
    updated = dataclasses.replace(binary_endpoint, reference_version=2)
    run(app, mm, updated, binary_frame(300, seed=20))
    assert loads == [binary_endpoint.id] * 2 and len(app.fits) == 2
    other_app = EstimatedPerformanceApplication()  # caches belong to their app instance
    run(other_app, mm, binary_endpoint, binary_frame(300, seed=21))
    assert len(loads) == 3


def test_the_fit_cache_is_bounded(mm: Monitoring) -> None:
    app = EstimatedPerformanceApplication(cache_size=2)
    endpoints = [
        endpoint_with(mm, f"model-{i}", binary_frame(400, seed=i), BINARY, ["x1", "x2"]) for i in range(3)
    ]
    for endpoint in endpoints:
        run(app, mm, endpoint, binary_frame(200, seed=9))
    assert len(app.fits) == 2


def test_multiclass_endpoint_and_unknown_predicted_classes(mm: Monitoring) -> None:
    endpoint = endpoint_with(mm, "multi", multiclass_frame(5000, seed=1), MULTICLASS, ["x1", "x2"])
    window = multiclass_frame(1500, seed=2)
    window.loc[:9, "prediction"] = "zebra"
    results, metrics = run(EstimatedPerformanceApplication(), mm, endpoint, window)
    assert results["invalid_model_outputs"].extra_data["columns"] == {"prediction": {"unknown_class": 10}}
    result = results["estimated_performance"]
    assert result.status == ResultStatusApp.no_detection
    assert result.extra_data["rows_estimated"] == 1490
    assert 0.5 < metrics["estimated_accuracy"] < 1.0

    degraded, _ = run(
        EstimatedPerformanceApplication(), mm, endpoint, multiclass_frame(1500, seed=3, spread=0.3)
    )
    assert degraded["estimated_performance"].status == ResultStatusApp.detected


def test_regression_endpoint_estimates_mae_and_rmse(mm: Monitoring) -> None:
    endpoint = endpoint_with(mm, "price", regression_frame(5000, seed=1), REGRESSION, ["x1", "colour"])
    app = EstimatedPerformanceApplication()
    results, metrics = run(app, mm, endpoint, regression_frame(1000, seed=2))
    result = results["estimated_performance"]
    assert result.extra_data["method"] == "dle" and result.extra_data["primary_measure"] == "mae"
    assert result.value == metrics["estimated_mae"]
    assert result.status == ResultStatusApp.no_detection
    assert set(metrics) == {
        f"estimated_{m}{suffix}" for m in ("mae", "rmse") for suffix in ("", "_lower", "_upper")
    }
    worse, _ = run(app, mm, endpoint, regression_frame(1000, seed=3, shift=1.0))
    assert worse["estimated_performance"].status == ResultStatusApp.detected
    assert worse["estimated_performance"].value > result.value


def test_outputs_are_stored_in_the_results_store(mm: Monitoring, binary_endpoint: ModelEndpoint) -> None:
    app = EstimatedPerformanceApplication()
    window = binary_frame(500, seed=2)
    window.loc[:2, "score"] = 3.0
    outputs, _ = run_app_on_endpoint(
        app, binary_endpoint, past_window(), window.drop(columns="label"), mm.artifacts, mm.references
    )
    mm.results.replace_window(app.name, past_window(), {binary_endpoint.id: outputs})
    stored = {r.name: r for r in mm.results.results(binary_endpoint.id, app=app.name)}
    assert stored["estimated_performance"].extra_data["measures"]["f1"]["reference"] > 0.7
    assert stored["invalid_model_outputs"].value == 3
    names = {m.name for m in mm.results.metrics(binary_endpoint.id, app=app.name)}
    assert {"estimated_f1", "estimated_f1_lower", "estimated_f1_upper"} <= names


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_window_rows": 0},
        {"potential_sigmas": 3.0, "detected_sigmas": 2.0},
        {"min_relative_drop": -0.1},
        {"primary_measure": "log_loss"},
        {"cache_size": 0},
    ],
)
def test_settings_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(MonitoringError):
        EstimatedPerformanceApplication(**kwargs)  # type: ignore[arg-type]


class EndpointsWithTasks(EndpointRegistry):
    """The stored registry, its endpoints declaring the tasks of `endpoints` (whose stored
    references keep the target, which `create_endpoint` with a task would take as a label)."""

    def __init__(self, registry: EndpointRegistry, endpoints: list[ModelEndpoint]) -> None:
        super().__init__(registry.engine, registry.clock)
        self.tasks = {e.id: e.task for e in endpoints}

    def for_window(self, ids: Sequence[str]) -> list[StoredEndpoint]:
        return [
            dataclasses.replace(s, endpoint=dataclasses.replace(s.endpoint, task=self.tasks[s.endpoint.id]))
            for s in super().for_window(ids)
        ]


def test_window_runner_isolates_bad_endpoints(mm: Monitoring) -> None:
    """One window, four endpoints: unlabelled reference, invalid scores, a regression model and a
    healthy classifier. Nothing fails; each gets what it can."""
    unlabelled = endpoint_with(mm, "unlabelled", binary_frame(1000, seed=1), BINARY, ["x1", "x2"])
    mm.references.save(unlabelled.id, binary_frame(1000, seed=1).drop(columns="label"))
    invalid = endpoint_with(mm, "invalid", binary_frame(1000, seed=2), BINARY, ["x1", "x2"])
    regressor = endpoint_with(mm, "regressor", regression_frame(2000, seed=3), REGRESSION, ["x1", "colour"])
    healthy = endpoint_with(mm, "healthy", binary_frame(2000, seed=4), BINARY, ["x1", "x2"])
    bad_scores = binary_frame(400, seed=5)
    bad_scores.loc[:99, "score"] = -1.0
    events = {
        unlabelled.id: binary_frame(400, seed=6).drop(columns="label"),
        invalid.id: bad_scores.drop(columns="label"),
        regressor.id: regression_frame(400, seed=7).drop(columns="label"),
        healthy.id: binary_frame(400, seed=8).drop(columns="label"),
    }
    app = EstimatedPerformanceApplication()
    (report,) = run_apps_on_window(
        [app],
        past_window(),
        events,
        EndpointsWithTasks(mm.endpoints, [unlabelled, invalid, regressor, healthy]),
        mm.results,
        mm.artifacts,
        mm.references,
    )
    assert report.failures == {}
    stored = {(r.endpoint_id, r.name): r for r in mm.results.results(app=app.name)}
    assert set(stored) == {
        (invalid.id, "invalid_model_outputs"),
        (invalid.id, "estimated_performance"),
        (regressor.id, "estimated_performance"),
        (healthy.id, "estimated_performance"),
    }
    assert stored[(invalid.id, "invalid_model_outputs")].value == 100
    assert stored[(regressor.id, "estimated_performance")].extra_data["method"] == "dle"
