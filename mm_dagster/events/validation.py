"""Turn user-supplied events into a typed Arrow table for one endpoint, or say exactly what is wrong.

Event columns: `timestamp` (UTC; default: now), `request_id` (default: a uuid), `latency_us`,
`error` (text or null), one column per feature and per label. Missing values (NaN, None, NA) and
non-finite numbers in features and labels are data: stored, and counted apart in the statistics.
Only structural problems reject a batch: a missing, extra or repeated column, a wrong type, an
impossible timestamp (numbers without a stated unit, before `EventRules.earliest`, or further in
the future than `EventRules.max_future_skew`), a latency that is not a plausible duration, an
empty or oversized request id.
"""

import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mm_dagster.core.endpoint import BOOL, FLOAT, STRING, ModelEndpoint
from mm_dagster.core.errors import EventValidationError
from mm_dagster.core.names import EVENT_FIELDS

META_COLUMNS = EVENT_FIELDS
ARROW_TYPES: Mapping[str, pa.DataType] = MappingProxyType(
    {FLOAT: pa.float64(), BOOL: pa.bool_(), STRING: pa.string()}
)


def event_schema(endpoint: ModelEndpoint) -> pa.Schema:
    fields = [
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("latency_us", pa.int64()),
        pa.field("error", pa.string()),
    ]
    fields += [pa.field(c, ARROW_TYPES[endpoint.column_types[c]]) for c in endpoint.columns]
    return pa.schema(fields)


@dataclass(frozen=True)
class EventRules:
    """Bounds on what an event may say about itself (configurable per `Monitoring`)."""

    max_future_skew: timedelta = timedelta(minutes=5)
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_latency_us: float = 24 * 3600 * 1e6
    max_request_id_chars: int = 256


TIMESTAMP_UNITS = ("s", "ms", "us", "ns")
_ID_CHUNK = 1 << 24


class _Position(int):
    """A row named by its position, when the frame's index repeats labels."""

    def __repr__(self) -> str:
        return f"{int(self)} (position in the frame; its index repeats labels)"


def _row(labels: pd.Index, pos: int) -> Any:
    """The row to name in a message: its index label, or its position when labels repeat."""
    return labels[pos] if labels.is_unique else _Position(pos)


def _fail(endpoint: ModelEndpoint, column: str, row: Any, message: str) -> EventValidationError:
    where = f"endpoint {endpoint.name!r} ({endpoint.id}), field {column!r}"
    if row is not None:
        where += f", row {row!r}"
    problem = message.split(", got ", 1)[0]
    return EventValidationError(f"{where}: {message}", field=column, problem=problem)


def _reject_first(
    endpoint: ModelEndpoint, col: str, bad: np.ndarray, labels: pd.Index, problem: Callable[[int], str]
) -> None:
    """Raise for the first row flagged in `bad`, described by `problem(position)`."""
    if bad.any():
        pos = _first(bad)
        raise _fail(endpoint, col, _row(labels, pos), problem(pos))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _text(value: Any) -> str | None:
    """`value` as pandas' `astype(str)` makes it (bytes decoded as UTF-8); None if it is no text."""
    try:
        return value.decode() if isinstance(value, bytes) else str(value)
    except Exception:  # undecodable bytes, or an object whose __str__ fails
        return None


def _as_text(endpoint: ModelEndpoint, col: str, s: pd.Series, labels: pd.Index) -> np.ndarray:
    """The column as an array of str, or an error naming the first value that is no text."""
    try:
        texts: np.ndarray = s.astype(str).to_numpy(dtype=object)
        return texts
    except Exception:
        objects = s.to_numpy(dtype=object)
        pos = next((i for i, v in enumerate(objects) if _text(v) is None), None)
        if pos is None:
            raise _fail(endpoint, col, None, "expected text") from None
        raise _fail(endpoint, col, _row(labels, pos), f"expected text, got {objects[pos]!r}") from None


