"""The arrival log: one row per stored event file. Cheap summaries for the controller."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.arrivals import ArrivalSpan
from mm_dagster.core.latency import LatencyCounts
from mm_dagster.core.windows import Window
from mm_dagster.storage import database as db
from mm_dagster.storage.endpoint_registry import EndpointRegistry
from mm_dagster.storage.event_catalog import EventCatalog, EventFile
from mm_dagster.storage.latency_buckets import LatencyBucketWriter


@dataclass(frozen=True)
class StoredBatch:
    """One endpoint's batch, written and waiting to be acknowledged: its files (or its rows of
    shared ones), the id a replay of it would carry and its latency counts."""

    endpoint_id: str
    files: Sequence[EventFile]
    batch_id: str | None = None
    latencies: LatencyCounts | None = None

    @property
    def events(self) -> int:
        return sum(f.events for f in self.files)


def _arrival_row(endpoint_id: str, file: EventFile, written_at: datetime) -> dict[str, object]:
    return {
        "slot_start": db.to_db_time(file.slot_start),
        "endpoint_id": endpoint_id,
        "events": file.events,
        "errors": file.errors,
        "first_event": db.to_db_time(file.first_event),
        "last_event": db.to_db_time(file.last_event),
        "written_at": db.to_db_time(written_at),
    }


def _claim_batch_ids(conn: sa.Connection, batches: Sequence[StoredBatch], written_at: datetime) -> None:
    """Note the batches' ids (an id noted before fails the transaction: IntegrityError)."""
    rows = [
        {
            "batch_id": b.batch_id,
            "endpoint_id": b.endpoint_id,
            "events": b.events,
            "committed_at": db.to_db_time(written_at),
        }
        for b in batches
        if b.batch_id is not None
    ]
    if rows:
        conn.execute(db.event_batches.insert(), rows)


