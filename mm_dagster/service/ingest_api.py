"""HTTP ingestion: `POST /v1/endpoints/{name}/events` and `.../labels`.

A batch goes through the Python API's own path (`EventIngestor.record_batch`,
`LabelIngestor.record_labels`): all or none, and 202 only once the durable write has returned.
Bodies are JSON (a list of records, or `{"records": [...], "timestamp_unit": "s"}`), an Arrow IPC
stream or Parquet. Limits: 413 over `max_body_bytes` (from Content-Length, and counted while the
body streams in) or when a compressed body holds more than `DECODED_FACTOR` times that; 429 with
Retry-After when `max_concurrent_writes` writes are in flight. An `Idempotency-Key` makes a
client's retry of an events batch store it once; labels are idempotent already (a later label
for a request replaces the earlier).
"""

import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.errors import MonitoringError, UnknownEndpointError
from mm_dagster.core.windows import Window
from mm_dagster.service.auth import bearer_token, check_scope
from mm_dagster.service.state import ServiceState, service_state
from mm_dagster.storage.api_tokens import ApiToken

JSON = "application/json"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
BODY_TYPES = (JSON, ARROW_STREAM, *PARQUET_TYPES)
RETRY_AFTER_SECONDS = 1
DECODED_FACTOR = 8  # a compressed Arrow or Parquet body may hold this many times the body limit
PARQUET_BATCH_ROWS = 16_384  # Parquet is decoded (and its size counted) this many rows at a time
MAX_IDEMPOTENCY_KEY_CHARS = 200
T = TypeVar("T")

router = APIRouter(prefix="/v1", tags=["ingestion"])


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong, and where (endpoint, field, row)")


class EventsReceipt(BaseModel):
    endpoint: str
    endpoint_id: str
    received: int = Field(description="rows in the batch, all valid")
    stored: int = Field(description="rows stored now (0 when the Idempotency-Key was stored before)")
    duplicate: bool = Field(description="the batch was stored before under this Idempotency-Key")
    windows: list[str] = Field(description="keys of the windows the batch's events fall in")


class LabelsReceipt(BaseModel):
    endpoint: str
    endpoint_id: str
    stored: int
    matched: int = Field(description="labels whose prediction is stored")
    unmatched: int = Field(description="labels kept until their prediction is stored")
    unmatched_ids: list[str] = Field(description="request ids of unmatched labels (at most 20)")
    windows: list[str] = Field(description="keys of the windows re-opened for their performance")


class EndpointSchema(BaseModel):
    """What a remote recorder needs to turn `predict` calls into events."""

    endpoint: str
    endpoint_id: str
    feature_names: list[str]
    label_names: list[str]
    column_types: dict[str, str] = Field(description="column -> float, bool or string")


