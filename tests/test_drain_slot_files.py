"""A drain's batches of many endpoints stored at once: one slot file per slot and schema (not one
file per endpoint), registered with a catalog row per endpoint, read, deduplicated, compacted and
quarantined like compaction's slot files; the recorder stores each drain that way."""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.windows import Window
from mm_dagster.events import recorder as recorder_module
from mm_dagster.events.maintenance import MaintenancePolicy
from mm_dagster.events.validation import validate_events
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame
from mm_dagster.storage import database as db
from mm_dagster.storage import event_store
from mm_dagster.storage.event_store import ENDPOINT_COLUMN, QUARANTINE_DIR, SHARD_KEY_COLUMN

WINDOW = Window.containing("2026-11-20T10:00:00Z", 10)
NEXT = Window(WINDOW.end, WINDOW.end + timedelta(minutes=10))
BOTH = Window(WINDOW.start, NEXT.end)
LATER = WINDOW.end + timedelta(hours=3)
NARROW = [f"m{i}" for i in range(6)]  # four numeric features, one categorical
WIDE = "wide"  # six numeric features: another schema
NAMES = [*NARROW, WIDE]


def features(name: str) -> int:
    return 6 if name == WIDE else 4


def open_monitoring(home: Path) -> Monitoring:
    mm = Monitoring(home=str(home), clock=fixed_clock(LATER))
    for i, name in enumerate(NAMES):
        reference = reference_frame(500, numeric_features=features(name), seed=i)
        mm.create_endpoint(name, reference=reference, label_names=["prediction"])
    return mm


@pytest.fixture
def mm(tmp_path: Path) -> Iterator[Monitoring]:
    with open_monitoring(tmp_path / "home") as monitoring:
        yield monitoring


def drain(
    mm: Monitoring, part: int, window: Window = WINDOW, names: list[str] = NAMES
) -> dict[str, pa.Table]:
    """Validated batches by endpoint id, as a recorder's drain has them."""
    tables = {}
    for i, name in enumerate(names):
        n = 10 + 3 * i + part
        df = traffic_frame(n, window.start, window.end, numeric_features=features(name), seed=100 * i + part)
        df["request_id"] = [f"{name}-{part}-{j}" for j in range(n)]
        endpoint = mm.get_endpoint(name)
        tables[endpoint.id] = validate_events(endpoint, df, pd.Timestamp(LATER))
    return tables


def event_files(mm: Monitoring) -> list[Path]:
    root = Path(mm.settings.events_root)
    return sorted(p for p in root.rglob("*.parquet") if QUARANTINE_DIR not in p.parts)


def files_per_slot(mm: Monitoring) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in event_files(mm):
        counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
    return counts


def endpoints_in(path: Path) -> list[str]:
    return sorted(set(pq.read_table(path, columns=[ENDPOINT_COLUMN])[ENDPOINT_COLUMN].to_pylist()))


def by_name(mm: Monitoring, events: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    names = {mm.get_endpoint(name).id: name for name in NAMES}
    return {names[endpoint_id]: frame for endpoint_id, frame in events.items()}


def assert_same_events(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert sorted(left) == sorted(right)
    for key in left:
        pd.testing.assert_frame_equal(left[key], right[key])  # rows, order, columns, dtypes


def table_rows(mm: Monitoring, table: sa.Table) -> list[tuple[Any, ...]]:
    with mm.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(table))]


def counters_by_name(mm: Monitoring) -> dict[str, tuple[Any, ...]]:
    """Each endpoint's event counters and latency buckets."""
    out = {}
    for name in NAMES:
        endpoint = mm.get_endpoint(name)
        buckets = sorted(r[1:] for r in table_rows(mm, db.latency_buckets) if r[0] == endpoint.id)
        out[name] = (
            endpoint.event_count,
            endpoint.error_count,
            endpoint.first_request,
            endpoint.last_request,
            buckets,
        )
    return out


