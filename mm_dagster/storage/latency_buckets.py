"""Per-endpoint latency buckets (`core.latency`), incremented in the transaction that acknowledges
a batch, so a scrape reads each endpoint's histogram over every event without reading events."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from mm_dagster.core.latency import LatencyCounts
from mm_dagster.storage import database as db


def add_latencies(conn: sa.Connection, endpoint_id: str, counts: LatencyCounts) -> None:
    """Add one batch's bucket counts to the endpoint's stored ones (one statement; a bucket seen
    for the first time is inserted). Rows go in bucket order, so concurrent writers of one
    endpoint lock them in the same order."""
    if not counts:
        return
    t = db.latency_buckets
    rows = [
        {"endpoint_id": endpoint_id, "le": b.le, "count": b.count, "sum_seconds": b.sum_seconds}
        for b in counts
    ]
    dialect = conn.dialect.name
    statement: Any
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert(t) if dialect == "sqlite" else postgresql.insert(t)
        statement = insert.on_conflict_do_update(
            index_elements=[t.c.endpoint_id, t.c.le],
            set_={
                "count": t.c.count + insert.excluded.count,
                "sum_seconds": t.c.sum_seconds + insert.excluded.sum_seconds,
            },
        )
    elif dialect in ("mysql", "mariadb"):
        my_insert = mysql.insert(t)
        statement = my_insert.on_duplicate_key_update(
            count=t.c.count + my_insert.inserted["count"],
            sum_seconds=t.c.sum_seconds + my_insert.inserted.sum_seconds,
        )
    else:
        raise NotImplementedError(f"no incrementing upsert for the {dialect} dialect")
    conn.execute(statement.values(rows))
