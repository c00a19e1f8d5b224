"""The schema: created on first use, and columns added by later versions added to old tables."""

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_dagster.core import json_codec
from mm_dagster.storage import database as db


def test_columns_added_by_later_versions_are_added_to_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = sa.create_engine(url)
    with old.begin() as conn:  # mm_results and mm_endpoints as the first landing created them
        conn.exec_driver_sql(
            "CREATE TABLE mm_results (endpoint_id VARCHAR(32), app VARCHAR(128), name VARCHAR(128), "
            "window_start DATETIME, window_end DATETIME NOT NULL, kind SMALLINT NOT NULL, "
            "status SMALLINT NOT NULL, value FLOAT NOT NULL, extra_data JSON NOT NULL, "
            "updated_at DATETIME NOT NULL, PRIMARY KEY (endpoint_id, app, name, window_start))"
        )
        conn.exec_driver_sql(
            "INSERT INTO mm_results VALUES ('e', 'a', 'r', '2026-11-20 10:00:00', "
            "'2026-11-20 10:10:00', 0, 0, 0.5, '{}', '2026-11-20 10:11:00')"
        )
    old.dispose()
    engine = db.create_engine(url)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("mm_results")}
    assert {"model_version", "reference_version"} <= columns
    with engine.connect() as conn:
        assert conn.execute(sa.select(db.results.c.value, db.results.c.model_version)).one() == (0.5, None)
    db.create_engine(url).dispose()  # a second start finds nothing to add
    engine.dispose()


def test_a_sqlite_database_is_read_through_memory_mapped_io_in_wal_mode(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/mm.db")
    try:
        with engine.connect() as conn:  # every pooled connection gets the pragmas
            mapped = conn.exec_driver_sql("PRAGMA mmap_size").scalar()
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert 0 < mapped <= db.SQLITE_MMAP_BYTES  # SQLite maps at most its build's limit
        with engine.begin() as conn:  # written through the log, read back through the map
            conn.exec_driver_sql("CREATE TABLE probe (v BLOB)")
            conn.exec_driver_sql("INSERT INTO probe VALUES (zeroblob(100000))")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT length(v) FROM probe").scalar() == 100000
    finally:
        engine.dispose()


def test_indexes_added_by_later_versions_are_added_and_replacing_a_window_uses_them(tmp_path: Path) -> None:
    """The window histograms and failures were keyed by endpoint only: replacing a window's rows
    walked every endpoint's whole history. A database made before the window indexes gets them,
    and the deletes that replace a window search by (window, app)."""
    url = f"sqlite:///{tmp_path}/old.db"
    engine = db.create_engine(url)
    with engine.begin() as conn:
        for table in (db.window_histograms, db.app_failures):
            conn.exec_driver_sql(f"DROP INDEX ix_{table.name}_window")
    engine.dispose()
    engine = db.create_engine(url)
    for table in (db.results, db.metrics, db.window_histograms, db.app_failures):
        assert f"ix_{table.name}_window" in {i["name"] for i in sa.inspect(engine).get_indexes(table.name)}
        delete = table.delete().where(
            table.c.app == "a",
            table.c.window_start == datetime(2026, 11, 20, 10),
            table.c.endpoint_id.in_(["e1", "e2"]),
        )
        compiled = delete.compile(engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as conn:
            plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
        assert f"USING INDEX ix_{table.name}_window (window_start=? AND app=?)" in plan, plan
    db.create_engine(url).dispose()  # a second start finds nothing to add
    engine.dispose()


@pytest.mark.parametrize(
    "text",
    [
        '{"hist": [[1, 2.5, 0], [-1e308, 0.1, 1e308]], "name": "caf\\u00e9"}',
        '{"big": 123456789012345678901234567890, "small": -9223372036854775809, "at": [0.003730560327]}',
        "[-0.0037305603277356008, 1.0000000000000000000001, 12345678901234567890123]",
        '{"mean": NaN, "max": Infinity, "min": -Infinity}',
        '["\\ud800 a lone surrogate"]',
    ],
)
def test_json_columns_decode_as_pythons_json_does(text: str) -> None:
    decoded, expected = json_codec.loads(text), json.loads(text)
    assert json.dumps(decoded) == json.dumps(expected)
    assert json_codec.loads(text.encode("utf-8", "surrogatepass")) is not None


def test_json_columns_round_trip_through_the_engine(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/mm.db")
    stats = {"x": {"hist": [[3, 4], [0.1, 0.2, 0.30000000000000004]], "count": 2**70}}
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (doc JSON)"))
        conn.execute(sa.table("t", sa.column("doc", sa.JSON)).insert().values(doc=stats))
    with engine.connect() as conn:
        (doc,) = conn.execute(sa.select(sa.table("t", sa.column("doc", sa.JSON)).c.doc)).one()
    assert doc == stats
    engine.dispose()


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=5) | st.integers(-3, 3), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON_VALUES)
@settings(max_examples=300, deadline=None)
def test_json_written_reads_back_as_pythons_json_writes_it(value: object) -> None:
    expected = json.dumps(json.loads(json.dumps(value)), sort_keys=True)
    for written in (json_codec.dumps(value), json_codec.dumps_bytes(value)):
        assert json.dumps(json.loads(written), sort_keys=True) == expected
        assert json.dumps(json_codec.loads(written), sort_keys=True) == expected


def test_json_written_refuses_what_pythons_json_refuses() -> None:
    with pytest.raises(ValueError):
        json_codec.dumps_bytes({"a": [1.0, float("nan")]}, allow_nan=False)
    for beside_none in ({"a": None, "b": ({"c": float("inf")},)}, [None, 2.0, [-float("inf")]]):
        with pytest.raises(ValueError):  # a null orjson wrote for a None does not hide them
            json_codec.dumps_bytes(beside_none, allow_nan=False)
    written = json_codec.dumps_bytes({"a": None, "b": [1.5, (2.5,)]}, allow_nan=False)
    assert written == b'{"a":null,"b":[1.5,[2.5]]}'
    with pytest.raises(TypeError):
        json_codec.dumps({"when": datetime(2026, 1, 1)})
    with pytest.raises(TypeError):
        json_codec.dumps({"n": np.float32(1.0)})
