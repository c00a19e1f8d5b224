"""`ResultsStore.replace_window` against a model: re-writing is idempotent, writes in any chunks
or endpoint subsets equal one write, and a write replaces only the endpoints it names."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.report import Outputs
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.storage import database
from mm_dagster.storage.database import create_engine
from mm_dagster.storage.results_store import ResultsStore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
APP = "drift"
WINDOW = Window.containing(NOW - timedelta(minutes=30), 10)
ENDPOINTS = [f"{i:032x}" for i in range(1, 7)]

# Row contents as the model keeps them: (name, kind, status, value, extra) and (name, value).
ResultRow = tuple[str, int, int, float, str]
MetricRow = tuple[str, float]

names = st.lists(st.sampled_from(["a", "b", "general_drift", "x_1"]), unique=True, max_size=3)
values = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def endpoint_outputs(draw: st.DrawFn) -> Outputs:
    results = [
        ModelMonitoringApplicationResult(
            n,
            draw(values),
            draw(st.sampled_from(list(ResultKindApp))),
            draw(st.sampled_from(list(ResultStatusApp))),
            draw(st.dictionaries(st.sampled_from(["k", "why"]), st.integers(-9, 9), max_size=2)),
        )
        for n in draw(names)
    ]
    metrics = [ModelMonitoringApplicationMetric(n, draw(values)) for n in draw(names)]
    return results, metrics


@st.composite
def writes(draw: st.DrawFn) -> tuple[dict[str, Outputs], dict[str, str]]:
    """One `replace_window` call: outputs for some endpoints, failures for some others."""
    chosen = draw(st.lists(st.sampled_from(ENDPOINTS), unique=True, max_size=len(ENDPOINTS)))
    split = draw(st.integers(0, len(chosen)))
    outputs = {e: draw(endpoint_outputs()) for e in chosen[:split]}
    failures = {e: draw(st.sampled_from(["boom", "ValueError: x"])) for e in chosen[split:]}
    return outputs, failures


_windows = itertools.count(1)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One in-memory database per module; each example writes to windows of its own."""
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


def fresh_window() -> Window:
    start = WINDOW.start + timedelta(minutes=10 * next(_windows))
    return Window(start, start + timedelta(minutes=10))


@contextmanager
def store(engine: Engine, chunk: int) -> Iterator[ResultsStore]:
    """The store, with deletes in chunks of `chunk` endpoints (the code's chunk is 500)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(database, "IN_LIST_CHUNK", chunk)
        yield ResultsStore(engine, clock=fixed_clock(NOW))


def stored(s: ResultsStore, window: Window, app: str = APP) -> dict[str, Any]:
    """Everything the store holds for (app, window), as plain comparable values."""
    results: dict[str, set[ResultRow]] = {}
    for r in s.results(app=app, start=window.start, end=window.end):
        assert (r.window_start, r.window_end) == (window.start, window.end)
        extra = repr(sorted(r.extra_data.items()))
        results.setdefault(r.endpoint_id, set()).add((r.name, r.kind, r.status, r.value, extra))
    metrics: dict[str, set[MetricRow]] = {}
    for m in s.metrics(app=app, start=window.start, end=window.end):
        metrics.setdefault(m.endpoint_id, set()).add((m.name, m.value))
    failures = {f.endpoint_id: f.error for f in s.failures(app, window.start, window.end)}
    return {"results": results, "metrics": metrics, "failures": failures}


def model_after(
    state: dict[str, Any], outputs: dict[str, Outputs], failures: dict[str, str]
) -> dict[str, Any]:
    """The documented semantics: an analysed endpoint's rows are replaced (and its failure
    cleared); a failed endpoint keeps its rows and gets a failure row."""
    results, metrics, failed = dict(state["results"]), dict(state["metrics"]), dict(state["failures"])
    for e, (rs, ms) in outputs.items():
        rows = {(r.name, r.kind, r.status, r.value, repr(sorted(r.extra_data.items()))) for r in rs}
        results[e], metrics[e] = rows, {(m.name, m.value) for m in ms}
        failed.pop(e, None)
    failed.update(failures)
    return {
        "results": {e: rows for e, rows in results.items() if rows},
        "metrics": {e: rows for e, rows in metrics.items() if rows},
        "failures": failed,
    }


EMPTY: dict[str, Any] = {"results": {}, "metrics": {}, "failures": {}}


@settings(max_examples=60, deadline=None)
@given(st.lists(writes(), min_size=1, max_size=4), st.integers(1, 4))
def test_a_sequence_of_writes_matches_the_model(
    engine: Engine, sequence: list[tuple[dict[str, Outputs], dict[str, str]]], chunk: int
) -> None:
    """Each write replaces exactly the endpoints it names; other apps and windows are untouched."""
    window, next_window = fresh_window(), fresh_window()
    with store(engine, chunk) as s:
        for app, w in (("other-app", window), (APP, next_window)):
            metric = ModelMonitoringApplicationMetric("m", 1.0)
            s.replace_window(app, w, {e: ([], [metric]) for e in ENDPOINTS}, {ENDPOINTS[0]: "old"})
        untouched = (stored(s, window, "other-app"), stored(s, next_window))
        model = EMPTY
        for outputs, failures in sequence:
            s.replace_window(APP, window, outputs, failures)
            model = model_after(model, outputs, failures)
            assert stored(s, window) == model
        assert (stored(s, window, "other-app"), stored(s, next_window)) == untouched


@settings(max_examples=60, deadline=None)
@given(writes(), st.integers(1, 4), st.data())
def test_writing_again_or_in_parts_equals_one_write(
    engine: Engine, write: tuple[dict[str, Outputs], dict[str, str]], chunk: int, data: st.DataObject
) -> None:
    outputs, failures = write
    expected = model_after(EMPTY, outputs, failures)
    with store(engine, chunk) as s:
        once, twice, in_parts = fresh_window(), fresh_window(), fresh_window()
        s.replace_window(APP, once, outputs, failures)
        assert stored(s, once) == expected
        s.replace_window(APP, twice, outputs, failures)
        s.replace_window(APP, twice, outputs, failures)
        assert stored(s, twice) == expected
        # The same outputs written as several calls, each naming a random subset of the endpoints.
        endpoints = data.draw(st.permutations(sorted(outputs)))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(endpoints)), max_size=3)))
        parts = [endpoints[a:b] for a, b in zip([0, *cuts], [*cuts, len(endpoints)], strict=True)]
        for part in parts:
            s.replace_window(APP, in_parts, {e: outputs[e] for e in part})
        s.replace_window(APP, in_parts, {}, failures)
        for part in reversed(parts):  # and once more, in another order: still one write's rows
            s.replace_window(APP, in_parts, {e: outputs[e] for e in part})
        s.replace_window(APP, in_parts, {}, failures)
        assert stored(s, in_parts) == expected
