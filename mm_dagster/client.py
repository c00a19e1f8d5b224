"""A client for a remote monitoring service (`mm serve`): `MonitoringClient` and its recorder.

`MonitoringClient(base_url, token)` sends batches as Arrow IPC streams to
`POST /v1/endpoints/{name}/events` and `.../labels`. Connection errors, 429 and 5xx answers are
retried with exponential backoff (a 429's `Retry-After` is honoured); every batch carries one
`Idempotency-Key` through all its attempts, so a retry after an answer that got lost stores the
batch once. A 4xx answer raises `ServiceError` with the service's message (field, row).

`client.recorder()` has the semantics of `Monitoring.recorder()` for a serving process: `record`
and `monitored(predict)` only append to a bounded queue and never raise; a background thread
sends per endpoint on size or age, on `flush()`/`close()`, at exit and on SIGTERM/SIGINT. Rows
the service refuses (422) are found by bisection and counted as invalid; batches that cannot
reach the service wait in memory (bounded by `max_buffered` rows) and are re-sent with their key.

Imports httpx, pandas and pyarrow only (no Dagster, SQLAlchemy, scikit-learn or SciPy).
"""

import io
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.ipc

from mm_dagster.core.errors import MonitoringError
from mm_dagster.recording import (
    DEFAULT_MAX_BUFFERED,
    BackgroundRecorder,
    Recorded,
    monitored,
    rows_of_items,
)

log = logging.getLogger(__name__)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
UNAVAILABLE_PAUSE_SECONDS = 5.0  # a recorder that could not reach the service waits this long


