"""Counts of events a recorder could not store, per endpoint, window and reason."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock
from mm_dagster.storage import database as db

MAX_REASON = 255
MAX_SAMPLE = 2000


@dataclass(frozen=True)
class InvalidEventKey:
    endpoint_id: str
    window_start: datetime
    reason: str


class InvalidEventLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def add(self, counts: Mapping[InvalidEventKey, tuple[int, str]]) -> None:
        """Add `count` (with a sample of the offending values) to each key, in one transaction."""
        t = db.invalid_events
        now = db.to_db_time(self.clock())
        with self.engine.begin() as conn:
            for key, (count, sample) in counts.items():
                where = (
                    t.c.endpoint_id == key.endpoint_id,
                    t.c.window_start == db.to_db_time(key.window_start),
                    t.c.reason == key.reason[:MAX_REASON],
                )
                updated = conn.execute(
                    t.update().where(*where).values(count=t.c.count + count, updated_at=now)
                ).rowcount
                if not updated:
                    conn.execute(
                        t.insert().values(
                            endpoint_id=key.endpoint_id,
                            window_start=db.to_db_time(key.window_start),
                            reason=key.reason[:MAX_REASON],
                            count=count,
                            sample=sample[:MAX_SAMPLE],
                            updated_at=now,
                        )
                    )

    def counts(
        self, start: datetime, end: datetime, endpoint_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """Reason → count per endpoint for the slots starting in [start, end)."""
        t = db.invalid_events
        query = (
            sa.select(t.c.endpoint_id, t.c.reason, sa.func.sum(t.c.count))
            .where(t.c.window_start >= db.to_db_time(start), t.c.window_start < db.to_db_time(end))
            .group_by(t.c.endpoint_id, t.c.reason)
        )
        if endpoint_ids is not None:
            query = query.where(t.c.endpoint_id.in_(list(endpoint_ids)))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for endpoint_id, reason, count in conn.execute(query):
                out.setdefault(endpoint_id, {})[reason] = int(count)
        return out
