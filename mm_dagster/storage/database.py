"""Engine, schema and time conventions. Times are stored as naive UTC and read back tz-aware."""

import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core import json_codec

metadata = sa.MetaData()
T = TypeVar("T")
SCHEMA_ATTEMPTS = 5

_ID = sa.String(32)
_NAME = sa.String(128)
_SEGMENT = sa.String(255)


def _serial_id() -> sa.Column[int]:
    """An autoincrementing 64-bit id (SQLite autoincrements only INTEGER primary keys)."""
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )


def _segment_column() -> sa.Column[str]:
    """The segment a row is about: "" for the endpoint as a whole (see `core.segments`)."""
    return sa.Column("segment", _SEGMENT, primary_key=True, default="", server_default="")


def _series_key_columns() -> list[sa.Column[Any]]:
    """What names a result or metric series: (endpoint_id, app, name, segment)."""
    return [
        sa.Column("endpoint_id", _ID, primary_key=True),
        sa.Column("app", _NAME, primary_key=True),
        sa.Column("name", _NAME, primary_key=True),
        _segment_column(),
    ]


def _head_window_columns() -> list[sa.Column[datetime]]:
    """The window a series' head row is of (not part of the key: one head per series)."""
    return [
        sa.Column("window_start", sa.DateTime, nullable=False),
        sa.Column("window_end", sa.DateTime, nullable=False),
    ]


def _window_columns() -> list[sa.Column[datetime]]:
    return [
        sa.Column("window_start", sa.DateTime, primary_key=True),
        sa.Column("window_end", sa.DateTime, nullable=False),
    ]


