from datetime import timedelta

import pytest

from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame


class FailsFor(ModelMonitoringApplicationBase):
    NAME = "flaky"

    def __init__(self, endpoint_name: str) -> None:
        self.endpoint_name = endpoint_name

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        if monitoring_context.endpoint_name == self.endpoint_name:
            raise ZeroDivisionError("boom")
        return {"rows": float(len(monitoring_context.sample_df))}


@pytest.fixture
def two_endpoints(mm: Monitoring, window: Window) -> tuple[ModelEndpoint, ModelEndpoint]:
    a = mm.create_endpoint("a", reference=reference_frame(3000, seed=1), label_names=["prediction"])
    b = mm.create_endpoint("b", reference=reference_frame(3000, seed=2), label_names=["prediction"])
    mm.record_events("a", traffic_frame(300, window.start, window.end, seed=3))
    mm.record_events(
        "b",
        traffic_frame(300, window.start, window.end, TrafficShape(mean_shift=3, drifted_features=4), seed=4),
    )
    return a, b


def test_failures_are_isolated_per_app_and_endpoint(mm: Monitoring, window: Window, two_endpoints) -> None:  # type: ignore[no-untyped-def]
    a, b = two_endpoints
    flaky, drift = mm.run_window([FailsFor("a"), HistogramDataDriftApplication()], window)
    assert set(flaky.failures) == {a.id} and set(flaky.outputs) == {b.id}
    assert "ZeroDivisionError: boom" in flaky.failures[a.id]
    assert set(drift.outputs) == {a.id, b.id} and not drift.failures
    statuses = drift.statuses()
    assert statuses[b.id].name == "detected" and statuses[a.id].name == "no_detection"
    assert [f.endpoint_id for f in mm.results.failures("flaky")] == [a.id]


def test_rerunning_a_window_replaces_its_rows(mm: Monitoring, window: Window, two_endpoints) -> None:  # type: ignore[no-untyped-def]
    app = HistogramDataDriftApplication()
    mm.run_window([app], window)
    first = mm.results.results(app=app.name)
    mm.run_window([app], window)
    again = mm.results.results(app=app.name)
    assert len(first) == len(again) == 6  # general, feature and prediction drift per endpoint
    assert [(r.endpoint_id, r.name, r.value) for r in first] == [
        (r.endpoint_id, r.name, r.value) for r in again
    ]
    assert len(mm.results.metrics(app=app.name)) == 6


def test_a_fixed_app_clears_its_failure_and_a_failing_rerun_keeps_old_rows(
    mm: Monitoring, window: Window, two_endpoints
) -> None:  # type: ignore[no-untyped-def]
    a, _b = two_endpoints
    mm.run_window([FailsFor("nobody")], window)
    assert len(mm.results.metrics(a.id, "flaky")) == 1
    mm.run_window([FailsFor("a")], window)
    assert len(mm.results.metrics(a.id, "flaky")) == 1  # nothing accepted is lost
    assert len(mm.results.failures("flaky")) == 1
    mm.run_window([FailsFor("nobody")], window)
    assert mm.results.failures("flaky") == []


def test_time_range_and_latest_queries(mm: Monitoring, endpoint: ModelEndpoint, window: Window) -> None:
    app = HistogramDataDriftApplication()
    windows = [
        Window(window.start - timedelta(minutes=10 * i), window.end - timedelta(minutes=10 * i))
        for i in range(3)
    ]
    for w in windows:
        mm.record_events("fraud-model", traffic_frame(100, w.start, w.end, seed=w.start.minute))
        mm.run_window([app], w)
    oldest, newest = windows[-1], windows[0]
    between = mm.results.results(endpoint.id, app.name, "general_drift", oldest.start, newest.start)
    assert [r.window_start for r in between] == [windows[2].start, windows[1].start]
    latest = mm.results.latest_results(endpoint.id)
    assert {r.name for r in latest} == {"general_drift", "feature_drift", "prediction_drift"}
    assert all(r.window_start == newest.start for r in latest)
    assert {m.window_start for m in mm.results.latest_metrics(endpoint.id)} == {newest.start}
    with mm.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT count(*) FROM mm_latest_results")).scalar_one()
    assert rows == 3


def test_deleted_endpoint_events_are_skipped(mm: Monitoring, window: Window, two_endpoints) -> None:  # type: ignore[no-untyped-def]
    _a, b = two_endpoints
    mm.delete_endpoint("a")
    (report,) = mm.run_window([HistogramDataDriftApplication()], window)
    assert set(report.outputs) == {b.id}


def test_base_pages_while_a_window_is_analysed_and_numpy_restored_after() -> None:
    from mm_dagster.runner import _numpy_huge_pages_setter, analysing_a_window, base_pages

    setter = _numpy_huge_pages_setter()
    if setter is None:
        pytest.skip("this numpy has no switch for huge pages")
    original = setter(True)
    with analysing_a_window():
        assert setter(False) is False  # the switch returns what it was: off
        with base_pages():  # nested: the outer one restores
            pass
        assert setter(False) is False
    assert setter(True) is True  # on again
    with pytest.raises(ZeroDivisionError), base_pages():
        _ = 1 / 0
    assert setter(original) is True


def test_a_window_leaves_the_collector_as_it_found_it(
    mm: Monitoring, window: Window, two_endpoints: tuple[ModelEndpoint, ModelEndpoint]
) -> None:
    import gc

    before = gc.get_threshold()
    (report,) = mm.run_window([HistogramDataDriftApplication()], window)
    assert len(report.outputs) == 2 and gc.get_threshold() == before and gc.get_freeze_count() == 0
