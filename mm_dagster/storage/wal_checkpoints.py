"""SQLite's WAL checkpoints on a thread of their own, not in the transaction that grew the log.

SQLite copies its write-ahead log back into the database file (a checkpoint) when a commit leaves
the log over 1,000 pages, in the committing call: a window of 10,000 endpoints writes ~100 MB of
results and histograms, and copying them back took ~2 s of its run, after the commit itself
(~0.5 s). The SQLite documentation's remedy for write-heavy applications is what this does: the
engine's connections leave checkpoints to a thread with a connection of its own (their automatic
ones only past `BACKSTOP_PAGES`, should the thread fall behind), which runs a PASSIVE checkpoint
(it neither blocks nor waits for readers and writers) when a connection goes back to the pool
with the log grown past `min_wal_bytes` since the last complete one, while the run goes on.
The log is truncated to half `min_wal_bytes` when SQLite restarts it, so its size tells new frames.
`close` waits for the checkpoint under way and runs one more if one was asked for (a run's
process leaves the log copied back). The thread ends after `idle_seconds` with nothing to do and
is started again when needed. A crash mid-checkpoint loses nothing: the log stays valid until the
copy is complete, and the next checkpoint redoes it.
"""

import logging
import os
import sqlite3
import threading
from contextlib import closing
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)
MIN_WAL_BYTES = 4 * 1024 * 1024  # SQLite's own trigger: 1,000 pages of 4 KiB
BACKSTOP_PAGES = 262_144  # 1 GiB of 4 KiB pages
IDLE_SECONDS = 5.0
BUSY_TIMEOUT_SECONDS = 30.0


class WalCheckpoints:
    """Background checkpoints of one engine's SQLite database file (see the module)."""

    def __init__(
        self, engine: Engine, min_wal_bytes: int = MIN_WAL_BYTES, idle_seconds: float = IDLE_SECONDS
    ) -> None:
        if not _is_sqlite_file(engine):
            raise ValueError(f"background checkpoints are for an SQLite database file, not {engine.url!r}")
        self.path = str(engine.url.database)
        self.min_wal_bytes = min_wal_bytes
        self.idle_seconds = idle_seconds
        self.checkpoints = 0  # completed, for tests and logs
        self._engine = engine
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._copied_wal_bytes = -1  # the log's size after the last complete checkpoint
        sa.event.listen(engine, "connect", self._configure_connection)
        sa.event.listen(engine, "checkin", self._after_use)
        engine.dispose()  # connections opened before (the schema's) checkpoint by themselves

    @classmethod
    def of_engine(cls, engine: Engine) -> "WalCheckpoints | None":
        """The engine's background checkpoints, or None where the database is not an SQLite file."""
        return cls(engine) if _is_sqlite_file(engine) else None

    def wal_bytes(self) -> int:
        try:
            return os.stat(f"{self.path}-wal").st_size
        except FileNotFoundError:
            return 0

    def request(self) -> None:
        """Run a checkpoint soon, on the thread (started if it is not running)."""
        with self._lock:
            if self._closing:
                return
            self._pending = True
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="mm-wal-checkpoints", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Wait for the checkpoint under way (and one asked for meanwhile), end the thread, and
        let connections opened from now on checkpoint by themselves again."""
        with self._lock:
            self._closing = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join()
        if sa.event.contains(self._engine, "checkin", self._after_use):
            sa.event.remove(self._engine, "checkin", self._after_use)
            sa.event.remove(self._engine, "connect", self._configure_connection)

    def _configure_connection(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={self.min_wal_bytes // 2}")
        cursor.close()

    def _after_use(self, _dbapi_connection: Any, _record: Any) -> None:
        size = self.wal_bytes()
        if size >= self.min_wal_bytes and size != self._copied_wal_bytes:
            self.request()

    def _work(self) -> None:
        try:
            with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)) as connection:
                while self._next_asked_for():
                    try:
                        size = self.wal_bytes()
                        busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        self.checkpoints += 1
                        if not busy and frames == copied:  # busy: another process's checkpoint ran
                            self._copied_wal_bytes = size
                    except sqlite3.Error as exc:  # the next commit over the limit asks again
                        logger.warning("checkpoint of %s failed: %s", self.path, exc)
        except BaseException:
            with self._lock:
                self._thread = None
            raise

    def _next_asked_for(self) -> bool:
        """Wait for a request (not when closing); False, the thread marked ended, when none
        came within `idle_seconds` or the checkpoints are closing with none asked for."""
        if not self._closing:
            self._wake.wait(self.idle_seconds)
        with self._lock:
            self._wake.clear()
            if not self._pending:
                self._thread = None
                return False
            self._pending = False
            return True


def _is_sqlite_file(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
