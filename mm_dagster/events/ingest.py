"""Recording events: validate, stage files, note arrivals and endpoint counters, publish.

The arrival rows (one per file) are committed before the files are renamed into place: a crash in
between leaves a harmless arrival without data, never data the controller does not know about.
An event is acknowledged when `record_events` returns.
"""

from datetime import datetime

import pandas as pd

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.events.validation import validate_events
from mm_dagster.storage.arrival_log import ArrivalLog
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_store import EventStore


class EventIngestor:
    def __init__(self, store: EventStore, registry: EndpointRegistry, arrivals: ArrivalLog) -> None:
        self.store = store
        self.registry = registry
        self.arrivals = arrivals

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
            self.arrivals.record(ep.id, staged, now_ts.to_pydatetime())
        except Exception:
            self.store.discard(staged)
            raise
        self.store.publish(staged)
        return int(table.num_rows)
