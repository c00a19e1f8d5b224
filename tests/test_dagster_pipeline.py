"""The Dagster wiring, exercised through Dagster: materialize(), sensors, checks."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    build_sensor_context,
    instance_for_test,
)

from apps.dummy_app import ServingMonitoring
from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.controller import ControllerCursor
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.windows import Window, closed_before
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.checks import CHECK_NAME, plain_value, window_checks
from mm_dagster.dagster_defs.config import DefinitionNames
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .conftest import NOW, materialize_window, past_window

# The run tags of a partition-range run. Dagster exports no public names for them (only private
# constants), so the documented tag strings are spelled out.
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

NAMES = DefinitionNames()
WINDOW_EVENTS = NAMES.asset_key("window_events")


def results_key(app: str) -> AssetKey:
    return NAMES.app_asset_key(app, "results")


FEATURE_DRIFT = "feature_drift_within_thresholds"


class AlwaysFails(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        raise RuntimeError(f"cannot analyse {monitoring_context.endpoint_name}")


class FailsForOne(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        if monitoring_context.endpoint_name == "calm":
            raise RuntimeError("calm is broken")
        return {"rows": float(len(monitoring_context.sample_df))}


@pytest.fixture
def home(isolated_home: Path) -> str:
    return str(isolated_home)


@pytest.fixture
def seeded(home: str) -> Monitoring:
    mm = Monitoring(home=home, clock=fixed_clock(NOW))
    mm.create_endpoint("calm", reference=reference_frame(4000, seed=1), label_names=["prediction"])
    mm.create_endpoint("drifty", reference=reference_frame(4000, seed=2), label_names=["prediction"])
    return mm


def seed_window(mm: Monitoring, window: Window, drift: bool = False) -> None:
    mm.record_events("calm", traffic_frame(300, window.start, window.end, seed=window.start.minute))
    shape = TrafficShape(mean_shift=3.0, drifted_features=4) if drift else TrafficShape()
    mm.record_events("drifty", traffic_frame(300, window.start, window.end, shape, seed=window.start.hour))


def definitions(home: str, *apps: ModelMonitoringApplicationBase, **kwargs):  # type: ignore[no-untyped-def]
    config = MonitoringConfig(
        apps=list(apps) or [HistogramDataDriftApplication()], partitions_start="2026-11-01", **kwargs
    )
    return build_definitions(config, resource=MonitoringResource(home=home))


def check_evaluations(instance: DagsterInstance, run_id: str) -> list:  # type: ignore[type-arg]
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]  # type: ignore[union-attr]


def test_definitions_load_with_every_key() -> None:
    from apps.definitions import config, defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    gating = {"fraud_candidate_model", "fraud_promotion", "fraud_retrained_model"}  # apps/gating.py
    apps = [app.name for app in config.apps]
    assert {"histogram-data-drift", "data-quality", "multivariate-drift", "operational-health"} <= set(apps)
    assert keys == {"mm/window_events", "mm/analysis/shard_1_of_1"} | gating | {
        f"mm/{app}/{app}_{kind}" for app in apps for kind in ("results", "metrics")
    }
    checks = {k.to_user_string() for k in graph.asset_check_keys}
    assert checks == {"fraud_candidate_model:fraud_detector_not_drifting"} | {
        f"mm/{app.name}/{app.name}_results:{check.name}"
        for app in config.apps
        for check in window_checks(app)
    }
    # built-in apps check each result name (an app that declares none has one check: see below)
    assert "mm/histogram-data-drift/histogram-data-drift_results:general_drift_within_thresholds" in checks
    assert defs.resolve_sensor_def("mm_controller").minimum_interval_seconds == 30  # the config's interval
    assert defs.resolve_job_def("mm_monitoring_job").partitions_def is not None


def test_materialize_window_and_apps_for_a_partition(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window, drift=True)
    defs = definitions(home, HistogramDataDriftApplication(), ServingMonitoring())
    with instance_for_test() as instance:
        result = materialize_window(defs, window.key, instance, home)
        assert result.success
        mats = {m.asset_key: m for m in result.asset_materializations_for_node("mm__window_events")}
        meta = mats[WINDOW_EVENTS].metadata
        assert meta["events"].value == 600 and meta["endpoints"].value == 2
        assert meta["errors"].value == 0
        # written after the window closed but before its first analysis: history, not late
        assert meta["late_events"].value == 0
        assert meta["error_rate"].value == 0.0
        per_endpoint = {row["endpoint"]: row for row in plain_value(meta["per_endpoint"])}
        assert per_endpoint["drifty"]["events"] == 300 and per_endpoint["drifty"]["errors"] == 0
        assert per_endpoint["drifty"]["page"] == "http://127.0.0.1:8080/endpoints/drifty"
        drift_meta = {
            m.asset_key: m.metadata
            for m in result.asset_materializations_for_node("mm_app_histogram_data_drift")
        }
        assert drift_meta[results_key("histogram-data-drift")]["endpoints_analysed"].value == 2
        assert drift_meta[results_key("histogram-data-drift")]["detected"].value == 1
        links = {
            k: v.value
            for k, v in drift_meta[results_key("histogram-data-drift")].items()
            if k.startswith("page_")
        }
        # the detected endpoint's window page on the service, one click from the UI
        assert links == {
            "page_drifty": f"http://127.0.0.1:8080/endpoints/drifty/windows/{quote(window.key, safe='')}"
            "?app=histogram-data-drift"
        }
        assert meta["overview"].value == "http://127.0.0.1:8080/"

        evaluations = {(e.asset_key, e.check_name): e for e in check_evaluations(instance, result.run_id)}
        drift_check = evaluations[results_key("histogram-data-drift"), FEATURE_DRIFT]
        assert not drift_check.passed and drift_check.severity == AssetCheckSeverity.ERROR
        assert drift_check.partition == window.key
        (row,) = plain_value(drift_check.metadata["flagged_results"])
        assert (
            row["endpoint"] == "drifty" and row["result"] == "feature_drift" and row["status"] == "detected"
        )
        assert set(row["drifting_features"].split(", ")) == {"f0", "f1", "f2", "f3"}
        assert drift_check.metadata["page_drifty"].value.endswith("?app=histogram-data-drift")
        assert "drifty: feature_drift detected" in drift_check.metadata["flagged"].value
        # the run succeeded (green) but its tags say what it found
        tags = instance.get_run_by_id(result.run_id).tags  # type: ignore[union-attr]
        assert tags["mm/histogram-data-drift"] == "detected"
        prediction = evaluations[results_key("histogram-data-drift"), "prediction_drift_within_thresholds"]
        assert prediction.passed
        dummy = evaluations[results_key("serving-monitoring"), CHECK_NAME]
        assert not dummy.passed and dummy.severity == AssetCheckSeverity.WARN
    stored = seeded.results.results(app="histogram-data-drift", start=window.start, end=window.end)
    assert len(stored) == 6


def test_check_results_are_recorded_per_partition(seeded: Monitoring, home: str) -> None:
    """Partitioned asset checks are a preview in Dagster 1.13: this pins their behaviour."""
    calm, drifted = past_window(80), past_window(60)
    seed_window(seeded, calm)
    seed_window(seeded, drifted, drift=True)
    defs = definitions(home)
    check_key = results_key("histogram-data-drift")
    with instance_for_test() as instance:
        for w in (calm, drifted):
            materialize_window(defs, w.key, instance, home)
        records = instance.event_log_storage.get_asset_check_execution_history(
            check_key=__import__("dagster").AssetCheckKey(check_key, FEATURE_DRIFT), limit=10
        )
        by_partition = {}
        for rec in records:
            evaluation = rec.event.dagster_event.event_specific_data  # type: ignore[union-attr]
            by_partition[evaluation.partition] = evaluation.passed
        assert by_partition == {calm.key: True, drifted.key: False}


def test_an_app_failing_for_one_endpoint_does_not_fail_the_run(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    defs = definitions(home, FailsForOne())
    with instance_for_test() as instance:
        result = materialize_window(defs, window.key, instance, home)
        assert result.success
        meta = {
            m.asset_key: m.metadata for m in result.asset_materializations_for_node("mm_app_fails_for_one")
        }
        r = meta[results_key("fails-for-one")]
        assert r["endpoints_failed"].value == 1 and "calm is broken" in r["failures"].value
        assert r["results_no_detection"].value == 0
    assert len(seeded.results.failures("fails-for-one")) == 1


def test_an_app_failing_everywhere_fails_its_step_only(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    defs = definitions(home, AlwaysFails(), HistogramDataDriftApplication())
    with instance_for_test() as instance:
        result = materialize_window(defs, window.key, instance, home, raise_on_error=False)
        assert not result.success
        failed = [e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
        assert failed == ["mm_app_always_fails"]
    assert len(seeded.results.results(app="histogram-data-drift")) == 6
    assert len(seeded.results.failures("always-fails")) == 2


def test_range_backfill_runs_once_and_records_each_window(seeded: Monitoring, home: str) -> None:
    windows = [past_window(m) for m in (80, 70, 60)]
    for i, w in enumerate(windows):
        seed_window(seeded, w, drift=i == 2)
    defs = definitions(home)
    job = defs.resolve_job_def("mm_monitoring_job")
    with instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            resources={"mm": MonitoringResource(home=home)},
            tags={
                ASSET_PARTITION_RANGE_START_TAG: windows[0].key,
                ASSET_PARTITION_RANGE_END_TAG: windows[-1].key,
            },
        )
        assert result.success
        evaluations = check_evaluations(instance, result.run_id)
        assert {(e.partition, e.passed) for e in evaluations if e.check_name == FEATURE_DRIFT} == {
            (windows[0].key, True),
            (windows[1].key, True),
            (windows[2].key, False),
        }
        mats = instance.get_materialized_partitions(results_key("histogram-data-drift"))
        assert {w.key for w in windows} <= set(mats)
        # each window's materialization carries that window's numbers, not the range's totals
        detected = {}
        for record in instance.fetch_materializations(results_key("histogram-data-drift"), limit=10).records:
            materialization = record.asset_materialization
            assert materialization is not None
            detected[materialization.partition] = materialization.metadata["detected"].value
        assert detected == {windows[0].key: 0, windows[1].key: 0, windows[2].key: 1}
        events = {}
        for record in instance.fetch_materializations(WINDOW_EVENTS, limit=10).records:
            materialization = record.asset_materialization
            assert materialization is not None
            events[materialization.partition] = materialization.metadata["events"].value
        assert events == {w.key: 600 for w in windows}
    assert len(seeded.results.results(app="histogram-data-drift")) == 3 * 2 * 3


def test_backfill_rerun_replaces_results(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    defs = definitions(home)
    with instance_for_test() as instance:
        for _ in range(2):
            materialize_window(defs, window.key, instance, home)
    assert len(seeded.results.results(app="histogram-data-drift")) == 6
    assert len(seeded.results.metrics(app="histogram-data-drift")) == 6


# -- the controller sensor ---------------------------------------------------------------------


def tick(defs, instance, home: str, cursor: str | None = None):  # type: ignore[no-untyped-def]
    with build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"mm": MonitoringResource(home=home)}
    ) as context:
        return defs.resolve_sensor_def("mm_controller").evaluate_tick(context)


def controller_defs(home: str, now: datetime, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("partitions_start", "2026-11-01")
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], **kwargs)
    return build_definitions(config, resource=MonitoringResource(home=home), clock=fixed_clock(now))


def test_sensor_first_tick_several_windows_then_no_duplicates(seeded: Monitoring, home: str) -> None:
    now = NOW + timedelta(seconds=30)
    windows = [past_window(m) for m in (45, 35, 25)]
    for w in windows:
        seed_window(seeded, w)
    defs = controller_defs(home, now)
    with instance_for_test() as instance:
        first = tick(defs, instance, home)
        assert [r.partition_key for r in first.run_requests] == [w.key for w in windows]
        assert [r.run_key for r in first.run_requests] == [f"mm-{w.key}" for w in windows]
        second = tick(defs, instance, home, first.cursor)
        assert second.run_requests == [] and second.cursor == first.cursor


def test_sensor_nothing_closed_yet(seeded: Monitoring, home: str) -> None:
    now = NOW + timedelta(minutes=5, seconds=30)
    open_window = Window.containing(now, 10)
    with Monitoring(seeded.settings, clock=fixed_clock(now)) as recorded_now:
        seed_window(recorded_now, Window(open_window.start, now))
    defs = controller_defs(home, now)
    with instance_for_test() as instance:
        assert tick(defs, instance, home).run_requests == []


def test_sensor_skips_windows_without_events(seeded: Monitoring, home: str) -> None:
    now = NOW
    seed_window(seeded, past_window(60))
    defs = controller_defs(home, now)
    with instance_for_test() as instance:
        assert [r.partition_key for r in tick(defs, instance, home).run_requests] == [past_window(60).key]


def test_sensor_caps_catch_up_after_downtime(
    seeded: Monitoring, home: str, capfd: pytest.CaptureFixture[str]
) -> None:
    now = NOW + timedelta(seconds=90)
    closed_end = closed_before(now, timedelta(minutes=1), 10)
    windows = [
        Window(closed_end - timedelta(minutes=10 * i), closed_end - timedelta(minutes=10 * (i - 1)))
        for i in range(20, 0, -1)
    ]
    for w in windows:
        seed_window(seeded, w)
    defs = controller_defs(home, now, max_catchup_windows=5)
    stale_cursor = ControllerCursor(windows[0].start, 10).to_json()
    with instance_for_test() as instance:
        result = tick(defs, instance, home, stale_cursor)
        assert [r.partition_key for r in result.run_requests] == [w.key for w in windows[-5:]]
    assert f"15 windows with new events, from {windows[0].key} to {windows[-6].key}, wait" in (
        capfd.readouterr().err
    )
    with instance_for_test() as instance:  # the next ticks request the rest, newest first
        cursor, requested = result.cursor, [r.partition_key for r in result.run_requests]
        for _ in range(3):
            later = tick(defs, instance, home, cursor)
            cursor, requested = later.cursor, requested + [r.partition_key for r in later.run_requests]
    assert sorted(requested) == [w.key for w in windows]
    (backlog,) = result.asset_events  # what the UI plots on the window asset
    assert backlog.metadata["windows_waiting"].value == 15
    assert backlog.metadata["windows_requested"].value == 5


def test_the_first_tick_reports_history_it_does_not_request(
    seeded: Monitoring, home: str, capfd: pytest.CaptureFixture[str]
) -> None:
    closed_end = closed_before(NOW, timedelta(minutes=1), 10)
    history = [
        Window(closed_end - timedelta(minutes=10 * i), closed_end - timedelta(minutes=10 * (i - 1)))
        for i in range(20, 0, -1)
    ]
    for w in history:
        seed_window(seeded, w)
    defs = controller_defs(home, NOW, late_data_horizon=timedelta(hours=1))
    with instance_for_test() as instance:
        first = tick(defs, instance, home)
    assert [r.partition_key for r in first.run_requests] == [w.key for w in history[-6:]]
    logged = capfd.readouterr().err
    assert f"first tick: {14 * 600} events in windows from {history[0].key}" in logged
    assert "Launch backfill" in logged


def test_windows_before_partitions_start_are_reported(
    seeded: Monitoring, home: str, capfd: pytest.CaptureFixture[str]
) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    defs = controller_defs(home, NOW, partitions_start=window.end.isoformat())
    with instance_for_test() as instance:
        assert tick(defs, instance, home).run_requests == []
    assert f"from {window.key} to {window.key} are before partitions_start" in capfd.readouterr().err


def test_sensor_re_requests_a_window_when_late_events_arrive(seeded: Monitoring, home: str) -> None:
    now = NOW
    window = past_window(60)
    seed_window(seeded, window)
    defs = controller_defs(home, now)
    with instance_for_test() as instance:
        first = tick(defs, instance, home)
        assert [r.run_key for r in first.run_requests] == [f"mm-{window.key}"]
        seeded.record_events("calm", traffic_frame(20, window.start, window.end, seed=99))
        late = tick(defs, instance, home, first.cursor)
        (request,) = late.run_requests
        assert request.partition_key == window.key
        assert request.run_key.startswith(f"mm-{window.key}-rev")
        assert tick(defs, instance, home, late.cursor).run_requests == []


def test_an_arrival_during_a_tick_is_seen_by_the_next_tick(
    seeded: Monitoring, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_dagster.storage.arrival_log import ArrivalLog

    window = past_window(60)
    seed_window(seeded, window)
    defs = controller_defs(home, NOW)
    real_spans = ArrivalLog.spans
    arrived = []

    def spans_then_a_late_batch(self: ArrivalLog, **kwargs: object) -> object:
        found = real_spans(self, **kwargs)  # type: ignore[arg-type]
        if not arrived:  # a batch for the same window commits while the tick reads
            arrived.append(seeded.record_events("calm", traffic_frame(20, window.start, window.end, seed=7)))
        return found

    monkeypatch.setattr(ArrivalLog, "spans", spans_then_a_late_batch)
    with instance_for_test() as instance:
        first = tick(defs, instance, home)
        assert [r.run_key for r in first.run_requests] == [f"mm-{window.key}"]
        monkeypatch.setattr(ArrivalLog, "spans", real_spans)
        (again,) = tick(defs, instance, home, first.cursor).run_requests
        assert again.partition_key == window.key and again.run_key.startswith(f"mm-{window.key}-rev")


class ProjectEcho(ModelMonitoringApplicationBase):
    seen: ClassVar[list[str]] = []

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        ProjectEcho.seen.append(monitoring_context.project_name)


def test_apps_see_the_configs_project(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    defs = definitions(home, ProjectEcho(), project="fraud-team")
    ProjectEcho.seen.clear()
    with instance_for_test() as instance:
        assert materialize_window(defs, window.key, instance, home).success
    assert ProjectEcho.seen == ["fraud-team", "fraud-team"]


def test_mm_windows_lists_windows_that_were_not_analysed(
    seeded: Monitoring, home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_dagster.cli import main

    analysed, forgotten = past_window(60), past_window(40)
    seed_window(seeded, analysed)
    seed_window(seeded, forgotten)
    seeded.run_window([HistogramDataDriftApplication()], analysed)
    monkeypatch.setenv("MM_HOME", home)
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    monkeypatch.setattr("apps.definitions.config", config)
    hours_back = (datetime.now(UTC) - NOW).total_seconds() / 3600 + 24  # the test's NOW is in the past
    assert main(["windows", "--hours", str(hours_back), "--json"]) == 0
    rows = {row["window"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert (rows[analysed.key]["events"], rows[analysed.key]["state"]) == (600, "analysed")
    assert (rows[forgotten.key]["events"], rows[forgotten.key]["state"]) == (
        600,
        "NOT ANALYSED by histogram-data-drift",
    )
    assert main(["windows", "--hours", str(hours_back)]) == 0
    table = capsys.readouterr().out
    assert f"{analysed.start:%Y-%m-%d %H:%M}     600  analysed" in table


def test_late_events_are_those_written_after_the_first_analysis(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    defs = definitions(home)
    with instance_for_test() as instance:
        first = materialize_window(defs, window.key, instance, home)
        (meta,) = [m.metadata for m in first.asset_materializations_for_node("mm__window_events")]
        assert meta["late_events"].value == 0
        # a straggler batch written (by the real clock) after the window was analysed
        Monitoring(home=home).record_events("calm", traffic_frame(25, window.start, window.end, seed=9))
        second = materialize_window(defs, window.key, instance, home)
        (meta,) = [m.metadata for m in second.asset_materializations_for_node("mm__window_events")]
        assert meta["late_events"].value == 25 and meta["events"].value == 625
        # a second straggler batch: late since the first analysis, both batches count
        Monitoring(home=home).record_events("drifty", traffic_frame(10, window.start, window.end, seed=8))
        third = materialize_window(defs, window.key, instance, home)
        (meta,) = [m.metadata for m in third.asset_materializations_for_node("mm__window_events")]
        assert meta["late_events"].value == 35 and meta["events"].value == 635


def test_assets_carry_owners_tags_and_a_freshness_policy(home: str) -> None:
    """Dagster's FreshnessDaemon warns when no window was analysed for 3 base periods."""
    from dagster import FreshnessPolicy

    defs = definitions(home, owners=["team:fraud"])
    specs = {spec.key: spec for a in defs.assets for spec in a.specs}  # type: ignore[union-attr]
    expected = FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=120), warn_window=timedelta(minutes=30)
    )
    assert {s.freshness_policy for s in specs.values()} == {expected}
    assert {tuple(s.owners) for s in specs.values()} == {("team:fraud",)}
    results = specs[results_key("histogram-data-drift")]
    assert {"mm/app": "histogram-data-drift", "mm/kind": "results"}.items() <= results.tags.items()
    assert "general_drift, feature_drift, prediction_drift" in (results.description or "")


