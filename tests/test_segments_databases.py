"""Segments on PostgreSQL and MariaDB (loopback; skipped when not reachable, as in
`test_scale_databases`): segment-keyed results replace, alerts carry the segment, and tables
from before segments are migrated in place."""

import pytest
import sqlalchemy as sa

from mm_dagster.alerts import LogChannel, data_drift_detected
from mm_dagster.alerts.service import AlertService
from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.monitoring import Monitoring
from mm_dagster.storage import database as db
from mm_dagster.storage.alert_store import AlertStore

from . import test_scale_databases as scale_databases
from .conftest import past_window
from .test_segments import COUNTRIES, by_segment, frame, traffic

pytestmark = pytest.mark.scale
database_url = scale_databases.database_url  # the fixtures: one database per backend, emptied
scaled = scale_databases.scaled


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
