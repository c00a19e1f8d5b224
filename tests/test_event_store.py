"""The event store's guarantees: all-or-none batches, reads from the catalog, compaction, retention,
quarantine of unreadable files, sweeping of leftovers, adoption of format-1 stores."""

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import instance_for_test

from mm_dagster.applications import HistogramDataDriftApplication
from mm_dagster.cli import main as mm_main
from mm_dagster.core.clock import fixed_clock
from mm_dagster.core.windows import Window
from mm_dagster.dagster_defs import MonitoringConfig, build_definitions
from mm_dagster.dagster_defs.resources import MonitoringResource
from mm_dagster.events.maintenance import MaintenancePolicy
from mm_dagster.events.validation import validate_events
from mm_dagster.monitoring import Monitoring
from mm_dagster.simulation import reference_frame, traffic_frame
from mm_dagster.storage.event_store import QUARANTINE_DIR, WrittenFile

WINDOW = Window.containing("2026-11-20T10:00:00Z", 10)
LATER = WINDOW.end + timedelta(hours=3)


def home_of(tmp_path: Path) -> str:
    return str(tmp_path / "home")


@pytest.fixture
def store_mm(tmp_path: Path) -> Monitoring:
    mm = Monitoring(home=home_of(tmp_path), clock=fixed_clock(LATER))
    mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    return mm


def batch(n: int, seed: int, window: Window = WINDOW) -> pd.DataFrame:
    df = traffic_frame(n, window.start, window.end, seed=seed)
    df["request_id"] = [f"b{seed}-{i}" for i in range(n)]
    return df


def parquet_files(mm: Monitoring) -> list[Path]:
    root = Path(mm.settings.events_root)
    return sorted(p for p in root.rglob("*.parquet") if QUARANTINE_DIR not in p.parts)


def write_unregistered(mm: Monitoring, df: pd.DataFrame) -> list[WrittenFile]:
    endpoint = mm.get_endpoint("m")
    return mm.events.write(endpoint.id, validate_events(endpoint, df, pd.Timestamp(LATER)))


def read(mm: Monitoring, window: Window = WINDOW) -> pd.DataFrame:
    return mm.read_window(window).get(mm.get_endpoint("m").id, pd.DataFrame())


def test_a_batch_is_readable_only_once_registered(store_mm: Monitoring) -> None:
    endpoint = store_mm.get_endpoint("m")
    written = write_unregistered(store_mm, batch(50, seed=1))
    assert len(parquet_files(store_mm)) == 1 and read(store_mm).empty  # on disk, not readable
    store_mm.arrivals.record(endpoint.id, written, LATER)
    assert len(read(store_mm)) == 50
    assert store_mm.get_endpoint("m").event_count == 50


