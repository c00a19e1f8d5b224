"""The results store, arrivals and alert outbox on the scale-out databases, for real.

PostgreSQL and MariaDB run on loopback on the project's machines (MM_TEST_POSTGRES_URL /
MM_TEST_MYSQL_URL override the defaults); without them these tests skip with the reason.
"""

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mm_dagster.alerts import LogChannel, data_drift_detected
from mm_dagster.alerts.service import AlertService
from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.outputs import ModelMonitoringApplicationMetric, ModelMonitoringApplicationResult
from mm_dagster.core.report import Outputs
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.windows import Window
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import TrafficShape, reference_frame, traffic_frame
from mm_dagster.storage import database as db
from mm_dagster.storage.alert_store import AlertStore
from mm_dagster.storage.results_store import ResultsStore

from .conftest import past_window
from .postgres import fresh_database, reachable_or_skip
from .test_properties_results_store import ENDPOINTS
from .test_result_heads import NOW, WINDOWS, heads, latest
from .test_segments import COUNTRIES, by_segment, frame, traffic

URLS = {
    "postgresql": os.environ.get("MM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("MM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}

pytestmark = pytest.mark.scale


def _drop_everything(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for view in ("mm_latest_results", "mm_latest_metrics"):
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
    db.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=sorted(URLS))
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = URLS[request.param]
    reachable_or_skip(url, request.param)
    _drop_everything(url)
    yield url
    _drop_everything(url)


@pytest.fixture
def scaled(database_url: str, isolated_home: object) -> Iterator[Monitoring]:
    with Monitoring(home=str(isolated_home), database_url=database_url) as mm:
        yield mm


def test_results_store_replaces_and_serves_latest(scaled: Monitoring) -> None:
    mm = scaled
    ep = mm.create_endpoint("m", reference=reference_frame(3000, seed=1), label_names=["prediction"])
    assert mm.create_endpoint("m", feature_names=ep.feature_names, label_names=["prediction"]).id == ep.id
    app = HistogramDataDriftApplication()
    first = past_window(90)
    windows = [
        Window(first.start + timedelta(minutes=10 * i), first.end + timedelta(minutes=10 * i))
        for i in range(3)
    ]
    for i, w in enumerate(windows):
        shape = TrafficShape(mean_shift=2, drifted_features=2) if i == 2 else TrafficShape()
        mm.record_events("m", traffic_frame(300, w.start, w.end, shape, seed=i))
        mm.run_window([app], w)
    mm.run_window([app], windows[2])  # a re-run replaces
    assert len(mm.results.results(ep.id, app.name)) == 9
    latest = {r.name: r for r in mm.results.latest_results(ep.id)}
    assert latest["feature_drift"].window_start == windows[2].start
    assert latest["feature_drift"].status == ResultStatusApp.detected
    assert latest["general_drift"].extra_data["features"]["f0"]["tvd"] > 0.3
    with mm.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM mm_latest_results")).scalar_one() == 3
    got = mm.get_endpoint("m")
    assert got.event_count == 900 and got.feature_stats == ep.feature_stats


def _outputs(names: list[str], value: float) -> Outputs:
    results = [
        ModelMonitoringApplicationResult(n, value, ResultKindApp.data_drift, ResultStatusApp.no_detection, {})
        for n in names
    ]
    return results, [ModelMonitoringApplicationMetric(n, value) for n in names]


def test_result_heads_follow_rewrites_on_scale_databases(database_url: str) -> None:
    """The heads advance in the database (an upsert from the window's rows, newer-or-equal
    windows only: each dialect's SQL), fall back when a re-run drops a name, and stay put for
    a failed endpoint and an older window."""
    engine = db.create_engine(database_url)
    store = ResultsStore(engine, fixed_clock(NOW))
    newest, middle, oldest = WINDOWS[0], WINDOWS[1], WINDOWS[2]
    one, two = ENDPOINTS[:2]
    steps: list[tuple[Window, dict[str, Outputs], dict[str, str]]] = [
        (middle, {one: _outputs(["a", "b"], 1.0), two: _outputs(["a"], 2.0)}, {}),
        (oldest, {one: _outputs(["a", "b", "c"], 3.0)}, {}),
        (middle, {one: _outputs(["a"], 4.0)}, {two: "boom"}),
        (newest, {one: _outputs(["b"], 5.0), two: _outputs(["a"], 6.0)}, {}),
        (middle, {one: _outputs(["a", "b"], 7.0), two: _outputs(["c"], 8.0)}, {}),
    ]
    for window, outputs, failures in steps:
        store.replace_window("drift", window, outputs, failures)
        assert heads(engine) == latest(engine)
    with engine.connect() as conn:
        values = dict(
            conn.execute(
                sa.select(db.result_heads.c.name, db.result_heads.c.value).where(
                    db.result_heads.c.endpoint_id == one
                )
            ).all()
        )
    assert values == {"a": 7.0, "b": 5.0, "c": 3.0}
    engine.dispose()


def test_arrivals_and_alert_outbox(scaled: Monitoring) -> None:
    mm = scaled
    mm.create_endpoint("m", reference=reference_frame(3000, seed=1), label_names=["prediction"])
    w = past_window(60)
    mm.record_events("m", traffic_frame(200, w.start, w.end, TrafficShape(mean_shift=2, drifted_features=3)))
    spans = mm.arrivals.spans(events_from=w.start, events_before=w.end, store_base_period=10)
    assert sum(s.events for s in spans) == 200
    assert mm.arrivals.spans(events_before=w.end)[0].events == 200
    alerts = AlertService(AlertStore(mm.engine), [data_drift_detected([LogChannel()])])
    (report,) = mm.run_window([HistogramDataDriftApplication()], w)
    assert alerts.record_report(report) == 1
    assert alerts.record_report(report) == 0
    assert alerts.deliver_due().sent == 1
    assert [n.status for n in alerts.store.notifications()] == ["sent"]


def test_an_arrival_committed_after_a_later_one_is_still_analysed(scaled: Monitoring) -> None:
    """The commit-order case: a batch whose transaction stays open while a later batch commits
    must still be re-analysed once it commits (arrival ids are not committed in id order)."""
    from dagster import build_sensor_context, instance_for_test

    from mm_dagster.core.clock import fixed_clock
    from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
    from mm_dagster.dagster_defs.resources import MonitoringResource
    from mm_dagster.events.validation import validate_events

    from .conftest import NOW

    mm = scaled
    endpoint = mm.create_endpoint("m", reference=reference_frame(3000, seed=1), label_names=["prediction"])
    early, late = past_window(60), past_window(40)
    mm.record_events("m", traffic_frame(50, early.start, early.end, seed=1))
    resource = MonitoringResource(home=mm.settings.home, database_url=mm.settings.database_url)
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=resource, clock=fixed_clock(NOW))

    def tick(instance: object, cursor: str | None) -> tuple[str | None, list[str]]:
        with build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"mm": resource}
        ) as context:
            result = defs.resolve_sensor_def("mm_controller").evaluate_tick(context)
        return result.cursor, [r.run_key for r in result.run_requests or []]

    with instance_for_test() as instance:
        cursor, keys = tick(instance, None)
        assert keys == [f"mm-{early.key}"]
        # A slow writer: its batch for the early window is inserted but not committed...
        table = validate_events(endpoint, traffic_frame(30, early.start, early.end, seed=2), NOW)
        files = mm.events.write(endpoint.id, table)
        slow = mm.engine.connect()
        transaction = slow.begin()
        mm.catalog.register(slow, files, NOW)
        slow.execute(
            db.arrivals.insert(),
            [
                {
                    "slot_start": db.to_db_time(f.slot_start),
                    "endpoint_id": endpoint.id,
                    "events": f.events,
                    "errors": f.errors,
                    "first_event": db.to_db_time(f.first_event),
                    "last_event": db.to_db_time(f.last_event),
                    "written_at": db.to_db_time(NOW),
                }
                for f in files
            ],
        )
        # ...while a later batch (a higher id) commits and a tick runs.
        mm.record_events("m", traffic_frame(50, late.start, late.end, seed=3))
        cursor, keys = tick(instance, cursor)
        assert keys == [f"mm-{late.key}"]
        transaction.commit()
        slow.close()
        cursor, keys = tick(instance, cursor)
        assert keys == [f"mm-{early.key}-rev1"]
        assert tick(instance, cursor)[1] == []


