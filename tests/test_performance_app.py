"""PerformanceApplication: scikit-learn's metrics on the labelled rows, and the status rule."""

import logging
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from dagster import instance_for_test
from sklearn import metrics as skm

from mm_dagster.applications import PerformanceApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.model_task import TaskKind
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.stats.performance import (
    PerformanceRule,
    ReferencePerformance,
    judge,
    labelled_rows,
    measures,
    reference_performance,
)

from .conftest import NOW, materialize_window, past_window
from .labelled_model import (
    BINARY,
    MULTICLASS,
    OUTPUTS,
    REGRESSION,
    as_events,
    as_labels,
    binary_frame,
    multiclass_frame,
    regression_frame,
)

APP = PerformanceApplication()


def run(
    mm: Monitoring, window: Window, app: PerformanceApplication = APP
) -> tuple[ModelMonitoringApplicationResult | None, dict[str, float]]:
    (report,) = mm.run_window([app], window)
    assert not report.failures, report.failures
    (outputs,) = report.outputs.values()
    results, metric_list = outputs
    assert all(isinstance(m, ModelMonitoringApplicationMetric) for m in metric_list)
    return (results[0] if results else None), {m.name: m.value for m in metric_list}


def serve_and_label(mm: Monitoring, name: str, frame: pd.DataFrame, window: Window, labelled: int) -> None:
    mm.record_events(name, as_events(frame, window.start))
    mm.record_labels(name, as_labels(frame).iloc[:labelled])


# -- the measures are scikit-learn's -----------------------------------------------------------


def test_binary_measures_equal_scikit_learn_on_the_labelled_rows(mm: Monitoring) -> None:
    mm.create_endpoint(
        "bin", reference=binary_frame(2000, seed=1), label_names=OUTPUTS[TaskKind.binary], task=BINARY
    )
    window = past_window(60)
    frame = binary_frame(400, seed=11)
    serve_and_label(mm, "bin", frame, window, labelled=300)
    result, got = run(mm, window)
    rows = frame.iloc[:300]
    y, pred, score = rows["label"], rows["prediction"], rows["score"]
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_macro": skm.recall_score(y, pred, average="macro"),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "roc_auc": skm.roc_auc_score(y, score),
        "log_loss": skm.log_loss(y, score),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    assert got["labelled_fraction"] == 0.75 and got["labelled_rows"] == 300
    assert got["unmatched_labels"] == 0
    assert result is not None and result.name == "model_performance"
    assert result.kind == ResultKindApp.model_performance
    assert result.value == pytest.approx(expected["accuracy"])
    assert result.extra_data["measures"]["roc_auc"]["value"] == pytest.approx(expected["roc_auc"])


def test_multiclass_measures_equal_scikit_learn_macro_and_per_class(mm: Monitoring) -> None:
    mm.create_endpoint(
        "multi",
        reference=multiclass_frame(2000, seed=1),
        label_names=OUTPUTS[TaskKind.multiclass],
        task=MULTICLASS,
    )
    window = past_window(60)
    frame = multiclass_frame(400, seed=12)
    serve_and_label(mm, "multi", frame, window, labelled=400)
    _, got = run(mm, window)
    y, pred = frame["label"], frame["prediction"]
    proba = frame[["score_a", "score_b", "score_c"]].to_numpy()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    for average in ("macro",):
        assert got[f"precision_{average}"] == pytest.approx(skm.precision_score(y, pred, average=average))
        assert got[f"recall_{average}"] == pytest.approx(skm.recall_score(y, pred, average=average))
        assert got[f"f1_{average}"] == pytest.approx(skm.f1_score(y, pred, average=average))
    per_class = skm.precision_recall_fscore_support(y, pred, labels=["a", "b", "c"])
    for i, cls in enumerate("abc"):
        assert got[f"precision_{cls}"] == pytest.approx(per_class[0][i])
        assert got[f"recall_{cls}"] == pytest.approx(per_class[1][i])
        assert got[f"f1_{cls}"] == pytest.approx(per_class[2][i])
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", labels=["a", "b", "c"])
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=["a", "b", "c"]))


def test_regression_measures_equal_scikit_learn(mm: Monitoring) -> None:
    mm.create_endpoint(
        "reg", reference=regression_frame(2000, seed=1), label_names=["prediction"], task=REGRESSION
    )
    window = past_window(60)
    frame = regression_frame(300, seed=13)
    serve_and_label(mm, "reg", frame, window, labelled=250)
    result, got = run(mm, window)
    y, pred = frame["label"].iloc[:250], frame["prediction"].iloc[:250]
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert result is not None and result.status == ResultStatusApp.no_detection


def test_rows_without_a_prediction_are_left_out_and_counted(mm: Monitoring) -> None:
    mm.create_endpoint(
        "bin", reference=binary_frame(2000, seed=1), label_names=OUTPUTS[TaskKind.binary], task=BINARY
    )
    window = past_window(60)
    frame = binary_frame(200, seed=14)
    events = as_events(frame, window.start)
    events.loc[:9, ["prediction", "score"]] = np.nan  # failed requests: no outputs
    events.loc[:9, "error"] = "TimeoutError"
    mm.record_events("bin", events)
    mm.record_labels("bin", as_labels(frame))
    result, got = run(mm, window)
    assert got["labelled_rows"] == 190 and got["labelled_fraction"] == 1.0
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(frame["label"][10:], frame["prediction"][10:]))
    assert result is not None and result.extra_data["labelled_without_prediction"] == 10


