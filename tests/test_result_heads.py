"""The heads tables (newest row per result and metric series) stay equal to what the latest
views compute from the full series, whatever sequence of window writes, re-runs of older
windows, fewer names on a re-run and failures; a database written before them is filled once."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.storage import database as db
from mm_dagster.storage.database import create_engine
from mm_dagster.storage.results_store import ResultsStore
from tests.test_properties_results_store import ENDPOINTS, endpoint_outputs

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOWS = [Window.containing(NOW - timedelta(minutes=10 * i), 10) for i in range(1, 5)]
APPS = ["drift", "quality"]


def heads(engine: Engine) -> set[tuple[object, ...]]:
    out: set[tuple[object, ...]] = set()
    with engine.connect() as conn:
        for table in (db.result_heads, db.metric_heads):
            columns = [c.name for c in table.columns if c.name != "updated_at"]
            out |= {(table.name, *row) for row in conn.execute(sa.select(*(table.c[c] for c in columns)))}
    return out


def latest(engine: Engine) -> set[tuple[object, ...]]:
    out: set[tuple[object, ...]] = set()
    with engine.connect() as conn:
        for table, series in db.HEADS:
            columns = [c.name for c in table.columns if c.name != "updated_at"]
            newest = db.latest_select(series).subquery()
            out |= {(table.name, *row) for row in conn.execute(sa.select(*(newest.c[c] for c in columns)))}
    return out


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/heads.db")
    yield engine
    engine.dispose()


write = st.tuples(
    st.sampled_from(APPS),
    st.sampled_from(WINDOWS),
    st.dictionaries(st.sampled_from(ENDPOINTS[:3]), endpoint_outputs(), max_size=3),
    st.dictionaries(st.sampled_from(ENDPOINTS[3:]), st.just("boom"), max_size=1),
)


@settings(max_examples=60, deadline=None)
@given(writes=st.lists(write, min_size=1, max_size=8))
def test_heads_equal_the_latest_rows_of_every_series(
    tmp_path_factory: pytest.TempPathFactory, writes: list
) -> None:  # type: ignore[type-arg]
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('heads')}/heads.db")
    store = ResultsStore(engine, fixed_clock(NOW))
    for app, window, outputs, failures in writes:
        store.replace_window(app, window, outputs, failures)
        assert heads(engine) == latest(engine)
    engine.dispose()


def test_a_database_written_before_the_heads_is_filled_once(engine: Engine, tmp_path: Path) -> None:
    store = ResultsStore(engine, fixed_clock(NOW))
    for i, window in enumerate(reversed(WINDOWS)):
        result = ModelMonitoringApplicationResult(
            "drift", i, ResultKindApp.data_drift, ResultStatusApp(i % 3)
        )
        store.replace_window(
            "drift", window, {ENDPOINTS[0]: ([result], [ModelMonitoringApplicationMetric("m", i)])}
        )
    expected = heads(engine)
    assert len(expected) == 2
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE mm_result_heads"))
        conn.execute(sa.text("DROP TABLE mm_metric_heads"))
    engine.dispose()
    reopened = create_engine(f"sqlite:///{tmp_path}/heads.db")
    assert heads(reopened) == expected
    reopened.dispose()