def test_a_drain_of_many_endpoints_writes_one_file_per_slot_and_schema(mm: Monitoring) -> None:
    tables = drain(mm, 0)
    stored = mm.ingestor.record_tables(tables)
    assert stored == {endpoint_id: t.num_rows for endpoint_id, t in tables.items()}
    assert files_per_slot(mm) == {"slot=1000": 2}  # the narrow schema's file and the wide one's
    narrow = sorted(mm.get_endpoint(name).id for name in NARROW)
    assert sorted(endpoints_in(path) for path in event_files(mm)) == sorted(
        [narrow, [mm.get_endpoint(WIDE).id]]
    )
    for path in event_files(mm):
        keys = pq.read_table(path, columns=[SHARD_KEY_COLUMN])[SHARD_KEY_COLUMN].to_pylist()
        assert keys == sorted(keys)  # sorted like compaction output
    live = mm.catalog.live_files(WINDOW.start, WINDOW.end)
    assert sorted(live) == sorted(tables)
    for endpoint_id, (row,) in live.items():
        assert row.shared_file is not None and row.path == f"{row.shared_file}#{endpoint_id}"
        table = tables[endpoint_id]
        assert row.events == table.num_rows and row.errors == table.num_rows - table["error"].null_count
        assert row.first_event == table["timestamp"][0].as_py()
        assert row.last_event == table["timestamp"][-1].as_py()
    for path in event_files(mm):
        shared = [f for (f,) in live.values() if Path(mm.settings.events_root, f.file) == path]
        assert path.stat().st_size - len(shared) < sum(f.size_bytes for f in shared) <= path.stat().st_size
    counts = mm.window_event_counts(WINDOW)
    assert {e: n for e, (n, _) in counts.items()} == {e: t.num_rows for e, t in tables.items()}
    assert mm.events.sweep_orphans(timedelta(0)) == []  # the catalog knows the files


def test_drains_read_as_the_per_endpoint_path_reads(tmp_path: Path) -> None:
    with open_monitoring(tmp_path / "apart") as apart, open_monitoring(tmp_path / "together") as together:
        for mm in (apart, together):
            for part, window in ((0, WINDOW), (1, BOTH)):  # the second drain spans two slots
                tables = drain(mm, part, window)
                if mm is apart:
                    for endpoint_id, table in tables.items():
                        apart.ingestor.record_table(endpoint_id, table)
                else:
                    together.ingestor.record_tables(tables)
        assert len(event_files(apart)) == 3 * len(NAMES)
        assert files_per_slot(together) == {"slot=1000": 4, "slot=1010": 2}
        for window in (WINDOW, NEXT, BOTH):
            assert_same_events(
                by_name(apart, apart.read_window(window)), by_name(together, together.read_window(window))
            )
        assert counters_by_name(apart) == counters_by_name(together)
        slots = {
            name: apart.arrivals.slot_counts(apart.get_endpoint(name).id, BOTH.start, BOTH.end)
            for name in NAMES
        }
        assert slots == {
            name: together.arrivals.slot_counts(together.get_endpoint(name).id, BOTH.start, BOTH.end)
            for name in NAMES
        }


def test_a_batch_stored_before_under_its_id_is_not_stored_again(mm: Monitoring) -> None:
    first = drain(mm, 0)
    ids = {endpoint_id: f"first-{endpoint_id}" for endpoint_id in first}
    mm.ingestor.record_tables(first, batch_ids=ids)
    m0 = mm.get_endpoint("m0").id
    second = drain(mm, 1)
    replayed = {**ids, m0: "second-m0"}  # every batch but m0's is a replay
    stored = mm.ingestor.record_tables(second, batch_ids=replayed)
    assert stored == {e: second[m0].num_rows if e == m0 else 0 for e in second}
    assert len(event_files(mm)) == 3  # the first drain's two files, then one with m0 only
    events = mm.read_window(WINDOW)
    assert {e: len(df) for e, df in events.items()} == {
        e: t.num_rows + (second[m0].num_rows if e == m0 else 0) for e, t in first.items()
    }
    assert mm.get_endpoint("m1").event_count == first[mm.get_endpoint("m1").id].num_rows
    assert mm.events.sweep_orphans(timedelta(0)) == []


