"""Recording from a serving process into the local store: `EventRecorder` and `monitored`.

Monitoring must never hurt the model it watches: `EventRecorder.record` and `monitored(predict)`
only append to a bounded in-memory queue, never raise into the caller and never wait on I/O (the
queue and its thread are `recording.BackgroundRecorder`'s). The background thread validates
the events of each endpoint as one batch, counts the events it had to reject (per endpoint,
window and reason: `invalid_events`), then stores the batches of every endpoint of the drain at
once (`EventIngestor.record_tables`: one file per slot and schema, not one per endpoint), and,
when the store is unreachable, keeps each validated batch in a local durable spool that it
replays once the store is back. What cannot be kept (a full buffer or spool) is counted and
logged, never silent. SIGTERM and SIGINT flush before the process stops (any handler already
installed still runs).
"""

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import EventValidationError, UnknownEndpointError
from mm_dagster.core.windows import Window
from mm_dagster.events.ingest import EventIngestor
from mm_dagster.events.validation import EventRules, validate_events
from mm_dagster.recording import (
    CLOSE_TIMEOUT_SECONDS,
    DEFAULT_MAX_BUFFERED,
    BackgroundRecorder,
    Recorded,
    RecorderStats,
    monitored,
    rows_of_items,
)
from mm_dagster.storage.invalid_events import InvalidEventKey, InvalidEventLog
from mm_dagster.storage.spool import Spool

__all__ = [
    "BUFFER_FULL",
    "CLOSE_TIMEOUT_SECONDS",
    "DEFAULT_MAX_BUFFERED",
    "DEFAULT_SPOOL_BYTES",
    "SPOOL_FULL",
    "EventRecorder",
    "RecorderStats",
    "monitored",
]

log = logging.getLogger(__name__)

DEFAULT_SPOOL_BYTES = 1 << 30
STORE_RETRY_SECONDS = 5.0
BUFFER_FULL = "dropped: the recorder's buffer was full"
SPOOL_FULL = "dropped: the store was unreachable and the spool was full"


class EventRecorder(BackgroundRecorder):
    """Buffers events and stores them in the background; see the module docstring.

    `max_events`/`max_seconds`: a flush starts when this many events wait or the oldest has
    waited this long. `max_buffered`: the bound of the in-memory queue. `flush()` waits until
    everything recorded so far is stored or spooled; `close()` flushes and stops.
    """

    def __init__(
        self,
        ingestor: EventIngestor,
        invalid_log: InvalidEventLog,
        spool: Spool,
        *,
        max_events: int = 1000,
        max_seconds: float = 5.0,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        handle_signals: bool = True,
    ) -> None:
        super().__init__(max_events=max_events, max_seconds=max_seconds, max_buffered=max_buffered)
        self.ingestor = ingestor
        self.invalid_log = invalid_log
        self.spool = spool
        self._endpoints: dict[str, ModelEndpoint] = {}
        self._drained: dict[str, tuple[ModelEndpoint, pa.Table]] = {}  # validated, by endpoint id
        self._invalid: dict[InvalidEventKey, tuple[int, str]] = {}
        self._store_failed_at: float | None = None
        self._start(handle_signals)

    def _store_group(self, name: str, group: list[Recorded]) -> None:
        """Validate one endpoint's events of the drain; `_after_drain` stores them."""
        endpoint = self._endpoint(name, group)
        if endpoint is None:
            return
        try:
            table = self._validated(endpoint, group)
        except Exception:  # a fault of one endpoint's events must not stop the others'
            self.stats.dropped += len(group)
            log.exception(
                "mm_dagster recorder: %d event(s) of endpoint %r dropped", len(group), endpoint.name
            )
            return
        if table is not None:
            self._collect(endpoint, table)

    def _after_drain(self) -> None:
        self._store_drained()
        self._save_invalid_counts()

    def _between_drains(self) -> None:
        self._replay_spool()

    def _endpoint(self, name: str, group: list[Recorded]) -> ModelEndpoint | None:
        endpoint = self._endpoints.get(name)
        if endpoint is not None:
            return endpoint
        try:
            endpoint = self.ingestor.registry.get(name)
        except UnknownEndpointError:
            self.stats.invalid += len(group)
            log.error("mm_dagster recorder: %d event(s) for unknown endpoint %r not stored", len(group), name)
            return None
        except Exception as exc:  # the registry is unreachable: keep the events for later
            self._requeue(group, f"endpoint {name!r} could not be looked up: {exc}")
            return None
        self._endpoints[name] = self._endpoints[endpoint.id] = endpoint
        return endpoint

    def _validated(self, endpoint: ModelEndpoint, group: list[Recorded]) -> pa.Table | None:
        """The valid events of `group` as a table (None if there are none); the rest are counted."""
        rows, problems = rows_of_items(endpoint.feature_names, endpoint.label_names, group)
        for item, reason in problems:
            self._count_invalid(
                endpoint, _event_time(item.timestamp, item.recorded_ns), reason, repr(item.features)[:300]
            )
        if not rows:
            return None
        now = pd.Timestamp.now(tz="UTC")
        table, rejected = _validate_rows(endpoint, pd.DataFrame(rows), now, self.ingestor.rules)
        for position, reason, sample in rejected:
            row = rows[position]
            self._count_invalid(endpoint, _event_time(row["timestamp"], row["_recorded_ns"]), reason, sample)
        return table if table is not None and table.num_rows else None

    def _collect(self, endpoint: ModelEndpoint, table: pa.Table) -> None:
        """Keep `table` for this drain's store (an endpoint recorded by name and by id has two
        groups in a drain: one batch)."""
        if endpoint.id in self._drained:
            _, earlier = self._drained[endpoint.id]
            table = pa.concat_tables([earlier, table]).sort_by("timestamp")
        self._drained[endpoint.id] = (endpoint, table)

    def _store_drained(self) -> None:
        """Store the drain's batches of every endpoint together, or spool each if the store fails."""
        drained, self._drained = self._drained, {}
        if not drained:
            return
        batch_ids = {endpoint_id: uuid.uuid4().hex for endpoint_id in drained}
        if self._store_reachable():
            tables = {endpoint_id: table for endpoint_id, (_, table) in drained.items()}
            try:
                stored = self.ingestor.record_tables(tables, batch_ids=batch_ids)
                self.stats.stored += sum(stored.values())
                self._store_failed_at = None
                return
            except Exception as exc:
                self._store_failed_at = time.monotonic()
                log.warning(
                    "mm_dagster recorder: the event store is unreachable (%s: %s); spooling locally",
                    type(exc).__name__,
                    exc,
                )
        for endpoint_id, (endpoint, table) in drained.items():
            self._spool(endpoint, batch_ids[endpoint_id], table)

    def _spool(self, endpoint: ModelEndpoint, batch_id: str, table: pa.Table) -> None:
        if self.spool.put(endpoint.id, batch_id, table):
            self.stats.spooled_batches += 1
            return
        self.stats.dropped += table.num_rows
        self._count_invalid(endpoint, datetime.now(UTC), SPOOL_FULL, f"{table.num_rows} events")
        log.error(
            "mm_dagster recorder: spool %s is full; %d event(s) of endpoint %r dropped",
            self.spool.directory,
            table.num_rows,
            endpoint.name,
        )

    def _store_reachable(self) -> bool:
        failed = self._store_failed_at
        return failed is None or time.monotonic() - failed >= STORE_RETRY_SECONDS

    def _replay_spool(self) -> None:
        if not self._store_reachable():
            return
        for batch in self.spool.batches():
            try:
                self.ingestor.record_table(batch.endpoint_id, batch.read(), batch_id=batch.batch_id)
            except Exception as exc:
                self._store_failed_at = time.monotonic()
                log.warning("mm_dagster recorder: replaying the spool failed (%s); will retry", exc)
                return
            self.spool.remove(batch)
            self.stats.replayed_batches += 1
        self._store_failed_at = None

    def _count_invalid(self, endpoint: ModelEndpoint, when: datetime, reason: str, sample: str) -> None:
        """Count one event under the window of its own timestamp (or of its recording time)."""
        self.stats.invalid += 1
        slot = Window.containing(when, self.ingestor.store.base_period)
        key = InvalidEventKey(endpoint.id, slot.start, reason)
        count, first_sample = self._invalid.get(key, (0, sample))
        self._invalid[key] = (count + 1, first_sample)
        if count == 0:
            log.warning(
                "mm_dagster recorder: invalid event for endpoint %r: %s (%s)", endpoint.name, reason, sample
            )

    def _save_invalid_counts(self) -> None:
        if not self._invalid:
            return
        pending, self._invalid = self._invalid, {}
        try:
            self.invalid_log.add(pending)
        except Exception as exc:
            for key, (count, sample) in pending.items():
                kept, first = self._invalid.get(key, (0, sample))
                self._invalid[key] = (kept + count, first)
            log.warning("mm_dagster recorder: invalid-event counts not saved yet (%s)", exc)


