"""Apps are isolated: their own view of the window's events, read-only reference stats and
endpoint, and neither `sys.exit()` nor a hanging app stops the run."""

import copy
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import instance_for_test

from mm_dagster.applications import ModelMonitoringApplicationBase, MonitoringApplicationContext
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame

from .conftest import NOW, materialize_window


class Mutator(ModelMonitoringApplicationBase):
    """Changes everything it can reach, in every way pandas and Python allow."""

    errors: list[str] = []

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        ctx = monitoring_context
        df = ctx.sample_df
        df["f0"] = df["f0"] + 50
        df.loc[:, "f1"] = -1.0
        df.loc[df.index[0], "f2"] = 1e9
        df.iloc[1, df.columns.get_loc("f3")] = 1e9
        df["new_column"] = 1
        df.drop(columns=["c0"], inplace=True)
        assert (ctx.sample_df["f1"] == -1.0).all()  # the app sees its own changes
        for change in (
            lambda: ctx.feature_stats["f0"].__setitem__("mean", 99.0),
            lambda: ctx.feature_stats["f0"]["hist"][0].__setitem__(0, 10**6),
            lambda: ctx.feature_stats.pop("f0"),
            lambda: ctx.model_endpoint.feature_stats["f0"].update(mean=99.0),
            lambda: ctx.model_endpoint.status.feature_stats["f0"]["hist"][1].append(1.0),
            lambda: ctx.model_endpoint.feature_names.append("x"),
        ):
            try:
                change()
            except TypeError as exc:
                Mutator.errors.append(str(exc))
        mine = copy.deepcopy(ctx.feature_stats)  # a mutable copy for whoever needs one
        mine["f0"]["mean"] = 99.0


class Observer(ModelMonitoringApplicationBase):
    seen: dict[str, Any] = {}

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        ctx = monitoring_context
        Observer.seen.update(
            df=ctx.sample_df.copy(), stats=copy.deepcopy(ctx.feature_stats), names=list(ctx.feature_names)
        )


def test_one_apps_changes_are_invisible_to_the_next_app_and_to_the_cached_frame(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window
) -> None:
    mm.record_events("fraud-model", traffic_frame(100, window.start, window.end, seed=3))
    events = mm.read_window(window)  # what the Dagster resource caches for the run's steps
    cached = events[endpoint.id].copy(deep=True)
    reference = copy.deepcopy(mm.get_endpoint("fraud-model").feature_stats)
    Mutator.errors.clear()
    mutator, observer = mm.run_window([Mutator(), Observer()], window, events)
    assert not mutator.failures and not observer.failures
    pd.testing.assert_frame_equal(events[endpoint.id], cached)
    pd.testing.assert_frame_equal(Observer.seen["df"], cached)
    assert len(Mutator.errors) == 6 and all("read-only" in e for e in Mutator.errors)
    assert Observer.seen["stats"] == reference
    assert Observer.seen["names"] == endpoint.feature_names
    assert mm.get_endpoint("fraud-model").feature_stats == reference
    # A second run on the same cached frames (the next Dagster step) sees them unchanged too.
    mm.run_window([Observer()], window, events)
    pd.testing.assert_frame_equal(Observer.seen["df"], cached)


class Views(ModelMonitoringApplicationBase):
    """Records the endpoint view each context holds (built only when an app asks for it)."""

    def __init__(self, ask: bool) -> None:
        self.ask = ask
        self.views: list[object] = []
        self.stats: list[object] = []

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
        ctx = monitoring_context
        self.stats.append(ctx.shared_feature_stats)
        if self.ask:
            self.views.append(ctx.model_endpoint)


