"""The Evidently integration: the example app, snapshots without opening the workspace, lazy
import, stored reference samples, and bounded memory."""

import json
import resource
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from apps.evidently_drift import EvidentlyDataDriftApplication
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .conftest import past_window


@pytest.fixture
def evidently_app(tmp_path: Path) -> EvidentlyDataDriftApplication:
    return EvidentlyDataDriftApplication(uuid.uuid4(), tmp_path / "evidently", sample_rows=2000)


def seed(mm: Monitoring, window: Window, drift: bool) -> None:
    mm.create_endpoint(
        "m", reference=reference_frame(5000, seed=1), label_names=["prediction"], reference_sample_rows=3000
    )
    shape = TrafficShape(mean_shift=1.5, drifted_features=4) if drift else TrafficShape()
    mm.record_events("m", traffic_frame(3000, window.start, window.end, shape, seed=2))


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_importing_the_api_does_not_import_evidently() -> None:
    code = (
        "import sys, mm_dagster.applications, apps.evidently_drift, apps.definitions;"
        "print('evidently' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from mm_dagster.applications import SUPPORTED_EVIDENTLY_VERSION

    assert SUPPORTED_EVIDENTLY_VERSION.startswith("0.7.")


def test_reference_sample_is_stored_with_the_endpoint(mm: Monitoring, window: Window) -> None:
    seed(mm, window, drift=False)
    ep = mm.get_endpoint("m")
    stored = mm.references.load(ep.id)
    assert stored is not None and len(stored) == 3000
    assert list(stored.columns) == ep.columns


@pytest.mark.slow  # > 2 s: Evidently's report and snapshot
def test_drift_result_report_and_snapshot(
    mm: Monitoring,
    evidently_app: EvidentlyDataDriftApplication,
    window: Window,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import evidently.ui.workspace as ws

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Evidently Workspace must not be opened per window")

    monkeypatch.setattr(ws.Workspace, "__init__", refuse)
    seed(mm, window, drift=True)
    (report,) = mm.run_window([evidently_app], window)
    assert not report.failures
    (result,) = mm.results.results(app="evidently-data-drift")
    assert result.kind == ResultKindApp.data_drift and result.status == ResultStatusApp.detected
    assert result.value == pytest.approx(4 / 5)  # f0..f3 drifted, c0 not
    assert set(result.extra_data["psi"]) == {"f0", "f1", "f2", "f3", "c0"}
    metrics = {m.name for m in mm.results.metrics(app="evidently-data-drift")}
    assert metrics == {"psi_f0", "psi_f1", "psi_f2", "psi_f3", "psi_c0"}
    html = Path(result.extra_data["report"].removeprefix("file://")).read_text()
    assert "<html" in html.lower() and len(html) > 10_000
    snapshots = list(
        (
            Path(evidently_app.evidently_workspace_path)
            / str(evidently_app.evidently_project_id)
            / "snapshots"
        ).glob("*.json")
    )
    assert [p.stem for p in snapshots] == [result.extra_data["snapshot_id"]]
    assert json.loads(snapshots[0].read_text())["metric_results"]


@pytest.mark.slow  # > 2 s when it is the first test to import Evidently (~4 s)
def test_no_drift_no_snapshot(
    mm: Monitoring, evidently_app: EvidentlyDataDriftApplication, window: Window
) -> None:
    seed(mm, window, drift=False)
    mm.run_window([evidently_app], window)
    (result,) = mm.results.results(app="evidently-data-drift")
    assert result.status == ResultStatusApp.no_detection and result.extra_data["snapshot_id"] is None


def test_bad_construction(tmp_path: Path) -> None:
    with pytest.raises(MonitoringError, match="not a UUID"):
        EvidentlyDataDriftApplication(tmp_path, "project-1")
    with pytest.raises(ValueError, match="potential_share"):
        EvidentlyDataDriftApplication(uuid.uuid4(), tmp_path, potential_share=0.6, detected_share=0.5)


@pytest.mark.slow
def test_endpoint_without_reference_fails_clearly(
    mm: Monitoring, evidently_app: EvidentlyDataDriftApplication, window: Window
) -> None:
    mm.create_endpoint("bare", feature_names=["x"])
    import pandas as pd

    mm.record_events("bare", pd.DataFrame({"x": [1.0, 2.0], "timestamp": [window.start, window.start]}))
    (report,) = mm.run_window([evidently_app], window)
    assert "no reference data stored" in next(iter(report.failures.values()))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.slow  # ~30 s: 45 windows through Evidently
def test_memory_does_not_grow_with_stored_snapshots(mm: Monitoring, tmp_path: Path) -> None:
    """Every window adds a snapshot; RSS stays flat (bench/evidently_app.py runs 300 windows)."""
    app = EvidentlyDataDriftApplication(uuid.uuid4(), tmp_path / "ev", sample_rows=300, snapshots="always")
    mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    first = past_window(24 * 60)
    windows = [
        Window(first.start + timedelta(minutes=10 * i), first.end + timedelta(minutes=10 * i))
        for i in range(45)
    ]
    for w in windows:
        mm.record_events("m", traffic_frame(300, w.start, w.end, seed=w.start.minute))
    rss = []
    for i, w in enumerate(windows):
        (report,) = mm.run_window([app], w)
        assert not report.failures
        if i in (14, 44):
            rss.append(rss_mb())
    assert len(list((tmp_path / "ev").rglob("snapshots/*.json"))) == 45
    assert rss[1] - rss[0] < 25, f"RSS grew {rss[1] - rss[0]:.1f} MB over 30 windows"
