"""The Parquet event store (spec §4).

Layout: `<root>/date=YYYY-MM-DD/slot=HHMM/<endpoint_id>-<uuid>.parquet`, one slot per window of
the `base_period` the store was created with (recorded in `<root>/_mm_event_store.json`, so a
later change of base_period keeps reading the files already written).

Files are written under unique names and become readable only when the event catalog registers
them (`event_catalog`): readers ask the catalog, never list directories, so a file of a batch
that was never acknowledged is never read, and a batch is readable whole or not at all.
Maintenance (`compact_slot`, `purge_retired`, `sweep_orphans`) keeps the store small and clean;
a file that cannot be read is quarantined and the rest of its window is still read.
"""

import contextlib
import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mm_dagster.core.windows import Window, validate_base_period
from mm_dagster.storage.event_catalog import CatalogFile, EventCatalog
from mm_dagster.storage.files import StorageRoot, write_atomically

log = logging.getLogger(__name__)

METADATA_FILE = "_mm_event_store.json"
QUARANTINE_DIR = "_quarantine"
# Format 2: the catalog lists readable files. Format 1 stores made every visible file readable.
STORE_FORMAT = 2
_US_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class WrittenFile:
    """A file written to the store, not yet readable (the catalog registers it)."""

    endpoint_id: str
    slot_start: datetime
    path: str  # relative to the store's root
    events: int
    errors: int
    first_event: datetime
    last_event: datetime
    size_bytes: int
    schema_key: str  # files with the same key have the same columns: one scan reads them all


@dataclass(frozen=True)
class CompactionResult:
    endpoint_id: str
    slot_start: datetime
    files_merged: int
    events: int


def _utc_from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