ERROR_MEANINGS = (
    (400, "the body cannot be read (not JSON, Arrow IPC or Parquet as declared)"),
    (401, "missing, malformed, unknown or revoked bearer token"),
    (403, "the token is scoped to another endpoint"),
    (404, "unknown endpoint"),
    (413, "the body is larger than the service's limit"),
    (415, "unsupported Content-Type"),
    (422, "the batch does not match the endpoint's schema (nothing was stored)"),
    (429, "too many writes in flight; retry after Retry-After seconds"),
)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error codes (all of them when none are given)."""
    return {
        code: {"model": ErrorBody, "description": meaning}
        for code, meaning in ERROR_MEANINGS
        if not codes or code in codes
    }


class WriteSlots:
    """A non-blocking semaphore: a write that finds no free slot is refused (429), not queued."""

    def __init__(self, slots: int) -> None:
        self._semaphore = threading.BoundedSemaphore(slots)

    def acquire(self) -> bool:
        return self._semaphore.acquire(blocking=False)

    def release(self) -> None:
        self._semaphore.release()


def _write_slots(request: Request, state: ServiceState) -> WriteSlots:
    slots: WriteSlots | None = getattr(request.app.state, "mm_write_slots", None)
    if slots is None:  # made once, on the event loop's thread
        slots = WriteSlots(state.settings.max_concurrent_writes)
        request.app.state.mm_write_slots = slots
    return slots


def _content_type(request: Request) -> str:
    declared = request.headers.get("content-type", "")
    kind = declared.split(";", 1)[0].strip().lower()
    if kind not in BODY_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {declared or '(none)'!r} is not supported: send one of {', '.join(BODY_TYPES)}",
        )
    return kind


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"the body is larger than the limit of {limit} bytes"
    )


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Content-Length is not a number") from None
    if length > limit:
        raise _too_large(limit)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as more than `limit` bytes have arrived."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _bad_body(kind: str, exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, f"the body is not a readable {kind}: {exc}")


def _frame_from_json(body: bytes) -> tuple[pd.DataFrame, str | None]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_body("JSON document", exc) from None
    unit = None
    if isinstance(parsed, dict):
        extra = sorted(set(parsed) - {"records", "timestamp_unit"})
        if "records" not in parsed or extra:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "a JSON object body has the keys 'records' (a list of objects) and optionally "
                f"'timestamp_unit'; got keys {sorted(parsed)}",
            )
        unit = parsed.get("timestamp_unit")
        if unit is not None and not isinstance(unit, str):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"timestamp_unit must be text, got {unit!r}")
        parsed = parsed["records"]
    if not isinstance(parsed, list):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"the JSON body must be a list of records or {{'records': [...]}}, got {type(parsed).__name__}",
        )
    for row, record in enumerate(parsed):
        if not isinstance(record, dict):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"record {row} is a JSON {type(record).__name__}, not an object",
            )
    return pd.DataFrame.from_records(parsed), unit


def _frame_from_table(table: pa.Table) -> pd.DataFrame:
    """Dictionary-encoded columns (e.g. a pandas categorical) are decoded to their values."""
    columns = [
        column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        for column in table.columns
    ]
    frame: pd.DataFrame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas()
    return frame


def _decoded_too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the body decompresses to more than {limit} bytes (the limit is {DECODED_FACTOR}x the body limit)",
    )


def _bounded_table(batches: Iterable[pa.RecordBatch], schema: pa.Schema, limit: int) -> pa.Table:
    """The batches as one table, refused as soon as they hold more than `limit` bytes."""
    kept: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        size += batch.nbytes
        if size > limit:
            raise _decoded_too_large(limit)
        kept.append(batch)
    return pa.Table.from_batches(kept, schema=schema)


def _arrow_table(body: bytes, limit: int) -> pa.Table:
    reader = pyarrow.ipc.open_stream(body)
    return _bounded_table(reader, reader.schema, limit)


def _parquet_table(body: bytes, limit: int) -> pa.Table:
    file = pq.ParquetFile(io.BytesIO(body))
    return _bounded_table(file.iter_batches(batch_size=PARQUET_BATCH_ROWS), file.schema_arrow, limit)


def read_frame(kind: str, body: bytes, max_body_bytes: int) -> tuple[pd.DataFrame, str | None]:
    """The body as a frame, and the timestamp unit a JSON body states. Compressed Arrow and
    Parquet bodies may hold at most `DECODED_FACTOR` times `max_body_bytes` of data."""
    if kind == JSON:
        return _frame_from_json(body)
    limit = DECODED_FACTOR * max_body_bytes
    if kind == ARROW_STREAM:
        try:
            return _frame_from_table(_arrow_table(body, limit)), None
        except (pa.ArrowException, OSError) as exc:
            raise _bad_body("Arrow IPC stream", exc) from None
    try:
        return _frame_from_table(_parquet_table(body, limit)), None
    except (pa.ArrowException, OSError) as exc:
        raise _bad_body("Parquet file", exc) from None


def _endpoint(state: ServiceState, name: str, token: ApiToken) -> ModelEndpoint:
    try:
        endpoint = state.monitoring.get_endpoint(name)
    except UnknownEndpointError:
        if token.endpoint is not None and token.endpoint != name:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token {token.name!r} may write to endpoint {token.endpoint!r} only",
            ) from None
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown endpoint {name!r}") from None
    check_scope(token, endpoint)
    return endpoint


def _unit(from_body: str | None, from_query: str | None) -> str | None:
    if from_body is not None and from_query is not None and from_body != from_query:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"timestamp_unit is {from_body!r} in the body but {from_query!r} in the query",
        )
    return from_body or from_query


async def _write(
    request: Request, state: ServiceState, store: Callable[[pd.DataFrame, str | None], T], unit: str | None
) -> T:
    """Read, parse and store one batch under the body limit and a write slot."""
    kind = _content_type(request)
    limit = state.settings.max_body_bytes
    _check_declared_length(request, limit)
    slots = _write_slots(request, state)
    if not slots.acquire():
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{state.settings.max_concurrent_writes} writes are in flight; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    try:
        body = await _read_body(request, limit)

        def parse_and_store() -> T:
            frame, body_unit = read_frame(kind, body, limit)
            try:
                return store(frame, _unit(body_unit, unit))
            except UnknownEndpointError as exc:  # deleted while the batch was on its way
                raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
            except MonitoringError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None

        return await run_in_threadpool(parse_and_store)
    finally:
        slots.release()


def _batch_id(endpoint: ModelEndpoint, key: str | None) -> str | None:
    """The stored batch id of a client's Idempotency-Key: per endpoint, fixed length."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters",
        )
    return hashlib.sha256(f"{endpoint.id}\n{key}".encode()).hexdigest()


