"""Recording from a serving process: a buffered recorder and a one-line `predict` wrapper.

Monitoring must never hurt the model it watches: `EventRecorder.record` and `monitored(predict)`
only append to a bounded in-memory queue, never raise into the caller and never wait on I/O. A
background thread validates the events, stores them per endpoint as one batch, counts the events
it had to reject (per endpoint, window and reason: `invalid_events`), and, when the store is
unreachable, keeps validated batches in a local durable spool that it replays once the store is
back. What cannot be kept (a full buffer or spool) is counted and logged, never silent. SIGTERM
and SIGINT flush before the process stops (any handler already installed still runs).
"""

import atexit
import functools
import itertools
import logging
import os
import signal
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import EventValidationError, UnknownEndpointError
from mm_dagster.core.names import EVENT_FIELDS
from mm_dagster.core.windows import Window
from mm_dagster.events.ingest import EventIngestor
from mm_dagster.events.validation import EventRules, validate_events
from mm_dagster.storage.invalid_events import InvalidEventKey, InvalidEventLog
from mm_dagster.storage.spool import Spool

log = logging.getLogger(__name__)

DEFAULT_MAX_BUFFERED = 100_000
DEFAULT_SPOOL_BYTES = 1 << 30
STORE_RETRY_SECONDS = 5.0
CLOSE_TIMEOUT_SECONDS = 60.0
BUFFER_FULL = "dropped: the recorder's buffer was full"
SPOOL_FULL = "dropped: the store was unreachable and the spool was full"


@dataclass(frozen=True)
class _Recorded:
    """One `record` (a single event) or one `predict` call (its inputs may hold many rows)."""

    endpoint: str
    features: Any
    outputs: Any
    latency_us: float | None
    error: str | None
    request_id: str
    timestamp: Any
    is_call: bool
    recorded_ns: int = field(default_factory=time.time_ns)


@dataclass
class RecorderStats:
    recorded: int = 0
    stored: int = 0
    spooled_batches: int = 0
    replayed_batches: int = 0
    invalid: int = 0
    dropped: int = 0


