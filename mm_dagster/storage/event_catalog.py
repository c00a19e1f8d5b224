"""The event-file catalog: which Parquet files of the event store are readable.

A file becomes readable only when the transaction that registers its batch commits (with the
batch's arrival rows and the endpoint's counters), so a batch is all-or-none whatever moment a
writer dies; files on disk that the catalog does not list are leftovers of such deaths and are
swept. Readers take the list of live files from one query (no directory listing, cheap on object
storage). Compaction swaps a slot's small files for one large file in one transaction; the
replaced files stay on disk for a grace period, so a reader holding the old list still finds them.

A compacted slot file holds many endpoints: it has one row here per endpoint (its counts), each
naming the file in `shared_file`. Every row of a file changes state with the others (compaction,
quarantine and retention act on whole files).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock
from mm_dagster.storage import database as db

LIVE, REPLACED, EXPIRED, QUARANTINED = "live", "replaced", "expired", "quarantined"


class EventFile(Protocol):
    """What the catalog records of a written file (`event_store.WrittenFile` has it)."""

    @property
    def endpoint_id(self) -> str: ...
    @property
    def slot_start(self) -> datetime: ...
    @property
    def path(self) -> str: ...
    @property
    def events(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def first_event(self) -> datetime: ...
    @property
    def last_event(self) -> datetime: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def schema_key(self) -> str: ...
    @property
    def shared_file(self) -> str | None: ...


@dataclass(frozen=True)
class CatalogFile:
    id: int
    endpoint_id: str
    slot_start: datetime
    path: str
    events: int
    errors: int
    first_event: datetime
    last_event: datetime
    size_bytes: int
    schema_key: str | None
    shared_file: str | None = None

    @property
    def file(self) -> str:
        """The path of the file holding these events (relative to the store's root)."""
        return self.shared_file or self.path


def _catalog_file(row: sa.Row[Any]) -> CatalogFile:
    m = row._mapping
    return CatalogFile(
        id=int(m["id"]),
        endpoint_id=m["endpoint_id"],
        slot_start=db.from_db_time(m["slot_start"]),
        path=m["path"],
        events=int(m["events"]),
        errors=int(m["errors"]),
        first_event=db.from_db_time(m["first_event"]),
        last_event=db.from_db_time(m["last_event"]),
        size_bytes=int(m["size_bytes"]),
        schema_key=m["schema_key"],
        shared_file=m["shared_file"],
    )


def _live_in_slots(slot_from: datetime, slot_before: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """The conditions on `db.event_files` of a live file of a slot starting in [slot_from, slot_before)."""
    t = db.event_files
    return (
        t.c.slot_start >= db.to_db_time(slot_from),
        t.c.slot_start < db.to_db_time(slot_before),
        t.c.state == LIVE,
    )


class EventCatalog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def rows_for(self, files: Sequence[EventFile], now: datetime) -> list[dict[str, Any]]:
        return [
            {
                "endpoint_id": f.endpoint_id,
                "slot_start": db.to_db_time(f.slot_start),
                "path": f.path,
                "events": f.events,
                "errors": f.errors,
                "first_event": db.to_db_time(f.first_event),
                "last_event": db.to_db_time(f.last_event),
                "size_bytes": f.size_bytes,
                "schema_key": f.schema_key,
                "shared_file": f.shared_file,
                "state": LIVE,
                "created_at": db.to_db_time(now),
            }
            for f in files
        ]

    def register(self, conn: sa.Connection, files: Sequence[EventFile], now: datetime) -> None:
        """Make `files` readable when `conn`'s transaction commits."""
        if files:
            conn.execute(db.event_files.insert(), self.rows_for(files, now))

    def live_files(
        self, slot_from: datetime, slot_before: datetime, endpoint_ids: Sequence[str] | None = None
    ) -> dict[str, list[CatalogFile]]:
        """Live files of the slots starting in [slot_from, slot_before), by endpoint id."""
        t = db.event_files
        query = sa.select(t).where(*_live_in_slots(slot_from, slot_before))
        if endpoint_ids is not None:
            query = query.where(t.c.endpoint_id.in_(list(endpoint_ids)))
        by_endpoint: dict[str, list[CatalogFile]] = defaultdict(list)
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(t.c.endpoint_id, t.c.first_event, t.c.id)):
                f = _catalog_file(row)
                by_endpoint[f.endpoint_id].append(f)
        return dict(by_endpoint)

    def event_counts(self, slot_from: datetime, slot_before: datetime) -> dict[str, tuple[int, int]]:
        """(events, errors) of the live files of the slots starting in [slot_from, slot_before),
        by endpoint id (endpoints with a live file there only), summed by the database."""
        t = db.event_files
        query = (
            sa.select(t.c.endpoint_id, sa.func.sum(t.c.events), sa.func.sum(t.c.errors))
            .where(*_live_in_slots(slot_from, slot_before))
            .group_by(t.c.endpoint_id)
        )
        with self.engine.connect() as conn:
            return {e: (int(events), int(errors)) for e, events, errors in conn.execute(query)}

    def fragmented(
        self, slot_before: datetime, slot_from: datetime | None = None, min_files: int = 2
    ) -> list[datetime]:
        """Slots in [`slot_from`, `slot_before`) whose events live in at least `min_files` files."""
        t = db.event_files
        where = [t.c.state == LIVE, t.c.slot_start < db.to_db_time(slot_before)]
        if slot_from is not None:
            where.append(t.c.slot_start >= db.to_db_time(slot_from))
        files = sa.func.count(sa.distinct(sa.func.coalesce(t.c.shared_file, t.c.path)))
        query = (
            sa.select(t.c.slot_start)
            .where(*where)
            .group_by(t.c.slot_start)
            .having(files >= min_files)
            .order_by(t.c.slot_start)
        )
        with self.engine.connect() as conn:
            return [db.from_db_time(slot) for slot in conn.execute(query).scalars()]

    def replace(self, old: Sequence[CatalogFile], new: Sequence[EventFile]) -> bool:
        """Swap `old` (still live) for `new` in one transaction; False if any of `old` is no
        longer live (a concurrent compaction or a quarantine won), in which case nothing
        changes."""
        t = db.event_files
        now = self.clock()
        with self.engine.begin() as conn:
            retired = 0
            for chunk in db.in_chunks([f.id for f in old]):
                retired += conn.execute(
                    t.update()
                    .where(t.c.id.in_(chunk), t.c.state == LIVE)
                    .values(state=REPLACED, retired_at=db.to_db_time(now))
                ).rowcount
            if retired != len(old):
                conn.rollback()
                return False
            self.register(conn, new, now)
        return True

    def quarantine(self, file: CatalogFile, reason: str) -> list[str]:
        """Quarantine the rows of `file`'s file (every endpoint of a shared file): the endpoint
        ids whose events it held."""
        t = db.event_files
        same_file = t.c.shared_file == file.shared_file if file.shared_file else t.c.id == file.id
        with self.engine.begin() as conn:
            endpoints = list(conn.execute(sa.select(t.c.endpoint_id).where(same_file)).scalars())
            conn.execute(
                t.update()
                .where(same_file)
                .values(state=QUARANTINED, retired_at=db.to_db_time(self.clock()), reason=reason[:4000])
            )
        return sorted(endpoints)

    def expire(self, slot_before: datetime) -> int:
        """Retire every live file of the slots before `slot_before` (retention)."""
        t = db.event_files
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    t.update()
                    .where(t.c.state == LIVE, t.c.slot_start < db.to_db_time(slot_before))
                    .values(state=EXPIRED, retired_at=db.to_db_time(self.clock()))
                ).rowcount
            )

    def retired_before(self, before: datetime) -> list[CatalogFile]:
        """Replaced or expired files retired before `before`: safe to delete from disk (the rows
        of a shared file that still has a live row are left out)."""
        t = db.event_files
        query = sa.select(t).where(t.c.state.in_([REPLACED, EXPIRED]), t.c.retired_at < db.to_db_time(before))
        with self.engine.connect() as conn:
            retired = [_catalog_file(r) for r in conn.execute(query)]
            shared = sorted({f.shared_file for f in retired if f.shared_file})
            in_use: set[str] = set()
            for chunk in db.in_chunks(shared):
                in_use.update(
                    conn.execute(
                        sa.select(t.c.shared_file).where(t.c.shared_file.in_(chunk), t.c.state == LIVE)
                    ).scalars()
                )
        return [f for f in retired if f.shared_file not in in_use]

    def forget(self, files: Sequence[CatalogFile]) -> None:
        t = db.event_files
        ids = [f.id for f in files]
        with self.engine.begin() as conn:
            for chunk in db.in_chunks(ids):
                conn.execute(t.delete().where(t.c.id.in_(chunk)))

    def known_paths(self, paths: Sequence[str]) -> set[str]:
        """Which of `paths` (files in the store) the catalog knows, in any state."""
        t = db.event_files
        known: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in db.in_chunks(paths):
                known.update(conn.execute(sa.select(t.c.path).where(t.c.path.in_(chunk))).scalars())
                known.update(
                    conn.execute(
                        sa.select(t.c.shared_file).distinct().where(t.c.shared_file.in_(chunk))
                    ).scalars()
                )
        return known

    def is_empty(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(db.event_files.c.id).limit(1)).first() is None
