"""`storage.dialect_sql.upsert` on SQLite binds rows itself (`execute_many`): what it stores is
what SQLAlchemy's own executemany stores; inserts ignoring duplicates count what they inserted
on SQLite and PostgreSQL alike."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from mm_dagster.storage import database as db
from mm_dagster.storage.dialect_sql import execute_many, insert_ignoring_duplicates_count, upsert
from tests.postgres import fresh_database

START = datetime(2026, 11, 20, 10, tzinfo=UTC)


def _result_rows(value: float, updated: datetime) -> list[dict[str, Any]]:
    rows = []
    for e in range(5):
        for w in range(3):  # several windows: distinct times among repeated ones
            start = db.to_db_time(START + timedelta(minutes=10 * w))
            rows.append(
                {
                    "endpoint_id": f"e{e}",
                    "app": "app",
                    "name": "drift",
                    "segment": "",
                    "window_start": start,
                    "window_end": start + timedelta(minutes=10),
                    "kind": 0,
                    "status": e % 3,
                    "value": value + e,
                    "extra_data": db.EncodedJSON({"e": e, "f": [1.5, None]}) if e % 2 else {"plain": e},
                    "updated_at": db.to_db_time(updated),
                    "model_version": None if e == 0 else f"v{e}",
                    "reference_version": None if e == 1 else e,
                }
            )
    return rows


def _histogram_rows() -> list[dict[str, Any]]:
    start = db.to_db_time(START)
    return [
        {
            "endpoint_id": f"e{e}",
            "app": "app",
            "segment": "",
            "window_start": start,
            "window_end": start + timedelta(minutes=10),
            "data": bytes([e, 0, 255]),
            "updated_at": start,
        }
        for e in range(4)
    ]


def _stored(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]


def _sqlalchemy_upsert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    keys = [c.name for c in table.primary_key.columns]
    insert = sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=keys, set_={c: insert.excluded[c] for c in rows[0] if c not in keys}
    )
    conn.execute(statement, rows)


def test_sqlite_upsert_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    ours, theirs = (db.create_engine(f"sqlite:///{tmp_path}/{n}.db") for n in ("ours", "theirs"))
    for engine, write in ((ours, upsert), (theirs, _sqlalchemy_upsert)):
        with engine.begin() as conn:
            write(conn, db.results, _result_rows(1.0, START))
            write(conn, db.window_histograms, _histogram_rows())
        with engine.begin() as conn:  # every row again, changed: each replaces the stored one
            write(conn, db.results, _result_rows(7.0, START + timedelta(hours=1)))
    for table in (db.results, db.window_histograms):
        assert _stored(ours, table) == _stored(theirs, table)
    stored = _stored(ours, db.results)
    assert len(stored) == 15 and {r[8] for r in stored} == {7.0, 8.0, 9.0, 10.0, 11.0}
    with ours.connect() as conn:
        extra = conn.execute(
            sa.select(db.results.c.extra_data).where(db.results.c.endpoint_id == "e1")
        ).first()
    assert extra is not None and extra[0] == {"e": 1, "f": [1.5, None]}


def test_a_statement_with_binds_that_are_not_the_rows_columns_runs_through_sqlalchemy(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/mm.db")
    rows = _histogram_rows()
    statement = db.window_histograms.insert().values(app=sa.bindparam("other_app"))
    with engine.begin() as conn:
        execute_many(conn, db.window_histograms, statement, [{**r, "other_app": "b"} for r in rows])
    assert {r[1] for r in _stored(engine, db.window_histograms)} == {"b"}


def _count_inserts(url: str) -> list[int]:
    engine = db.create_engine(url)
    rows = _histogram_rows()
    counts = []
    for batch in (rows[:1], rows[:1], rows[:3], [*rows, rows[3]], rows):  # one, again, some new, ...
        with engine.begin() as conn:
            counts.append(
                insert_ignoring_duplicates_count(conn, db.window_histograms, batch, ["endpoint_id"])
            )
    stored = _stored(engine, db.window_histograms)
    assert [(r[0], r[5]) for r in stored] == [(r["endpoint_id"], r["data"]) for r in rows]
    engine.dispose()
    return counts


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_inserts_ignoring_duplicates_count_the_rows_they_inserted(database: str, tmp_path: Path) -> None:
    if database == "sqlite":
        counts = _count_inserts(f"sqlite:///{tmp_path}/mm.db")
    else:
        with fresh_database() as url:
            counts = _count_inserts(url.render_as_string(hide_password=False))
    assert counts == [1, 0, 2, 1, 0]
