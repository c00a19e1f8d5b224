"""The demo as a deployment in miniature (issue 13 §3): recent partitions by default, the docs'
dummy app outside the shipped code location, sensor ticks that say what they decided, and runs
launched by the daemon through the code location the UI loads."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunsFilter, build_sensor_context, instance_for_test

from mm_dagster.alerts import WebhookChannel
from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.alert_sensors import alert_service_for
from mm_dagster.dagster_defs.config import default_partitions_start
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame

from .conftest import NOW, past_window
from .servers import http_sink


def _midnight(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def test_partitions_start_defaults_to_a_recent_day_boundary() -> None:
    before = datetime.now(UTC)
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()])
    assert config.start in {
        _midnight(before - timedelta(days=1)),
        _midnight(datetime.now(UTC) - timedelta(days=1)),
    }
    longer = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_history=timedelta(days=7))
    assert longer.start == default_partitions_start(datetime.now(UTC), timedelta(days=7))
    # Never shorter than the controller's reach.
    horizon = MonitoringConfig(apps=[HistogramDataDriftApplication()], late_data_horizon=timedelta(days=3))
    assert horizon.start == default_partitions_start(datetime.now(UTC), timedelta(days=3))
    explicit = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    assert explicit.start == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(MonitoringError, match="partitions_history must be positive"):
        MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_history=timedelta(0))


def test_default_partitions_start_is_the_start_of_a_utc_day() -> None:
    now = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    assert default_partitions_start(now, timedelta(days=1)) == datetime(2026, 12, 1, tzinfo=UTC)
    assert default_partitions_start(now, timedelta(hours=12)) == datetime(2026, 12, 1, tzinfo=UTC)


def test_shipped_code_location_has_recent_partitions_and_no_dummy_app() -> None:
    from apps.definitions import config, defs

    assert "serving-monitoring" not in [app.name for app in config.apps]
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert not [k for k in keys if "serving-monitoring" in k]
    assert config.start >= _midnight(datetime.now(UTC) - timedelta(days=2))
    assert defs.resolve_sensor_def("mm_controller").minimum_interval_seconds == 30


def test_controller_interval_is_validated() -> None:
    with pytest.raises(MonitoringError, match="controller_interval_seconds must be >= 30, got 5"):
        MonitoringConfig(apps=[HistogramDataDriftApplication()], controller_interval_seconds=5)


def _seeded(home: str) -> Monitoring:
    mm = Monitoring(home=home, clock=fixed_clock(NOW))
    mm.create_endpoint("calm", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    return mm


def _record(mm: Monitoring, window: Window, rows: int = 100, seed: int = 1) -> None:
    mm.record_events("calm", traffic_frame(rows, window.start, window.end, seed=seed))


def test_controller_ticks_log_requests_late_revisions_and_skips(
    isolated_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = str(isolated_home)
    mm = _seeded(home)
    windows = [past_window(m) for m in (45, 35, 25)]
    for i, w in enumerate(windows):
        _record(mm, w, seed=i)
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    resource = MonitoringResource(home=home)
    defs = build_definitions(config, resource=resource, clock=fixed_clock(NOW))
    controller = defs.resolve_sensor_def("mm_controller")

    def tick(cursor: str | None):  # type: ignore[no-untyped-def]
        with build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"mm": resource}
        ) as context:
            return controller.evaluate_tick(context)

    with instance_for_test() as instance:
        first = tick(None)
        logged = capfd.readouterr().err
        assert "(144 closed windows): requesting 3 runs" in logged
        assert f"3 windows with new events: {', '.join(w.key for w in windows)}" in logged
        assert "skipped 141 windows without events" in logged
        _record(mm, windows[1], rows=20, seed=9)
        second = tick(first.cursor)
        assert [r.run_key for r in second.run_requests] == [f"mm-{windows[1].key}-rev1"]
        logged = capfd.readouterr().err
        assert f"late events: window {windows[1].key} re-requested as revision 1 (120 events stored, 100" in (
            logged
        )
        assert "skipped 2 windows already analysed, no new events" in logged
        third = tick(second.cursor)
        assert third.run_requests == []
        assert third.skip_message == "no closed window with new events"
        assert "requesting 0 runs" in capfd.readouterr().err


def test_alert_delivery_ticks_log_sent_and_failed_notifications(
    isolated_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = str(isolated_home)
    mm = _seeded(home)
    with http_sink() as hook:
        channels = [WebhookChannel(hook.url), WebhookChannel("http://127.0.0.1:9/closed", timeout_seconds=1)]
        config = MonitoringConfig(
            apps=[HistogramDataDriftApplication()],
            partitions_start="2026-11-01",
            check_notifications=channels,
        )
        resource = MonitoringResource(home=home)
        defs = build_definitions(config, resource=resource)
        alerts = alert_service_for(mm, config, lambda: datetime.now(UTC))
        assert alerts.enqueue_check_failure(
            "mm/histogram-data-drift/results:x", past_window().key, "ERROR", {}
        )
        with (
            instance_for_test() as instance,
            build_sensor_context(instance=instance, resources={"mm": resource}) as context,
        ):
            result = defs.resolve_sensor_def("mm_alert_delivery").evaluate_tick(context)
        assert len(hook.requests) == 1
    assert result.skip_message == "sent 1, retrying 1, gave up 0"
    logged = capfd.readouterr().err
    assert "sent dagster-checks via webhook" in logged
    assert "retrying dagster-checks via webhook" in logged
    assert "notifications: sent 1, retrying 1, gave up 0" in logged


@pytest.mark.slow  # ~60-120 s: a dagster-daemon, its code server and two run processes
def test_demo_runs_go_through_the_code_location(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.demo import INSTANCE_YAML, running_daemon, wait_for_all_runs, wait_for_runs

    dagster_home = isolated_home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.chdir(Path(__file__).parent.parent)
    mm = Monitoring(home=str(isolated_home))
    mm.create_endpoint("calm", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    newest = Window.containing(datetime.now(UTC) - timedelta(minutes=12), 10)
    windows = [Window(newest.start - timedelta(minutes=10), newest.start), newest]
    for i, w in enumerate(windows):
        mm.record_events("calm", traffic_frame(200, w.start, w.end, seed=i))
    keys = [f"mm-{w.key}" for w in windows]
    assert os.environ["MM_HOME"] == str(isolated_home)
    with DagsterInstance.get() as instance:
        with running_daemon(isolated_home) as daemon:
            wait_for_runs(instance, "mm_controller", keys, daemon)
            wait_for_all_runs(instance, daemon)
        records = instance.get_run_records(RunsFilter(tags={"dagster/sensor_name": "mm_controller"}))
        assert sorted(r.dagster_run.tags["dagster/run_key"] for r in records) == sorted(keys)
        for record in records:
            run = record.dagster_run
            assert run.status.value == "SUCCESS"
            origin = run.remote_job_origin
            assert origin is not None  # launched from the code location: the Overview timeline lists it
            assert origin.location_name == "mm_dagster"  # dg dev and workspace.yaml agree
            # The filter of the sensor's "Runs" tab: sensor name and the code location's label
            # (a tag Dagster stores for runs with a code location origin).
            label = origin.repository_origin.get_label()
            under_sensor = RunsFilter(
                tags={"dagster/sensor_name": "mm_controller", ".dagster/repository": label}
            )
            assert len(instance.get_run_records(under_sensor)) == len(keys)


def test_a_tick_with_only_windows_before_partitions_start_says_so(
    isolated_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = str(isolated_home)
    mm = _seeded(home)
    window = past_window(60)
    _record(mm, window)
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start=window.end.isoformat())
    resource = MonitoringResource(home=home)
    defs = build_definitions(config, resource=resource, clock=fixed_clock(NOW))
    with (
        instance_for_test() as instance,
        build_sensor_context(instance=instance, definitions=defs, resources={"mm": resource}) as context,
    ):
        result = defs.resolve_sensor_def("mm_controller").evaluate_tick(context)
    assert result.run_requests == []
    assert result.skip_message == "1 window with new events before partitions_start"
    assert "requesting 0 runs" in capfd.readouterr().err