def test_a_batch_spanning_slots_is_all_or_none(store_mm: Monitoring, monkeypatch: pytest.MonkeyPatch) -> None:
    three_windows = Window(WINDOW.start, WINDOW.start + timedelta(minutes=30))
    df = batch(300, seed=2, window=three_windows)

    def dies(*_: object, **__: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(store_mm.arrivals, "record", dies)
    with pytest.raises(RuntimeError):
        store_mm.record_events("m", df)
    monkeypatch.undo()
    assert read(store_mm, three_windows).empty and parquet_files(store_mm) == []
    assert store_mm.get_endpoint("m").event_count == 0
    assert store_mm.record_events("m", df) == 300
    assert len(read(store_mm, three_windows)) == 300 and len(parquet_files(store_mm)) == 3


def test_leftovers_of_dead_writers_are_never_read_and_are_swept(store_mm: Monitoring) -> None:
    endpoint = store_mm.get_endpoint("m")
    from mm_dagster.events.validation import validate_events

    store_mm.record_events("m", batch(20, seed=3))
    orphan = store_mm.events.write(
        endpoint.id, validate_events(endpoint, batch(30, seed=4), pd.Timestamp(LATER))
    )
    assert len(read(store_mm)) == 20
    assert store_mm.events.sweep_orphans(timedelta(hours=1)) == []  # its writer may be alive
    two_hours_ago = time.time() - 7200
    orphan_file = Path(store_mm.settings.events_root, orphan[0].path)
    os.utime(orphan_file, (two_hours_ago, two_hours_ago))  # its writer died two hours ago
    assert store_mm.events.sweep_orphans(timedelta(hours=1)) == [orphan[0].path]
    assert len(parquet_files(store_mm)) == 1 and len(read(store_mm)) == 20


def test_compaction_merges_small_files_without_duplicates_or_gaps(store_mm: Monitoring) -> None:
    for seed in range(40):
        store_mm.record_events("m", batch(25, seed=seed))
    before = read(store_mm).sort_values("request_id").reset_index(drop=True)
    assert len(parquet_files(store_mm)) == 40
    holding = store_mm.catalog.live_files(WINDOW.start, WINDOW.end)  # a reader's file list
    report = store_mm.maintain(MaintenancePolicy(grace=timedelta(minutes=30)))
    assert [(c.files_merged, c.events) for c in report.compacted] == [(40, 1000)]
    after = read(store_mm).sort_values("request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    old_paths = [Path(store_mm.settings.events_root, f.path) for fs in holding.values() for f in fs]
    assert all(p.exists() for p in old_paths)  # a reader holding the old list still finds them
    later = Monitoring(store_mm.settings, clock=fixed_clock(LATER + timedelta(hours=1)))
    assert later.maintain().purged_files == 40
    assert not any(p.exists() for p in old_paths) and len(parquet_files(store_mm)) == 1
    pd.testing.assert_frame_equal(before, read(later).sort_values("request_id").reset_index(drop=True))


def test_retention_deletes_old_events_and_keeps_results(store_mm: Monitoring) -> None:
    old = Window(WINDOW.start - timedelta(days=40), WINDOW.end - timedelta(days=40))
    store_mm.record_events("m", batch(200, seed=5, window=old))
    store_mm.record_events("m", batch(200, seed=6))
    store_mm.run_window([HistogramDataDriftApplication()], old)
    report = store_mm.maintain(MaintenancePolicy(retention=timedelta(days=30)))
    assert report.expired_files == 1 and report.expired_arrivals == 1
    assert read(store_mm, old).empty and len(read(store_mm)) == 200
    assert len(store_mm.results.results(start=old.start, end=old.end)) == 3


def test_an_unreadable_file_is_quarantined_and_the_rest_is_read(
    store_mm: Monitoring, caplog: pytest.LogCaptureFixture
) -> None:
    for seed in range(3):
        store_mm.record_events("m", batch(10, seed=seed))
    broken = parquet_files(store_mm)[1]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.ERROR):
        assert len(read(store_mm)) == 20
    assert str(broken) in caplog.text and "quarantined" in caplog.text
    assert not broken.exists()
    assert list((Path(store_mm.settings.events_root) / QUARANTINE_DIR).rglob(broken.name))
    assert len(read(store_mm)) == 20  # the catalog no longer lists it


def test_a_format_1_store_is_adopted_once(tmp_path: Path) -> None:
    home = home_of(tmp_path)
    with Monitoring(home=home, clock=fixed_clock(LATER)) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        mm.record_events("m", batch(60, seed=7))
        with mm.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM mm_event_files")
        meta = Path(mm.settings.events_root) / "_mm_event_store.json"
        meta.write_text(json.dumps({"partition_minutes": 10}))  # as the first landing wrote it
        hidden = parquet_files(mm)[0].with_name(".tmp-unpublished.parquet")
        pq.write_table(pq.read_table(parquet_files(mm)[0]), hidden)  # never published
    with Monitoring(home=home, clock=fixed_clock(LATER)) as mm:
        assert len(read(mm)) == 60
        assert json.loads(meta.read_text()) == {"base_period": 10, "format": 2}


def test_the_maintenance_job_and_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = home_of(tmp_path)
    monkeypatch.setenv("MM_HOME", home)
    with Monitoring(home=home) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
        for seed in range(5):
            mm.record_events("m", batch(10, seed=seed))
        assert len(parquet_files(mm)) == 5
    config = MonitoringConfig(apps=[HistogramDataDriftApplication()], partitions_start="2026-11-01")
    defs = build_definitions(config, resource=MonitoringResource(home=home))
    with instance_for_test() as instance:
        result = defs.resolve_job_def("mm_maintenance_job").execute_in_process(instance=instance)
        assert result.success
    with Monitoring(home=home) as mm:
        assert len(mm.catalog.live_files(WINDOW.start, WINDOW.end)[mm.get_endpoint("m").id]) == 1
        mm.record_events("m", batch(10, seed=9))
    assert mm_main(["maintain"]) == 0
    with Monitoring(home=home) as mm:
        (files,) = mm.catalog.live_files(WINDOW.start, WINDOW.end).values()
        assert len(files) == 1 and files[0].events == 60


@pytest.mark.slow
def test_kill_9_during_writes_loses_no_acknowledged_batch_and_shows_no_partial_one(tmp_path: Path) -> None:
    from .event_writer import ROWS, SPAN

    home = home_of(tmp_path)
    with Monitoring(home=home) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    rng = random.Random(9)
    acknowledged: set[str] = set()
    root = Path(__file__).resolve().parents[1]
    for run in range(20):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.event_writer", home, f"r{run}"],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        # Killed at a random moment once it writes (its start-up time depends on the machine).
        assert writer.stdout is not None
        first = writer.stdout.readline()
        time.sleep(rng.uniform(0.0, 1.2))
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate(timeout=30)
        acknowledged.update((first + out).split())
    assert len(acknowledged) > 20
    with Monitoring(home=home) as mm:
        rows = mm.read_window(SPAN)[mm.get_endpoint("m").id]
        per_batch = rows["request_id"].str.rsplit("-", n=1).str[0].value_counts()
        assert set(per_batch) == {ROWS}  # every readable batch is whole
        assert acknowledged <= set(per_batch.index)  # every acknowledged batch is readable
        assert not rows["request_id"].duplicated().any()
        endpoint = mm.get_endpoint("m")
        assert endpoint.event_count == len(rows) == ROWS * len(per_batch)
        mm.events.sweep_orphans(timedelta(0))  # every writer is dead: nothing is in flight
        assert len(mm.read_window(SPAN)[endpoint.id]) == len(rows)
        registered = {f.path for fs in mm.catalog.live_files(SPAN.start, SPAN.end).values() for f in fs}
        on_disk = {str(p.relative_to(mm.settings.events_root)) for p in parquet_files(mm)}
        assert on_disk == registered  # leftovers of the killed writers are gone


@pytest.mark.slow
def test_eight_writers_a_reader_and_compaction_on_one_window(tmp_path: Path) -> None:
    from .event_writer import ROWS, SPAN

    home = home_of(tmp_path)
    with Monitoring(home=home) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    root = Path(__file__).resolve().parents[1]

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    reader = start("tests.event_reader", home)
    writers = [start("tests.event_writer", home, f"w{i}", "12") for i in range(8)]
    compactions = 0
    policy = MaintenancePolicy(retention=timedelta(days=3650))
    with Monitoring(home=home) as maintainer:  # the writers' window closed long ago
        while any(w.poll() is None for w in writers):
            compactions += len(maintainer.maintain(policy).compacted)
            time.sleep(0.2)
        compactions += len(maintainer.maintain(policy).compacted)
    (Path(home) / "STOP").touch()
    acknowledged = set()
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        acknowledged.update(out.split())
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert "PARTIAL" not in out and "DUPLICATE" not in out, out
    assert int(out.split()[-1]) > 1  # the reader really read while the others worked
    assert compactions > 0
    with Monitoring(home=home) as mm:
        rows = mm.read_window(SPAN)[mm.get_endpoint("m").id]
        assert len(acknowledged) == 8 * 12
        assert len(rows) == ROWS * 8 * 12 == mm.get_endpoint("m").event_count
        assert not rows["request_id"].duplicated().any()


KILLED_SERVERS = 12  # each a process start (~3 s here), killed at a random moment of its writes


@pytest.mark.slow
def test_kill_9_of_a_recording_server_leaves_whole_batches_and_exact_counters(tmp_path: Path) -> None:
    from .event_writer import SPAN

    home = home_of(tmp_path)
    with Monitoring(home=home) as mm:
        mm.create_endpoint("m", reference=reference_frame(2000, seed=1), label_names=["prediction"])
    rng = random.Random(3)
    root = Path(__file__).resolve().parents[1]
    for run in range(KILLED_SERVERS):
        with Monitoring(home=home) as mm:
            stored_before = mm.get_endpoint("m").event_count
            server = subprocess.Popen(
                [sys.executable, "-m", "tests.recorder_process", home, f"r{run}"], cwd=root
            )
            # Killed while storing: at a random moment after its first batch is acknowledged (a
            # fixed delay would race the process's start-up, which varies with the machine).
            deadline = time.monotonic() + 60
            while mm.get_endpoint("m").event_count == stored_before and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    with Monitoring(home=home) as mm:
        endpoint = mm.get_endpoint("m")
        rows = mm.read_window(SPAN)[endpoint.id]
        assert len(rows) > 0 and not rows["request_id"].duplicated().any()
        assert endpoint.event_count == len(rows)  # counters equal what is readable
        per_run = rows["request_id"].str.split("-").str[0].value_counts()
        assert len(per_run) == KILLED_SERVERS  # every server stored something before it was killed
        # Recorded in order and stored in flushes: what each server stored is a prefix, no gaps.
        for run, group in rows.groupby(rows["request_id"].str.split("-").str[0]):
            numbers = sorted(int(r.split("-")[1]) for r in group["request_id"])
            assert numbers == list(range(len(numbers))), run