endpoints = sa.Table(
    "mm_endpoints",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("name", _NAME, nullable=False, unique=True),
    sa.Column("model_name", sa.String(256), nullable=False, default=""),
    sa.Column("model_version", sa.String(128), nullable=False, default=""),
    sa.Column("model_uri", sa.String(1024), nullable=False, default=""),
    sa.Column("feature_names", sa.JSON, nullable=False),
    sa.Column("label_names", sa.JSON, nullable=False),
    sa.Column("column_types", sa.JSON, nullable=False),
    sa.Column("feature_stats", sa.JSON, nullable=False),
    sa.Column("reference_rows", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("first_request", sa.DateTime),
    sa.Column("last_request", sa.DateTime),
    sa.Column("error_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("event_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("reference_version", sa.Integer),
    sa.Column("segment_columns", sa.JSON),
    sa.Column("max_segments", sa.Integer),
    sa.Column("task", sa.JSON),  # core.model_task.ModelTask.to_json(), or null
    sa.Column("reference_performance", sa.JSON),  # stats.performance, from a labelled reference
)

endpoint_references = sa.Table(
    "mm_endpoint_references",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("model_uri", sa.String(1024), nullable=False),
    sa.Column("feature_stats", sa.JSON, nullable=False),
    sa.Column("reference_rows", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("performance", sa.JSON),
)

# Each reference's drift plan (stats.reference_codec), written with the reference: a window's run
# reads it instead of parsing and preparing the reference's stats.
reference_plans = sa.Table(
    "mm_reference_plans",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("codec", sa.Integer, nullable=False),
    sa.Column("plan", sa.LargeBinary(length=2**24), nullable=False),
)

segment_references = sa.Table(
    "mm_segment_references",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("segment", _SEGMENT, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("segment_values", sa.JSON, nullable=False),
    sa.Column("reference_rows", sa.Integer, nullable=False),
    sa.Column("feature_stats", sa.JSON, nullable=False),
)

results = sa.Table(
    "mm_results",
    metadata,
    *_series_key_columns(),
    *_window_columns(),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("extra_data", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("model_version", sa.String(128)),
    sa.Column("reference_version", sa.Integer),
    sa.Index("ix_mm_results_window", "window_start", "app"),
)

metrics = sa.Table(
    "mm_metrics",
    metadata,
    *_series_key_columns(),
    *_window_columns(),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("model_version", sa.String(128)),
    sa.Column("reference_version", sa.Integer),
    sa.Index("ix_mm_metrics_window", "window_start", "app"),
)

# The newest row of each result and metric series (endpoint, app, name, segment), kept by the
# results store as it writes (storage.result_heads): the overview and /metrics read "latest"
# without scanning history. Rows stored before the heads existed are copied in once.
result_heads = sa.Table(
    "mm_result_heads",
    metadata,
    *_series_key_columns(),
    *_head_window_columns(),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

metric_heads = sa.Table(
    "mm_metric_heads",
    metadata,
    *_series_key_columns(),
    *_head_window_columns(),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# (heads table, series table) pairs.
HEADS = ((result_heads, results), (metric_heads, metrics))

app_failures = sa.Table(
    "mm_app_failures",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("app", _NAME, primary_key=True),
    _segment_column(),
    *_window_columns(),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("failed_at", sa.DateTime, nullable=False),
    sa.Index("ix_mm_app_failures_window", "window_start", "app"),
)

window_histograms = sa.Table(
    "mm_window_histograms",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("app", _NAME, primary_key=True),
    _segment_column(),
    *_window_columns(),
    sa.Column("data", sa.LargeBinary(length=2**24), nullable=False),  # window_histograms.encode
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # a window's rows are replaced by (window, app): without it, by endpoint, every endpoint's
    # whole history was walked (the key's segment comes before window_start)
    sa.Index("ix_mm_window_histograms_window", "window_start", "app"),
)

arrivals = sa.Table(
    "mm_event_arrivals",
    metadata,
    _serial_id(),
    sa.Column("slot_start", sa.DateTime, nullable=False),
    sa.Column("endpoint_id", _ID, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("first_event", sa.DateTime, nullable=False),
    sa.Column("last_event", sa.DateTime, nullable=False),
    sa.Column("written_at", sa.DateTime, nullable=False),
    sa.Column("labels", sa.Integer),  # labels that arrived for predictions of the slot (events 0)
    sa.Index("ix_mm_event_arrivals_slot", "slot_start"),
)

labels = sa.Table(
    "mm_labels",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("request_id", sa.String(256), primary_key=True),
    sa.Column("value_number", sa.Float),
    sa.Column("value_text", sa.String(256)),
    sa.Column("label_time", sa.DateTime),
    sa.Column("event_time", sa.DateTime),  # the prediction's timestamp; null until it is found
    sa.Column("received_at", sa.DateTime, nullable=False),
    # Covering a window's label query: read from the index alone.
    sa.Index("ix_mm_labels_window", "event_time", "endpoint_id", "request_id", "value_number", "value_text"),
    sa.Index("ix_mm_labels_pending", "endpoint_id", "event_time"),
)

event_files = sa.Table(
    "mm_event_files",
    metadata,
    _serial_id(),
    sa.Column("endpoint_id", _ID, nullable=False),
    sa.Column("slot_start", sa.DateTime, nullable=False),
    sa.Column("path", sa.String(255), nullable=False, unique=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("first_event", sa.DateTime, nullable=False),
    sa.Column("last_event", sa.DateTime, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("schema_key", sa.String(40)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("retired_at", sa.DateTime),
    sa.Column("reason", sa.Text),
    # Set on the rows of a compacted slot file: one row per endpoint in it, all naming this
    # file; `path` is then `<shared_file>#<endpoint_id>`, unique like every path.
    sa.Column("shared_file", sa.String(255)),
    sa.Index("ix_mm_event_files_slot", "slot_start", "state"),
)

latency_buckets = sa.Table(
    "mm_latency_buckets",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("le", sa.String(16), primary_key=True),  # core.latency.BUCKET_LABELS
    sa.Column("count", sa.BigInteger, nullable=False),  # events in this bucket only
    sa.Column("sum_seconds", sa.Float, nullable=False),
)

event_batches = sa.Table(
    "mm_event_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("endpoint_id", _ID, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("committed_at", sa.DateTime, nullable=False),
)

invalid_events = sa.Table(
    "mm_invalid_events",
    metadata,
    sa.Column("endpoint_id", _ID, primary_key=True),
    sa.Column("window_start", sa.DateTime, primary_key=True),
    sa.Column("reason", sa.String(255), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("sample", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

api_tokens = sa.Table(
    "mm_api_tokens",
    metadata,
    _serial_id(),
    sa.Column("name", _NAME, nullable=False, unique=True),
    sa.Column("scope", sa.String(160), nullable=False),  # "project" or "endpoint:<name>"
    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),  # never the secret
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
)

artifacts = sa.Table(
    "mm_artifacts",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("app", _NAME, nullable=False),
    sa.Column("endpoint_id", _ID),
    sa.Column("window_start", sa.DateTime),
    sa.Column("uri", sa.String(2048), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


IN_LIST_CHUNK = 500  # values per SQL `IN (...)` list


def in_chunks(items: Sequence[T]) -> Iterator[list[T]]:
    """`items` in lists of at most `IN_LIST_CHUNK`, for `IN (...)` clauses every database takes."""
    size = IN_LIST_CHUNK
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


@overload
def to_db_time(ts: datetime) -> datetime: ...
@overload
def to_db_time(ts: None) -> None: ...
def to_db_time(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


@overload
def from_db_time(ts: datetime) -> datetime: ...
@overload
def from_db_time(ts: None) -> None: ...
def from_db_time(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# The database file is read through memory-mapped I/O, not a read() of each page into SQLite's
# cache: a row past a large column (an endpoint's reference stats, ~40 KB at 20 features) and a
# stored drift plan (~46 KB) span overflow pages read one by one (10,000 endpoints: the columns
# after the stats 107 -> 14 ms, the plans 421 -> 258 ms; measured). SQLite caps it at its build's
# limit (2 GiB here); WAL mode already requires a local file system.
SQLITE_MMAP_BYTES = 1 << 31


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()


class EncodedJSON:
    """A JSON column's value encoded once (`encode_json` stores the text as it is): a row written
    to two tables (results and their heads) is not encoded twice."""

    __slots__ = ("text",)

    def __init__(self, value: object) -> None:
        self.text = json_codec.dumps(value)

    @classmethod
    def of_text(cls, text: str) -> "EncodedJSON":
        """A value encoded already (by `json_codec.dumps`)."""
        encoded = object.__new__(cls)
        encoded.text = text
        return encoded


def encode_json(value: object) -> str:
    """The engines' JSON serializer: `json_codec.dumps` (read back as `json.dumps` writes), except
    for values already encoded."""
    return value.text if isinstance(value, EncodedJSON) else json_codec.dumps(value)


def create_engine(url: str) -> Engine:
    """An engine for `url` with the schema created on first use. The caller owns it (the
    `Monitoring` object, itself owned by the Dagster resource) and disposes of it."""
    sa_url = sa.engine.make_url(url)
    if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:"):
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, pool_pre_ping=True, json_serializer=encode_json, json_deserializer=json_codec.loads
    )
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            _create_schema(engine)
            return engine
        except sa.exc.DBAPIError:
            # Processes starting together on an empty database (workers of a new deployment)
            # race to create the same tables; the losers find them made on the next attempt.
            if attempt == SCHEMA_ATTEMPTS:
                engine.dispose()
                raise
            time.sleep(random.uniform(0.05, 0.2) * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _create_schema(engine: Engine) -> None:
    _key_results_by_segment(engine)
    missing_heads = [h for h, _ in HEADS if not sa.inspect(engine).has_table(h.name)]
    metadata.create_all(engine)
    _add_missing_columns(engine)
    _add_missing_indexes(engine)
    _create_latest_views(engine)
    _fill_heads(engine, missing_heads)


def _add_missing_columns(engine: Engine) -> None:
    """Add columns that later versions added to existing tables (all nullable, so additive)."""
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"table {table.name} lacks NOT NULL column {column.name}: migrate it by hand"
                )
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
            except sa.exc.DBAPIError:
                columns = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
                if column.name not in columns:  # not a concurrent migration that got there first
                    raise


def _add_missing_indexes(engine: Engine) -> None:
    """Create indexes that later versions added to existing tables."""
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        if not table.indexes or not inspector.has_table(table.name):
            continue
        present = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name in present:
                continue
            try:
                index.create(engine)
            except sa.exc.DBAPIError:
                names = {i["name"] for i in sa.inspect(engine).get_indexes(table.name)}
                if index.name not in names:  # not a concurrent migration that got there first
                    raise


SEGMENT_KEYED_TABLES = (results, metrics, app_failures)
LATEST_VIEWS = ("mm_latest_results", "mm_latest_metrics")


def _key_results_by_segment(engine: Engine) -> None:
    """Migrate results, metrics and failures stored before segments: add `segment` ("" on every
    stored row: they are endpoint-wide) to the primary key. The latest views are dropped and
    made again by `_create_latest_views`."""
    inspector = sa.inspect(engine)
    stale = [
        t
        for t in SEGMENT_KEYED_TABLES
        if inspector.has_table(t.name) and "segment" not in {c["name"] for c in inspector.get_columns(t.name)}
    ]
    for table in stale:
        try:
            if engine.dialect.name == "sqlite":
                _rebuild_with_segment(engine, table)
                continue
            with engine.begin() as conn:
                for view in LATEST_VIEWS:
                    conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
                _alter_to_segment_key(conn, table)
        except sa.exc.DBAPIError:
            columns = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
            if "segment" not in columns:  # not a concurrent migration that got there first
                raise


def _rebuild_with_segment(engine: Engine, table: sa.Table) -> None:
    """SQLite cannot change a primary key: the rows are copied into the table made anew, all in
    one BEGIN IMMEDIATE transaction issued by hand (pysqlite would run the DDL outside one, so a
    crash could strand the rows in the renamed table). The lock is taken before looking at the
    table, so a concurrent migration that got there first is seen and left alone."""
    old = f"{table.name}_before_segments"
    statements = [
        *(f"DROP VIEW IF EXISTS {view}" for view in LATEST_VIEWS),
        f"ALTER TABLE {table.name} RENAME TO {old}",
        *(f"DROP INDEX IF EXISTS {index.name}" for index in table.indexes),
        str(sa.schema.CreateTable(table).compile(dialect=engine.dialect)).strip(),
        *(str(sa.schema.CreateIndex(index).compile(dialect=engine.dialect)) for index in table.indexes),
    ]
    raw = engine.raw_connection()
    sqlite = raw.driver_connection
    saved = sqlite.isolation_level  # type: ignore[union-attr]
    sqlite.isolation_level = None  # type: ignore[union-attr]  # no implicit BEGINs: ours only
    try:
        cursor = sqlite.cursor()  # type: ignore[union-attr]
        cursor.execute("BEGIN IMMEDIATE")
        try:
            present = [row[1] for row in cursor.execute(f"PRAGMA table_info({table.name})")]
            if "segment" not in present:
                copied = ", ".join(c for c in present if c in table.c)
                for statement in statements:
                    cursor.execute(statement)
                cursor.execute(f"INSERT INTO {table.name} ({copied}, segment) SELECT {copied}, '' FROM {old}")
                cursor.execute(f"DROP TABLE {old}")
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
    finally:
        sqlite.isolation_level = saved  # type: ignore[union-attr]
        raw.close()


def _alter_to_segment_key(conn: sa.Connection, table: sa.Table) -> None:
    """PostgreSQL and MySQL/MariaDB: add the column and swap the primary key in place."""
    kind = _SEGMENT.compile(dialect=conn.dialect)
    key = ", ".join(c.name for c in table.primary_key.columns)
    if conn.dialect.name == "postgresql":
        pk_name = sa.inspect(conn).get_pk_constraint(table.name)["name"]
        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN segment {kind} NOT NULL DEFAULT ''"))
        conn.execute(sa.text(f'ALTER TABLE {table.name} DROP CONSTRAINT "{pk_name}"'))
        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD PRIMARY KEY ({key})"))
    else:
        conn.execute(
            sa.text(
                f"ALTER TABLE {table.name} ADD COLUMN segment {kind} NOT NULL DEFAULT '', "
                f"DROP PRIMARY KEY, ADD PRIMARY KEY ({key})"
            )
        )


def latest_select(table: sa.Table) -> sa.Select[Any]:
    """Rows of `table` at the newest window per (endpoint_id, app, name, segment)."""
    newest = (
        sa.select(
            table.c.endpoint_id,
            table.c.app,
            table.c.name,
            table.c.segment,
            sa.func.max(table.c.window_start).label("newest"),
        )
        .group_by(table.c.endpoint_id, table.c.app, table.c.name, table.c.segment)
        .subquery()
    )
    return sa.select(table).join(
        newest,
        sa.and_(
            table.c.endpoint_id == newest.c.endpoint_id,
            table.c.app == newest.c.app,
            table.c.name == newest.c.name,
            table.c.segment == newest.c.segment,
            table.c.window_start == newest.c.newest,
        ),
    )


def _fill_heads(engine: Engine, created: Sequence[sa.Table]) -> None:
    """Copy the newest row of every series into heads tables made just now (a database written
    before they existed). A concurrent process doing the same gets there first or fails alike."""
    for heads, series in HEADS:
        if heads not in created:
            continue
        newest = latest_select(series).subquery()
        columns = [c.name for c in heads.columns]
        statement = heads.insert().from_select(columns, sa.select(*(newest.c[c] for c in columns)))
        try:
            with engine.begin() as conn:
                conn.execute(statement)
        except sa.exc.IntegrityError:
            pass


def _create_latest_views(engine: Engine) -> None:
    """`mm_latest_results` / `mm_latest_metrics` views for dashboards reading the database."""
    existing = set(sa.inspect(engine).get_view_names())
    for view, table in zip(LATEST_VIEWS, (results, metrics), strict=True):
        if view in existing:
            continue
        body = latest_select(table).compile(engine, compile_kwargs={"literal_binds": True})
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"CREATE VIEW {view} AS {body}"))
        except sa.exc.DBAPIError:
            if view not in sa.inspect(engine).get_view_names():  # not a concurrent creator
                raise


alert_events = sa.Table(
    "mm_alert_events",
    metadata,
    _serial_id(),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(400), nullable=False),
    sa.Column("endpoint_id", _ID, nullable=False),
    sa.Column("endpoint_name", _NAME, nullable=False),
    sa.Column("app", _NAME, nullable=False),
    sa.Column("result_name", _NAME),
    sa.Column("window_start", sa.DateTime, nullable=False),
    sa.Column("window_end", sa.DateTime, nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("status", sa.SmallInteger),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("evaluated", sa.Boolean, nullable=False, default=False),
    sa.Column("segment", _SEGMENT),  # the segment key of a segment's result; "" or NULL otherwise
    sa.Column("claim", sa.String(32)),
    sa.UniqueConstraint("kind", "entity", "window_start", name="uq_mm_alert_events"),
    sa.Index("ix_mm_alert_events_pending", "evaluated"),
)

alert_states = sa.Table(
    "mm_alert_states",
    metadata,
    sa.Column("alert", _NAME, primary_key=True),
    sa.Column("entity", sa.String(400), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("activated_at", sa.DateTime),
    sa.Column("last_event_at", sa.DateTime),
    sa.Column("last_notified_at", sa.DateTime),
    sa.Column("recent", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

notifications = sa.Table(
    "mm_notifications",
    metadata,
    _serial_id(),
    sa.Column("alert", _NAME, nullable=False),
    sa.Column("channel_index", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(512), nullable=False),
    sa.Column("dedup_key", sa.String(255), nullable=False, unique=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("claimed_until", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("uid", sa.String(36)),  # the notification id receivers de-duplicate on
    sa.Index("ix_mm_notifications_due", "status", "next_attempt_at"),
)

notification_attempts = sa.Table(
    "mm_notification_attempts",
    metadata,
    _serial_id(),
    sa.Column("notification_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("attempted_at", sa.DateTime, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Float, nullable=False),
)
