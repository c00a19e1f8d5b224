"""Compacted slot files: a slot's files of every endpoint merged into one file per schema, sorted
by shard key, read as one scan; shards skip other shards' row groups; late files, quarantine,
purge and request lookups keep working on them."""

import logging
import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from dagster import instance_for_test

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.shards import Shard, all_shards, shard_key
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.events import maintenance
from mm_dagster.events.maintenance import MaintenancePolicy
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame
from mm_dagster.storage import event_store
from mm_dagster.storage.event_store import QUARANTINE_DIR, SHARD_KEY_COLUMN, SLOT_FILE_COLUMNS

from .analysis_snapshot import analysis_snapshot
from .conftest import materialize_window

WINDOW = Window.containing("2026-11-20T10:00:00Z", 10)
LATER = WINDOW.end + timedelta(hours=3)
ENDPOINTS = 24


def batch(n: int, seed: int, window: Window = WINDOW) -> pd.DataFrame:
    df = traffic_frame(n, window.start, window.end, seed=seed)
    df["request_id"] = [f"b{seed}-{i}" for i in range(n)]
    return df


@pytest.fixture
def mm(tmp_path: Path) -> Monitoring:
    mm = Monitoring(home=str(tmp_path / "home"), clock=fixed_clock(LATER))
    reference = reference_frame(500, seed=1)
    for i in range(ENDPOINTS):
        mm.create_endpoint(f"m{i}", reference=reference, label_names=["prediction"])
        for part in range(2):  # two batches: two files per endpoint
            mm.record_events(f"m{i}", batch(20 + i, seed=100 * i + part))
    return mm


def slot_files(mm: Monitoring) -> list[Path]:
    root = Path(mm.settings.events_root)
    return sorted(p for p in root.rglob("slot-*.parquet") if QUARANTINE_DIR not in p.parts)


