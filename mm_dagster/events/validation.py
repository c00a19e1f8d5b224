"""Turn user-supplied events into a typed Arrow table for one endpoint, or say exactly what is wrong.

Event columns: `timestamp` (UTC; default: now), `request_id` (default: a uuid), `latency_us`,
`error` (text or null), one column per feature and per label. A label may be null only on an event
whose `error` is set (the model failed, so there is no output).
"""

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mm_dagster.core.endpoint import BOOL, FLOAT, STRING, ModelEndpoint
from mm_dagster.core.errors import EventValidationError

META_COLUMNS = ("timestamp", "request_id", "latency_us", "error")
ARROW_TYPES = {FLOAT: pa.float64(), BOOL: pa.bool_(), STRING: pa.string()}


def event_schema(endpoint: ModelEndpoint) -> pa.Schema:
    fields = [
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("latency_us", pa.int64()),
        pa.field("error", pa.string()),
    ]
    fields += [pa.field(c, ARROW_TYPES[endpoint.column_types[c]]) for c in endpoint.columns]
    return pa.schema(fields)


def _fail(endpoint: ModelEndpoint, column: str, row: Any, message: str) -> EventValidationError:
    where = f"endpoint {endpoint.name!r} ({endpoint.id}), field {column!r}"
    if row is not None:
        where += f", row {row!r}"
    problem = message.split(", got ", 1)[0]
    return EventValidationError(f"{where}: {message}", field=column, problem=problem)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _first_bad(index: pd.Index, mask: np.ndarray) -> Any:
    return index[int(np.flatnonzero(mask)[0])]


def _numeric(endpoint: ModelEndpoint, col: str, s: pd.Series, nullable: np.ndarray) -> pa.Array:
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        coerced = pd.to_numeric(s, errors="coerce")
        bad = (coerced.isna() & s.notna()).to_numpy() | s.map(
            lambda v: isinstance(v, bool | np.bool_)
        ).to_numpy(dtype=bool)
        if bad.any():
            row = _first_bad(s.index, bad)
            raise _fail(endpoint, col, row, f"expected a number, got {_plain(s.loc[row])!r}")
        s = coerced
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    bad = (missing & ~nullable) | np.isinf(values)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise _fail(endpoint, col, s.index[pos], f"expected a finite number, got {_plain(values[pos])!r}")
    return pa.array(values, type=pa.float64(), mask=missing)


def _typed_objects(
    endpoint: ModelEndpoint, col: str, s: pd.Series, nullable: np.ndarray, kind: str
) -> pa.Array:
    missing = pd.isna(s).to_numpy()
    expected = "string" if kind == STRING else "boolean"
    if pd.api.types.infer_dtype(s, skipna=True) not in (expected, "empty"):
        ok_type = (str,) if kind == STRING else (bool, np.bool_)
        wrong = np.fromiter((not isinstance(v, ok_type) for v in s.to_numpy(dtype=object)), bool, len(s))
        bad = wrong & ~missing
        if bad.any():
            row = _first_bad(s.index, bad)
            what = "a string" if kind == STRING else "a bool"
            raise _fail(endpoint, col, row, f"expected {what}, got {_plain(s.loc[row])!r}")
    bad = missing & ~nullable
    if bad.any():
        row = _first_bad(s.index, bad)
        raise _fail(endpoint, col, row, f"missing value ({_plain(s.loc[row])!r})")
    return pa.array(s.astype(object).where(~missing, None), type=ARROW_TYPES[kind], from_pandas=True)


def _random_request_ids(n: int) -> pa.Array:
    """n random 128-bit hex ids, made in one pass."""
    raw = np.frombuffer(os.urandom(16 * n).hex().encode(), dtype="S32")
    return pa.array(raw.astype("U32"), type=pa.string())


def validate_events(endpoint: ModelEndpoint, df: pd.DataFrame, now: pd.Timestamp) -> pa.Table:
    """Validate `df` against `endpoint`'s schema; return a table sorted by timestamp."""
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
    if "endpoint_id" in columns:
        wrong = df["endpoint_id"].astype(str) != endpoint.id
        if wrong.any():
            row = _first_bad(df.index, wrong.to_numpy())
            other = df.loc[row, "endpoint_id"]
            raise _fail(endpoint, "endpoint_id", row, f"names another endpoint: {other!r}")
    n = len(df)
    arrays: dict[str, pa.Array] = {}

    if "timestamp" in columns:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
                ts = pd.to_datetime(df["timestamp"], utc=True)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _fail(endpoint, "timestamp", None, f"not a timestamp: {exc}") from exc
        if ts.isna().any():
            row = _first_bad(df.index, ts.isna().to_numpy())
            raise _fail(endpoint, "timestamp", row, "missing timestamp")
    else:
        ts = pd.Series(pd.Timestamp(now).tz_convert("UTC"), index=df.index)
    arrays["timestamp"] = pa.array(ts.dt.as_unit("us"), type=pa.timestamp("us", tz="UTC"))

    if "request_id" in columns:
        rid = df["request_id"]
        blank = rid.isna().to_numpy() | (rid.astype(str) == "").to_numpy()
        if blank.any():
            raise _fail(endpoint, "request_id", _first_bad(df.index, blank), "empty request_id")
        arrays["request_id"] = pa.array(rid.astype(str).to_numpy(), type=pa.string())
    else:
        arrays["request_id"] = _random_request_ids(n)

    if "latency_us" in columns:
        lat = pd.to_numeric(df["latency_us"], errors="coerce")
        bad = (lat.isna() & df["latency_us"].notna()).to_numpy() | (lat < 0).to_numpy()
        if bad.any():
            row = _first_bad(df.index, bad)
            raise _fail(
                endpoint,
                "latency_us",
                row,
                f"expected a non-negative number, got {df.loc[row, 'latency_us']!r}",
            )
        arrays["latency_us"] = pa.array(lat.round().astype("Int64"), type=pa.int64())
    else:
        arrays["latency_us"] = pa.nulls(n, type=pa.int64())

    has_error = np.zeros(n, dtype=bool)
    if "error" in columns:
        err = df["error"]
        err = err.where(err.notna() & (err.astype(str) != ""), None)
        arrays["error"] = _typed_objects(
            endpoint, "error", err.astype(object), np.ones(n, dtype=bool), STRING
        )
        has_error = err.notna().to_numpy()
    else:
        arrays["error"] = pa.nulls(n, type=pa.string())

    for col in endpoint.columns:
        nullable = has_error if col in endpoint.label_names else np.zeros(n, dtype=bool)
        kind = endpoint.column_types[col]
        if kind == FLOAT:
            arrays[col] = _numeric(endpoint, col, df[col], nullable)
        else:
            arrays[col] = _typed_objects(endpoint, col, df[col], nullable, kind)

    table = pa.table(arrays, schema=event_schema(endpoint))
    return table.sort_by("timestamp")
