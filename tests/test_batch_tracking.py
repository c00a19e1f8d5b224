"""The batch hook (`track_window`): the runner calls it once per window, its results equal
`do_tracking`'s, and a failure stays with its endpoint."""

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mm_dagster.applications import (
    HistogramDataDriftApplication,
    ModelMonitoringApplicationBase,
    MonitoringApplicationContext,
)
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame

COUNTRIES = ["US", "GB", "DE", "FR"]


class PerEndpointDrift(HistogramDataDriftApplication):
    """The default app without its batch hook: the runner calls `do_tracking` per endpoint."""

    track_window = ModelMonitoringApplicationBase.track_window  # type: ignore[assignment]


def _with_country(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    frame["country"] = np.random.default_rng(seed).choice(COUNTRIES, size=len(frame), p=[0.4, 0.3, 0.2, 0.1])
    return frame


def _fleet(mm: Monitoring, window: Window, endpoints: int) -> None:
    """Endpoints of many kinds: numeric and categorical features, segmented ones, drifted ones,
    a too-small window, a feature whose reference has no values (no histogram), NaN and ±inf."""
    rng = np.random.default_rng(7)
    for e in range(endpoints):
        numeric, categorical = int(rng.integers(1, 6)), int(rng.integers(0, 3))
        reference = reference_frame(int(rng.integers(200, 3000)), numeric, categorical, seed=e)
        segmented = e % 4 == 0
        if segmented:
            reference = _with_country(reference, e)
        if e % 5 == 1:
            reference["f0"] = np.nan  # no histogram: the window's f0 is left out
        mm.create_endpoint(
            f"ep-{e}",
            reference=reference,
            label_names=["prediction"],
            segment_columns=["country"] if segmented else None,
        )
        rows = 12 if e % 6 == 2 else int(rng.integers(40, 1500))
        shape = TrafficShape(mean_shift=float(rng.choice([0.0, 0.0, 0.5, 3.0])), drifted_features=numeric)
        events = traffic_frame(rows, window.start, window.end, shape, numeric, categorical, seed=100 + e)
        if segmented:
            events = _with_country(events, 100 + e)
        if e % 3 == 0:
            events.loc[events.index[::17], "f0"] = np.nan
            events.loc[events.index[::29], "f0"] = np.inf
            events.loc[events.index[::31], "f0"] = -np.inf
        mm.record_events(f"ep-{e}", events)


def _stored(report: AppWindowReport) -> tuple[Any, ...]:
    return (
        report.outputs,
        report.segment_outputs,
        report.failures,
        report.segment_failures,
        report.histograms,
    )


def test_the_batch_hook_gives_exactly_what_do_tracking_gives(mm: Monitoring, window: Window) -> None:
    _fleet(mm, window, 24)
    events = mm.read_window(window)
    batch_app = HistogramDataDriftApplication()
    assert batch_app.tracks_windows and not PerEndpointDrift().tracks_windows
    [batch] = mm.run_window([batch_app], window, events)
    [each] = mm.run_window([PerEndpointDrift()], window, events)
    assert len(batch.outputs) == 24 and batch.segment_outputs and not batch.failures
    assert _stored(batch) == _stored(each)
    statuses = {s.name for s in batch.statuses().values()}
    assert {"irrelevant", "detected", "no_detection"} <= statuses  # too small, drifted, calm
    stored = mm.results.results(app=batch_app.name, start=window.start, end=window.end, segment=None)
    assert {(r.endpoint_id, r.segment, r.name) for r in stored} == {
        (e, s, r.name)
        for e, parts in [
            *((e, {"": out}) for e, out in batch.outputs.items()),
            *batch.segment_outputs.items(),
        ]
        for s, out in parts.items()
        for r in out[0]
    }


def test_contexts_without_the_sample_columns_match_too() -> None:
    """Called directly: a window missing a reference feature, and one missing all of them."""
    from mm_dagster.core.endpoint import ModelEndpoint
    from mm_dagster.stats.feature_stats import compute_feature_stats

    from .test_histogram_drift_app import past_window, scratch_artifacts

    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500), "c": ["x", "y"] * 250})
    endpoint = ModelEndpoint(
        id="1" * 32,
        name="ep",
        feature_names=["a", "b", "c"],
        label_names=[],
        column_types={},
        feature_stats=compute_feature_stats(reference),
    )
    samples = [
        pd.DataFrame({"a": rng.normal(1, 1, 300), "c": ["x"] * 300}),
        pd.DataFrame({"z": [1.0, 2.0]}),
        pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50), "c": ["y"] * 50}),
    ]

    def contexts() -> list[MonitoringApplicationContext]:
        return [
            MonitoringApplicationContext(
                application_name="histogram-data-drift",
                endpoint=endpoint,
                window=past_window(),
                sample_df=sample,
                artifacts=scratch_artifacts(),
            )
            for sample in samples
        ]

    app = HistogramDataDriftApplication()
    batch_contexts, each_contexts = contexts(), contexts()
    batch = app.track_window(batch_contexts)
    each = [app.do_tracking(c) for c in each_contexts]
    assert batch == each and batch[1] is None
    assert [c.histograms for c in batch_contexts] == [c.histograms for c in each_contexts]