def test_a_concurrent_replay_of_one_batch_leaves_it_out_and_stores_the_others(
    mm: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = drain(mm, 0)
    m0 = mm.get_endpoint("m0").id
    ids = {endpoint_id: f"batch-{endpoint_id}" for endpoint_id in tables}
    mm.ingestor.record_table(m0, tables[m0], batch_id=ids[m0])  # the replay, committed first...
    known = mm.arrivals.known_batches
    asked: list[list[str]] = []

    def known_after_the_check(batch_ids: list[str]) -> set[str]:
        asked.append(batch_ids)
        return set() if len(asked) == 1 else known(batch_ids)  # ...after the first look

    monkeypatch.setattr(mm.arrivals, "known_batches", known_after_the_check)
    stored = mm.ingestor.record_tables(tables, batch_ids=ids)
    assert stored == {e: 0 if e == m0 else t.num_rows for e, t in tables.items()}
    assert len(asked) == 3  # looked, lost the commit, looked again
    assert {e: len(df) for e, df in mm.read_window(WINDOW).items()} == {
        e: t.num_rows for e, t in tables.items()
    }
    assert mm.get_endpoint("m0").event_count == tables[m0].num_rows
    assert len(event_files(mm)) == 3  # m0's own file and the drain's two: the lost attempt's are gone


def test_a_failed_commit_leaves_no_file_and_no_row(mm: Monitoring, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("UPDATE mm_endpoints", {}, Exception("database is locked"))

    monkeypatch.setattr(mm.endpoints, "note_requests", unreachable)  # after the catalog rows
    tables = drain(mm, 0, BOTH)
    with pytest.raises(sa.exc.OperationalError):
        mm.ingestor.record_tables(tables, batch_ids={e: f"b-{e}" for e in tables})
    assert event_files(mm) == []
    assert mm.catalog.is_empty()
    assert table_rows(mm, db.arrivals) == [] and table_rows(mm, db.event_batches) == []
    assert table_rows(mm, db.latency_buckets) == []
    assert mm.read_window(BOTH) == {} and mm.get_endpoint("m0").event_count == 0


def test_a_failed_write_leaves_no_file(mm: Monitoring, monkeypatch: pytest.MonkeyPatch) -> None:
    write_table = pq.write_table
    written: list[str] = []

    def disk_full_on_the_third(table: pa.Table, where: str, **kwargs: Any) -> None:
        write_table(table, where, **kwargs)  # half-written files are on disk too
        written.append(where)
        if len(written) == 3:
            raise OSError("no space left on device")

    monkeypatch.setattr(event_store.pq, "write_table", disk_full_on_the_third)
    with pytest.raises(OSError, match="no space"):
        mm.ingestor.record_tables(drain(mm, 0, BOTH))
    assert len(written) == 3 and event_files(mm) == [] and mm.catalog.is_empty()


def test_slot_files_of_drains_compact_with_per_endpoint_files(mm: Monitoring) -> None:
    mm.ingestor.record_tables(drain(mm, 0))
    mm.ingestor.record_tables(drain(mm, 1))
    for endpoint_id, table in drain(mm, 2, names=["m1", "m4"]).items():  # late batches, files of their own
        mm.ingestor.record_table(endpoint_id, table)
    before = mm.read_window(WINDOW)
    assert len(event_files(mm)) == 6
    (result,) = mm.maintain(MaintenancePolicy()).compacted
    assert (result.files_merged, result.files_written, result.endpoints) == (6, 2, len(NAMES))
    assert_same_events(before, mm.read_window(WINDOW))
    later = Monitoring(mm.settings, clock=fixed_clock(LATER + timedelta(hours=1)))
    assert later.maintain(MaintenancePolicy()).purged_files == 6
    assert len(event_files(mm)) == 2
    assert_same_events(before, later.read_window(WINDOW))


def test_an_unreadable_drain_file_is_quarantined_with_its_endpoints_named(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    mm.ingestor.record_tables(drain(mm, 0))
    (narrow_file,) = [p for p in event_files(mm) if len(endpoints_in(p)) > 1]
    m5 = mm.get_endpoint("m5").id
    late = drain(mm, 1, names=["m5"])[m5]
    mm.ingestor.record_table(m5, late)
    narrow_file.write_bytes(narrow_file.read_bytes()[:200])
    with caplog.at_level(logging.ERROR):
        events = mm.read_window(WINDOW)
    assert sorted(events) == sorted([m5, mm.get_endpoint(WIDE).id]) and len(events[m5]) == late.num_rows
    assert str(narrow_file) in caplog.text and "quarantined" in caplog.text
    assert all(mm.get_endpoint(name).id in caplog.text for name in NARROW)
    assert not narrow_file.exists()
    assert list((Path(mm.settings.events_root) / QUARANTINE_DIR).rglob(narrow_file.name))


def record_drain(recorder: recorder_module.EventRecorder, mm: Monitoring, per_endpoint: int) -> None:
    at = WINDOW.start + timedelta(minutes=1)
    for i, name in enumerate(NAMES):
        for j in range(per_endpoint):
            row = {f"f{k}": float(i + j + k) for k in range(features(name))} | {"c0": "web"}
            recorder.record(name, row, {"prediction": 1.0}, timestamp=at + timedelta(seconds=i + j * 7))


def test_the_recorder_stores_a_drain_in_one_file_per_slot_and_schema(mm: Monitoring) -> None:
    recorder = mm.recorder(max_events=10_000, max_seconds=60, handle_signals=False)
    record_drain(recorder, mm, per_endpoint=4)
    at = WINDOW.start + timedelta(minutes=2)
    m2 = mm.get_endpoint("m2")
    recorder.record(
        m2.id, {"f0": 0.0, "f1": 1.0, "f2": 2.0, "f3": 3.0, "c0": "web"}, {"prediction": 0.0}, timestamp=at
    )
    recorder.record(
        "m1", {"f0": 0.0, "f1": "n/a", "f2": 2.0, "f3": 3.0, "c0": "web"}, timestamp=at
    )  # invalid
    recorder.record("no-such-endpoint", {"f0": 1.0}, timestamp=at)
    assert recorder.flush()
    assert files_per_slot(mm) == {"slot=1000": 2}
    assert all(p.name.startswith("slot-") for p in event_files(mm))
    events = by_name(mm, mm.read_window(WINDOW))
    assert {name: len(df) for name, df in events.items()} == {
        name: 5 if name == "m2" else 4 for name in NAMES
    }
    assert events["m2"]["timestamp"].is_monotonic_increasing  # recorded by name and by id: one batch
    assert recorder.stats.stored == 4 * len(NAMES) + 1 and recorder.stats.invalid == 2
    invalid = mm.invalid_events.counts(WINDOW.start, WINDOW.end)
    assert (
        list(invalid) == [mm.get_endpoint("m1").id] and sum(invalid[mm.get_endpoint("m1").id].values()) == 1
    )
    recorder.close()


def test_a_fault_in_one_endpoints_events_does_not_stop_the_others(
    mm: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate_rows = recorder_module._validate_rows
    m3 = mm.get_endpoint("m3")

    def broken_for_m3(endpoint: Any, *args: Any) -> Any:
        if endpoint.id == m3.id:
            raise RuntimeError("a bug")
        return validate_rows(endpoint, *args)

    monkeypatch.setattr(recorder_module, "_validate_rows", broken_for_m3)
    recorder = mm.recorder(max_events=10_000, max_seconds=60, handle_signals=False)
    record_drain(recorder, mm, per_endpoint=3)
    assert recorder.flush()
    assert sorted(by_name(mm, mm.read_window(WINDOW))) == sorted(n for n in NAMES if n != "m3")
    assert recorder.stats.dropped == 3 and recorder.stats.stored == 3 * (len(NAMES) - 1)
    recorder.close()


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_recorder_spools_each_endpoint_when_the_store_fails_then_replays(
    mm: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "STORE_RETRY_SECONDS", 0.0)
    store_down = [True]

    def unless_down(store: Callable[..., Any]) -> Callable[..., Any]:
        def attempt(*args: Any, **kwargs: Any) -> Any:
            if store_down[0]:
                raise OSError("the volume is gone")
            return store(*args, **kwargs)

        return attempt

    for method in ("record_tables", "record_table"):  # a drain's store, the spool's replay
        monkeypatch.setattr(mm.ingestor, method, unless_down(getattr(mm.ingestor, method)))
    recorder = mm.recorder(max_events=10_000, max_seconds=0.2, handle_signals=False)
    record_drain(recorder, mm, per_endpoint=3)
    assert recorder.flush()
    assert recorder.stats.spooled_batches == len(NAMES) and recorder.spool.pending() == len(NAMES)
    assert recorder.stats.stored == 0 and mm.read_window(WINDOW) == {}
    store_down[0] = False
    assert wait_for(lambda: recorder.spool.pending() == 0)
    events = by_name(mm, mm.read_window(WINDOW))
    assert {name: len(df) for name, df in events.items()} == {name: 3 for name in NAMES}
    assert recorder.stats.replayed_batches == len(NAMES)
    assert mm.get_endpoint("m0").event_count == 3
    recorder.close()