# -- segments (issue 15 §7): here, not in their own file, as one worker runs every test that
# shares these databases (make test-fast distributes by file).


def test_segment_results_replace_on_scale_databases(scaled: Monitoring) -> None:
    mm = scaled
    mm.create_endpoint("shop", reference=frame(20_000, seed=1), segment_columns=["country"])
    ep = mm.get_endpoint("shop")
    window = past_window(60)
    mm.record_events("shop", traffic(window, 2000, seed=11, de_shift=3.0))
    app = HistogramDataDriftApplication(drift_report="never")
    mm.run_window([app], window)
    mm.run_window([app], window)
    rows = mm.results.results(ep.id, segment=None)
    assert len(rows) == 2 * (1 + len(COUNTRIES))
    assert by_segment(rows, "feature_drift")["country=DE"].status == ResultStatusApp.detected
    assert len(mm.results.latest_results(ep.id, segment=None)) == len(rows)
    alerts = AlertService(AlertStore(mm.engine), [data_drift_detected([LogChannel()])])
    (report,) = mm.run_window([app], window)
    assert alerts.record_report(report) >= 1
    assert all(e.segment for e in alerts.store.recent_events(10))


def test_pre_segment_tables_are_migrated_on_scale_databases(database_url: str) -> None:
    """The results tables as the code before segments made them (no `segment`, the old key),
    with a row each: `create_engine` swaps the key in place and the rows stay, endpoint-wide."""
    old = sa.MetaData()
    for table in db.SEGMENT_KEYED_TABLES:
        sa.Table(
            table.name,
            old,
            *(c._copy() for c in table.columns if c.name != "segment"),
            *(sa.Index(i.name, *(c.name for c in i.columns)) for i in table.indexes),
        )
    engine = sa.create_engine(database_url)
    old.create_all(engine)
    start, end = db.to_db_time(past_window(60).start), db.to_db_time(past_window(60).end)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE VIEW mm_latest_results AS SELECT endpoint_id FROM mm_results"))
        base = {"endpoint_id": "e1", "app": "a", "window_start": start, "window_end": end}
        result = {**base, "name": "r", "kind": 0, "status": 2, "value": 0.9, "extra_data": {}}
        conn.execute(old.tables["mm_results"].insert(), [{**result, "updated_at": end}])
        metric = {**base, "name": "m", "value": 1.0, "updated_at": end}
        conn.execute(old.tables["mm_metrics"].insert(), [metric])
        conn.execute(old.tables["mm_app_failures"].insert(), [{**base, "error": "boom", "failed_at": end}])
    engine.dispose()
    migrated = db.create_engine(database_url)
    try:
        inspector = sa.inspect(migrated)
        for table in db.SEGMENT_KEYED_TABLES:
            assert "segment" in inspector.get_pk_constraint(table.name)["constrained_columns"]
        with migrated.connect() as conn:
            assert conn.execute(sa.select(db.results.c.segment, db.results.c.value)).all() == [("", 0.9)]
            assert conn.execute(sa.select(db.app_failures.c.segment)).all() == [("",)]
            view = conn.execute(sa.text("SELECT segment, name FROM mm_latest_metrics")).all()
        assert view == [("", "m")]
    finally:
        migrated.dispose()
    db.create_engine(database_url).dispose()  # a second start finds nothing to migrate


