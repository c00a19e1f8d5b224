"""Operational health (issue 11 §5): serving metrics, comparisons with the previous window and
last week through `metric_history`, bounds, and `no_traffic` for endpoints that went silent,
through plain runs, the controller sensor and `materialize`."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from dagster import build_sensor_context, instance_for_test

from mm_dagster.applications import OperationalApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.controller import ControllerCursor
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

from .conftest import NOW, materialize_window, past_window

APP = "operational-health"
STEP = timedelta(minutes=10)


def record(mm: Monitoring, name: str, window: Window, rows: int, seed: int, **shape: float) -> pd.DataFrame:
    frame = traffic_frame(rows, window.start, window.end, TrafficShape(**shape), seed=seed)
    mm.record_events(name, frame)
    return frame


def metrics_of(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> dict[str, float]:
    return {m.name: m.value for m in mm.results.metrics(endpoint.id, APP, start=window.start, end=window.end)}


def results_of(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> dict[str, object]:
    return {r.name: r for r in mm.results.results(endpoint.id, APP, start=window.start, end=window.end)}


def test_serving_metrics_match_numpy_on_the_window(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    window = past_window(60)
    frame = record(mm, "fraud-model", window, 500, seed=3, error_rate=0.05)
    report = mm.run_window([OperationalApplication()], window)[0]
    assert not report.failures
    metrics = metrics_of(mm, endpoint, window)
    latency = frame["latency_us"].to_numpy()
    errors = int(frame["error"].notna().sum())
    assert metrics["requests"] == 500
    assert metrics["error_rate"] == pytest.approx(errors / 500)
    assert metrics["predictions_per_second"] == pytest.approx((500 - errors) / 600)
    for name, q in (("latency_p50_us", 50), ("latency_p95_us", 95), ("latency_p99_us", 99)):
        assert metrics[name] == pytest.approx(np.percentile(latency, q))
    assert metrics["latency_max_us"] == latency.max()
    assert metrics["invalid_events"] == 0
    # Nothing stored before: no comparisons.
    assert not [n for n in metrics if "_vs_" in n]
    results = results_of(mm, endpoint, window)
    assert set(results) == {"error_rate", "latency_p99", "no_traffic"}
    assert all(r.kind == ResultKindApp.system_performance for r in results.values())  # type: ignore[attr-defined]
    assert results["latency_p99"].status == ResultStatusApp.no_detection  # type: ignore[attr-defined]
    assert results["no_traffic"].status == ResultStatusApp.no_detection  # type: ignore[attr-defined]
    assert results["no_traffic"].value == 500  # type: ignore[attr-defined]


def test_bounds_decide_error_rate_and_p99_statuses(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    window = past_window(60)
    record(mm, "fraud-model", window, 400, seed=5, error_rate=0.05)
    app = OperationalApplication(
        potential_error_rate=0.01,
        detected_error_rate=0.5,
        potential_latency_p99_us=1_000,
        detected_latency_p99_us=2_000,
    )
    mm.run_window([app], window)
    results = results_of(mm, endpoint, window)
    assert results["error_rate"].status == ResultStatusApp.potential_detection  # type: ignore[attr-defined]
    assert results["latency_p99"].status == ResultStatusApp.detected  # type: ignore[attr-defined]
    assert results["latency_p99"].extra_data["detected"] == 2_000  # type: ignore[attr-defined]


def test_small_windows_are_irrelevant(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    window = past_window(60)
    record(mm, "fraud-model", window, 5, seed=5, error_rate=0.9)
    mm.run_window([OperationalApplication(min_requests=10)], window)
    results = results_of(mm, endpoint, window)
    assert results["error_rate"].status == ResultStatusApp.irrelevant  # type: ignore[attr-defined]
    assert results["latency_p99"].status == ResultStatusApp.irrelevant  # type: ignore[attr-defined]


def test_missing_latencies_give_no_latency_result(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    window = past_window(60)
    frame = traffic_frame(50, window.start, window.end, seed=2).drop(columns=["latency_us"])
    mm.record_events("fraud-model", frame)
    mm.run_window([OperationalApplication()], window)
    assert "latency_p99" not in results_of(mm, endpoint, window)
    assert "latency_p99_us" not in metrics_of(mm, endpoint, window)


def test_changes_against_the_previous_window_and_last_week(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    window = past_window(60)
    week_ago = Window(window.start - timedelta(weeks=1), window.end - timedelta(weeks=1))
    previous = Window(window.start - STEP, window.start)
    app = OperationalApplication()
    for w, rows, seed in ((week_ago, 100, 1), (previous, 400, 2), (window, 200, 3)):
        record(mm, "fraud-model", w, rows, seed=seed, error_rate=0.1)
        mm.run_window([app], w)
    metrics = metrics_of(mm, endpoint, window)
    assert metrics["requests_vs_previous"] == pytest.approx(0.5)
    assert metrics["requests_vs_last_week"] == pytest.approx(2.0)
    before = metrics_of(mm, endpoint, previous)
    assert metrics["latency_p99_us_vs_previous"] == pytest.approx(
        metrics["latency_p99_us"] / before["latency_p99_us"]
    )
    assert metrics["error_rate_vs_previous"] == pytest.approx(metrics["error_rate"] / before["error_rate"])
    extra = results_of(mm, endpoint, window)["error_rate"].extra_data  # type: ignore[attr-defined]
    assert extra["previous"] == pytest.approx(before["error_rate"])
    assert extra["vs_last_week"] == pytest.approx(metrics["error_rate_vs_last_week"])
    # Re-running the window compares with the same past windows, never with itself.
    mm.run_window([app], window)
    assert metrics_of(mm, endpoint, window) == pytest.approx(metrics)


def test_metric_history_is_one_query_per_past_window_for_all_endpoints(mm: Monitoring) -> None:
    window = past_window(60)
    previous = Window(window.start - STEP, window.start)
    for i in range(12):
        mm.create_endpoint(f"ep-{i}", reference=reference_frame(500, seed=i), label_names=["prediction"])
        for w in (previous, window):
            record(mm, f"ep-{i}", w, 30, seed=i)
    app = OperationalApplication()
    mm.run_window([app], previous)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "mm_metrics.value" in statement:
            statements.append(statement)

    sa.event.listen(mm.engine, "before_cursor_execute", count)
    try:
        mm.run_window([app], window)
    finally:
        sa.event.remove(mm.engine, "before_cursor_execute", count)
    assert len(statements) == 2  # the previous window and last week, for the 12 endpoints at once
    ratios = [m for m in mm.results.metrics(app=APP, name="requests_vs_previous")]
    assert len(ratios) == 12 and all(m.value == 1.0 for m in ratios)


def test_metric_history_rejects_a_non_positive_offset(mm: Monitoring, endpoint: ModelEndpoint) -> None:
    from mm_dagster.applications import ModelMonitoringApplicationBase, MonitoringApplicationContext

    class LooksAtItself(ModelMonitoringApplicationBase):
        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
            monitoring_context.metric_history(timedelta(0))

    window = past_window(60)
    record(mm, "fraud-model", window, 20, seed=1)
    report = mm.run_window([LooksAtItself()], window)[0]
    assert "positive timedelta" in report.failures[endpoint.id]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"potential_error_rate": 0.2, "detected_error_rate": 0.1},
        {"potential_latency_p99_us": 0, "detected_latency_p99_us": 10},
        {"potential_latency_p99_us": 10, "detected_latency_p99_us": float("inf")},
        {"no_traffic_after": 0},
        {"no_traffic_after": 2.5},
        {"min_requests": 0},
        {"seasonality": timedelta(0)},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(MonitoringError):
        OperationalApplication(**kwargs)  # type: ignore[arg-type]


def silence_setup(mm: Monitoring) -> tuple[dict[str, ModelEndpoint], list[Window]]:
    """steady: events in 4 windows, then none; sporadic: events only 2 windows before the last;
    busy: events in every window. Windows are the 5 before NOW's last closed one."""
    endpoints = {
        name: mm.create_endpoint(name, reference=reference_frame(500, seed=i), label_names=["prediction"])
        for i, name in enumerate(("steady", "sporadic", "busy"))
    }
    last = past_window(20)
    windows = [Window(last.start - STEP * i, last.end - STEP * i) for i in range(4, -1, -1)]
    for i, w in enumerate(windows):
        if i < 4:
            record(mm, "steady", w, 50, seed=i)
        if i == 2:
            record(mm, "sporadic", w, 50, seed=10 + i)
        record(mm, "busy", w, 50, seed=20 + i)
    return endpoints, windows