# What `infer_dtype` calls a column none of whose values is a `Decimal` (a decimal makes it
# "decimal" or "mixed"; its skipna only skips None and float NaN).
_WITHOUT_DECIMALS = frozenset(
    {"empty", "string", "bytes", "integer", "floating", "boolean", "datetime", "date"}
)


def _quiet_decimal_nans(s: pd.Series) -> pd.Series:
    """`s` with signalling-NaN decimals as quiet ones: a missing value, as pandas reads a quiet
    one (it raises `decimal.InvalidOperation` on a signalling one, in `isna` and `to_numeric`)."""
    objects = s.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(objects, skipna=True) in _WITHOUT_DECIMALS:  # C speed: the common case
        return s
    signalling = [i for i, v in enumerate(objects) if isinstance(v, Decimal) and v.is_snan()]
    if not signalling:
        return s
    objects = objects.copy()
    objects[signalling] = Decimal("NaN")
    return pd.Series(objects, index=s.index, dtype=object)


def _numeric(endpoint: ModelEndpoint, col: str, s: pd.Series, labels: pd.Index) -> pa.Array:
    if pd.api.types.is_complex_dtype(s.dtype) and len(s):  # a float cast would drop the imaginary part
        raise _fail(endpoint, col, _row(labels, 0), f"expected a real number, got {_plain(s.iloc[0])!r}")
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        objects = s.to_numpy(dtype=object)
        coerced = pd.to_numeric(pd.Series(objects, dtype=object), errors="coerce")
        wrong_type = np.fromiter(
            (isinstance(v, bool | np.bool_ | complex | np.complexfloating) for v in objects), bool, len(s)
        )
        bad = (coerced.isna().to_numpy() & ~pd.isna(objects)) | wrong_type

        def expected_number(pos: int) -> str:
            what = "a real number" if isinstance(objects[pos], complex | np.complexfloating) else "a number"
            return f"expected {what}, got {_plain(objects[pos])!r}"

        _reject_first(endpoint, col, bad, labels, expected_number)
        s = coerced
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def _typed_objects(endpoint: ModelEndpoint, col: str, s: pd.Series, kind: str, labels: pd.Index) -> pa.Array:
    objects = s.to_numpy(dtype=object)
    missing = pd.isna(objects)
    expected = "string" if kind == STRING else "boolean"
    if pd.api.types.infer_dtype(objects, skipna=True) not in (expected, "empty"):
        ok_type = (str,) if kind == STRING else (bool, np.bool_)
        wrong = np.fromiter((not isinstance(v, ok_type) for v in objects), bool, len(objects))
        what = "a string" if kind == STRING else "a bool"
        _reject_first(
            endpoint,
            col,
            wrong & ~missing,
            labels,
            lambda pos: f"expected {what}, got {_plain(objects[pos])!r}",
        )
    values = np.where(missing, None, objects)
    return pa.array(values, type=ARROW_TYPES[kind], from_pandas=True)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _timestamps(
    endpoint: ModelEndpoint,
    s: pd.Series,
    labels: pd.Index,
    unit: str | None,
    now: pd.Timestamp,
    rules: EventRules,
) -> pd.Series:
    typed_text = pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype)
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or typed_text:
        numeric = np.zeros(len(s), dtype=bool)
    elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        numeric = np.ones(len(s), dtype=bool)
    else:  # objects: look at each value
        numeric = np.fromiter((_is_number(v) for v in s.to_numpy(dtype=object)), bool, len(s))
    if unit is None:
        _reject_first(
            endpoint,
            "timestamp",
            numeric,
            labels,
            lambda pos: (
                f"a number is a timestamp only with its unit: pass timestamp_unit= one of "
                f"{list(TIMESTAMP_UNITS)} (e.g. 's' for time.time()), got {_plain(s.iloc[pos])!r}"
            ),
        )
    if unit is not None and unit not in TIMESTAMP_UNITS:
        raise _fail(
            endpoint, "timestamp", None, f"timestamp_unit {unit!r} is not one of {list(TIMESTAMP_UNITS)}"
        )
    if numeric.any():
        _reject_first(
            endpoint,
            "timestamp",
            ~numeric & s.notna().to_numpy(),
            labels,
            lambda pos: f"mixes numbers and text, got {s.iloc[pos]!r}",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
        try:
            ts = pd.to_datetime(s, utc=True, unit=unit if numeric.any() else None)
        except (ValueError, TypeError, OverflowError) as exc:
            row = None
            try:  # the first value that does not parse, found without a loop over the rows
                unparsed = (pd.to_datetime(s, utc=True, errors="coerce").isna() & s.notna()).to_numpy()
                row = _row(labels, _first(unparsed)) if unparsed.any() else None
            except (ValueError, TypeError, OverflowError):
                pass
            raise _fail(endpoint, "timestamp", row, f"not a timestamp: {exc}") from exc
    _reject_first(endpoint, "timestamp", ts.isna().to_numpy(), labels, lambda _: "missing timestamp")
    latest = pd.Timestamp(now).tz_convert("UTC") + rules.max_future_skew

    def beyond(when: str) -> Callable[[int], str]:
        return lambda pos: f"timestamp {when}, got {ts.iloc[pos]}"

    future = (ts > latest).to_numpy()
    _reject_first(
        endpoint,
        "timestamp",
        future,
        labels,
        beyond(f"more than {rules.max_future_skew} in the future (now {now})"),
    )
    early = (ts < pd.Timestamp(rules.earliest)).to_numpy()
    _reject_first(endpoint, "timestamp", early, labels, beyond(f"before {rules.earliest:%Y-%m-%d}"))
    return ts


def _latencies(endpoint: ModelEndpoint, s: pd.Series, labels: pd.Index, rules: EventRules) -> pa.Array:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        unreadable = np.zeros(len(s), dtype=bool)
    else:
        objects = s.to_numpy(dtype=object)
        lat = pd.to_numeric(pd.Series(objects, dtype=object), errors="coerce")
        complex_ = np.fromiter((isinstance(v, complex | np.complexfloating) for v in objects), bool, len(s))
        values = np.where(complex_, np.nan, lat.to_numpy(dtype=np.complex128, na_value=np.nan).real)
        unreadable = np.isnan(values) & ~pd.isna(objects)
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = unreadable | (values < 0) | (values > rules.max_latency_us) | np.isinf(values)
    _reject_first(
        endpoint,
        "latency_us",
        bad,
        labels,
        lambda pos: (
            f"expected a non-negative number of microseconds up to {rules.max_latency_us:.0f}, "
            f"got {_plain(s.iloc[pos])!r}"
        ),
    )
    return pa.array(np.round(np.where(missing, 0, values)).astype(np.int64), type=pa.int64(), mask=missing)


def _random_request_ids(n: int) -> pa.Array:
    """n random 128-bit hex ids, as Arrow string arrays built straight from the hex bytes (in
    chunks whose 32-bit offsets cannot overflow)."""
    chunks = []
    for size in [_ID_CHUNK] * (n // _ID_CHUNK) + [n % _ID_CHUNK]:
        data = os.urandom(16 * size).hex().encode()
        offsets = np.arange(0, 32 * (size + 1), 32, dtype=np.int32)
        chunks.append(
            pa.Array.from_buffers(pa.string(), size, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        )
    return pa.concat_arrays(chunks)


def reject_repeated_columns(endpoint: ModelEndpoint, columns: Sequence[str], what: str) -> None:
    """A column name given twice is an error naming it (events and labels alike)."""
    counts = Counter(columns)
    repeated = [c for c in columns if counts[c] > 1]
    if repeated:
        raise _fail(
            endpoint,
            repeated[0],
            None,
            f"appears {counts[repeated[0]]} times in the {what} (one column each)",
        )


def validate_events(
    endpoint: ModelEndpoint,
    df: pd.DataFrame,
    now: pd.Timestamp,
    rules: EventRules | None = None,
    timestamp_unit: str | None = None,
) -> pa.Table:
    """Validate `df` against `endpoint`'s schema; return a table sorted by timestamp.

    Any frame either validates or raises `EventValidationError` naming the endpoint, the field and,
    for a bad value, the row (its index label; its position if the index repeats labels).
    """
    rules = rules or EventRules()
    if not isinstance(df, pd.DataFrame):
        raise EventValidationError(
            f"endpoint {endpoint.name!r}: events must be a pandas DataFrame, got {type(df).__name__}"
        )
    columns = [str(c) for c in df.columns]
    expected = set(endpoint.columns)
    missing = [c for c in endpoint.columns if c not in columns]
    if missing:
        raise _fail(endpoint, missing[0], None, f"missing from the events (missing: {missing})")
    extra = [c for c in columns if c not in expected and c not in (*META_COLUMNS, "endpoint_id")]
    if extra:
        raise _fail(
            endpoint,
            extra[0],
            None,
            f"is not a feature or label of this endpoint (extra: {extra}; "
            f"features {endpoint.feature_names}, labels {endpoint.label_names})",
        )
    reject_repeated_columns(endpoint, columns, "events")
    # Work by position on string column names; name rows by the caller's index labels.
    labels = df.index
    df = df.copy(deep=False)
    df.columns = columns
    df.index = pd.RangeIndex(len(df))
    for position, dtype in enumerate(df.dtypes):
        if pd.api.types.is_object_dtype(dtype):
            df.isetitem(position, _quiet_decimal_nans(df.iloc[:, position]))

    if "endpoint_id" in columns:
        ids = _as_text(endpoint, "endpoint_id", df["endpoint_id"], labels)
        others = df["endpoint_id"]
        _reject_first(
            endpoint,
            "endpoint_id",
            ids != endpoint.id,
            labels,
            lambda pos: f"names another endpoint: {others.iloc[pos]!r}",
        )
    n = len(df)
    arrays: dict[str, pa.Array] = {}

    if "timestamp" in columns:
        ts = _timestamps(endpoint, df["timestamp"], labels, timestamp_unit, now, rules)
    else:
        ts = pd.Series(pd.Timestamp(now).tz_convert("UTC"), index=df.index)
    arrays["timestamp"] = pa.array(ts.dt.as_unit("us"), type=pa.timestamp("us", tz="UTC"))

    if "request_id" in columns:
        rid = df["request_id"]
        texts = _as_text(endpoint, "request_id", rid, labels)
        blank = rid.isna().to_numpy() | (texts == "")
        _reject_first(endpoint, "request_id", blank, labels, lambda _: "empty request_id")
        _reject_first(
            endpoint,
            "request_id",
            np.fromiter((len(t) > rules.max_request_id_chars for t in texts), bool, n),
            labels,
            lambda pos: f"request_id longer than {rules.max_request_id_chars} characters ({len(texts[pos])})",
        )
        arrays["request_id"] = pa.array(texts, type=pa.string())
    else:
        arrays["request_id"] = _random_request_ids(n)

    if "latency_us" in columns:
        arrays["latency_us"] = _latencies(endpoint, df["latency_us"], labels, rules)
    else:
        arrays["latency_us"] = pa.nulls(n, type=pa.int64())

    if "error" in columns:
        err = df["error"].astype(object)
        blank = err.isna().to_numpy() | np.fromiter((isinstance(v, str) and v == "" for v in err), bool, n)
        err = err.where(~blank, None)
        arrays["error"] = _typed_objects(endpoint, "error", err, STRING, labels)
    else:
        arrays["error"] = pa.nulls(n, type=pa.string())

    for col in endpoint.columns:
        kind = endpoint.column_types[col]
        if kind == FLOAT:
            arrays[col] = _numeric(endpoint, col, df[col], labels)
        else:
            arrays[col] = _typed_objects(endpoint, col, df[col], kind, labels)

    table = pa.table(arrays, schema=event_schema(endpoint))
    return table.sort_by("timestamp")