def test_labels_replace_match_and_reopen_their_window(scaled: Monitoring) -> None:
    import pandas as pd

    from .labelled_model import BINARY, as_events, as_labels, binary_frame

    mm = scaled
    mm.create_endpoint("plain", reference=binary_frame(500, seed=1), label_names=["prediction", "score"])
    assert not mm.endpoints.has_tasks()  # a task-less endpoint's task is JSON null
    ep = mm.create_endpoint(
        "scorer", reference=binary_frame(500, seed=1), label_names=["prediction", "score"], task=BINARY
    )
    assert mm.endpoints.has_tasks()
    assert mm.get_endpoint("scorer").task == BINARY and ep.reference_performance is not None
    window = past_window(60)
    frame = binary_frame(40, seed=2)
    assert mm.record_labels("scorer", as_labels(frame).iloc[30:]).unmatched == 10  # before their events
    mm.record_events("scorer", as_events(frame, window.start))
    assert mm.label_summary("scorer").unmatched == 0
    before = sum(s.events for s in mm.arrivals.spans(events_from=window.start, events_before=window.end))
    assert mm.record_labels("scorer", as_labels(frame).iloc[:30]).matched == 30
    mm.record_labels("scorer", pd.DataFrame({"request_id": ["r0"], "label": [1 - frame["label"][0]]}))
    after = sum(s.events for s in mm.arrivals.spans(events_from=window.start, events_before=window.end))
    assert after == before + 31
    labels = mm.read_window(window)[ep.id]["label"]
    assert labels[0] == 1 - frame["label"][0]
    assert list(labels[1:]) == list(frame["label"][1:])


def _open_store(url: str) -> None:
    from mm_dagster.storage.database import create_engine

    create_engine(url).dispose()


@pytest.mark.slow
def test_processes_starting_together_on_an_empty_postgresql_database_all_get_the_schema() -> None:
    """Workers of a new deployment open the results database at once: the ones that lose the race
    to create a table find it made and start, none fails."""
    import multiprocessing

    with fresh_database("mm_schema_race") as url:
        context = multiprocessing.get_context("spawn")
        rendered = url.render_as_string(hide_password=False)
        with context.Pool(6) as pool:
            pool.map(_open_store, [rendered] * 6)
            # Workers end on their own before the pool's exit terminates them: a worker killed
            # while it held the task queue's lock left another waiting on it and the join hung.
            pool.close()
            pool.join()
        tables = set(sa.inspect(sa.create_engine(url)).get_table_names())
        assert {"mm_results", "mm_metrics", "mm_alert_events", "mm_event_files"} <= tables