class ArrivalLog:
    """One row per stored event file, for the controller (which windows got events, when)."""

    def __init__(self, engine: Engine, registry: EndpointRegistry, catalog: EventCatalog) -> None:
        self.engine = engine
        self.registry = registry
        self.catalog = catalog
        self.latency_buckets = LatencyBucketWriter(engine.dialect.name)

    def record(
        self,
        endpoint_id: str,
        files: Sequence[EventFile],
        written_at: datetime,
        batch_id: str | None = None,
        latencies: LatencyCounts | None = None,
    ) -> bool:
        """Acknowledge one batch: in one transaction its files become readable (catalog), the
        controller learns of them (arrival rows) and the endpoint's counters and latency buckets
        count them.

        With a `batch_id`, a batch already acknowledged under that id is not stored again
        (replays of a spool are idempotent): returns False and changes nothing."""
        if batch_id is not None and self._batch_known(batch_id):
            return False
        return self.record_batches([StoredBatch(endpoint_id, files, batch_id, latencies)], written_at)

    def record_batches(self, batches: Sequence[StoredBatch], written_at: datetime) -> bool:
        """Acknowledge several endpoints' batches (e.g. whose files are rows of shared slot files)
        in one transaction, each as `record` does. Returns False and changes nothing if one of
        their batch ids is acknowledged already (a concurrent replay won): the caller leaves out
        the batches `known_batches` names and tries again. Batch ids must differ."""
        try:
            self._commit(batches, written_at)
        except sa.exc.IntegrityError:
            if not self.known_batches([b.batch_id for b in batches if b.batch_id is not None]):
                raise
            return False
        return True

    def known_batches(self, batch_ids: Sequence[str]) -> set[str]:
        """Which of `batch_ids` are acknowledged already."""
        b = db.event_batches
        known: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in db.in_chunks(list(batch_ids)):
                known.update(conn.execute(sa.select(b.c.batch_id).where(b.c.batch_id.in_(chunk))).scalars())
        return known

    def _batch_known(self, batch_id: str) -> bool:
        return bool(self.known_batches([batch_id]))

    def _commit(self, batches: Sequence[StoredBatch], written_at: datetime) -> None:
        with self.engine.begin() as conn:
            _claim_batch_ids(conn, batches, written_at)
            self.catalog.register(conn, [f for b in batches for f in b.files], written_at)
            arrivals = [_arrival_row(b.endpoint_id, f, written_at) for b in batches for f in b.files]
            conn.execute(db.arrivals.insert(), arrivals)
            for b in batches:
                self._count(conn, b)

    def _count(self, conn: sa.Connection, batch: StoredBatch) -> None:
        """Add `batch` to its endpoint's counters and latency buckets."""
        self.registry.note_requests(
            conn,
            batch.endpoint_id,
            first=min(f.first_event for f in batch.files),
            last=max(f.last_event for f in batch.files),
            events=batch.events,
            errors=sum(f.errors for f in batch.files),
        )
        if batch.latencies:
            self.latency_buckets.add(conn, batch.endpoint_id, batch.latencies)

    def spans(
        self,
        *,
        events_from: datetime | None = None,
        events_before: datetime | None = None,
        store_base_period: int = 1440,
        with_labels: bool = True,
    ) -> list[ArrivalSpan]:
        """Stored events per slot whose events overlap [events_from, events_before), grouped in the
        database. Each filter is stated on the indexed `slot_start` too (a file's events lie in
        [slot_start, slot_start + store_base_period)), so a tick reads only the recent rows.
        `with_labels` counts the labels stored for the slot's predictions as arrivals too (what
        the controller needs: a window re-runs when its labels land)."""
        a = db.arrivals
        conditions = []
        if events_from is not None:
            conditions += [
                a.c.slot_start > db.to_db_time(events_from - timedelta(minutes=store_base_period)),
                a.c.last_event >= db.to_db_time(events_from),
            ]
        if events_before is not None:
            conditions += [
                a.c.first_event < db.to_db_time(events_before),
                a.c.slot_start < db.to_db_time(events_before),
            ]
        if not with_labels:
            conditions.append(a.c.events > 0)
        query = (
            sa.select(
                sa.func.min(a.c.first_event),
                sa.func.max(a.c.last_event),
                sa.func.sum(a.c.events + sa.func.coalesce(a.c.labels, 0) if with_labels else a.c.events),
            )
            .where(*conditions)
            .group_by(a.c.slot_start)
        )
        with self.engine.connect() as conn:
            return [
                ArrivalSpan(db.from_db_time(first), db.from_db_time(last), int(events))
                for first, last, events in conn.execute(query)
            ]

    def endpoint_spans(
        self, events_from: datetime, events_before: datetime, store_base_period: int
    ) -> dict[str, list[ArrivalSpan]]:
        """Stored events per endpoint and slot overlapping [events_from, events_before), in one
        query grouped in the database (as `spans`, per endpoint)."""
        a = db.arrivals
        query = (
            sa.select(
                a.c.endpoint_id,
                sa.func.min(a.c.first_event),
                sa.func.max(a.c.last_event),
                sa.func.sum(a.c.events),
            )
            .where(
                a.c.slot_start > db.to_db_time(events_from - timedelta(minutes=store_base_period)),
                a.c.slot_start < db.to_db_time(events_before),
                a.c.last_event >= db.to_db_time(events_from),
                a.c.first_event < db.to_db_time(events_before),
                a.c.events > 0,  # not the rows of labels that arrived for the slot
            )
            .group_by(a.c.endpoint_id, a.c.slot_start)
        )
        spans: dict[str, list[ArrivalSpan]] = {}
        with self.engine.connect() as conn:
            for endpoint_id, first, last, events in conn.execute(query):
                spans.setdefault(endpoint_id, []).append(
                    ArrivalSpan(db.from_db_time(first), db.from_db_time(last), int(events))
                )
        return spans

    def late_events(self, window: Window, closes_at: datetime) -> int:
        """Events of `window` that were written after it closed (upper bound, from file spans)."""
        a = db.arrivals
        query = sa.select(sa.func.coalesce(sa.func.sum(a.c.events), 0)).where(
            a.c.slot_start < db.to_db_time(window.end),
            a.c.last_event >= db.to_db_time(window.start),
            a.c.first_event < db.to_db_time(window.end),
            a.c.written_at > db.to_db_time(closes_at),
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def slot_counts(
        self, endpoint_id: str, start: datetime, end: datetime
    ) -> dict[datetime, tuple[int, int]]:
        """(events, errors) per arrival slot of one endpoint with slot start in [start, end)."""
        a = db.arrivals
        query = (
            sa.select(a.c.slot_start, sa.func.sum(a.c.events), sa.func.sum(a.c.errors))
            .where(
                a.c.endpoint_id == endpoint_id,
                a.c.slot_start >= db.to_db_time(start),
                a.c.slot_start < db.to_db_time(end),
            )
            .group_by(a.c.slot_start)
        )
        with self.engine.connect() as conn:
            return {db.from_db_time(slot): (int(n), int(e)) for slot, n, e in conn.execute(query)}

    def event_counts(self, endpoint_id: str, start: datetime, end: datetime) -> dict[datetime, int]:
        """Events per arrival slot of one endpoint with slot start in [start, end)."""
        return {slot: events for slot, (events, _) in self.slot_counts(endpoint_id, start, end).items()}

    def expire(self, slot_before: datetime) -> int:
        """Forget arrivals of slots before `slot_before` (retention; the controller only looks
        at recent arrivals)."""
        a = db.arrivals
        with self.engine.begin() as conn:
            return int(conn.execute(a.delete().where(a.c.slot_start < db.to_db_time(slot_before))).rowcount)