def test_an_endpoint_that_goes_silent_gets_no_traffic(mm: Monitoring) -> None:
    endpoints, windows = silence_setup(mm)
    report = mm.run_window([OperationalApplication(no_traffic_after=3)], windows[-1])[0]
    assert not report.failures
    assert set(report.outputs) == {endpoints["steady"].id, endpoints["busy"].id}
    silent = results_of(mm, endpoints["steady"], windows[-1])
    assert set(silent) == {"no_traffic"}
    assert silent["no_traffic"].status == ResultStatusApp.detected  # type: ignore[attr-defined]
    assert silent["no_traffic"].value == 0  # type: ignore[attr-defined]
    assert silent["no_traffic"].extra_data["last_request"] is not None  # type: ignore[attr-defined]
    assert metrics_of(mm, endpoints["steady"], windows[-1])["requests"] == 0
    busy = results_of(mm, endpoints["busy"], windows[-1])
    assert busy["no_traffic"].status == ResultStatusApp.no_detection  # type: ignore[attr-defined]
    # Sporadic traffic is not steady: no result. Apps that did not ask never see silent endpoints.
    assert not results_of(mm, endpoints["sporadic"], windows[-1])
    from mm_dagster.applications import HistogramDataDriftApplication

    drift = mm.run_window([HistogramDataDriftApplication()], windows[-1])[0]
    assert set(drift.outputs) == {endpoints["busy"].id}


