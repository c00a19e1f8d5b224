"""The arrival log: one row per stored event file. Cheap summaries for the controller."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.storage import database as db
from mm_dagster.windows import Window


@dataclass(frozen=True)
class ArrivalSpan:
    """Events of one slot that arrived in a set of files: their time span and newest file id."""

    first_event: datetime
    last_event: datetime
    events: int
    max_id: int


def arrival_spans(
    engine: Engine,
    *,
    after_id: int | None = None,
    events_from: datetime | None = None,
    events_before: datetime | None = None,
) -> list[ArrivalSpan]:
    """Arrival spans grouped by slot, filtered by arrival id and event time (indexed columns)."""
    a = db.arrivals
    query = sa.select(
        sa.func.min(a.c.first_event),
        sa.func.max(a.c.last_event),
        sa.func.sum(a.c.events),
        sa.func.max(a.c.id),
    ).group_by(a.c.slot_start)
    if after_id is not None:
        query = query.where(a.c.id > after_id)
    if events_from is not None:
        # An event at t lies in a slot starting at most one slot before t; the slot index bounds it.
        query = query.where(a.c.last_event >= db.to_db_time(events_from))
    if events_before is not None:
        query = query.where(
            a.c.slot_start < db.to_db_time(events_before), a.c.first_event < db.to_db_time(events_before)
        )
    with engine.connect() as conn:
        return [
            ArrivalSpan(db.from_db_time(f), db.from_db_time(la), int(n), int(i))
            for f, la, n, i in conn.execute(query)
        ]


def max_arrival_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(db.arrivals.c.id), 0))).scalar_one())


def late_events(engine: Engine, window: Window, closes_at: datetime) -> int:
    """Events of `window` that were written after it closed (upper bound, from file spans)."""
    a = db.arrivals
    query = sa.select(sa.func.coalesce(sa.func.sum(a.c.events), 0)).where(
        a.c.slot_start < db.to_db_time(window.end),
        a.c.last_event >= db.to_db_time(window.start),
        a.c.first_event < db.to_db_time(window.end),
        a.c.written_at > db.to_db_time(closes_at),
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def event_counts(engine: Engine, endpoint_id: str, start: datetime, end: datetime) -> dict[datetime, int]:
    """Events per arrival slot of one endpoint with slot start in [start, end)."""
    a = db.arrivals
    query = (
        sa.select(a.c.slot_start, sa.func.sum(a.c.events))
        .where(
            a.c.endpoint_id == endpoint_id,
            a.c.slot_start >= db.to_db_time(start),
            a.c.slot_start < db.to_db_time(end),
        )
        .group_by(a.c.slot_start)
    )
    with engine.connect() as conn:
        return {db.from_db_time(s): int(n) for s, n in conn.execute(query)}  # type: ignore[misc]
