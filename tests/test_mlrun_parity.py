"""MLRun parity of the app context and the Evidently base class: MLRun's documentation examples
(docs/model-monitoring/applications.md and the Evidently demo app of its tutorial), ported with
only their imports changed (and the demo's Evidently calls moved to Evidently 0.7's API)."""

import uuid
import warnings
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import (
    EvidentlyModelMonitoringApplicationBase,
    ModelMonitoringApplicationBase,
    ModelMonitoringApplicationMetric,
    ModelMonitoringApplicationResult,
    MonitoringApplicationContext,
)
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.simulation import reference_frame, traffic_frame


@pytest.fixture
def traffic(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> Window:
    mm.record_events("fraud-model", traffic_frame(120, window.start, window.end, seed=4))
    return window


# -- "Using the application context" (applications.md) ----------------------------------------


class DocsContextApp(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        context = monitoring_context  # the docs' snippets call it both names
        monitoring_context.logger.debug(
            "Logging the current data of a specific endpoint",
            sample_df=context.sample_df.to_json(),
            endpoint_id=context.endpoint_id,
        )
        monitoring_context.log_artifact(
            item=f"num_events_last_monitoring_window_{context.endpoint_id}",
            body=f"Number of events in the window: {len(context.sample_df)}",
        )


def test_docs_context_snippets_run_unchanged(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window
) -> None:
    report = mm.run_window([DocsContextApp()], traffic)[0]
    assert not report.failures
    (uri,) = report.artifacts.values()
    assert Path(uri.removeprefix("file://")).read_text() == "Number of events in the window: 120"
    assert endpoint.id in uri  # unique_per_endpoint=True by default, as in MLRun 1.8+


# -- "Testing your application" (applications.md) -----------------------------------------------


class MyApp(ModelMonitoringApplicationBase):
    """User code"""

    def do_tracking(self, monitoring_context):  # type: ignore[no-untyped-def]
        print(monitoring_context.__dict__)
        results = [
            ModelMonitoringApplicationMetric(name="test_metric", value=0.1),
            ModelMonitoringApplicationResult(
                name="test_result",
                value=0.2,
                kind=ResultKindApp.system_performance,
                status=ResultStatusApp.no_detection,
            ),
        ]
        return results


def test_docs_my_app_runs_unchanged(mm: Monitoring, endpoint: ModelEndpoint, traffic: Window) -> None:
    report = mm.run_window([MyApp()], traffic)[0]
    results, metrics = report.outputs[endpoint.id]
    assert [r.name for r in results] == ["test_result"] and [m.name for m in metrics] == ["test_metric"]


# -- the context's MLRun attributes ----------------------------------------------------------


class Parity(ModelMonitoringApplicationBase):
    seen: dict[str, Any] = {}

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        ctx = monitoring_context
        ep = ctx.model_endpoint
        Parity.seen.update(
            project=ctx.project_name,
            latest=ctx.latest_request,
            hist=ctx.dict_to_histogram(ctx.feature_stats),
            hist_static=MonitoringApplicationContext.dict_to_histogram(ctx.sample_df_stats),
            nested=(ep.metadata.uid, ep.metadata.name, ep.spec.model_uri, ep.spec.feature_names),
            labels=ep.spec.label_names,
            status_stats=ep.status.feature_stats,
            flat=(ep.id, ep.name, ep.model_uri, ep.feature_names, ep.feature_stats),
        )
        ctx.log_artifact("by-key", body="k", unique_per_endpoint=False)
        ctx.log_artifact(key="by-key-alias", body=b"<p>x</p>", format="html", unique_per_endpoint=False)


def test_context_has_mlruns_attributes(mm: Monitoring, endpoint: ModelEndpoint, traffic: Window) -> None:
    report = mm.run_window([Parity()], traffic)[0]
    assert not report.failures
    seen = Parity.seen
    assert seen["project"] == "default"
    stored = mm.get_endpoint("fraud-model")
    assert seen["latest"] == pd.Timestamp(stored.last_request) and seen["latest"].tzinfo is not None
    assert seen["nested"] == (endpoint.id, "fraud-model", "s3://models/fraud/3", endpoint.feature_names)
    assert seen["labels"] == ["prediction"]
    assert seen["status_stats"] == endpoint.feature_stats
    assert seen["flat"] == (
        endpoint.id,
        "fraud-model",
        "s3://models/fraud/3",
        endpoint.feature_names,
        endpoint.feature_stats,
    )
    # MLRun's dict_to_histogram: one column per feature with a histogram, counts / count.
    hist = seen["hist"]
    numeric = [f for f, s in endpoint.feature_stats.items() if "hist" in s]
    assert list(hist.columns) == numeric and len(hist) == 22
    f0 = endpoint.feature_stats["f0"]
    np.testing.assert_allclose(hist["f0"], np.array(f0["hist"][0]) / f0["count"])
    assert hist["f0"].sum() == pytest.approx(1.0)
    assert seen["hist_static"]["f0"].sum() == pytest.approx(1.0)
    root = Path(mm.settings.artifacts_root) / "parity"
    assert (root / "by-key.txt").read_text() == "k"
    assert (root / "by-key-alias.html").read_text() == "<p>x</p>"


# -- the Evidently demo app of MLRun's tutorial ------------------------------------------------


def _create_evidently_project(workspace: Any, id: UUID | None = None) -> Any:
    from evidently.sdk.models import ProjectModel

    return workspace.add_project(ProjectModel(id=id, name="Iris Monitoring"))


class DemoEvidentlyMonitoringApp(EvidentlyModelMonitoringApplicationBase):
    NAME = "evidently-app-test"

    def __init__(self, evidently_project_id: Any, evidently_workspace_path: str) -> None:
        super().__init__(evidently_project_id, evidently_workspace_path)
        self._init_evidently_project()
        self.train_set = reference_frame(500, seed=1)
        self.columns = ["f0", "f1"]

    def _init_evidently_project(self) -> None:
        if self.evidently_project is None:
            if isinstance(self.evidently_project_id, str):
                self.evidently_project_id = UUID(self.evidently_project_id)
            self.evidently_project = _create_evidently_project(
                self.evidently_workspace, self.evidently_project_id
            )

    def do_tracking(
        self, monitoring_context: MonitoringApplicationContext
    ) -> ModelMonitoringApplicationResult:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        monitoring_context.logger.info("Running evidently app")
        sample_df = monitoring_context.sample_df[self.columns]
        data_drift_report_run = Report([DataDriftPreset()]).run(
            current_data=sample_df, reference_data=self.train_set[self.columns]
        )
        self.evidently_workspace.add_run(self.evidently_project_id, data_drift_report_run)
        self.log_evidently_object(monitoring_context, data_drift_report_run, "evidently_report")
        monitoring_context.logger.info("Logged evidently objects")
        return ModelMonitoringApplicationResult(
            name="data_drift_test",
            value=0.5,
            kind=ResultKindApp.data_drift,
            status=ResultStatusApp.potential_detection,
        )


@pytest.mark.slow  # > 2 s: Evidently's import and report
def test_mlrun_evidently_demo_app(
    mm: Monitoring, endpoint: ModelEndpoint, traffic: Window, tmp_path: Path
) -> None:
    project_id = str(uuid.uuid4())
    app = DemoEvidentlyMonitoringApp(project_id, str(tmp_path / "ws"))
    assert isinstance(app.evidently_project_id, UUID) and app.evidently_project is not None
    report = mm.run_window([app], traffic)[0]
    assert not report.failures
    (uri,) = report.artifacts.values()
    assert uri.endswith(f"evidently_report-{endpoint.id}.html")
    assert "<html" in Path(uri.removeprefix("file://")).read_text().lower()
    assert len(list((tmp_path / "ws" / project_id / "snapshots").glob("*.json"))) == 1
    assert app.load_project().id == UUID(project_id)


@pytest.mark.slow  # > 2 s: the first import of Evidently
def test_evidently_constructor_order_and_lazy_workspace(tmp_path: Path) -> None:
    class Minimal(EvidentlyModelMonitoringApplicationBase):
        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
            return None

    project_id = uuid.uuid4()
    positional = Minimal(project_id, tmp_path / "ws")
    keywords = Minimal(evidently_workspace_path=tmp_path / "ws", evidently_project_id=project_id)
    for app in (positional, keywords):
        assert app.evidently_project_id == project_id
        assert app.evidently_workspace_path == str(tmp_path / "ws")
        assert "evidently_workspace" not in vars(app)  # not opened until used
    assert not (tmp_path / "ws").exists()
    assert positional.evidently_project is None  # opens the workspace; no such project yet
    assert "evidently_workspace" in vars(positional)
    with pytest.warns(DeprecationWarning, match="evidently_project_id first"):
        old_order = Minimal(tmp_path / "ws", project_id)
    assert old_order.evidently_project_id == str(project_id)
    with pytest.raises(MonitoringError, match="not a UUID"):
        Minimal("not-a-uuid", tmp_path / "ws")
    with pytest.raises(MonitoringError, match="Cloud"):
        Minimal(project_id, tmp_path / "ws", cloud_workspace=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Minimal(project_id, tmp_path / "ws")