# -- the status rule ---------------------------------------------------------------------------


def test_a_real_drop_is_detected_and_a_calm_window_is_not(mm: Monitoring) -> None:
    mm.create_endpoint(
        "bin", reference=binary_frame(5000, seed=1), label_names=OUTPUTS[TaskKind.binary], task=BINARY
    )
    calm, worse = past_window(60), past_window(40)
    serve_and_label(mm, "bin", binary_frame(400, seed=21), calm, labelled=400)
    mm.record_events("bin", as_events(binary_frame(400, seed=22, flip=0.25), worse.start, prefix="w"))
    mm.record_labels("bin", as_labels(binary_frame(400, seed=22, flip=0.25), prefix="w"))
    calm_result, _ = run(mm, calm)
    worse_result, _ = run(mm, worse)
    assert calm_result is not None and calm_result.status == ResultStatusApp.no_detection
    assert worse_result is not None and worse_result.status == ResultStatusApp.detected
    accuracy = worse_result.extra_data["measures"]["accuracy"]
    assert accuracy["drop"] > 0.1 and accuracy["z"] > 3.09
    unit_sd = mm.get_endpoint("bin").reference_performance["unit_sd"]["accuracy"]  # type: ignore[index]
    assert accuracy["sampling_error"] == pytest.approx(unit_sd * np.sqrt(1 / 400 + 1 / 5000))
    assert worse_result.extra_data["judged"] == ["accuracy", "f1", "roc_auc"]


def test_few_labelled_rows_are_irrelevant(mm: Monitoring) -> None:
    mm.create_endpoint(
        "bin", reference=binary_frame(2000, seed=1), label_names=OUTPUTS[TaskKind.binary], task=BINARY
    )
    window = past_window(60)
    frame = binary_frame(300, seed=23, flip=0.5)
    serve_and_label(mm, "bin", frame, window, labelled=49)
    result, got = run(mm, window)
    assert result is not None and result.status == ResultStatusApp.irrelevant
    assert got["labelled_rows"] == 49
    result, _ = run(mm, window, PerformanceApplication(min_labelled=40))
    assert result is not None and result.status == ResultStatusApp.detected


def test_calm_windows_rarely_alarm_and_drops_are_caught() -> None:
    """200 calm windows of 300 labelled rows: at most 3% potential, 1% detected (the rule judges
    three measures at one-sided 1% and 0.1%); windows with a quarter of predictions wrong: all
    detected."""
    reference = reference_performance(BINARY, binary_frame(5000, seed=1))
    assert reference is not None
    rule = PerformanceRule()

    def status(frame: pd.DataFrame) -> ResultStatusApp:
        rows = labelled_rows(BINARY, frame).rows
        values = measures(BINARY, rows)
        verdicts = [judge(m, values[m], reference, len(rows), rule) for m in ("accuracy", "f1", "roc_auc")]
        return max(v.status for v in verdicts if v is not None)

    calm = [status(binary_frame(300, seed=1000 + i)) for i in range(200)]
    assert sum(s >= ResultStatusApp.potential_detection for s in calm) <= 6
    assert sum(s == ResultStatusApp.detected for s in calm) <= 2
    assert all(
        status(binary_frame(300, seed=2000 + i, flip=0.25)) == ResultStatusApp.detected for i in range(20)
    )


def test_a_negligible_drop_on_a_huge_window_is_not_flagged() -> None:
    reference = ReferencePerformance(2_000_000, {"accuracy": 0.80}, {"accuracy": 0.4}, 1000, 100)
    verdict = judge("accuracy", 0.795, reference, 1_000_000, PerformanceRule())
    assert verdict is not None and verdict.z > 10 and verdict.status == ResultStatusApp.no_detection
    verdict = judge("accuracy", 0.70, reference, 1_000_000, PerformanceRule())
    assert verdict is not None and verdict.status == ResultStatusApp.detected
    lower = ReferencePerformance(10_000, {"mae": 1.0}, {"mae": 0.8}, 1000, 100)
    verdict = judge("mae", 1.3, lower, 400, PerformanceRule())
    assert (
        verdict is not None
        and verdict.drop == pytest.approx(0.3)
        and verdict.status == ResultStatusApp.detected
    )


def test_the_rule_checks_its_thresholds() -> None:
    with pytest.raises(ValueError, match="0 < z_potential < z_detected"):
        PerformanceRule(z_potential=3.5, z_detected=3.0)
    with pytest.raises(ValueError, match="min_labelled must be >= 1"):
        PerformanceApplication(min_labelled=0)


# -- no task, no labelled reference --------------------------------------------------------------