TokenDep = Annotated[ApiToken, Depends(bearer_token)]
StateDep = Annotated[ServiceState, Depends(service_state)]
UnitQuery = Annotated[
    str | None,
    Query(description="unit of numeric timestamps: s, ms, us or ns (or 'timestamp_unit' in a JSON body)"),
]


def _body_doc() -> dict[str, Any]:
    """The request body of the write routes in the OpenAPI document (read from the stream)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {"type": "array", "items": {"type": "object"}}},
                ARROW_STREAM: binary,
                **{kind: binary for kind in PARQUET_TYPES},
            },
        }
    }


@router.get(
    "/endpoints/{name}/schema",
    response_model=EndpointSchema,
    responses=_errors(401, 403, 404),
    summary="The endpoint's features and outputs (for a token that may write to it)",
)
def get_schema(name: str, token: TokenDep, state: StateDep) -> EndpointSchema:
    endpoint = _endpoint(state, name, token)
    return EndpointSchema(
        endpoint=endpoint.name,
        endpoint_id=endpoint.id,
        feature_names=list(endpoint.feature_names),
        label_names=list(endpoint.label_names),
        column_types=dict(endpoint.column_types),
    )


@router.post(
    "/endpoints/{name}/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsReceipt,
    responses=_errors(),
    openapi_extra=_body_doc(),
    summary="Record a batch of events (all or none)",
)
async def post_events(
    name: str,
    request: Request,
    token: TokenDep,
    state: StateDep,
    timestamp_unit: UnitQuery = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> EventsReceipt:
    endpoint = await run_in_threadpool(_endpoint, state, name, token)
    batch_id = _batch_id(endpoint, idempotency_key)
    base_period = state.settings.base_period

    def store(frame: pd.DataFrame, unit: str | None) -> EventsReceipt:
        receipt = state.monitoring.ingestor.record_batch(
            endpoint, frame, timestamp_unit=unit, batch_id=batch_id
        )
        return EventsReceipt(
            endpoint=endpoint.name,
            endpoint_id=endpoint.id,
            received=receipt.received,
            stored=receipt.stored,
            duplicate=batch_id is not None and receipt.received > 0 and receipt.stored == 0,
            windows=sorted({Window.containing(s, base_period).key for s in receipt.slots}),
        )

    return await _write(request, state, store, timestamp_unit)


@router.post(
    "/endpoints/{name}/labels",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LabelsReceipt,
    responses=_errors(),
    openapi_extra=_body_doc(),
    summary="Record ground truth for stored or future predictions (all or none)",
)
async def post_labels(
    name: str,
    request: Request,
    token: TokenDep,
    state: StateDep,
    timestamp_unit: UnitQuery = None,
) -> LabelsReceipt:
    endpoint = await run_in_threadpool(_endpoint, state, name, token)
    base_period = state.settings.base_period

    def store(frame: pd.DataFrame, unit: str | None) -> LabelsReceipt:
        receipt = state.monitoring.record_labels(endpoint, frame, timestamp_unit=unit)
        return LabelsReceipt(
            endpoint=endpoint.name,
            endpoint_id=endpoint.id,
            stored=receipt.stored,
            matched=receipt.matched,
            unmatched=receipt.unmatched,
            unmatched_ids=receipt.unmatched_ids,
            windows=sorted({Window.containing(s, base_period).key for s in receipt.windows}),
        )

    return await _write(request, state, store, timestamp_unit)
