"""The serving side of recording, whatever stores the events: a bounded in-memory queue emptied
by a background thread, and the rules that turn `predict` calls into event rows.

`BackgroundRecorder.record` and `monitored(predict)` only append to the queue: they never raise
into the caller and never wait on I/O. The thread drains the queue per endpoint when `max_events`
wait or the oldest has waited `max_seconds`, on `flush()`, on `close()`, at exit and on
SIGTERM/SIGINT (any handler already installed still runs). Where the events go is the subclass's
`_store_group`: the local store (`events.recorder.EventRecorder`) or a remote service
(`client.RemoteRecorder`).
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
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd

from mm_dagster.core.errors import EventValidationError
from mm_dagster.core.names import EVENT_FIELDS

log = logging.getLogger(__name__)

DEFAULT_MAX_BUFFERED = 100_000
CLOSE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Recorded:
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


class BackgroundRecorder:
    """Buffers events and hands them to `_store_group` in the background; see the module
    docstring. `flush()` waits until everything recorded so far is handed over; `close()`
    flushes and stops. Subclasses implement `_store_group` and may add `_after_drain` (after
    every drain) and `_between_drains` (every cycle of the thread, e.g. to retry a backlog)."""

    def __init__(
        self,
        *,
        max_events: int = 1000,
        max_seconds: float = 5.0,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        handle_signals: bool = True,
        thread_name: str = "mm-event-recorder",
    ) -> None:
        self.max_events = max_events
        self.max_seconds = max_seconds
        self.max_buffered = max_buffered
        self.stats = RecorderStats()
        self._queue: deque[Recorded] = deque()
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:16]
        self._wake = threading.Event()
        self._flush_requested = threading.Event()
        self._cycle = threading.Condition()
        self._cycles = 0
        self._closing = False
        self._closed = False
        self._flusher = threading.Thread(target=self._run, daemon=True, name=thread_name)

    def _start(self, handle_signals: bool) -> None:
        """Start the thread; subclasses call this once their own state is set up."""
        self._flusher.start()
        atexit.register(self.close)
        if handle_signals:
            self._chain_signal_handlers()

    # -- what the subclass does with the events ------------------------------------------------
    def _store_group(self, endpoint: str, group: list[Recorded]) -> None:
        raise NotImplementedError

    def _after_drain(self) -> None:
        """Called after every drain (also the last one, in `close`)."""

    def _between_drains(self) -> None:
        """Called every cycle of the background thread, after its drain if one was due."""

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
        self._append(Recorded(endpoint, features, outputs, latency_us, error, rid, timestamp, False))

    def record_call(
        self, endpoint: str, inputs: Any, outputs: Any, latency_us: float, error: str | None
    ) -> None:
        """Record one `predict(inputs) -> outputs` call (one event per input row)."""
        rid = f"{self._id_prefix}{next(self._ids):x}"
        self._append(Recorded(endpoint, _snapshot(inputs), outputs, latency_us, error, rid, None, True))

    def _append(self, item: Recorded) -> None:
        if self._closed or len(self._queue) >= self.max_buffered:
            self.stats.dropped += 1
            return
        self._queue.append(item)
        self.stats.recorded += 1
        if len(self._queue) >= self.max_events:
            self._wake.set()

    def pending(self) -> int:
        """Events waiting in memory (not yet handed over)."""
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
                self._between_drains()
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
        items: list[Recorded] = []
        while self._queue:
            items.append(self._queue.popleft())
        by_endpoint: dict[str, list[Recorded]] = defaultdict(list)
        for item in items:
            by_endpoint[item.endpoint].append(item)
        for name, group in by_endpoint.items():
            self._store_group(name, group)
        self._after_drain()

    def _requeue(self, group: list[Recorded], why: str) -> None:
        """Put `group` back at the head of the queue (what does not fit is dropped, counted)."""
        room = self.max_buffered - len(self._queue)
        kept, lost = group[:room], group[room:]
        self._queue.extendleft(reversed(kept))
        if lost:
            self.stats.dropped += len(lost)
            log.error("mm_dagster recorder: %s; %d event(s) dropped, buffer full", why, len(lost))
        else:
            log.warning("mm_dagster recorder: %s; %d event(s) kept in memory", why, len(kept))

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


def _snapshot(inputs: Any) -> Any:
    """A copy of mutable inputs, so a caller reusing its buffers does not change the record."""
    if isinstance(inputs, dict):
        return dict(inputs)
    if isinstance(inputs, list):
        return list(inputs)
    if isinstance(inputs, np.ndarray):
        return inputs.copy()
    return inputs


def rows_of_items(
    feature_names: Sequence[str], label_names: Sequence[str], items: Sequence[Recorded]
) -> tuple[list[dict[str, Any]], list[tuple[Recorded, str]]]:
    """Event rows (with their recording time in `_recorded_ns`) of an endpoint with these
    features and outputs, and the items that could not become rows."""
    rows: list[dict[str, Any]] = []
    problems: list[tuple[Recorded, str]] = []
    known = {*feature_names, *label_names, *EVENT_FIELDS}
    for item in items:
        try:
            pairs: list[tuple[dict[str, Any], dict[str, Any]]]
            if item.is_call:
                inputs = _rows_of(item.features, feature_names)
                results = (
                    [{} for _ in inputs]
                    if item.error is not None
                    else _outputs_of(item.outputs, label_names, len(inputs))
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
                row.update({label: row.get(label) for label in label_names})
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


def monitored(
    predict: Callable[[Any], Any], endpoint: str, recorder: BackgroundRecorder
) -> Callable[[Any], Any]:
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
