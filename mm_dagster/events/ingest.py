"""Recording events: validate, stage files, note arrivals and endpoint counters, publish.

The arrival rows (one per file) are committed before the files are renamed into place: a crash in
between leaves a harmless arrival without data, never data the controller does not know about.
An event is acknowledged when `record_events` returns.
"""

from datetime import datetime

import pandas as pd
from sqlalchemy.engine import Engine

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.events.validation import validate_events
from mm_dagster.storage import database as db
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_store import EventStore, StagedFile


class EventIngestor:
    def __init__(self, engine: Engine, store: EventStore, registry: EndpointRegistry) -> None:
        self.engine = engine
        self.store = store
        self.registry = registry

    def record_events(
        self, endpoint: str | ModelEndpoint, events: pd.DataFrame, now: datetime | None = None
    ) -> int:
        """Validate and store a batch of events (all or none). Returns how many were stored."""
        ep = endpoint if isinstance(endpoint, ModelEndpoint) else self.registry.get(endpoint)
        now_ts = pd.Timestamp(now or self.registry.clock())
        table = validate_events(ep, events, now_ts)
        staged = self.store.stage(ep.id, table)
        if not staged:
            return 0
        try:
            self._note_arrivals(ep, staged, now_ts.to_pydatetime())
        except Exception:
            self.store.discard(staged)
            raise
        self.store.publish(staged)
        return table.num_rows

    def _note_arrivals(self, ep: ModelEndpoint, staged: list[StagedFile], now: datetime) -> None:
        rows = [
            {
                "slot_start": db.to_db_time(f.slot_start),
                "endpoint_id": ep.id,
                "events": f.events,
                "errors": f.errors,
                "first_event": db.to_db_time(f.first_event),
                "last_event": db.to_db_time(f.last_event),
                "written_at": db.to_db_time(now),
            }
            for f in staged
        ]
        with self.engine.begin() as conn:
            conn.execute(db.arrivals.insert(), rows)
            self.registry.note_requests(
                conn,
                ep.id,
                first=min(f.first_event for f in staged),
                last=max(f.last_event for f in staged),
                events=sum(f.events for f in staged),
                errors=sum(f.errors for f in staged),
            )