def test_the_read_only_endpoint_is_built_once_when_an_app_asks_and_never_otherwise(
    mm: Monitoring, endpoint: ModelEndpoint, window: Window, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_dagster.applications import endpoint_view

    built: list[str] = []
    freeze_view = endpoint_view.monitored_endpoint
    monkeypatch.setattr(
        endpoint_view, "monitored_endpoint", lambda e, p="default": built.append(e.id) or freeze_view(e, p)
    )
    mm.record_events("fraud-model", traffic_frame(100, window.start, window.end, seed=3))
    events = mm.read_window(window)
    reader = Views(ask=False)
    mm.run_window([reader], window, events)
    assert built == [] and reader.stats[0] == mm.get_endpoint("fraud-model").feature_stats
    first, second = Views(ask=True), Views(ask=True)
    mm.run_window([first, second], window, events)
    assert built == [endpoint.id]  # one view, shared by both apps' contexts
    assert first.views[0] is second.views[0]
    with pytest.raises(TypeError, match="read-only"):
        first.views[0].feature_stats["f0"]["hist"][0].append(1)  # type: ignore[attr-defined]


class Exits(ModelMonitoringApplicationBase):
    def __init__(self, how: str) -> None:
        self.how = how

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        if self.how == "sys.exit":
            sys.exit(3)
        raise GeneratorExit("odd")


class Counts(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        return {"rows": float(len(monitoring_context.sample_df))}


@pytest.fixture
def two_endpoints(mm: Monitoring, window: Window) -> list[ModelEndpoint]:
    endpoints = []
    for name, seed in (("a", 1), ("b", 2)):
        endpoints.append(mm.create_endpoint(name, reference=reference_frame(500, seed=seed)))
        mm.record_events(name, traffic_frame(50, window.start, window.end, seed=seed))
    return endpoints


@pytest.mark.parametrize("how", ["sys.exit", "base-exception"])
def test_sys_exit_in_an_app_is_an_app_failure(
    mm: Monitoring, window: Window, two_endpoints: list[ModelEndpoint], how: str
) -> None:
    exits, counts = mm.run_window([Exits(how), Counts()], window)
    assert set(exits.failures) == {e.id for e in two_endpoints} and not exits.outputs
    assert ("SystemExit: 3" if how == "sys.exit" else "GeneratorExit: odd") in next(
        iter(exits.failures.values())
    )
    assert set(counts.outputs) == {e.id for e in two_endpoints}
    assert len(mm.results.failures("exits")) == 2


def test_keyboard_interrupt_still_stops_the_run(
    mm: Monitoring, window: Window, two_endpoints: list[ModelEndpoint]
) -> None:
    class Interrupted(ModelMonitoringApplicationBase):
        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mm.run_window([Interrupted()], window)


class Hangs(ModelMonitoringApplicationBase):
    app_timeout_seconds = 0.5

    def __init__(self) -> None:
        self.release = threading.Event()

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        self.release.wait(30)  # "hangs" (released at the end of the test)
        return {"rows": 1.0}


def test_a_hanging_app_times_out_and_the_run_goes_on(
    mm: Monitoring, window: Window, two_endpoints: list[ModelEndpoint]
) -> None:
    hangs = Hangs()
    started = time.monotonic()
    try:
        hung, counts = mm.run_window([hangs, Counts()], window)
    finally:
        hangs.release.set()
    assert time.monotonic() - started < 5
    assert set(hung.failures) == {e.id for e in two_endpoints} and not hung.outputs
    assert all("timed out after 0.5 s" in f for f in hung.failures.values())
    assert set(counts.outputs) == {e.id for e in two_endpoints}
    assert {f.endpoint_id for f in mm.results.failures("hangs")} == {e.id for e in two_endpoints}


def test_the_budget_is_per_window_and_none_disables_it(
    mm: Monitoring, window: Window, two_endpoints: list[ModelEndpoint]
) -> None:
    class Slow(ModelMonitoringApplicationBase):
        app_timeout_seconds = 0.6

        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
            time.sleep(0.4)
            return {"rows": 1.0}

    (slow,) = mm.run_window([Slow()], window)
    # 0.4 s each: the first endpoint fits the 0.6 s budget, the second does not.
    assert len(slow.outputs) == 1 and len(slow.failures) == 1
    unlimited = Slow()
    unlimited.app_timeout_seconds = None
    (slow,) = mm.run_window([unlimited], window)
    assert len(slow.outputs) == 2 and not slow.failures


class Shifts(ModelMonitoringApplicationBase):
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        df = monitoring_context.sample_df
        df["f0"] = df["f0"] + 50
        df.loc[:, "f1"] = 1e6
        return {"f0_mean": float(df["f0"].mean())}


class Zmeasures(ModelMonitoringApplicationBase):  # runs after Shifts (steps in name order)
    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> dict[str, float]:
        df = monitoring_context.sample_df
        return {"f0_mean": float(df["f0"].mean()), "f1_max": float(df["f1"].max())}


def test_changes_do_not_cross_dagster_steps_through_the_resource_cache(
    isolated_home: Path, window: Window
) -> None:
    home = str(isolated_home)
    with Monitoring(home=home, clock=fixed_clock(NOW)) as mm:
        mm.create_endpoint("calm", reference=reference_frame(1000, seed=1))
        frame = traffic_frame(60, window.start, window.end, seed=2)
        mm.record_events("calm", frame)
    config = MonitoringConfig(apps=[Shifts(), Zmeasures()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=home))
    with instance_for_test() as instance:
        result = materialize_window(defs, window.key, instance, home)
        assert result.success
    with Monitoring(home=home, clock=fixed_clock(NOW)) as mm:
        measured = {m.name: m.value for m in mm.results.metrics(app="zmeasures")}
        shifted = {m.name: m.value for m in mm.results.metrics(app="shifts")}
    assert measured["f0_mean"] == pytest.approx(frame["f0"].mean())
    assert measured["f1_max"] == pytest.approx(frame["f1"].max())
    assert shifted["f0_mean"] == pytest.approx(frame["f0"].mean() + 50)