def test_a_reference_without_labels_gives_a_warning_and_no_result(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    mm.create_endpoint(
        "bin",
        reference=binary_frame(2000, seed=1).drop(columns="label"),
        label_names=OUTPUTS[TaskKind.binary],
        task=BINARY,
    )
    window = past_window(60)
    serve_and_label(mm, "bin", binary_frame(200, seed=24), window, labelled=200)
    with caplog.at_level(logging.WARNING):
        result, got = run(mm, window)
    assert result is None and got["labelled_rows"] == 200 and "accuracy" in got
    assert "the reference has no labels" in caplog.text


def test_an_endpoint_without_a_task_gets_a_warning_and_nothing(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    plain = mm.create_endpoint(
        "plain",
        reference=binary_frame(500, seed=1).drop(columns="label"),
        label_names=["prediction", "score"],
    )
    window = past_window(60)
    mm.record_events("plain", as_events(binary_frame(50, seed=2), window.start))
    with caplog.at_level(logging.WARNING):
        (report,) = mm.run_window([APP], window)
    assert report.outputs[plain.id] == ([], []) and not report.failures
    assert "declares no task" in caplog.text


# -- late labels re-run their window through the controller --------------------------------------


def test_labels_a_day_later_re_run_the_window_and_its_performance_appears(isolated_home) -> None:  # type: ignore[no-untyped-def]
    home = str(isolated_home)
    window = Window.containing(NOW - timedelta(hours=23), 10)
    served_at = window.end + timedelta(minutes=2)
    config = MonitoringConfig(
        apps=[PerformanceApplication()], partitions_start="2026-11-01", late_data_horizon=timedelta(days=2)
    )

    def tick(now, cursor):  # type: ignore[no-untyped-def]
        from dagster import build_sensor_context

        defs = build_definitions(config, resource=MonitoringResource(home=home), clock=fixed_clock(now))
        with build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=defs,
            resources={"mm": MonitoringResource(home=home)},
        ) as context:
            return defs, defs.resolve_sensor_def("mm_controller").evaluate_tick(context)

    frame = binary_frame(300, seed=31, flip=0.3)
    with instance_for_test() as instance:
        with Monitoring(home=home, clock=fixed_clock(served_at)) as then:
            endpoint = then.create_endpoint(
                "bin", reference=binary_frame(3000, seed=1), label_names=OUTPUTS[TaskKind.binary], task=BINARY
            )
            then.record_events("bin", as_events(frame, window.start))
            defs, first = tick(served_at, None)
            assert [r.run_key for r in first.run_requests] == [f"mm-{window.key}"]
            materialize_window(defs, window.key, instance, home)
            (unlabelled,) = then.results.results(endpoint.id, "model-performance")
            assert unlabelled.status == ResultStatusApp.irrelevant

        with Monitoring(home=home, clock=fixed_clock(NOW)) as now:  # the labels land a day later
            assert now.record_labels("bin", as_labels(frame)).matched == 300
            defs, later = tick(NOW, first.cursor)
            (request,) = later.run_requests
            assert request.partition_key == window.key and request.run_key == f"mm-{window.key}-rev1"
            materialize_window(defs, window.key, instance, home)
            (labelled,) = now.results.results(endpoint.id, "model-performance")
            assert labelled.window_start == window.start
            assert labelled.status == ResultStatusApp.detected
            fraction = now.results.metrics(endpoint.id, "model-performance", "labelled_fraction")
            assert [m.value for m in fraction] == [1.0]
            assert tick(NOW, later.cursor)[1].run_requests == []


# -- measures on awkward windows -----------------------------------------------------------------


def test_roc_auc_is_left_out_when_a_class_is_absent_and_the_rest_is_computed() -> None:
    frame = binary_frame(300, seed=41)
    one_class = frame[frame["label"] == 1.0]
    values = measures(BINARY, labelled_rows(BINARY, one_class).rows)
    assert "roc_auc" not in values
    assert values["recall"] == pytest.approx(skm.recall_score(one_class["label"], one_class["prediction"]))
    assert values["log_loss"] == pytest.approx(
        skm.log_loss(one_class["label"], one_class["score"], labels=[0, 1])
    )

    multi = multiclass_frame(300, seed=42)
    two_classes = multi[multi["label"] != "c"]
    values = measures(MULTICLASS, labelled_rows(MULTICLASS, two_classes).rows)
    assert "roc_auc" not in values and values["recall_c"] == 0.0
    assert values["f1_macro"] == pytest.approx(
        skm.f1_score(two_classes["label"], two_classes["prediction"], labels=["a", "b", "c"], average="macro")
    )


def test_rows_with_missing_scores_count_for_class_measures_only() -> None:
    frame = binary_frame(300, seed=43)
    frame.loc[:49, "score"] = np.nan
    values = measures(BINARY, labelled_rows(BINARY, frame).rows)
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(frame["label"], frame["prediction"]))
    scored = frame.iloc[50:]
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(scored["label"], scored["score"]))


def test_a_reference_without_labelled_rows_has_no_performance() -> None:
    frame = binary_frame(100, seed=44).assign(label=np.nan)
    assert reference_performance(BINARY, frame) is None
    assert reference_performance(BINARY, frame.drop(columns="label")) is None
