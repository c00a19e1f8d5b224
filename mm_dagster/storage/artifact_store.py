"""Artifacts logged by apps: stored by key under the artifacts root; the same key overwrites."""

import re
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.names import APP_NAME
from mm_dagster.storage import database as db
from mm_dagster.storage.files import write_atomically

ARTIFACT_KEY = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,199}")
# File suffixes: empty, or dot-separated extensions such as ".html" or ".tar.gz".
ARTIFACT_SUFFIX = re.compile(r"(\.[a-zA-Z0-9_-]{1,16}){0,3}")


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    """Whether `value` is a string fully matching `pattern` (apps may pass anything)."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


class ArtifactStore:
    def __init__(self, root: str | Path, engine: Engine, clock: Clock = utcnow) -> None:
        self.root = Path(root)
        self.engine = engine
        self.clock = clock

    def app_dir(self, app: str) -> Path:
        """The app's artifact folder; the app name must be a valid app NAME (no path tricks)."""
        if not _matches(APP_NAME, app):
            raise MonitoringError(f"artifact app name {app!r} must match {APP_NAME.pattern}")
        return self._inside_root(self.root / app, f"app {app!r}")

    def path_for(self, app: str, key: str, suffix: str) -> Path:
        """Where artifact `key` of `app` is stored. Every component is validated and the resolved
        path must lie inside the artifacts root, so no app, key or suffix can write elsewhere."""
        folder = self.app_dir(app)
        if not _matches(ARTIFACT_KEY, key) or ".." in key:
            raise MonitoringError(f"app {app!r}: artifact key {key!r} must match {ARTIFACT_KEY.pattern}")
        if not _matches(ARTIFACT_SUFFIX, suffix):
            raise MonitoringError(
                f"app {app!r}: artifact suffix {suffix!r} must match {ARTIFACT_SUFFIX.pattern}"
            )
        return self._inside_root(folder / f"{key}{suffix}", f"app {app!r}: artifact {key!r}")

    def _inside_root(self, path: Path, what: str) -> Path:
        root = self.root.resolve()
        resolved = path.resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise MonitoringError(f"{what}: path {path} is outside the artifacts root {root}")
        return path

    def log(
        self,
        app: str,
        key: str,
        *,
        body: str | bytes | None = None,
        local_path: str | Path | None = None,
        suffix: str | None = None,
        endpoint_id: str | None = None,
        window_start: datetime | None = None,
    ) -> str:
        """Store `body` or a copy of `local_path`; returns the artifact's file URI."""
        if (body is None) == (local_path is None):
            raise MonitoringError(f"app {app!r}: artifact {key!r} needs exactly one of body, local_path")
        if suffix is None:
            suffix = Path(local_path).suffix if local_path else (".txt" if isinstance(body, str) else ".bin")
        path = self.path_for(app, key, suffix)

        def write(temp: str) -> None:
            if local_path is not None:
                shutil.copyfile(local_path, temp)
            elif isinstance(body, str):
                Path(temp).write_text(body, encoding="utf-8")
            elif body is not None:
                Path(temp).write_bytes(body)

        write_atomically(str(path.absolute()), write)
        uri = path.resolve().as_uri()
        self._register(f"{app}/{key}", app, endpoint_id, window_start, uri)
        return uri

    def log_dataset(
        self,
        app: str,
        key: str,
        df: pd.DataFrame,
        *,
        endpoint_id: str | None = None,
        window_start: datetime | None = None,
    ) -> str:
        path = self.path_for(app, key, ".parquet")
        write_atomically(str(path.absolute()), lambda temp: df.to_parquet(temp, index=False))
        uri = path.resolve().as_uri()
        self._register(f"{app}/{key}", app, endpoint_id, window_start, uri)
        return uri

    def _register(
        self, key: str, app: str, endpoint_id: str | None, window_start: datetime | None, uri: str
    ) -> None:
        row = {
            "app": app,
            "endpoint_id": endpoint_id,
            "window_start": db.to_db_time(window_start),
            "uri": uri,
            "updated_at": db.to_db_time(self.clock()),
        }
        t = db.artifacts
        with self.engine.begin() as conn:
            updated = conn.execute(t.update().where(t.c.key == key).values(**row)).rowcount
            if not updated:
                conn.execute(t.insert().values(key=key, **row))

    def list(self, app: str | None = None, window_start: datetime | None = None) -> list[dict[str, object]]:
        """Registered artifacts (of `app`, of the window starting at `window_start`), by key."""
        query = sa.select(db.artifacts).order_by(db.artifacts.c.key)
        if app:
            query = query.where(db.artifacts.c.app == app)
        if window_start is not None:
            query = query.where(db.artifacts.c.window_start == db.to_db_time(window_start))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
