"""`validate_events` on any DataFrame: a typed table, or an `EventValidationError` that names the
endpoint, the field and (for a bad value) the row, never another exception."""

import math
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.core.endpoint import BOOL, FLOAT, STRING, ModelEndpoint
from mm_dagster.core.errors import EventValidationError
from mm_dagster.events.validation import META_COLUMNS, event_schema, validate_events

NOW = pd.Timestamp("2026-11-20T12:00:00Z")
ENDPOINT = ModelEndpoint(
    id="e" * 32,
    name="fuzzed",
    feature_names=["x", "flag", "city"],
    label_names=["y"],
    column_types={"x": FLOAT, "flag": BOOL, "city": STRING, "y": FLOAT},
    feature_stats={},
)
NAMES = [*ENDPOINT.columns, *META_COLUMNS, "endpoint_id"]


class Odd:
    """An object of no known type, with an unhelpful repr."""

    def __repr__(self) -> str:
        return "<odd>"


# Any value a user might put in a cell.
cell = st.one_of(
    st.none(),
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.just(pd.NA),
    st.just(pd.NaT),
    st.just(np.nan),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["1.5", "nan", "inf", "2026-11-20T11:00Z", "2026-11-20", "yes", "", " ", "0x10"]),
    st.binary(max_size=4),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.sets(st.integers(), max_size=2),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.timedeltas(),
    st.decimals(allow_nan=True),
    st.complex_numbers(),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.builds(np.uint64, st.integers(min_value=0, max_value=2**64 - 1)),
    st.builds(np.bool_, st.booleans()),
    st.builds(np.datetime64, st.sampled_from(["2026-11-20T11:00", "NaT", "1677-09-21"])),
    st.builds(pd.Timestamp, st.sampled_from(["2026-11-20T11:00", "2026-11-20T11:00+05:00"])),
    st.just(Decimal("1e400")),
    st.just(Odd()),
)

column_name = st.one_of(
    st.sampled_from(NAMES),
    st.text(max_size=4),
    st.integers(-2, 2),
    st.none(),
    st.floats(allow_nan=True),
    st.tuples(st.sampled_from(NAMES)),
    st.just(b"x"),
)


def valid_column(name: str, n: int, draw: st.DrawFn) -> pd.Series:
    kind = ENDPOINT.column_types.get(name)
    if kind == FLOAT:
        values: Any = draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n))
    elif kind == BOOL:
        values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif kind == STRING:
        values = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
    elif name == "timestamp":
        minutes = draw(st.lists(st.integers(0, 600), min_size=n, max_size=n))
        values = [NOW - timedelta(minutes=m) for m in minutes]
    elif name == "request_id":
        values = [f"r{i}" for i in range(n)]
    elif name == "latency_us":
        values = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    elif name == "endpoint_id":
        values = [ENDPOINT.id] * n
    else:  # error
        values = draw(st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=5)), min_size=n, max_size=n))
    return pd.Series(values)


