"""Artifacts logged by apps: stored by key under the artifacts root; the same key overwrites."""

import posixpath
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.names import APP_NAME
from mm_dagster.storage import database as db
from mm_dagster.storage.files import StorageRoot

ARTIFACT_KEY = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,199}")
# File suffixes: empty, or dot-separated extensions such as ".html" or ".tar.gz".
ARTIFACT_SUFFIX = re.compile(r"(\.[a-zA-Z0-9_-]{1,16}){0,3}")


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    """Whether `value` is a string fully matching `pattern` (apps may pass anything)."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


class ArtifactStore:
    """Artifacts under `<root>/<app>/<key><suffix>`; the root is a local path or an object storage
    URI (`s3://bucket/artifacts`). Every artifact is written whole (see `write_atomically`)."""

    def __init__(self, root: str | Path, engine: Engine, clock: Clock = utcnow) -> None:
        self.root = StorageRoot.parse(root)
        self.engine = engine
        self.clock = clock

    def app_dir(self, app: str) -> Path:
        """The app's artifact folder on local disk (artifacts on object storage have none: log
        files with `log`). The app name must be a valid app NAME (no path tricks)."""
        if not self.root.is_local:
            raise MonitoringError(
                f"app {app!r}: the artifacts root {self.root} is object storage, not a local folder; "
                "store files with log_artifact"
            )
        return Path(self._app_location(app))

    def location(self, app: str, key: str, suffix: str) -> str:
        """Where artifact `key` of `app` is stored, on the root's filesystem. Every component is
        validated and (on local disk, symlinks resolved) the path must lie inside the artifacts
        root, so no app, key or suffix can write elsewhere."""
        folder = self._app_location(app)
        if not _matches(ARTIFACT_KEY, key) or ".." in key:
            raise MonitoringError(f"app {app!r}: artifact key {key!r} must match {ARTIFACT_KEY.pattern}")
        if not _matches(ARTIFACT_SUFFIX, suffix):
            raise MonitoringError(
                f"app {app!r}: artifact suffix {suffix!r} must match {ARTIFACT_SUFFIX.pattern}"
            )
        return self._inside_root(f"{folder}/{key}{suffix}", f"app {app!r}: artifact {key!r}")

    def _app_location(self, app: str) -> str:
        if not _matches(APP_NAME, app):
            raise MonitoringError(f"artifact app name {app!r} must match {APP_NAME.pattern}")
        return self._inside_root(self.root.join(app), f"app {app!r}")

    def _inside_root(self, path: str, what: str) -> str:
        if self.root.is_local:
            root = Path(self.root.path).resolve()
            resolved = Path(path).resolve()
            inside = resolved != root and resolved.is_relative_to(root)
        else:  # no symlinks on object storage: the validated names keep the key below the root
            normalised = posixpath.normpath(path)
            inside = normalised == path and normalised.startswith(f"{self.root.path}/")
        if not inside:
            raise MonitoringError(f"{what}: path {path} is outside the artifacts root {self.root}")
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
        """Store `body` or a copy of the local file `local_path`; returns the artifact's URI
        (`file:///...` on local disk, `s3://bucket/key` on S3)."""
        if (body is None) == (local_path is None):
            raise MonitoringError(f"app {app!r}: artifact {key!r} needs exactly one of body, local_path")
        if suffix is None:
            suffix = Path(local_path).suffix if local_path else (".txt" if isinstance(body, str) else ".bin")
        location = self.location(app, key, suffix)

        def write(out: pa.NativeFile) -> None:
            if local_path is not None:
                with open(local_path, "rb") as source:
                    shutil.copyfileobj(source, out)
            elif isinstance(body, str):
                out.write(body.encode("utf-8"))
            elif body is not None:
                out.write(body)

        self.root.write_whole(location, write)
        uri = self.root.uri(location)
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
        location = self.location(app, key, ".parquet")
        table = pa.Table.from_pandas(df, preserve_index=False)
        self.root.write_whole(location, lambda out: pq.write_table(table, out))
        uri = self.root.uri(location)
        self._register(f"{app}/{key}", app, endpoint_id, window_start, uri)
        return uri

    def ensure(self, app: str, name: str, content: Callable[[], str]) -> str:
        """A file `name` in the app's folder that pages beside it load (e.g. plotly's JS),
        written from `content()` only when it is not there yet; returns its URI."""
        location = self.location(app, name, "")
        if not self.root.exists(location):
            text = content()
            self.root.write_whole(location, lambda out: out.write(text.encode("utf-8")))
        return self.root.uri(location)

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
