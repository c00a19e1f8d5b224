"""Keeping the heads tables (the newest row of each result and metric series) in step with the
series as the results store writes a window, in the same transaction.

A written row becomes its series' head unless the head is of a later window (a re-run of an
older window never moves a head back). A head of the window being replaced whose series the new
outputs no longer have points at a deleted row: it falls back to the series' newest stored row,
or goes when there is none.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mm_dagster.storage import database as db
from mm_dagster.storage.dialect_sql import upsert_newer_from

SeriesKey = tuple[str, str, str]  # (endpoint_id, name, segment)


def _head_row(heads: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    return {c.name: row[c.name] for c in heads.columns}


def advance_heads(
    conn: sa.Connection,
    app: str,
    start: datetime,
    replaced: Mapping[str, set[str]],
    written: Sequence[Sequence[dict[str, Any]]],
    fall_back: bool = True,
) -> None:
    """`replaced` maps each endpoint whose (app, window starting at `start`) rows were replaced
    to the segments kept (failed ones); `written` holds the result rows and the metric rows, in
    the order of `db.HEADS`, already stored. The window's stored rows of those endpoints become
    heads in one statement per chunk of endpoints, in the database (a kept segment's rows are
    heads already, or older than theirs). `fall_back=False` when the window had no rows before
    (no head can point at one it no longer has)."""
    for (heads, series), rows in zip(db.HEADS, written, strict=True):
        columns = [series.c[c.name] for c in heads.columns]
        for chunk in db.in_chunks(sorted({r["endpoint_id"] for r in rows})):
            window_rows = sa.select(*columns).where(
                series.c.app == app, series.c.window_start == start, series.c.endpoint_id.in_(chunk)
            )
            upsert_newer_from(conn, heads, window_rows, "window_start")
        if not fall_back:
            continue
        new = {(r["endpoint_id"], r["name"], r["segment"]) for r in rows}
        for chunk in db.in_chunks(sorted(replaced)):
            query = sa.select(heads.c.endpoint_id, heads.c.name, heads.c.segment).where(
                heads.c.app == app, heads.c.window_start == start, heads.c.endpoint_id.in_(chunk)
            )
            stored: list[SeriesKey] = [(e, n, s) for e, n, s in conn.execute(query)]
            for key in [k for k in stored if k not in new and k[2] not in replaced[k[0]]]:
                _fall_back(conn, heads, series, app, key)


def _fall_back(conn: sa.Connection, heads: sa.Table, series: sa.Table, app: str, key: SeriesKey) -> None:
    endpoint_id, name, segment = key
    where = sa.and_(
        heads.c.endpoint_id == endpoint_id,
        heads.c.app == app,
        heads.c.name == name,
        heads.c.segment == segment,
    )
    newest = conn.execute(
        sa.select(series)
        .where(
            series.c.endpoint_id == endpoint_id,
            series.c.app == app,
            series.c.name == name,
            series.c.segment == segment,
        )
        .order_by(series.c.window_start.desc())
        .limit(1)
    ).first()
    conn.execute(heads.delete().where(where))
    if newest is not None:
        conn.execute(heads.insert().values(**_head_row(heads, dict(newest._mapping))))