def _event_time(timestamp: Any, recorded_ns: int) -> datetime:
    """The event's own timestamp when it is a plausible one, else when it was recorded."""
    recorded = datetime.fromtimestamp(recorded_ns / 1e9, UTC)
    if timestamp is None or isinstance(timestamp, bool | int | float):
        return recorded
    try:
        when = pd.Timestamp(timestamp)
        when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
        parsed: datetime = when.floor("us").to_pydatetime()
    except (ValueError, TypeError, OverflowError):
        return recorded
    return parsed if abs(parsed - recorded).days < 365 else recorded


def _validate_rows(
    endpoint: ModelEndpoint, df: pd.DataFrame, now: pd.Timestamp, rules: EventRules
) -> tuple[pa.Table | None, list[tuple[int, str, str]]]:
    """Validate `df`; rows that fail are found by bisection and returned as (position, reason,
    sample) instead of failing the batch."""
    frame = df.drop(columns=["_recorded_ns"]).reset_index(drop=True)
    return _bisect(endpoint, frame, now, rules, 0)


def _bisect(
    endpoint: ModelEndpoint, df: pd.DataFrame, now: pd.Timestamp, rules: EventRules, offset: int
) -> tuple[pa.Table | None, list[tuple[int, str, str]]]:
    try:
        return validate_events(endpoint, df, now, rules), []
    except EventValidationError as exc:
        if len(df) == 1:
            return None, [(offset, _reason(exc), repr(df.iloc[0].to_dict())[:300])]
    mid = len(df) // 2
    left, bad_left = _bisect(endpoint, df.iloc[:mid], now, rules, offset)
    right, bad_right = _bisect(endpoint, df.iloc[mid:], now, rules, offset + mid)
    tables = [t for t in (left, right) if t is not None]
    table = pa.concat_tables(tables).sort_by("timestamp") if tables else None
    return table, bad_left + bad_right


def _reason(exc: EventValidationError) -> str:
    """The kind of problem, without the row and the value (so counts group by reason)."""
    if exc.field and exc.problem:
        return f"field {exc.field!r}: {exc.problem}"[:200]
    return str(exc)[:200]
