"""Recording from a serving process: a buffered recorder and a one-line `predict` wrapper."""

import atexit
import functools
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from mm_dagster.core.clock import utcnow
from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import EventValidationError
from mm_dagster.events.ingest import EventIngestor
from mm_dagster.events.validation import validate_events

log = logging.getLogger(__name__)


class EventRecorder:
    """Buffers single events per endpoint; flushes by size, by age and at exit.

    `record` validates the event at once (a bad event raises and is not buffered). Buffered
    events are acknowledged when a flush returns; `flush()` forces one.
    """

    def __init__(self, ingestor: EventIngestor, max_events: int = 1000, max_seconds: float = 5.0) -> None:
        self.ingestor = ingestor
        self.max_events = max_events
        self.max_seconds = max_seconds
        self._buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._endpoints: dict[str, ModelEndpoint] = {}
        self._lock = threading.RLock()
        self._oldest: float | None = None
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._flush_periodically, daemon=True, name="mm-event-recorder")
        self._timer.start()
        atexit.register(self.close)

    def endpoint(self, endpoint: str) -> ModelEndpoint:
        ep = self._endpoints.get(endpoint)
        if ep is None:
            ep = self.ingestor.registry.get(endpoint)
            self._endpoints[endpoint] = self._endpoints[ep.id] = self._endpoints[ep.name] = ep
        return ep

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
        ep = self.endpoint(endpoint)
        row: dict[str, Any] = {**features, **(outputs or {})}
        if error is not None:
            row.update({label: row.get(label) for label in ep.label_names})
        row["timestamp"] = pd.Timestamp(timestamp or utcnow())
        row["request_id"] = request_id or uuid.uuid4().hex
        row["latency_us"] = latency_us
        row["error"] = error
        validate_events(ep, pd.DataFrame([row]), row["timestamp"])
        with self._lock:
            self._buffers[ep.id].append(row)
            if self._oldest is None:
                self._oldest = time.monotonic()
            full = sum(len(b) for b in self._buffers.values()) >= self.max_events
        if full:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            buffers, self._buffers = self._buffers, defaultdict(list)
            self._oldest = None
            stored = 0
            for endpoint_id, rows in buffers.items():
                try:
                    stored += self.ingestor.record_events(self._endpoints[endpoint_id], pd.DataFrame(rows))
                except Exception:
                    # Keep what was not stored for the next flush.
                    self._buffers[endpoint_id][:0] = rows
                    if self._oldest is None:
                        self._oldest = time.monotonic()
                    raise
            return stored

    def _flush_periodically(self) -> None:
        while not self._stop.wait(min(1.0, self.max_seconds)):
            oldest = self._oldest
            if oldest is not None and time.monotonic() - oldest >= self.max_seconds:
                try:
                    self.flush()
                except Exception:
                    log.exception("mm_dagster: flushing buffered events failed; will retry")

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def pending(self) -> int:
        with self._lock:
            return sum(len(b) for b in self._buffers.values())


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
    if isinstance(outputs, pd.DataFrame):
        records: list[dict[str, Any]] = outputs.to_dict(orient="records")
        return records
    if hasattr(outputs, "tolist"):
        outputs = outputs.tolist()
    values = list(outputs) if isinstance(outputs, Sequence) and not isinstance(outputs, str) else [outputs]
    if len(values) != n:
        raise EventValidationError(
            f"predict returned {len(values)} outputs for {n} input rows (labels {label_names})"
        )
    if len(label_names) == 1:
        return [{label_names[0]: v} for v in values]
    return [dict(zip(label_names, v, strict=True)) for v in values]


def monitored(predict: Callable[[Any], Any], endpoint: str, recorder: EventRecorder) -> Callable[[Any], Any]:
    """Wrap `predict(inputs) -> outputs` so each call records one event per input row."""
    ep = recorder.endpoint(endpoint)

    def wrapper(inputs: Any) -> Any:
        request_id = uuid.uuid4().hex
        rows = _rows_of(inputs, ep.feature_names)
        started = time.perf_counter()
        try:
            outputs = predict(inputs)
        except Exception as exc:
            latency = (time.perf_counter() - started) * 1e6
            for i, row in enumerate(rows):
                recorder.record(
                    ep.id,
                    row,
                    None,
                    latency_us=latency,
                    request_id=f"{request_id}-{i}",
                    error=f"{type(exc).__name__}: {exc}",
                )
            raise
        latency = (time.perf_counter() - started) * 1e6
        for i, (row, out) in enumerate(
            zip(rows, _outputs_of(outputs, ep.label_names, len(rows)), strict=True)
        ):
            recorder.record(ep.id, row, out, latency_us=latency, request_id=f"{request_id}-{i}")
        return outputs

    return functools.update_wrapper(wrapper, predict)
