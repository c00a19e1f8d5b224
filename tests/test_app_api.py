import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from apps.dummy_app import ServingMonitoring
from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
    MonitoringApplicationContext,
)
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import AppOutputError, MonitoringError
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, traffic_frame


class Returns(ModelMonitoringApplicationBase):
    def __init__(self, value: Any) -> None:
        self.value = value

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        return self.value() if callable(self.value) else self.value


def run_one(mm: Monitoring, window: Window, app: ModelMonitoringApplicationBase):  # type: ignore[no-untyped-def]
    return mm.run_window([app], window)[0]


@pytest.fixture
def traffic(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> Window:
    mm.record_events(
        "fraud-model", traffic_frame(200, window.start, window.end, TrafficShape(error_rate=0.2), seed=4)
    )
    return window


def test_names_and_exports() -> None:
    assert ServingMonitoring().name == "serving-monitoring"
    assert HistogramDataDriftApplication().name == "histogram-data-drift"
    from mm_dagster import schemas

    assert {k.name: k.value for k in schemas.ResultKindApp} == {
        "data_drift": 0,
        "concept_drift": 1,
        "model_performance": 2,
        "system_performance": 3,
        "mm_app_anomaly": 4,
    }
    assert [s.value for s in ResultStatusApp] == [-1, 0, 1, 2]


def test_the_docs_dummy_app_runs_unchanged(mm: Monitoring, endpoint: ModelEndpoint, traffic: Window) -> None:
    report = run_one(mm, traffic, ServingMonitoring())
    assert not report.failures
    stored = mm.results.results(endpoint.id, "serving-monitoring")
    assert [(r.name, r.value, r.kind, r.status) for r in stored] == [
        ("data_drift_test", 0.5, ResultKindApp.data_drift, ResultStatusApp.potential_detection)
    ]


def test_operational_health_computes_from_sample_df(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window
) -> None:
    from mm_dagster.applications import OperationalApplication

    run_one(mm, traffic, OperationalApplication())
    metrics = {m.name: m.value for m in mm.results.metrics(endpoint.id, "operational-health")}
    events = mm.read_window(traffic)[endpoint.id]
    assert metrics["requests"] == 200
    assert metrics["error_rate"] == pytest.approx(events["error"].notna().mean())
    results = {r.name: r for r in mm.results.results(endpoint.id, "operational-health")}
    assert results["error_rate"].status == ResultStatusApp.detected
    assert results["error_rate"].kind == ResultKindApp.system_performance


@pytest.mark.parametrize(
    ("returned", "stored_results", "stored_metrics"),
    [
        (None, 0, 0),
        ([], 0, 0),
        ({"a": 1.0, "b": 2}, 0, 2),
        (
            lambda: [
                ModelMonitoringApplicationMetric("m", 1.0),
                ModelMonitoringApplicationResult("r", 0.1, ResultKindApp.concept_drift, 0),
            ],
            1,
            1,
        ),
    ],
)
def test_allowed_return_shapes(
    mm: Monitoring,
    endpoint: ModelEndpoint,
    traffic: Window,
    returned: Any,
    stored_results: int,
    stored_metrics: int,
) -> None:
    report = run_one(mm, traffic, Returns(returned))
    assert not report.failures
    assert len(mm.results.results(endpoint.id, "returns")) == stored_results
    assert len(mm.results.metrics(endpoint.id, "returns")) == stored_metrics


KIND = ResultKindApp.data_drift
OK = ResultStatusApp.no_detection


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ModelMonitoringApplicationResult("bad name", 0.1, KIND, OK), "must match"),
        (lambda: ModelMonitoringApplicationResult("1st", 0.1, KIND, OK), "must match"),
        (lambda: ModelMonitoringApplicationMetric("m", math.nan), "must be finite"),
        (lambda: ModelMonitoringApplicationMetric("m", math.inf), "must be finite"),
        (lambda: ModelMonitoringApplicationMetric("m", "1.0"), "must be a finite float"),
        (lambda: ModelMonitoringApplicationResult("r", 0.1, 9, OK), "unknown kind 9"),
        (lambda: ModelMonitoringApplicationResult("r", 0.1, KIND, 5), "unknown status 5"),
        (lambda: ModelMonitoringApplicationResult("r", 0.1, KIND, OK, {"x": object()}), "not JSON"),
        (lambda: ModelMonitoringApplicationResult("r", 0.1, KIND, OK, {"x": math.nan}), "not JSON"),
        (lambda: ModelMonitoringApplicationResult("r", 0.1, KIND, OK, {"x": "y" * 70_000}), "over the 65536"),
        (
            lambda: ModelMonitoringApplicationResult("r", 0.1, KIND, OK, ["not", "a", "dict"]),
            "must be a dict",
        ),
    ],
)
def test_invalid_outputs_are_recorded_as_failures(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window, make: Any, match: str
) -> None:
    with pytest.raises(AppOutputError, match=match):
        make()
    report = run_one(mm, traffic, Returns(make))
    (error,) = report.failures.values()
    assert "app 'returns'" in error and "endpoint 'fraud-model'" in error and traffic.key[:10] in error
    (failure,) = mm.results.failures("returns")
    assert failure.endpoint_id == endpoint.id and "AppOutputError" in failure.error


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        ("a string", "returned str"),
        (42, "returned int"),
        ([1.0], "item 0 of type float"),
        (lambda: [ModelMonitoringApplicationMetric("m", 1.0)] * 2, "duplicate metric names"),
    ],
)
def test_wrong_return_types(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window, returned: Any, match: str
) -> None:
    report = run_one(mm, traffic, Returns(returned))
    assert match in next(iter(report.failures.values()))