# Whole columns of one unusual dtype, not only object columns of odd cells.
def typed_column(n: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n).map(
            lambda v: np.array(v, np.int64)
        ),
        st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n).map(lambda v: np.array(v, np.uint64)),
        st.lists(st.floats(), min_size=n, max_size=n).map(lambda v: np.array(v, np.float64)),
        st.lists(st.floats(width=16), min_size=n, max_size=n).map(lambda v: np.array(v, np.float16)),
        st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: np.array(v, bool)),
        st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="Int64")
        ),
        st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="boolean")
        ),
        st.lists(st.one_of(st.none(), st.text(max_size=3)), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="string[pyarrow]")
        ),
        st.lists(st.one_of(st.none(), st.floats()), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="float64[pyarrow]")
        ),
        st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n).map(lambda v: pd.Categorical(v)),
        st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n).map(
            lambda v: pd.to_datetime(np.array(v, np.int64), unit="ns", utc=True)
        ),
        st.lists(st.integers(0, 10**6), min_size=n, max_size=n).map(
            lambda v: pd.to_timedelta(np.array(v, np.int64), unit="s")
        ),
        st.lists(st.floats(0, 4e9), min_size=n, max_size=n).map(lambda v: np.array(v)),  # epoch seconds
        st.lists(st.complex_numbers(), min_size=n, max_size=n).map(lambda v: np.array(v, complex)),
        st.lists(st.binary(max_size=3), min_size=n, max_size=n).map(lambda v: np.array(v, dtype="S3")),
        st.lists(st.sampled_from(["1", "2.5", "x"]), min_size=n, max_size=n).map(
            lambda v: pd.Series(v, dtype="category")
        ),
        st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n).map(
            lambda v: pd.arrays.SparseArray(v, fill_value=0)
        ),
    )


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A valid frame, then perturbed: dropped, renamed, duplicated or added columns, odd cells,
    odd whole columns, odd indexes."""
    n = draw(st.integers(0, 4))
    names: list[Any] = draw(st.permutations(NAMES))[: draw(st.integers(0, len(NAMES)))]
    names = list(dict.fromkeys([*ENDPOINT.columns, *names]))
    names = [nm for nm in names if draw(st.integers(0, 9)) > 0]  # sometimes a column is missing
    columns: list[pd.Series] = [valid_column(nm, n, draw) for nm in names]
    for _ in range(draw(st.integers(0, 3))):  # odd cells
        if columns and n:
            c, r = draw(st.integers(0, len(columns) - 1)), draw(st.integers(0, n - 1))
            values = columns[c].astype(object).tolist()
            values[r] = draw(cell)
            columns[c] = pd.Series(values, dtype=object)
    for _ in range(draw(st.integers(0, 2))):  # odd whole columns
        if columns:
            c = draw(st.integers(0, len(columns) - 1))
            columns[c] = pd.Series(draw(typed_column(n)))
    for _ in range(draw(st.integers(0, 2))):  # extra, duplicated or odd column names
        names.append(draw(column_name))
        columns.append(pd.Series(draw(st.lists(cell, min_size=n, max_size=n)), dtype=object))
    if names and draw(st.integers(0, 4)) == 0:
        names[draw(st.integers(0, len(names) - 1))] = draw(column_name)
    df = pd.concat([c.reset_index(drop=True) for c in columns], axis=1) if columns else pd.DataFrame()
    df.columns = names if columns else df.columns
    if n and draw(st.booleans()):
        df.index = draw(
            st.one_of(
                st.lists(st.integers(-3, 3), min_size=n, max_size=n),
                st.lists(st.text(max_size=2), min_size=n, max_size=n),
                st.lists(st.sampled_from([None, math.nan, (1, 2), "a"]), min_size=n, max_size=n),
            )
        )
    return df


def check_message(message: str) -> None:
    assert message.startswith(f"endpoint {ENDPOINT.name!r}"), message
    field = re.search(r"field (.+?)(, row (.+?))?: ", message)
    assert field is not None, f"no field named: {message}"


@settings(max_examples=200, deadline=None)
@given(frames())
def test_any_frame_is_validated_or_rejected_with_a_clear_error(df: pd.DataFrame) -> None:
    try:
        table = validate_events(ENDPOINT, df.copy(), NOW)
    except EventValidationError as exc:
        check_message(str(exc))
        return
    assert isinstance(table, pa.Table)
    assert table.schema == event_schema(ENDPOINT)
    assert table.num_rows == len(df)
    assert table.column("timestamp").null_count == 0 and table.column("request_id").null_count == 0
    # Missing values are data: a feature or label is null exactly where the input was missing.
    for name in ("x", "flag", "city", "y"):
        if name in df.columns and df.columns.tolist().count(name) == 1:
            assert table.column(name).null_count == missing_values(df[name])


def missing_values(column: pd.Series) -> int:
    """Missing values as the events hold them (a signalling-NaN decimal too, which pandas'
    `isna` raises on)."""
    objects = column.to_numpy(dtype=object)
    signalling = [isinstance(v, Decimal) and v.is_snan() for v in objects]
    return sum(signalling) + int(pd.isna(objects[~np.asarray(signalling, dtype=bool)]).sum())


def test_a_signalling_nan_decimal_is_a_missing_value() -> None:
    df = pd.DataFrame(
        {
            "timestamp": [NOW, NOW],
            "x": pd.Series([Decimal("sNaN"), Decimal("1.5")], dtype=object),
            "flag": [True, False],
            "city": ["a", "b"],
            "y": [1.0, 2.0],
            "latency_us": pd.Series([Decimal("sNaN"), 3], dtype=object),
        }
    )
    table = validate_events(ENDPOINT, df, NOW)
    assert table.column("x").to_pylist() == [None, 1.5]
    assert table.column("latency_us").to_pylist() == [None, 3]


@st.composite
def valid_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 5))
    names = [*ENDPOINT.columns, *draw(st.lists(st.sampled_from([*META_COLUMNS, "endpoint_id"]), unique=True))]
    return pd.DataFrame({nm: valid_column(nm, n, draw) for nm in names})


@settings(max_examples=100, deadline=None)
@given(valid_frames())
def test_valid_frames_are_accepted_as_they_are(df: pd.DataFrame) -> None:
    table = validate_events(ENDPOINT, df, NOW)
    back = table.to_pandas()
    when = pd.to_datetime(df["timestamp"], utc=True) if "timestamp" in df else np.zeros(len(df))
    order = np.argsort(when, kind="stable")  # the table is sorted by timestamp, stably
    np.testing.assert_array_equal(back["x"].to_numpy(), df["x"].to_numpy()[order])
    assert back["flag"].tolist() == df["flag"].to_numpy()[order].tolist()
    assert back["city"].tolist() == df["city"].to_numpy()[order].tolist()
    if "timestamp" not in df:
        assert (back["timestamp"] == NOW).all()


@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        ("x", [b"\xc0"], r"field 'x', row 0: expected a number, got b'\\xc0'"),
        ("x", [{"a": 1}], r"field 'x', row 0: expected a number, got \{'a': 1\}"),
        ("x", [1 + 2j], r"field 'x', row 0: expected a real number, got \(1\+2j\)"),
        ("x", [np.complex64(1)], r"field 'x', row 0: expected a real number"),
        ("x", [pd.Timestamp("2026-11-20")], r"field 'x', row 0: expected a number"),
        ("flag", [1], r"field 'flag', row 0: expected a bool, got 1"),
        ("city", [b"paris"], r"field 'city', row 0: expected a string, got b'paris'"),
        ("timestamp", [10**20], r"field 'timestamp'"),
        ("timestamp", [date(1, 1, 1)], r"field 'timestamp'"),
        ("timestamp", [{"a": 1}], r"field 'timestamp'"),
        ("latency_us", [2**80], r"field 'latency_us', row 0: expected a non-negative number"),
        ("latency_us", [math.inf], r"field 'latency_us', row 0: expected a non-negative number"),
        ("latency_us", [[1]], r"field 'latency_us', row 0: expected a non-negative number"),
        ("latency_us", [1j], r"field 'latency_us', row 0: expected a non-negative number"),
        ("request_id", [b"\xc0"], r"field 'request_id', row 0: expected text, got b'\\xc0'"),
        ("error", [b"boom"], r"field 'error', row 0: expected a string, got b'boom'"),
        ("endpoint_id", [{"a": 1}], r"field 'endpoint_id', row 0: names another endpoint"),
        ("endpoint_id", [b"\xc0"], r"field 'endpoint_id', row 0: expected text"),
    ],
)
def test_odd_values_are_named_with_field_and_row(column: str, values: list[object], match: str) -> None:
    row = {"x": [1.0], "flag": [True], "city": ["a"], "y": [0.0], "timestamp": [NOW]}
    df = pd.DataFrame({**row, column: pd.Series(values, dtype=object)})
    with pytest.raises(EventValidationError, match=match) as info:
        validate_events(ENDPOINT, df, NOW)
    check_message(str(info.value))


def test_duplicate_and_non_string_column_names_are_named() -> None:
    df = pd.DataFrame([[1.0, True, "a", 0.0, 2.0]], columns=["x", "flag", "city", "y", "x"])
    with pytest.raises(EventValidationError, match=r"field 'x': appears 2 times"):
        validate_events(ENDPOINT, df, NOW)
    df = pd.DataFrame([[1.0, True, "a", 0.0, 2.0]], columns=["x", "flag", "city", "y", 7])
    with pytest.raises(EventValidationError, match=r"field '7': is not a feature or label"):
        validate_events(ENDPOINT, df, NOW)