class Batched(ModelMonitoringApplicationBase):
    """Counts rows in one batch call; `fail_for` endpoints get an exception entry, `mode` makes
    the whole batch misbehave."""

    NAME = "batched"
    RESULT_NAMES = ()

    def __init__(self, mode: str = "", fail_for: str = "", undeclared_for: str = "") -> None:
        self.mode, self.fail_for, self.undeclared_for = mode, fail_for, undeclared_for
        self.batch_calls = 0
        self.single_calls = 0

    def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
        self.single_calls += 1
        if monitoring_context.endpoint_name == self.fail_for:
            raise ZeroDivisionError("single boom")
        return {"rows": float(len(monitoring_context.sample_df))}

    def track_window(self, contexts: Sequence[MonitoringApplicationContext]) -> Sequence[Any]:
        self.batch_calls += 1
        if self.mode == "raise":
            raise RuntimeError("the whole batch broke")
        if self.mode == "short":
            return []
        if self.mode == "slow":
            time.sleep(2)
        return [
            ValueError("batch boom")
            if c.endpoint_name == self.fail_for
            else {"rows": float(len(c.sample_df))}
            for c in contexts
        ]


class Declared(Batched):
    NAME = "declared"
    RESULT_NAMES = ("fine",)

    def track_window(self, contexts: Sequence[MonitoringApplicationContext]) -> Sequence[Any]:
        from mm_dagster.core.outputs import ModelMonitoringApplicationResult
        from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp

        def result(name: str) -> ModelMonitoringApplicationResult:
            return ModelMonitoringApplicationResult(
                name, 0.0, ResultKindApp.data_drift, ResultStatusApp.no_detection
            )

        return [result("rogue" if c.endpoint_name == self.undeclared_for else "fine") for c in contexts]


@pytest.fixture
def three(mm: Monitoring, window: Window) -> dict[str, str]:
    ids = {}
    for i, name in enumerate(["a", "b", "c"]):
        ids[name] = mm.create_endpoint(
            name, reference=reference_frame(500, seed=i), label_names=["prediction"]
        ).id
        mm.record_events(name, traffic_frame(40 + i, window.start, window.end, seed=10 + i))
    return ids


def test_one_batch_call_per_window_and_an_entry_exception_is_that_endpoints_failure(
    mm: Monitoring, window: Window, three: dict[str, str]
) -> None:
    app = Batched(fail_for="b")
    [report] = mm.run_window([app], window)
    assert (app.batch_calls, app.single_calls) == (1, 0)
    assert set(report.outputs) == {three["a"], three["c"]}
    assert set(report.failures) == {three["b"]} and "ValueError: batch boom" in report.failures[three["b"]]
    assert report.outputs[three["c"]][1][0].value == 42.0
    assert [f.endpoint_id for f in mm.results.failures("batched")] == [three["b"]]


@pytest.mark.parametrize("mode", ["raise", "short"])
def test_a_broken_batch_falls_back_to_do_tracking_per_endpoint(
    mm: Monitoring, window: Window, three: dict[str, str], mode: str
) -> None:
    app = Batched(mode=mode, fail_for="a")
    [report] = mm.run_window([app], window)
    assert (app.batch_calls, app.single_calls) == (1, 3)
    assert set(report.outputs) == {three["b"], three["c"]}
    assert "ZeroDivisionError: single boom" in report.failures[three["a"]]


def test_a_batch_past_the_budget_times_out_every_endpoint(
    mm: Monitoring, window: Window, three: dict[str, str]
) -> None:
    app = Batched(mode="slow")
    app.app_timeout_seconds = 0.3
    [report] = mm.run_window([app], window)
    assert not report.outputs and set(report.failures) == set(three.values())
    assert all("timed out after 0.3 s" in failure for failure in report.failures.values())


def test_batch_outputs_are_validated_per_endpoint(
    mm: Monitoring, window: Window, three: dict[str, str]
) -> None:
    [report] = mm.run_window([Declared(undeclared_for="c")], window)
    assert set(report.outputs) == {three["a"], three["b"]}
    assert "not among the app's RESULT_NAMES" in report.failures[three["c"]]


def test_the_default_hook_runs_do_tracking_per_context(
    mm: Monitoring, window: Window, three: dict[str, str]
) -> None:
    class Plain(ModelMonitoringApplicationBase):
        def do_tracking(self, monitoring_context: MonitoringApplicationContext) -> Any:
            if monitoring_context.endpoint_name == "b":
                raise KeyError("b")
            return {"rows": 1.0}

    app = Plain()
    assert not app.tracks_windows
    [report] = mm.run_window([app], window)
    assert set(report.outputs) == {three["a"], three["c"]} and "KeyError" in report.failures[three["b"]]
    contexts = [
        MonitoringApplicationContext(
            application_name=app.name,
            endpoint=mm.get_endpoint(name),
            window=window,
            sample_df=pd.DataFrame({"x": [1.0]}),
            artifacts=mm.artifacts,
        )
        for name in ("a", "b")
    ]
    first, second = app.track_window(contexts)
    assert first == {"rows": 1.0} and isinstance(second, KeyError)