def test_result_extra_data_of_64k_is_accepted() -> None:
    r = ModelMonitoringApplicationResult("r", 1, KIND, OK, {"x": "y" * 60_000})
    assert r.value == 1.0 and isinstance(r.value, float)


def test_a_result_of_json_values_keeps_its_encoding_for_the_store() -> None:
    """`of_json_values` (the built-in apps' results) checks what the constructor checks, keeps
    extra_data as given and hands the store the encoding the constructor's result would get."""
    extra = {"features": {"a": {"tvd": 0.25, "status": 2}}, "report": None, "drifting": ["a"], "rows": 7}
    kept = ModelMonitoringApplicationResult.of_json_values("r", 1, KIND, 2, extra)
    made = ModelMonitoringApplicationResult("r", 1, KIND, 2, extra)
    assert kept == made and kept.extra_data is extra
    assert isinstance(kept.value, float) and kept.status is ResultStatusApp.detected
    assert kept.extra_data_json() == made.extra_data_json() == json.dumps(extra, separators=(",", ":"))
    with pytest.raises(AppOutputError, match="'r': extra_data is not JSON-serialisable"):
        ModelMonitoringApplicationResult.of_json_values("r", 1, KIND, OK, {"x": math.nan})
    with pytest.raises(AppOutputError, match="over the 65536-byte limit"):
        ModelMonitoringApplicationResult.of_json_values("r", 1, KIND, OK, {"x": "y" * 70_000})
    with pytest.raises(AppOutputError, match="value must be finite"):
        ModelMonitoringApplicationResult.of_json_values("r", math.inf, KIND, OK, {})
    with pytest.raises(AppOutputError, match="unknown status"):
        ModelMonitoringApplicationResult.of_json_values("r", 1, KIND, 9, {})  # type: ignore[arg-type]


class ContextProbe(ModelMonitoringApplicationBase):
    seen: dict[str, Any] = {}

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        ctx = monitoring_context
        assert "sample_df_stats" not in vars(ctx)  # lazy until asked
        stats = ctx.sample_df_stats
        assert ctx.sample_df_stats is stats  # computed once
        ContextProbe.seen.update(
            endpoint_id=ctx.endpoint_id,
            endpoint_name=ctx.endpoint_name,
            features=ctx.feature_names,
            labels=ctx.label_names,
            start=ctx.start_infer_time,
            end=ctx.end_infer_time,
            columns=list(ctx.sample_df.columns),
            stats=stats,
            reference=ctx.feature_stats,
            model=ctx.model_endpoint.model_name,
        )
        ctx.logger.info("probing", rows=len(ctx.sample_df))
        ctx.log_artifact("summary", body=f"rows={len(ctx.sample_df)}", unique_per_endpoint=False)
        ctx.log_artifact(key="summary", body="overwritten", unique_per_endpoint=False)
        ctx.log_artifact("per-endpoint", body="x")  # unique_per_endpoint=True by default (MLRun 1.8+)
        ctx.log_dataset("sample", ctx.sample_df.head(3))


