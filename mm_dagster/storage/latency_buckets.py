"""Per-endpoint latency buckets (`core.latency`), incremented in the transaction that acknowledges
a batch, so a scrape reads each endpoint's histogram over every event without reading events."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from mm_dagster.core.latency import LatencyCounts
from mm_dagster.storage import database as db


def _incrementing_upsert(dialect: str) -> Any:
    """INSERT of bucket rows that adds to a row stored already (also by a concurrent writer)."""
    t = db.latency_buckets
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert(t) if dialect == "sqlite" else postgresql.insert(t)
        return insert.on_conflict_do_update(
            index_elements=[t.c.endpoint_id, t.c.le],
            set_={
                "count": t.c.count + insert.excluded.count,
                "sum_seconds": t.c.sum_seconds + insert.excluded.sum_seconds,
            },
        )
    if dialect in ("mysql", "mariadb"):
        my_insert = mysql.insert(t)
        return my_insert.on_duplicate_key_update(
            count=t.c.count + my_insert.inserted["count"],
            sum_seconds=t.c.sum_seconds + my_insert.inserted.sum_seconds,
        )
    raise NotImplementedError(f"no incrementing upsert for the {dialect} dialect")


class LatencyBucketWriter:
    """Adds batches' bucket counts for one database (its statement built once: building it per
    batch costs more than running it)."""

    def __init__(self, dialect: str) -> None:
        self.statement = _incrementing_upsert(dialect)

    def add(self, conn: sa.Connection, endpoint_id: str, counts: LatencyCounts) -> None:
        """Add one batch's counts to the endpoint's stored ones (a bucket seen for the first
        time is inserted). Rows go in bucket order, so concurrent writers of one endpoint lock
        them in the same order."""
        if not counts:
            return
        rows = [
            {"endpoint_id": endpoint_id, "le": b.le, "count": b.count, "sum_seconds": b.sum_seconds}
            for b in counts
        ]
        conn.execute(self.statement, rows)