def by_request(events: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {e: df.sort_values("request_id").reset_index(drop=True) for e, df in events.items()}


def assert_same_events(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert list(left) == list(right)
    for endpoint_id in left:
        pd.testing.assert_frame_equal(left[endpoint_id], right[endpoint_id])


def test_a_slot_compacts_into_one_file_read_as_before(mm: Monitoring) -> None:
    before = mm.read_window(WINDOW)
    counts = mm.window_event_counts(WINDOW)
    (result,) = mm.maintain(MaintenancePolicy()).compacted
    assert (result.files_merged, result.files_written, result.endpoints) == (2 * ENDPOINTS, 1, ENDPOINTS)
    assert result.events == sum(n for n, _ in counts.values())
    (slot_file,) = slot_files(mm)
    after = mm.read_window(WINDOW)
    assert_same_events(before, after)  # same rows, same order, same columns and types
    assert mm.window_event_counts(WINDOW) == counts  # the catalog keeps a row per endpoint
    table = pq.read_table(slot_file)
    keys = table[SHARD_KEY_COLUMN].to_pylist()
    assert keys == sorted(keys) and set(SLOT_FILE_COLUMNS) <= set(table.column_names)
    assert not set(SLOT_FILE_COLUMNS) & set(next(iter(after.values())).columns)
    assert mm.maintain(MaintenancePolicy()).compacted == []  # nothing left to merge
    assert mm.events.sweep_orphans(timedelta(0)) == []  # the catalog knows the slot file


def test_shards_read_their_endpoints_and_skip_other_row_groups(
    mm: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_store, "SLOT_FILE_ROW_GROUP", 50)  # many row groups in a small slot
    whole = mm.read_window(WINDOW)
    mm.maintain(MaintenancePolicy())
    (slot_file,) = slot_files(mm)
    fragment = next(iter(ds.dataset(str(slot_file), format="parquet").get_fragments()))
    groups = len(fragment.split_by_row_group())
    assert groups > 8
    parts: dict[str, pd.DataFrame] = {}
    kept = 0
    for shard in all_shards(4):
        part = mm.read_window(WINDOW, shard)
        assert set(part) == set(shard.select(whole))
        parts.update(part)
        condition = event_store._key_filter(shard)
        assert condition is not None
        kept += len(fragment.split_by_row_group(filter=condition))
    assert kept <= groups + 3  # each shard reads its own row groups, sharing at most the edges
    assert_same_events(whole, dict(sorted(parts.items())))


def test_late_files_after_compaction_are_read_with_it_then_merged(mm: Monitoring) -> None:
    mm.maintain(MaintenancePolicy())
    (first,) = slot_files(mm)
    mm.record_events("m3", batch(7, seed=999))  # late events: a file of their own
    events = mm.read_window(WINDOW)
    m3 = mm.get_endpoint("m3").id
    assert len(events[m3]) == 2 * (20 + 3) + 7
    assert events[m3]["timestamp"].is_monotonic_increasing
    assert "b999-0" in set(events[m3]["request_id"])
    (result,) = mm.maintain(MaintenancePolicy()).compacted
    assert (result.files_merged, result.files_written) == (2, 1)
    assert_same_events(by_request(events), by_request(mm.read_window(WINDOW)))
    later = Monitoring(mm.settings, clock=fixed_clock(LATER + timedelta(hours=1)))
    assert (
        later.maintain(MaintenancePolicy()).purged_files == 2 * ENDPOINTS + 2
    )  # the small files, the late one, the first slot file
    assert not first.exists() and len(slot_files(mm)) == 1
    assert_same_events(by_request(events), by_request(later.read_window(WINDOW)))


def test_a_replaced_slot_file_stays_until_every_row_of_it_is_retired(mm: Monitoring) -> None:
    mm.maintain(MaintenancePolicy())
    (slot_file,) = slot_files(mm)
    later = Monitoring(mm.settings, clock=fixed_clock(LATER + timedelta(hours=1)))
    assert later.maintain(MaintenancePolicy()).purged_files == 2 * ENDPOINTS  # the small files
    assert slot_file.exists()  # live: never purged
    assert (
        sum(len(df) for df in later.read_window(WINDOW).values()) == sum(20 + i for i in range(ENDPOINTS)) * 2
    )


def test_an_unreadable_slot_file_is_quarantined_with_every_endpoint_named(
    mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    mm.maintain(MaintenancePolicy())
    (slot_file,) = slot_files(mm)
    mm.record_events("m5", batch(9, seed=555))  # a late file: readable, kept
    slot_file.write_bytes(slot_file.read_bytes()[:200])
    with caplog.at_level(logging.ERROR):
        events = mm.read_window(WINDOW)
    assert list(events) == [mm.get_endpoint("m5").id] and len(events[mm.get_endpoint("m5").id]) == 9
    assert str(slot_file) in caplog.text and "quarantined" in caplog.text
    first_ids = sorted(mm.get_endpoint(f"m{i}").id for i in range(ENDPOINTS))[:10]
    assert all(e in caplog.text for e in first_ids) and f"and {ENDPOINTS - 10} more" in caplog.text
    assert not slot_file.exists()
    assert list((Path(mm.settings.events_root) / QUARANTINE_DIR).rglob(slot_file.name))
    assert list(mm.read_window(WINDOW)) == [mm.get_endpoint("m5").id]


def test_requests_are_found_in_slot_files(mm: Monitoring) -> None:
    mm.maintain(MaintenancePolicy())
    m7 = mm.get_endpoint("m7").id
    found = mm.events.request_times(m7, ["b700-3", "b701-0", "b100-0", "nope"], WINDOW.start, WINDOW.end)
    assert set(found) == {"b700-3", "b701-0"}  # b100-0 is endpoint m1's, in the same file
    events = mm.read_window(WINDOW)[m7].set_index("request_id")
    assert found["b700-3"] == events.loc["b700-3", "timestamp"].to_pydatetime()


def test_a_large_slot_is_merged_a_key_range_at_a_time(
    mm: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = mm.read_window(WINDOW)
    monkeypatch.setattr(event_store, "COMPACTION_BATCH_ROWS", 100)
    (result,) = mm.maintain(MaintenancePolicy()).compacted
    assert result.files_written == 1
    (slot_file,) = slot_files(mm)
    keys = pq.read_table(slot_file, columns=[SHARD_KEY_COLUMN])[SHARD_KEY_COLUMN].to_pylist()
    assert keys == sorted(keys)
    assert keys[0] == min(shard_key(e) for e in before)
    assert_same_events(before, mm.read_window(WINDOW))
    assert Shard(0, 1).key_range[0] == 0


def test_the_shard_step_compacts_before_the_analysis_reads_it(
    mm: Monitoring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(mm.settings.home)
    mm.close()
    as_written = tmp_path / "as_written"
    shutil.copytree(home, as_written)
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    snapshots = []
    for where, threshold in ((home, maintenance.COMPACT_BEFORE_ANALYSIS), (as_written, 10**6)):
        monkeypatch.setattr(maintenance, "COMPACT_BEFORE_ANALYSIS", threshold)
        defs = build_definitions(config, resource=MonitoringResource(home=str(where)))
        with instance_for_test() as instance:
            assert materialize_window(defs, WINDOW.key, instance, str(where)).success
        with Monitoring(home=str(where)) as done:
            snapshots.append(analysis_snapshot(done.settings.database_url))
    assert len(list(home.rglob("slot-*.parquet"))) == 1  # 48 files merged: the analysis read one
    assert not list(as_written.rglob("slot-*.parquet"))
    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["mm_results"]


def test_shards_compact_their_parts_apart_then_maintenance_merges_the_slot(mm: Monitoring) -> None:
    before = mm.read_window(WINDOW)
    halves = all_shards(2)
    merged = [mm.compact_window(WINDOW, half, min_files=2) for half in halves]
    assert [[c.endpoints for c in m] for m in merged] == [[len(h.select(before))] for h in halves]
    parts = slot_files(mm)
    assert len(parts) == 2
    for path in parts:  # each part holds one half's endpoints only
        keys = pq.read_table(path, columns=[SHARD_KEY_COLUMN])[SHARD_KEY_COLUMN].to_numpy()
        assert len({(int(k) * 2) >> 63 for k in keys}) == 1
    assert_same_events(before, mm.read_window(WINDOW))
    assert mm.compact_window(WINDOW, halves[0], min_files=2) == []  # one file left in that half
    mm.record_events("m2", batch(5, seed=222))
    quarter = Shard(0, 4)  # a narrower part leaves alone a slot file with endpoints outside it
    assert all(
        f.shared_file is None for fs in mm.events.mergeable_files(WINDOW.start, quarter).values() for f in fs
    )
    (whole,) = mm.maintain(MaintenancePolicy()).compacted
    assert (whole.files_merged, whole.files_written, whole.endpoints) == (3, 1, ENDPOINTS)
    events = mm.read_window(WINDOW)
    assert len(events[mm.get_endpoint("m2").id]) == len(before[mm.get_endpoint("m2").id]) + 5


def test_a_slot_file_is_merged_again_with_late_files_a_key_range_at_a_time(
    mm: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_store, "COMPACTION_BATCH_ROWS", 100)  # the slot file spans every part
    mm.maintain(MaintenancePolicy())
    mm.record_events("m4", batch(6, seed=444))
    before = mm.read_window(WINDOW)
    (again,) = mm.maintain(MaintenancePolicy()).compacted
    assert (again.files_merged, again.files_written, again.endpoints) == (2, 1, ENDPOINTS)
    assert_same_events(by_request(before), by_request(mm.read_window(WINDOW)))