class EventStore:
    def __init__(self, root: str, base_period: int, catalog: EventCatalog) -> None:
        location = StorageRoot.parse(root)
        self.fs = location.fs
        self.root = location.path
        self._local = location.is_local
        self.catalog = catalog
        self.fs.create_dir(self.root, recursive=True)
        self.base_period = self._load_or_init(validate_base_period(base_period))

    # -- layout ----------------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any] | None:
        meta = f"{self.root}/{METADATA_FILE}"
        if self.fs.get_file_info(meta).type == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(meta) as f:
            recorded: dict[str, Any] = json.loads(f.read())
        return recorded

    def _write_metadata(self, content: dict[str, Any]) -> None:
        encoded = json.dumps(content).encode()
        write_atomically(f"{self.root}/{METADATA_FILE}", lambda out: out.write(encoded), self.fs)

    def _load_or_init(self, base_period: int) -> int:
        recorded = self._metadata()
        if recorded is None:
            self._write_metadata({"base_period": base_period, "format": STORE_FORMAT})
            recorded = self._metadata()
            assert recorded is not None
        # Stores created before the setting was named base_period recorded "partition_minutes".
        stored_period = int(recorded.get("base_period", recorded.get("partition_minutes", base_period)))
        if int(recorded.get("format", 1)) < STORE_FORMAT:
            self.base_period = stored_period
            self._adopt_published_files()
            self._write_metadata({"base_period": stored_period, "format": STORE_FORMAT})
        return stored_period

    def _slot_dir(self, slot_start: datetime) -> str:
        return f"date={slot_start:%Y-%m-%d}/slot={slot_start:%H%M}"

    def _absolute(self, path: str) -> str:
        return f"{self.root}/{path}"

    def slot_of(self, ts: datetime) -> datetime:
        return Window.containing(ts, self.base_period).start

    @property
    def slot_length(self) -> timedelta:
        return timedelta(minutes=self.base_period)

    # -- writing ---------------------------------------------------------------------------------
    def _write_file(self, endpoint_id: str, table: pa.Table, slot_start: datetime) -> WrittenFile:
        """One sorted, single-slot table as a new file (not readable until registered)."""
        directory = self._slot_dir(slot_start)
        if self._local:  # object storage has no directories: a marker object per slot is a request wasted
            self.fs.create_dir(self._absolute(directory), recursive=True)
        path = f"{directory}/{endpoint_id}-{uuid.uuid4().hex}.parquet"
        pq.write_table(table, self._absolute(path), filesystem=self.fs, **_writer_options(table))
        return _written_file(
            endpoint_id,
            slot_start,
            path,
            table,
            int(self.fs.get_file_info(self._absolute(path)).size or 0),
            schema_key(table.schema),
        )

    def write(self, endpoint_id: str, table: pa.Table) -> list[WrittenFile]:
        """Write `table` (sorted by timestamp) as one file per slot. Nothing is readable until
        the catalog registers the returned files; on failure nothing is left behind."""
        if table.num_rows == 0:
            return []
        micros = table["timestamp"].cast(pa.int64()).to_numpy()
        slot_us = self.base_period * _US_PER_MINUTE
        slots = micros // slot_us
        boundaries = np.flatnonzero(np.diff(slots)) + 1
        written: list[WrittenFile] = []
        try:
            for lo, hi in zip(np.r_[0, boundaries], np.r_[boundaries, len(slots)], strict=True):
                slot_start = _utc_from_micros(int(slots[lo]) * slot_us)
                written.append(self._write_file(endpoint_id, table.slice(lo, hi - lo), slot_start))
        except BaseException:
            self.discard(written)
            raise
        return written

    def discard(self, files: Sequence[WrittenFile | CatalogFile]) -> None:
        for f in files:
            try:
                self.fs.delete_file(self._absolute(f.path))
            except (FileNotFoundError, OSError) as exc:
                log.warning("could not delete event file %s: %s", f.path, exc)

    # -- reading ---------------------------------------------------------------------------------
    def read_window(
        self,
        window: Window,
        endpoint_ids: set[str] | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> dict[str, pd.DataFrame]:
        """The window's events per endpoint (of `endpoint_ids`, and of the endpoints `keep` holds
        true), sorted by timestamp. A file that cannot be read is quarantined (logged with its
        path) and the rest of the window is still returned."""
        files = self.catalog.live_files(
            self.slot_of(window.start), window.end, sorted(endpoint_ids) if endpoint_ids else None
        )
        if keep is not None:
            files = {e: f for e, f in files.items() if keep(e)}
        groups: dict[str | None, list[tuple[str, list[CatalogFile]]]] = defaultdict(list)
        for endpoint_id, endpoint_files in sorted(files.items()):
            keys = {f.schema_key for f in endpoint_files}
            groups[keys.pop() if len(keys) == 1 else None].append((endpoint_id, endpoint_files))
        frames: dict[str, pd.DataFrame] = {}
        for key, members in groups.items():
            if key is not None and len(members) > 1:
                try:
                    frames.update(self._scan_together(members, window))
                    continue
                except (pa.ArrowInvalid, OSError):
                    pass  # read endpoint by endpoint below, quarantining what cannot be read
            for endpoint_id, endpoint_files in members:
                table, _ = self._read_files(endpoint_files, window)
                if table is not None and table.num_rows:
                    frames[endpoint_id] = _to_pandas(table)
        return {endpoint_id: frames[endpoint_id] for endpoint_id in sorted(frames)}

    def request_times(
        self, endpoint_id: str, request_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, datetime]:
        """When each of `request_ids` was served by `endpoint_id` (the earliest of its events on
        the newest day that has one), looking at
        the endpoint's readable files of slots in [since, until), newest day first, reading only
        the `request_id` and `timestamp` columns and stopping once every id is found. Ids not
        found are absent. A file that cannot be read is skipped (a window read quarantines it)."""
        wanted = set(request_ids)
        files = self.catalog.live_files(self.slot_of(since), until, [endpoint_id]).get(endpoint_id, [])
        by_day: dict[str, list[CatalogFile]] = defaultdict(list)
        for f in files:
            by_day[f"{f.slot_start:%Y-%m-%d}"].append(f)
        found: dict[str, datetime] = {}
        for day in sorted(by_day, reverse=True):
            if not wanted:
                break
            try:
                dataset = ds.dataset(
                    [self._absolute(f.path) for f in by_day[day]], format="parquet", filesystem=self.fs
                )
                table = dataset.to_table(
                    columns=["request_id", "timestamp"],
                    filter=ds.field("request_id").isin(pa.array(sorted(wanted), type=pa.string())),
                )
            except (pa.ArrowInvalid, OSError) as exc:
                log.warning(
                    "endpoint %s: event files of %s not searched for requests: %s", endpoint_id, day, exc
                )
                continue
            if not table.num_rows:
                continue
            frame = table.to_pandas().sort_values("timestamp").drop_duplicates("request_id")
            day_found = dict(
                zip(
                    frame["request_id"].astype(str),
                    (ts.to_pydatetime() for ts in frame["timestamp"]),
                    strict=True,
                )
            )
            found.update(day_found)
            wanted -= set(day_found)
        return found

    def _scan_together(
        self, members: Sequence[tuple[str, list[CatalogFile]]], window: Window
    ) -> dict[str, pd.DataFrame]:
        """Endpoints whose files share one schema, read in one scan, converted to pandas once and
        split by endpoint (row slices of one frame, each with its own 0-based index)."""
        paths = [self._absolute(f.path) for _, files in members for f in files]
        owner = np.repeat(np.arange(len(members)), [len(files) for _, files in members])
        dataset = ds.dataset(paths, format="parquet", filesystem=self.fs)
        ts = ds.field("timestamp")
        start = pa.scalar(window.start, type=pa.timestamp("us", tz="UTC"))
        end = pa.scalar(window.end, type=pa.timestamp("us", tz="UTC"))
        columns = [*dataset.schema.names, "__fragment_index"]
        table = dataset.to_table(columns=columns, filter=(ts >= start) & (ts < end))
        endpoint_of_row = owner[table["__fragment_index"].to_numpy()]
        micros = table["timestamp"].cast(pa.int64()).to_numpy()
        table = table.drop_columns(["__fragment_index"])
        if not _sorted_by(endpoint_of_row, micros):  # a compacted window scans in order: no copy
            table = table.take(np.lexsort((micros, endpoint_of_row)))
        counts = np.bincount(endpoint_of_row, minlength=len(members))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        everything = _to_pandas(table)
        frames = {}
        for i, (endpoint_id, _) in enumerate(members):
            if counts[i]:
                frame = everything.iloc[int(offsets[i]) : int(offsets[i + 1])]
                frame.index = pd.RangeIndex(int(counts[i]))
                frames[endpoint_id] = frame
        return frames

    def _read_files(
        self, files: Sequence[CatalogFile], window: Window | None
    ) -> tuple[pa.Table | None, list[CatalogFile]]:
        """The rows of `files` (in `window`, if given) and the files they came from: files that
        cannot be read are quarantined and left out."""
        readable = list(files)
        try:
            table = self._scan([self._absolute(f.path) for f in readable], window)
        except (pa.ArrowInvalid, OSError):
            readable = [f for f in files if self._readable(f, window)]
            if not readable:
                return None, []
            table = self._scan([self._absolute(f.path) for f in readable], window)
        if len(readable) > 1:
            table = table.sort_by("timestamp")  # each file is already sorted
        return table, readable

    def _scan(self, paths: list[str], window: Window | None) -> pa.Table:
        dataset = ds.dataset(paths, format="parquet", filesystem=self.fs)
        if window is None:
            return dataset.to_table()
        ts = ds.field("timestamp")
        start = pa.scalar(window.start, type=pa.timestamp("us", tz="UTC"))
        end = pa.scalar(window.end, type=pa.timestamp("us", tz="UTC"))
        return dataset.to_table(filter=(ts >= start) & (ts < end))

    def _readable(self, file: CatalogFile, window: Window | None) -> bool:
        try:
            self._scan([self._absolute(file.path)], window)
        except (pa.ArrowInvalid, OSError) as exc:
            self.quarantine(file, f"{type(exc).__name__}: {exc}")
            return False
        return True

    def quarantine(self, file: CatalogFile, reason: str) -> None:
        target = f"{QUARANTINE_DIR}/{file.path}"
        try:
            self.fs.create_dir(self._absolute(target.rpartition("/")[0]), recursive=True)
            self.fs.move(self._absolute(file.path), self._absolute(target))
        except (FileNotFoundError, OSError) as exc:
            reason = f"{reason}; not moved: {exc}"
            target = file.path
        self.catalog.quarantine(file, reason)
        log.error(
            "event file %s (endpoint %s, slot %s, %d events) is unreadable and was quarantined to "
            "%s: %s; the rest of the window is read",
            self._absolute(file.path),
            file.endpoint_id,
            file.slot_start.isoformat(),
            file.events,
            self._absolute(target),
            reason,
        )

    # -- maintenance -----------------------------------------------------------------------------
    def compact_slot(self, slot_start: datetime, endpoint_id: str) -> CompactionResult | None:
        """Merge an endpoint's live files of one slot into one file, swapped in atomically."""
        files = self.catalog.live_files(slot_start, slot_start + self.slot_length, [endpoint_id])
        old = files.get(endpoint_id, [])
        if len(old) < 2:
            return None
        table, merged_from = self._read_files(old, None)
        if table is None or table.num_rows == 0 or len(merged_from) < 2:
            return None
        merged = self._write_file(endpoint_id, table, slot_start)
        if not self.catalog.replace(merged_from, merged):
            self.discard([merged])  # a concurrent compaction or quarantine got there first
            return None
        return CompactionResult(endpoint_id, slot_start, len(merged_from), merged.events)

    def purge_retired(self, grace: timedelta) -> int:
        """Delete files replaced or expired more than `grace` ago (readers holding an older
        file list had that long to finish)."""
        retired = self.catalog.retired_before(self.catalog.clock() - grace)
        for f in retired:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(self._absolute(f.path))
        self.catalog.forget(retired)
        return len(retired)

    def sweep_orphans(self, grace: timedelta) -> list[str]:
        """Delete files older than `grace` that no catalog row knows (left by writers that died
        before their batch was acknowledged) and stale temporary files. File times come from the
        writers' real clocks, so the age is measured on the real clock too, never an injected one:
        a skewed clock must not make a batch still being written look abandoned."""
        cutoff = datetime.now(UTC) - grace
        candidates: dict[str, pafs.FileInfo] = {}
        for relative, info in self._stored_files():
            if info.mtime is not None and info.mtime.replace(tzinfo=UTC) > cutoff:
                continue
            if relative.endswith(".parquet") or info.base_name.startswith("."):
                candidates[relative] = info
        candidates.pop(METADATA_FILE, None)
        known = self.catalog.known_paths(sorted(candidates))
        swept = [path for path in sorted(candidates) if path not in known]
        for path in swept:
            self.fs.delete_file(self._absolute(path))
        if swept:
            log.warning(
                "swept %d leftover event file(s) of unacknowledged batches: %s", len(swept), swept[:5]
            )
        return swept

    def _stored_files(self) -> Iterator[tuple[str, pafs.FileInfo]]:
        """Every file under the root outside the quarantine, with its path relative to the root."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            relative = info.path[len(self.root) + 1 :]
            if info.type == pafs.FileType.File and not relative.startswith(QUARANTINE_DIR):
                yield relative, info

    def _adopt_published_files(self) -> None:
        """A format-1 store made every visible file readable: register them once."""
        adopted: list[WrittenFile] = []
        for relative, info in self._stored_files():
            name = info.base_name
            if not name.endswith(".parquet") or name.startswith("."):
                continue
            table = pq.read_table(info.path, filesystem=self.fs, columns=["timestamp", "error"])
            if table.num_rows == 0:
                continue
            first = _utc_from_micros(int(pc.min(table["timestamp"].cast(pa.int64())).as_py()))
            key = schema_key(pq.read_schema(info.path, filesystem=self.fs))
            endpoint_id = name.split("-", 1)[0]
            adopted.append(
                _written_file(endpoint_id, self.slot_of(first), relative, table, int(info.size or 0), key)
            )
        known = self.catalog.known_paths([f.path for f in adopted])
        fresh = [f for f in adopted if f.path not in known]
        if fresh:
            with self.catalog.engine.begin() as conn:
                self.catalog.register(conn, fresh, self.catalog.clock())
            log.warning("adopted %d event file(s) of a format-1 store into the catalog", len(fresh))


def _written_file(
    endpoint_id: str, slot_start: datetime, path: str, table: pa.Table, size_bytes: int, key: str
) -> WrittenFile:
    """What the catalog records of a file holding `table` (its `timestamp` and `error` columns)."""
    micros = table["timestamp"].cast(pa.int64())
    return WrittenFile(
        endpoint_id=endpoint_id,
        slot_start=slot_start,
        path=path,
        events=table.num_rows,
        errors=table.num_rows - table["error"].null_count,
        first_event=_utc_from_micros(int(pc.min(micros).as_py())),
        last_event=_utc_from_micros(int(pc.max(micros).as_py())),
        size_bytes=size_bytes,
        schema_key=key,
    )


def _sorted_by(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether rows are in (first, second) order already."""
    step, tie_step = np.diff(first), np.diff(second)
    return bool(np.all((step > 0) | ((step == 0) & (tie_step >= 0))))


def schema_key(schema: pa.Schema) -> str:
    """A fingerprint of a file's columns and types."""
    return hashlib.sha1(schema.remove_metadata().to_string().encode()).hexdigest()


def _writer_options(table: pa.Table) -> dict[str, object]:
    """Dictionary-encode and compress low-cardinality string columns; leave numbers plain.

    Model inputs are mostly high-entropy floats that compression barely shrinks but slows to
    read (1M x 27 columns: 0.19 s snappy vs 0.13 s plain).
    """
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name != "request_id"]
    compression = {f.name: ("snappy" if pa.types.is_string(f.type) else "none") for f in table.schema}
    return {"use_dictionary": strings, "compression": compression}


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = table.to_pandas(types_mapper=_arrow_backed_strings, split_blocks=True)
    return frame


def _arrow_backed_strings(arrow_type: pa.DataType) -> object:
    """Strings stay in Arrow memory (pandas' `string[pyarrow]`): no Python object per value."""
    return pd.StringDtype("pyarrow") if pa.types.is_string(arrow_type) else None