def test_a_longer_lookback_needs_longer_steady_traffic(mm: Monitoring) -> None:
    endpoints, windows = silence_setup(mm)
    mm.run_window([OperationalApplication(no_traffic_after=5)], windows[-1])
    assert not results_of(mm, endpoints["steady"], windows[-1])


def silent_world(mm: Monitoring) -> tuple[ModelEndpoint, list[Window]]:
    endpoint = mm.create_endpoint("quiet", reference=reference_frame(500, seed=1), label_names=["prediction"])
    last = past_window(20)
    windows = [Window(last.start - STEP * i, last.end - STEP * i) for i in range(3, -1, -1)]
    for i, w in enumerate(windows[:3]):
        record(mm, "quiet", w, 40, seed=i)
    return endpoint, windows


def test_the_controller_requests_a_window_where_everything_went_silent(mm: Monitoring) -> None:
    endpoint, windows = silent_world(mm)
    home = mm.settings.home
    config = MonitoringConfig(apps=[OperationalApplication()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=home), clock=fixed_clock(NOW))
    sensor = defs.resolve_sensor_def("mm_controller")
    with instance_for_test() as instance:
        with build_sensor_context(
            instance=instance, definitions=defs, resources={"mm": MonitoringResource(home=home)}
        ) as context:
            tick = sensor.evaluate_tick(context)
        keys = [r.partition_key for r in tick.run_requests]
        assert windows[-1].key in keys  # no events at all, yet requested
        assert keys[-4:] == [w.key for w in windows]
        with build_sensor_context(
            instance=instance,
            cursor=tick.cursor,
            definitions=defs,
            resources={"mm": MonitoringResource(home=home)},
        ) as context:
            again = sensor.evaluate_tick(context)
        assert not again.run_requests  # once, like any window
        checks = {}
        for w in windows:
            result = materialize_window(defs, w.key, instance, home)
            assert result.success
            (evaluation,) = [
                e
                for e in result.get_asset_check_evaluations()
                if e.check_name == "no_traffic_within_thresholds"
            ]
            checks[w.key] = evaluation.passed
        # The app's no_traffic check fails on the silent window only.
        assert checks == {w.key: w != windows[-1] for w in windows}
    (silence,) = [
        r for r in mm.results.results(endpoint.id, APP, "no_traffic") if r.window_start == windows[-1].start
    ]
    assert silence.status == ResultStatusApp.detected
    assert [r.status for r in mm.results.results(endpoint.id, APP, "no_traffic")][:3] == [
        ResultStatusApp.no_detection
    ] * 3
    assert ControllerCursor.from_json(tick.cursor).seen[windows[-1].key].events == 0


def test_without_a_silence_app_empty_windows_are_not_requested(mm: Monitoring) -> None:
    from mm_dagster.applications import HistogramDataDriftApplication

    _, windows = silent_world(mm)
    home = mm.settings.home
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=home), clock=fixed_clock(NOW))
    with (
        instance_for_test() as instance,
        build_sensor_context(
            instance=instance, definitions=defs, resources={"mm": MonitoringResource(home=home)}
        ) as context,
    ):
        tick = defs.resolve_sensor_def("mm_controller").evaluate_tick(context)
    assert windows[-1].key not in [r.partition_key for r in tick.run_requests]


@pytest.mark.parametrize("lookback", [0, "3", 1.5])
def test_a_bad_silent_endpoint_windows_fails_when_definitions_are_built(lookback: object) -> None:
    from mm_dagster.applications import HistogramDataDriftApplication

    app = HistogramDataDriftApplication()
    app.silent_endpoint_windows = lookback  # type: ignore[assignment]
    with pytest.raises(MonitoringError, match="silent_endpoint_windows of app 'histogram-data-drift'"):
        build_definitions(MonitoringConfig(apps=[app], partitions_start="2026-11-01"))


def test_a_silent_endpoint_whose_events_were_all_invalid_says_so(mm: Monitoring) -> None:
    from mm_dagster.storage.invalid_events import InvalidEventKey

    endpoint, windows = silent_world(mm)
    key = InvalidEventKey(endpoint.id, windows[-1].start, "f1: expected a number")
    mm.invalid_events.add({key: (7, "'n/a'")})
    mm.run_window([OperationalApplication()], windows[-1])
    assert results_of(mm, endpoint, windows[-1])["no_traffic"].status == ResultStatusApp.detected  # type: ignore[attr-defined]
    assert metrics_of(mm, endpoint, windows[-1])["invalid_events"] == 7