class LogsASummary(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        monitoring_context.log_artifact("summary", body=f"rows={len(monitoring_context.sample_df)}")
        return {"rows": float(len(monitoring_context.sample_df))}


def test_artifacts_are_named_by_endpoint_name(seeded: Monitoring, home: str) -> None:
    window = past_window(60)
    seed_window(seeded, window)
    with instance_for_test() as instance:
        result = materialize_window(definitions(home, LogsASummary()), window.key, instance, home)
    (meta,) = [
        m.metadata
        for m in result.asset_materializations_for_node("mm_app_logs_a_summary")
        if m.asset_key == results_key("logs-a-summary")
    ]
    artifacts = sorted(k for k in meta if k.startswith("artifact_"))
    assert artifacts == ["artifact_summary-calm", "artifact_summary-drifty"]
    assert Path(str(meta["artifact_summary-calm"].value)).read_text() == "rows=300"


@pytest.mark.parametrize(
    ("statuses", "failures", "tag"),
    [
        ([], {}, "no_results"),
        ([], {"e9": "boom"}, "app_failed"),
        ([ResultStatusApp.no_detection], {"e9": "boom"}, "app_failed"),
        ([ResultStatusApp.potential_detection], {"e9": "boom"}, "potential_detection"),
        ([ResultStatusApp.no_detection, ResultStatusApp.detected], {}, "detected"),
    ],
)
def test_run_status_tag(statuses: list[ResultStatusApp], failures: dict[str, str], tag: str) -> None:
    from mm_dagster.core.outputs import ModelMonitoringApplicationResult
    from mm_dagster.core.report import AppWindowReport
    from mm_dagster.core.schemas import ResultKindApp
    from mm_dagster.dagster_defs.assets import run_status_tag

    report = AppWindowReport("app", past_window(60), failures=failures)
    for i, status in enumerate(statuses):
        result = ModelMonitoringApplicationResult("r", 0.5, ResultKindApp.data_drift, status)
        report.outputs[f"e{i}"] = ([result], [])
    assert run_status_tag([report]) == tag
