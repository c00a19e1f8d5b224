"""SQLite's write-ahead log copied back on a thread of its own (`storage.wal_checkpoints`): the
committing connections leave it to the thread, the thread copies everything back, ends when idle,
and `close` leaves nothing to copy."""

import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from mm_dagster.monitoring import Monitoring
from mm_dagster.storage import database as db
from mm_dagster.storage.wal_checkpoints import BACKSTOP_PAGES, WalCheckpoints

BLOB = b"x" * 4096


def _write(engine: sa.Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
        conn.exec_driver_sql("INSERT INTO filler VALUES (?)", [(BLOB,) for _ in range(rows)])


def _left_to_copy(path: Path) -> int:
    """Frames in the log not copied back into the database file."""
    with sqlite3.connect(path) as conn:
        _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames) - int(copied) if frames >= 0 else 0


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mm-wal-checkpoints"]


def test_connections_leave_checkpoints_to_the_thread_which_copies_everything_back(tmp_path: Path) -> None:
    path = tmp_path / "mm.db"
    engine = db.create_engine(f"sqlite:///{path}")
    checkpoints = WalCheckpoints(engine, min_wal_bytes=64 * 1024, idle_seconds=30)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == 32 * 1024
    _write(engine, 500)  # ~2 MB: past the limit, so its connection's check-in asks the thread
    assert checkpoints.wal_bytes() > 1024 * 1024
    checkpoints.close()
    assert checkpoints.checkpoints >= 1 and not _checkpoint_threads()
    with engine.connect() as conn:  # everything written is there, and nothing is left to copy
        assert conn.exec_driver_sql("SELECT count(*) FROM filler").scalar() == 500
    assert _left_to_copy(path) == 0
    engine.dispose()
    with engine.connect() as conn:  # closed: new connections checkpoint by themselves again
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    engine.dispose()


def test_the_thread_ends_when_idle_and_starts_again_when_asked(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/mm.db")
    checkpoints = WalCheckpoints(engine, min_wal_bytes=64 * 1024, idle_seconds=0.2)
    for round_ in range(2):
        _write(engine, 300)
        deadline = time.monotonic() + 10
        while _checkpoint_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _checkpoint_threads()  # the log copied back, and 0.2 s with nothing to do
        assert checkpoints.checkpoints >= round_ + 1
    _write(engine, 1)  # under the limit once the log restarted: nothing asked
    assert not _checkpoint_threads()
    checkpoints.close()
    engine.dispose()


def test_small_writes_never_start_the_thread_and_close_returns_at_once(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/mm.db")
    checkpoints = WalCheckpoints(engine)
    _write(engine, 10)
    assert not _checkpoint_threads()
    started = time.monotonic()
    checkpoints.close()
    assert time.monotonic() - started < 1 and checkpoints.checkpoints == 0
    engine.dispose()


def test_a_monitoring_on_an_sqlite_file_has_them_and_closes_them(tmp_path: Path) -> None:
    with Monitoring(home=str(tmp_path)) as mm:
        assert mm.wal_checkpoints is not None and mm.wal_checkpoints.path == str(tmp_path / "mm.db")
    assert WalCheckpoints.of_engine(sa.create_engine("sqlite://")) is None
    assert WalCheckpoints.of_engine(sa.create_engine("postgresql+psycopg://u@127.0.0.1/x")) is None