class EventRecorder:
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
        self.ingestor = ingestor
        self.invalid_log = invalid_log
        self.spool = spool
        self.max_events = max_events
        self.max_seconds = max_seconds
        self.max_buffered = max_buffered
        self.stats = RecorderStats()
        self._queue: deque[_Recorded] = deque()
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:16]
        self._endpoints: dict[str, ModelEndpoint] = {}
        self._invalid: dict[InvalidEventKey, tuple[int, str]] = {}
        self._store_failed_at: float | None = None
        self._wake = threading.Event()
        self._flush_requested = threading.Event()
        self._cycle = threading.Condition()
        self._cycles = 0
        self._closing = False
        self._closed = False
        self._flusher = threading.Thread(target=self._run, daemon=True, name="mm-event-recorder")
        self._flusher.start()
        atexit.register(self.close)
        if handle_signals:
            self._chain_signal_handlers()

    # -- the caller's side: append only ------------------------------------------------------------
    def record(
        self,
        endpoint: str,
        features: Mapping[str, Any],
        outputs: Mapping[str, Any] | None = None,
        *,
        latency_us: float | None = None,
        error: str | None = None,
        request_id: str | None = None,
        timestamp: Any = None,
    ) -> None:
        """Record one event. Never raises; problems are counted as invalid events."""
        rid = request_id or f"{self._id_prefix}{next(self._ids):x}"
        self._append(_Recorded(endpoint, features, outputs, latency_us, error, rid, timestamp, False))

    def record_call(
        self, endpoint: str, inputs: Any, outputs: Any, latency_us: float, error: str | None
    ) -> None:
        """Record one `predict(inputs) -> outputs` call (one event per input row)."""
        rid = f"{self._id_prefix}{next(self._ids):x}"
        self._append(_Recorded(endpoint, _snapshot(inputs), outputs, latency_us, error, rid, None, True))

    def _append(self, item: _Recorded) -> None:
        if self._closed or len(self._queue) >= self.max_buffered:
            self.stats.dropped += 1
            return
        self._queue.append(item)
        self.stats.recorded += 1
        if len(self._queue) >= self.max_events:
            self._wake.set()

    def pending(self) -> int:
        """Events waiting in memory (not yet stored or spooled)."""
        return len(self._queue)

    def flush(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> bool:
        """Wait until everything recorded so far is stored, spooled or counted as invalid."""
        if not self._flusher.is_alive():
            self._drain()
            return not self._queue
        with self._cycle:
            target = self._cycles + 2  # a cycle that started before this call may miss items
            self._flush_requested.set()
            self._wake.set()
            return self._cycle.wait_for(lambda: self._cycles >= target, timeout=timeout)

    def close(self) -> None:
        """Flush and stop the background thread (also at exit and on SIGTERM/SIGINT)."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        if self._flusher.is_alive() and threading.current_thread() is not self._flusher:
            self._flusher.join(CLOSE_TIMEOUT_SECONDS)
        self._drain()  # whatever the thread could not take before it stopped
        self._closed = True
        atexit.unregister(self.close)

    # -- the background side ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=min(1.0, self.max_seconds))
            self._wake.clear()
            try:
                if self._due():
                    self._flush_requested.clear()
                    self._drain()
                self._replay_spool()
            except Exception:  # the thread must survive anything; nothing is dropped silently
                log.exception("mm_dagster recorder: flush cycle failed; events stay queued")
            with self._cycle:
                self._cycles += 1
                self._cycle.notify_all()
            if self._closing:
                return

    def _due(self) -> bool:
        if not self._queue:
            return False
        if self._closing or self._flush_requested.is_set() or len(self._queue) >= self.max_events:
            return True
        return (time.time_ns() - self._queue[0].recorded_ns) / 1e9 >= self.max_seconds

    def _drain(self) -> None:
        items: list[_Recorded] = []
        while self._queue:
            items.append(self._queue.popleft())
        by_endpoint: dict[str, list[_Recorded]] = defaultdict(list)
        for item in items:
            by_endpoint[item.endpoint].append(item)
        for name, group in by_endpoint.items():
            endpoint = self._endpoint(name, group)
            if endpoint is not None:
                self._store(endpoint, group)
        self._save_invalid_counts()

    def _endpoint(self, name: str, group: list[_Recorded]) -> ModelEndpoint | None:
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

    def _requeue(self, group: list[_Recorded], why: str) -> None:
        room = self.max_buffered - len(self._queue)
        kept, lost = group[:room], group[room:]
        self._queue.extendleft(reversed(kept))
        if lost:
            self.stats.dropped += len(lost)
            log.error("mm_dagster recorder: %s; %d event(s) dropped, buffer full", why, len(lost))
        else:
            log.warning("mm_dagster recorder: %s; %d event(s) kept in memory", why, len(kept))

    def _store(self, endpoint: ModelEndpoint, group: list[_Recorded]) -> None:
        rows, problems = _rows_of_items(endpoint, group)
        for item, reason in problems:
            self._count_invalid(
                endpoint, _event_time(item.timestamp, item.recorded_ns), reason, repr(item.features)[:300]
            )
        if not rows:
            return
        now = pd.Timestamp.now(tz="UTC")
        table, rejected = _validate_rows(endpoint, pd.DataFrame(rows), now, self.ingestor.rules)
        for position, reason, sample in rejected:
            row = rows[position]
            self._count_invalid(endpoint, _event_time(row["timestamp"], row["_recorded_ns"]), reason, sample)
        if table is None or table.num_rows == 0:
            return
        batch_id = uuid.uuid4().hex
        if self._store_reachable():
            try:
                self.stats.stored += self.ingestor.record_table(endpoint.id, table, batch_id=batch_id)
                self._store_failed_at = None
                return
            except Exception as exc:
                self._store_failed_at = time.monotonic()
                log.warning(
                    "mm_dagster recorder: the event store is unreachable (%s: %s); spooling locally",
                    type(exc).__name__,
                    exc,
                )
        if self.spool.put(endpoint.id, batch_id, table):
            self.stats.spooled_batches += 1
        else:
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

    def _chain_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.info("mm_dagster recorder: not in the main thread; SIGTERM/SIGINT will not flush")
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)

            def on_signal(received: int, frame: FrameType | None, previous: Any = previous) -> None:
                self.close()
                if callable(previous):
                    previous(received, frame)
                elif previous == signal.SIG_DFL:
                    signal.signal(received, signal.SIG_DFL)
                    os.kill(os.getpid(), received)

            signal.signal(signum, on_signal)


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


def _snapshot(inputs: Any) -> Any:
    """A copy of mutable inputs, so a caller reusing its buffers does not change the record."""
    if isinstance(inputs, dict):
        return dict(inputs)
    if isinstance(inputs, list):
        return list(inputs)
    if isinstance(inputs, np.ndarray):
        return inputs.copy()
    return inputs


def _rows_of_items(
    endpoint: ModelEndpoint, items: Sequence[_Recorded]
) -> tuple[list[dict[str, Any]], list[tuple[_Recorded, str]]]:
    """Event rows (with their recording time) and the items that could not become rows."""
    rows: list[dict[str, Any]] = []
    problems: list[tuple[_Recorded, str]] = []
    known = {*endpoint.columns, *EVENT_FIELDS}
    for item in items:
        try:
            pairs: list[tuple[dict[str, Any], dict[str, Any]]]
            if item.is_call:
                inputs = _rows_of(item.features, endpoint.feature_names)
                results = (
                    [{} for _ in inputs]
                    if item.error is not None
                    else _outputs_of(item.outputs, endpoint.label_names, len(inputs))
                )
                pairs = list(zip(inputs, results, strict=True))
            else:
                pairs = [(dict(item.features), dict(item.outputs or {}))]
        except (TypeError, ValueError, EventValidationError) as exc:
            problems.append((item, f"predict inputs/outputs not understood: {type(exc).__name__}"))
            continue
        unknown = sorted({str(k) for f, lab in pairs for k in (*f, *lab)} - known)
        if unknown:  # one such row would make its whole batch structurally invalid
            problems.append((item, f"field {unknown[0]!r}: is not a feature or label of this endpoint"))
            continue
        for i, (features, labels) in enumerate(pairs):
            row = {**features, **labels}
            if item.error is not None:
                row.update({label: row.get(label) for label in endpoint.label_names})
            row["timestamp"] = (
                item.timestamp
                if item.timestamp is not None
                else pd.Timestamp(item.recorded_ns // 1000, unit="us", tz="UTC")
            )
            row["request_id"] = f"{item.request_id}-{i}" if item.is_call else item.request_id
            row["latency_us"] = item.latency_us
            row["error"] = item.error
            row["_recorded_ns"] = item.recorded_ns
            rows.append(row)
    return rows, problems


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


def _rows_of(inputs: Any, feature_names: Sequence[str]) -> list[dict[str, Any]]:
    if isinstance(inputs, pd.DataFrame):
        records: list[dict[str, Any]] = inputs.to_dict(orient="records")
        return records
    if isinstance(inputs, Mapping):
        return [dict(inputs)]
    rows = inputs.tolist() if hasattr(inputs, "tolist") else list(inputs)
    if rows and isinstance(rows[0], Mapping):
        return [dict(r) for r in rows]
    if rows and (not isinstance(rows[0], Sequence) or isinstance(rows[0], str)):
        rows = [rows]
    return [dict(zip(feature_names, r, strict=True)) for r in rows]


def _outputs_of(outputs: Any, label_names: Sequence[str], n: int) -> list[dict[str, Any]]:
    if not label_names:
        return [{} for _ in range(n)]  # the endpoint records no outputs
    if isinstance(outputs, pd.DataFrame):
        records: list[dict[str, Any]] = outputs.to_dict(orient="records")
        return records
    if hasattr(outputs, "tolist"):
        outputs = outputs.tolist()
    values = list(outputs) if isinstance(outputs, Sequence) and not isinstance(outputs, str) else [outputs]
    if len(values) != n:
        raise ValueError(f"predict returned {len(values)} outputs for {n} input rows (labels {label_names})")
    if len(label_names) == 1:
        return [{label_names[0]: v} for v in values]
    return [dict(zip(label_names, v, strict=True)) for v in values]


def monitored(predict: Callable[[Any], Any], endpoint: str, recorder: EventRecorder) -> Callable[[Any], Any]:
    """Wrap `predict(inputs) -> outputs` so each call records one event per input row. The
    wrapper adds a few microseconds, never raises anything `predict` did not, and never blocks."""

    def wrapper(inputs: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            outputs = predict(inputs)
        except Exception as exc:
            latency = (time.perf_counter_ns() - started) / 1000
            recorder.record_call(endpoint, inputs, None, latency, f"{type(exc).__name__}: {exc}")
            raise
        recorder.record_call(endpoint, inputs, outputs, (time.perf_counter_ns() - started) / 1000, None)
        return outputs

    return functools.update_wrapper(wrapper, predict)