def test_context_contents_logger_and_artifacts(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        report = run_one(mm, traffic, ContextProbe())
    assert not report.failures
    seen = ContextProbe.seen
    assert seen["endpoint_id"] == endpoint.id and seen["endpoint_name"] == "fraud-model"
    assert seen["features"] == endpoint.feature_names and seen["labels"] == ["prediction"]
    assert seen["start"] == pd.Timestamp(traffic.start) and str(seen["start"].tz) == "UTC"
    assert seen["end"] - seen["start"] == pd.Timedelta(minutes=10)
    assert {"timestamp", "request_id", "latency_us", "error", "f0", "c0", "prediction"} <= set(
        seen["columns"]
    )
    assert seen["stats"]["f0"]["hist"][1] == seen["reference"]["f0"]["hist"][1]
    assert seen["stats"]["f0"]["count"] == 200 and seen["model"] == "fraud"
    assert "probing [app='context-probe'" in caplog.text and "rows=200" in caplog.text
    root = Path(mm.settings.artifacts_root) / "context-probe"
    assert (root / "summary.txt").read_text() == "overwritten"
    assert (root / f"per-endpoint-{endpoint.id}.txt").exists()
    assert pd.read_parquet(root / "sample.parquet").shape[0] == 3
    assert {a["key"] for a in mm.artifacts.list("context-probe")} == {
        "context-probe/summary",
        f"context-probe/per-endpoint-{endpoint.id}",
        "context-probe/sample",
    }
    assert report.artifacts["summary"].startswith("file://")


def test_artifact_keys_cannot_escape(mm: Monitoring) -> None:
    with pytest.raises(Exception, match="artifact key"):
        mm.artifacts.log("app", "../escape", body="x")


@pytest.mark.parametrize(
    ("app", "key", "suffix"),
    [
        ("ok", "ok", "/../../escaped.txt"),
        ("ok", "ok", "/x"),
        ("ok", "ok", ".txt/../../escaped"),
        ("../..", "escaped", ".txt"),
        ("ok/../..", "escaped", ".txt"),
        ("<absolute>", "escaped", ".txt"),
        ("ok", "../escaped", ".txt"),
        ("ok", "..", ""),
        ("ok", "a/b", ".txt"),
    ],
)
def test_no_app_key_or_suffix_escapes_the_artifacts_root(
    mm: Monitoring, tmp_path: Path, app: str, key: str, suffix: str
) -> None:
    app = app.replace("<absolute>", str(tmp_path / "absolute"))
    before = set(tmp_path.rglob("*"))
    with pytest.raises(MonitoringError, match="artifact"):
        mm.artifacts.log(app, key, body="x", suffix=suffix)
    assert set(tmp_path.rglob("*")) == before
    assert mm.artifacts.list() == []


def test_log_artifact_suffix_from_an_app_cannot_escape(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window
) -> None:
    class Escaper(ModelMonitoringApplicationBase):
        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
            monitoring_context.log_artifact("ok", body="x", suffix="/../../escaped.txt")

    report = run_one(mm, traffic, Escaper())
    assert "suffix" in report.failures[endpoint.id]
    root = Path(mm.settings.artifacts_root)
    assert not list(root.parent.rglob("escaped*"))


def test_cli_report_app_name_is_checked_by_the_store(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    with pytest.raises(MonitoringError, match="app name"):
        mm.write_endpoint_report(endpoint.name, app="../../x")
    root = Path(mm.settings.artifacts_root)
    assert not list(root.parent.parent.rglob("endpoint-report-*"))


class DeclaresOne(ModelMonitoringApplicationBase):
    RESULT_NAMES = ("declared",)

    def do_tracking(
        self, monitoring_context: MonitoringApplicationContext
    ) -> list[ModelMonitoringApplicationResult]:
        return [
            ModelMonitoringApplicationResult(
                "declared", 0.1, ResultKindApp.data_drift, ResultStatusApp.no_detection
            ),
            ModelMonitoringApplicationResult(
                "surprise", 0.9, ResultKindApp.data_drift, ResultStatusApp.detected
            ),
        ]


def test_a_result_of_an_undeclared_name_is_an_output_error(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    mm.record_events(endpoint.name, traffic_frame(100, window.start, window.end, seed=1))
    (report,) = mm.run_window([DeclaresOne()], window)
    assert not report.outputs
    assert "['surprise'] not among the app's RESULT_NAMES ['declared']" in report.failures[endpoint.id]