class ServiceError(MonitoringError):
    """The service refused a request; the message is the service's (what was wrong, where)."""

    def __init__(self, message: str, status_code: int | None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServiceUnavailableError(ServiceError):
    """The service could not be reached, or kept answering 429/5xx, through every retry."""


@dataclass(frozen=True)
class EventsReceipt:
    endpoint: str
    endpoint_id: str
    received: int
    stored: int  # 0 when the batch was stored before under its Idempotency-Key
    duplicate: bool
    windows: list[str]


@dataclass(frozen=True)
class LabelsReceipt:
    endpoint: str
    endpoint_id: str
    stored: int
    matched: int
    unmatched: int
    unmatched_ids: list[str]
    windows: list[str]


@dataclass(frozen=True)
class EndpointSchema:
    endpoint: str
    endpoint_id: str
    feature_names: list[str]
    label_names: list[str]
    column_types: dict[str, str]


def encode_frame(frame: pd.DataFrame) -> tuple[bytes, str]:
    """The frame as an Arrow IPC stream; as JSON records when a column mixes types Arrow cannot
    hold in one column (the service then names the field and row that are wrong)."""
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise MonitoringError(f"the frame repeats the column(s) {repeated}: column names must be unique")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        records = frame.reset_index(drop=True).to_json(orient="records", date_format="iso", date_unit="us")
        return records.encode(), "application/json"
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue(), ARROW_STREAM


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail is not None else response.text[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class MonitoringClient:
    """Sends events and labels to a monitoring service; see the module docstring.

    `retries`: attempts after the first for connection errors, 429 and 5xx; the wait doubles
    from `backoff_seconds` (a 429's Retry-After instead, when given). `transport`: an httpx
    transport (e.g. for a proxy or TLS settings)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retries: int = DEFAULT_RETRIES,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retries < 0:
            raise MonitoringError(f"retries must be 0 or more, got {retries}")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "MonitoringClient":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def record_events(
        self,
        endpoint: str,
        events: pd.DataFrame,
        *,
        timestamp_unit: str | None = None,
        idempotency_key: str | None = None,
    ) -> EventsReceipt:
        """Store a batch of events (all or none); returns once the service stored it durably."""
        body, kind = encode_frame(events)
        headers = {"Content-Type": kind, "Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        response = self._request("POST", f"{_path(endpoint)}/events", body, headers, timestamp_unit)
        return EventsReceipt(**response.json())

    def record_labels(
        self, endpoint: str, labels: pd.DataFrame, *, timestamp_unit: str | None = None
    ) -> LabelsReceipt:
        """Store ground truth (`request_id`, the task's target, an optional `timestamp`)."""
        body, kind = encode_frame(labels)
        response = self._request(
            "POST", f"{_path(endpoint)}/labels", body, {"Content-Type": kind}, timestamp_unit
        )
        return LabelsReceipt(**response.json())

    def schema(self, endpoint: str) -> EndpointSchema:
        return EndpointSchema(**self._request("GET", f"{_path(endpoint)}/schema").json())

    def recorder(
        self,
        max_events: int = 1000,
        max_seconds: float = 5.0,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        handle_signals: bool = True,
    ) -> "RemoteRecorder":
        """A background recorder for a serving process, sending to this service."""
        return RemoteRecorder(
            self,
            max_events=max_events,
            max_seconds=max_seconds,
            max_buffered=max_buffered,
            handle_signals=handle_signals,
        )

    def monitored(
        self, predict: Callable[[Any], Any], endpoint: str, recorder: "RemoteRecorder | None" = None
    ) -> Callable[[Any], Any]:
        return monitored(predict, endpoint, recorder or self.recorder())

    def _request(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timestamp_unit: str | None = None,
    ) -> httpx.Response:
        params = {"timestamp_unit": timestamp_unit} if timestamp_unit else None
        what = f"{method} {self.base_url}{path}"
        failure = ""
        for attempt in range(self.retries + 1):
            wait = min(MAX_BACKOFF_SECONDS, self.backoff_seconds * 2**attempt)
            try:
                response = self._http.request(method, path, content=content, headers=headers, params=params)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status != 429 and status < 500:
                    raise ServiceError(f"{what}: {status}: {_detail(response)}", status)
                failure = f"{status}: {_detail(response)}"
                wait = (
                    _retry_after(response) if status == 429 and _retry_after(response) is not None else wait
                )
            if attempt < self.retries:
                log.info("%s: %s; retrying in %.1f s", what, failure, wait)
                time.sleep(wait)
        raise ServiceUnavailableError(f"{what}: gave up after {self.retries + 1} attempt(s): {failure}", None)


def _path(endpoint: str) -> str:
    return f"/v1/endpoints/{quote(endpoint, safe='')}"


@dataclass(frozen=True)
class _Unsent:
    endpoint: str
    key: str
    frame: pd.DataFrame


class RemoteRecorder(BackgroundRecorder):
    """`Monitoring.recorder()`'s semantics, storing through a `MonitoringClient`."""

    def __init__(
        self,
        client: MonitoringClient,
        *,
        max_events: int = 1000,
        max_seconds: float = 5.0,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        handle_signals: bool = True,
    ) -> None:
        super().__init__(
            max_events=max_events,
            max_seconds=max_seconds,
            max_buffered=max_buffered,
            thread_name="mm-remote-recorder",
        )
        self.client = client
        self._schemas: dict[str, EndpointSchema] = {}
        self._unsent: deque[_Unsent] = deque()
        self._unsent_rows = 0
        self._unavailable_at: float | None = None
        self._start(handle_signals)

    def unsent(self) -> int:
        """Events that could not reach the service yet (kept in memory, re-sent later)."""
        return self._unsent_rows

    def close(self) -> None:
        """Flush, make a last attempt at what waits for the service, count what is left."""
        self._unavailable_at = None
        super().close()
        self._unavailable_at = None
        self._send_unsent()
        if self._queue:  # events of endpoints that could not be looked up
            self.stats.dropped += len(self._queue)
            log.error(
                "mm_dagster remote recorder: %d event(s) not sent before close (%s unreachable); dropped",
                len(self._queue),
                self.client.base_url,
            )
            self._queue.clear()
        if self._unsent_rows:
            self.stats.dropped += self._unsent_rows
            log.error(
                "mm_dagster remote recorder: %d event(s) could not reach %s before close; dropped",
                self._unsent_rows,
                self.client.base_url,
            )
            self._unsent.clear()
            self._unsent_rows = 0

    def _between_drains(self) -> None:
        self._send_unsent()

    def _available(self) -> bool:
        failed = self._unavailable_at
        return failed is None or time.monotonic() - failed >= UNAVAILABLE_PAUSE_SECONDS

    def _schema(self, name: str, group: list[Recorded]) -> EndpointSchema | None:
        schema = self._schemas.get(name)
        if schema is not None:
            return schema
        if not self._available():
            self._requeue(group, f"the service at {self.client.base_url} is unreachable")
            return None
        try:
            schema = self.client.schema(name)
        except ServiceUnavailableError as exc:
            self._unavailable_at = time.monotonic()
            self._requeue(group, f"endpoint {name!r} could not be looked up: {exc}")
            return None
        except ServiceError as exc:  # unknown endpoint, or a token that may not write to it
            self.stats.invalid += len(group)
            log.error("mm_dagster remote recorder: %d event(s) for %r not sent: %s", len(group), name, exc)
            return None
        self._schemas[name] = schema
        return schema

    def _store_group(self, name: str, group: list[Recorded]) -> None:
        schema = self._schema(name, group)
        if schema is None:
            return
        rows, problems = rows_of_items(schema.feature_names, schema.label_names, group)
        for item, reason in problems:
            self._invalid(name, 1, f"{reason} ({repr(item.features)[:300]})")
        if rows:
            frame = pd.DataFrame(rows).drop(columns=["_recorded_ns"])
            self._keep(_Unsent(name, uuid.uuid4().hex, frame))
            self._send_unsent()

    def _keep(self, batch: _Unsent) -> None:
        if self._unsent_rows + len(batch.frame) > self.max_buffered:
            self.stats.dropped += len(batch.frame)
            log.error(
                "mm_dagster remote recorder: %d event(s) of %r dropped: %d wait for the service already",
                len(batch.frame),
                batch.endpoint,
                self._unsent_rows,
            )
            return
        self._unsent.append(batch)
        self._unsent_rows += len(batch.frame)

    def _send_unsent(self) -> None:
        """Send waiting batches in order; stop at the first that cannot reach the service."""
        while self._unsent and self._available():
            batch = self._unsent[0]
            try:
                self._send(batch)
            except ServiceUnavailableError as exc:
                self._unavailable_at = time.monotonic()
                log.warning(
                    "mm_dagster remote recorder: %s; %d event(s) wait in memory", exc, self._unsent_rows
                )
                return
            self._unsent.popleft()
            self._unsent_rows -= len(batch.frame)
            self._unavailable_at = None

    def _send(self, batch: _Unsent) -> None:
        """Store the batch; rows the service refuses are found by halving and counted."""
        try:
            self.stats.stored += self.client.record_events(
                batch.endpoint, batch.frame, idempotency_key=batch.key
            ).stored
        except ServiceUnavailableError:
            raise
        except ServiceError as exc:
            if exc.status_code not in (413, 422) or len(batch.frame) == 1:
                self._invalid(batch.endpoint, len(batch.frame), str(exc))
                return
            mid = len(batch.frame) // 2
            for part, rows in enumerate((batch.frame.iloc[:mid], batch.frame.iloc[mid:])):
                self._send(_Unsent(batch.endpoint, f"{batch.key}.{part}", rows))

    def _invalid(self, endpoint: str, events: int, why: str) -> None:
        self.stats.invalid += events
        log.warning("mm_dagster remote recorder: %d invalid event(s) for %r: %s", events, endpoint, why)


__all__ = [
    "EndpointSchema",
    "EventsReceipt",
    "LabelsReceipt",
    "MonitoringClient",
    "RemoteRecorder",
    "ServiceError",
    "ServiceUnavailableError",
    "encode_frame",
]
