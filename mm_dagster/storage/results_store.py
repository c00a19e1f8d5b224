"""Results and metrics as time series keyed by (endpoint_id, app, name, segment, window_start).

`segment` is "" for the endpoint as a whole, else the segment's key (see `core.segments`).
Writing an app's window replaces that window's rows (every segment's) for each endpoint it
analysed, so a re-run never duplicates; the rows are upserted, so two runs of one window at once
(a backfill beside the controller's run) both succeed, the last to commit winning. Failures per
(endpoint, app, segment, window) are kept beside them.
"""

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.clock import Clock, utcnow
from mm_dagster.core.histograms import FeatureHistogram
from mm_dagster.core.report import Outputs
from mm_dagster.core.results import AppFailure, StoredMetric, StoredResult
from mm_dagster.core.schemas import ResultKindApp, ResultStatusApp
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.core.windows import Window
from mm_dagster.storage import database as db
from mm_dagster.storage.dialect_sql import in_transaction_retrying_deadlocks, upsert
from mm_dagster.storage.result_heads import advance_heads
from mm_dagster.storage.window_histograms import histogram_rows


def _result(row: sa.Row[Any]) -> StoredResult:
    m = row._mapping
    return StoredResult(
        m["endpoint_id"],
        m["app"],
        m["name"],
        db.from_db_time(m["window_start"]),
        db.from_db_time(m["window_end"]),
        ResultKindApp(m["kind"]),
        ResultStatusApp(m["status"]),
        m["value"],
        m["extra_data"],
        m["model_version"],
        m["reference_version"],
        m["segment"],
    )


def _metric(row: sa.Row[Any]) -> StoredMetric:
    m = row._mapping
    return StoredMetric(
        m["endpoint_id"],
        m["app"],
        m["name"],
        db.from_db_time(m["window_start"]),
        db.from_db_time(m["window_end"]),
        m["value"],
        m["model_version"],
        m["reference_version"],
        m["segment"],
    )


def _write_window(
    conn: sa.Connection,
    app: str,
    start: datetime,
    replaced: Mapping[str, set[str]],
    result_rows: list[dict[str, Any]],
    metric_rows: list[dict[str, Any]],
    failure_rows: list[dict[str, Any]],
    histogram_rows: list[dict[str, Any]],
) -> None:
    """Delete the window's rows of the `replaced` endpoints (all segments but the failed ones
    it maps each to) and the failures being replaced, then upsert (two runs of one window at
    once can deadlock on PostgreSQL: `replace_window` retries)."""
    whole = [e for e, kept in replaced.items() if not kept]
    tables = (db.results, db.metrics, db.app_failures, db.window_histograms)
    stored = {table.name for table in tables if _window_has_rows(conn, table, app, start)}
    for table in tables:
        if table.name not in stored:  # nothing to delete: the window's first analysis
            continue
        for chunk in db.in_chunks(whole):
            conn.execute(
                table.delete().where(
                    table.c.app == app, table.c.window_start == start, table.c.endpoint_id.in_(chunk)
                )
            )
        for endpoint_id, kept in replaced.items():
            if kept:
                conn.execute(
                    table.delete().where(
                        table.c.app == app,
                        table.c.window_start == start,
                        table.c.endpoint_id == endpoint_id,
                        table.c.segment.notin_(sorted(kept)),
                    )
                )
    t = db.app_failures
    failed: dict[str, list[str]] = {}
    for row in failure_rows if t.name in stored else ():
        failed.setdefault(row["segment"], []).append(row["endpoint_id"])
    for segment, failed_endpoints in failed.items():
        for chunk in db.in_chunks(failed_endpoints):
            conn.execute(
                t.delete().where(
                    t.c.app == app,
                    t.c.window_start == start,
                    t.c.segment == segment,
                    t.c.endpoint_id.in_(chunk),
                )
            )
    for table, rows in (
        (db.results, result_rows),
        (db.metrics, metric_rows),
        (db.app_failures, failure_rows),
        (db.window_histograms, histogram_rows),
    ):
        if rows:
            upsert(conn, table, rows)
    first = not {db.results.name, db.metrics.name} & stored  # no head can be of the window yet
    advance_heads(conn, app, start, replaced, (result_rows, metric_rows), fall_back=not first)


def _window_has_rows(conn: sa.Connection, table: sa.Table, app: str, start: datetime) -> bool:
    """Whether `table` holds any row of `app`'s window starting at `start` (its window index)."""
    query = sa.select(sa.literal(1)).where(table.c.app == app, table.c.window_start == start).limit(1)
    return conn.execute(query).first() is not None


def _output_rows(
    key: dict[str, Any], outputs: Outputs, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    results, metrics = outputs
    result_rows = [
        {
            **key,
            "name": r.name,
            "kind": r.kind.value,
            "status": int(r.status),
            "value": r.value,
            "extra_data": db.EncodedJSON.of_text(r.extra_data_json()),
            "updated_at": now,
        }
        for r in results
    ]
    metric_rows = [{**key, "name": m.name, "value": m.value, "updated_at": now} for m in metrics]
    return result_rows, metric_rows


class ResultsStore:
    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def replace_window(
        self,
        app: str,
        window: Window,
        outputs: Mapping[str, Outputs],
        failures: Mapping[str, str] | None = None,
        versions: Mapping[str, tuple[str, int]] | None = None,
        segment_outputs: Mapping[str, Mapping[str, Outputs]] | None = None,
        segment_failures: Mapping[str, Mapping[str, str]] | None = None,
        histograms: Mapping[str, Mapping[str, Sequence[FeatureHistogram]]] | None = None,
    ) -> None:
        """Store `outputs` per endpoint (and `segment_outputs` per endpoint and segment key),
        replacing that endpoint's rows for (app, window), every segment's.

        `histograms` (endpoint id -> segment key -> the app's histograms) are stored with the
        outputs of that endpoint and segment (see `storage.window_histograms`) and replaced as
        they are: a re-run without histograms for an endpoint leaves it none.

        An endpoint or segment that failed keeps its earlier rows and gets a failure row instead.
        `versions` gives each endpoint's (model_version, reference_version) the outputs were
        computed with.
        """
        start, end = db.to_db_time(window.start), db.to_db_time(window.end)
        now = db.to_db_time(self.clock())
        by_segment: dict[str, dict[str, Outputs]] = {e: {ENDPOINT_WIDE: out} for e, out in outputs.items()}
        for endpoint_id, parts in (segment_outputs or {}).items():
            by_segment.setdefault(endpoint_id, {}).update(parts)
        failed: dict[str, dict[str, str]] = {e: {ENDPOINT_WIDE: err} for e, err in (failures or {}).items()}
        for endpoint_id, errors in (segment_failures or {}).items():
            failed.setdefault(endpoint_id, {}).update(errors)
        result_rows, metric_rows, stored_histograms = [], [], []
        for endpoint_id, parts in by_segment.items():
            model_version, reference_version = (versions or {}).get(endpoint_id, (None, None))
            for segment, out in parts.items():
                key = {
                    "endpoint_id": endpoint_id,
                    "app": app,
                    "segment": segment,
                    "window_start": start,
                    "window_end": end,
                    "model_version": model_version,
                    "reference_version": reference_version,
                }
                results, metrics = _output_rows(key, out, now)
                result_rows += results
                metric_rows += metrics
                stored_histograms += histogram_rows(
                    key, (histograms or {}).get(endpoint_id, {}).get(segment, ()), now
                )
        failure_rows = [
            {
                "endpoint_id": e,
                "app": app,
                "segment": segment,
                "window_start": start,
                "window_end": end,
                "error": err,
                "failed_at": now,
            }
            for e, errors in failed.items()
            for segment, err in errors.items()
        ]
        replaced = {e: set(failed.get(e, {})) for e in by_segment}
        in_transaction_retrying_deadlocks(
            self.engine,
            lambda conn: _write_window(
                conn, app, start, replaced, result_rows, metric_rows, failure_rows, stored_histograms
            ),
        )

    @staticmethod
    def _filtered(
        table: sa.Table,
        query: sa.Select[Any],
        endpoint_id: str | Sequence[str] | None,
        app: str | None,
        name: str | None,
        start: datetime | None,
        end: datetime | None,
        segment: str | None = ENDPOINT_WIDE,
    ) -> sa.Select[Any]:
        if segment is not None:
            query = query.where(table.c.segment == segment)
        if isinstance(endpoint_id, str):
            query = query.where(table.c.endpoint_id == endpoint_id)
        elif endpoint_id is not None:
            query = query.where(table.c.endpoint_id.in_(list(endpoint_id)))
        if app is not None:
            query = query.where(table.c.app == app)
        if name is not None:
            query = query.where(table.c.name == name)
        if start is not None:
            query = query.where(table.c.window_start >= db.to_db_time(start))
        if end is not None:
            query = query.where(table.c.window_start < db.to_db_time(end))
        return query.order_by(table.c.window_start, table.c.endpoint_id, table.c.name, table.c.segment)

    def _fetch(
        self,
        table: sa.Table,
        convert: Any,
        latest: bool,
        endpoint_id: str | Sequence[str] | None,
        app: str | None,
        name: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        segment: str | None = ENDPOINT_WIDE,
    ) -> list[Any]:
        base = db.latest_select(table) if latest else sa.select(table)
        query = self._filtered(table, base, endpoint_id, app, name, start, end, segment)
        with self.engine.connect() as conn:
            return [convert(r) for r in conn.execute(query)]

    def results(
        self,
        endpoint_id: str | Sequence[str] | None = None,
        app: str | None = None,
        name: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        segment: str | None = ENDPOINT_WIDE,
    ) -> list[StoredResult]:
        """Results of endpoint(s) and app with window_start in [start, end): endpoint-wide by
        default, of one segment (its key), or of every segment and endpoint-wide (`None`)."""
        return self._fetch(db.results, _result, False, endpoint_id, app, name, start, end, segment)

    def window_results(self, app: str, window: Window) -> list[StoredResult]:
        """`app`'s results of `window`, every segment's, without their extra_data ({}; see
        `extra_data_of`): one narrow scan, for reading a whole window back."""
        t = db.results
        columns = [t.c.endpoint_id, t.c.segment, t.c.name, t.c.kind, t.c.status, t.c.value]
        query = (
            sa.select(*columns)
            .where(t.c.app == app, t.c.window_start == db.to_db_time(window.start))
            .order_by(t.c.endpoint_id, t.c.segment, t.c.name)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        kinds, statuses = {k.value: k for k in ResultKindApp}, {s.value: s for s in ResultStatusApp}
        return [
            StoredResult(
                endpoint_id,
                app,
                name,
                window.start,
                window.end,
                kinds[kind],
                statuses[status],
                value,
                {},
                segment=segment,
            )
            for endpoint_id, segment, name, kind, status, value in rows
        ]

    def window_metrics(self, app: str, window: Window) -> list[StoredMetric]:
        """`app`'s metrics of `window`, every segment's (one narrow scan)."""
        t = db.metrics
        query = (
            sa.select(t.c.endpoint_id, t.c.segment, t.c.name, t.c.value)
            .where(t.c.app == app, t.c.window_start == db.to_db_time(window.start))
            .order_by(t.c.endpoint_id, t.c.segment, t.c.name)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredMetric(endpoint_id, app, name, window.start, window.end, value, segment=segment)
            for endpoint_id, segment, name, value in rows
        ]

    def extra_data_of(
        self, app: str, window: Window, keys: Collection[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        """The extra_data of `app`'s results of `window` keyed (endpoint id, segment, name)."""
        t = db.results
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        by_name: dict[str, list[str]] = {}
        for endpoint_id, _, name in keys:
            by_name.setdefault(name, []).append(endpoint_id)
        with self.engine.connect() as conn:
            for name, endpoint_ids in sorted(by_name.items()):
                for chunk in db.in_chunks(sorted(set(endpoint_ids))):
                    query = sa.select(t.c.endpoint_id, t.c.segment, t.c.extra_data).where(
                        t.c.app == app,
                        t.c.window_start == db.to_db_time(window.start),
                        t.c.name == name,
                        t.c.endpoint_id.in_(chunk),
                    )
                    for endpoint_id, segment, extra_data in conn.execute(query):
                        if (endpoint_id, segment, name) in keys:
                            found[(endpoint_id, segment, name)] = extra_data
        return found

    def metrics(
        self,
        endpoint_id: str | Sequence[str] | None = None,
        app: str | None = None,
        name: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        segment: str | None = ENDPOINT_WIDE,
    ) -> list[StoredMetric]:
        """Metrics of endpoint(s) and app with window_start in [start, end): endpoint-wide by
        default, of one segment (its key), or of every segment and endpoint-wide (`None`)."""
        return self._fetch(db.metrics, _metric, False, endpoint_id, app, name, start, end, segment)

    def latest_results(
        self, endpoint_id: str | None = None, app: str | None = None, *, segment: str | None = ENDPOINT_WIDE
    ) -> list[StoredResult]:
        """The newest result per (endpoint, app, name, segment); `segment` as in `results`."""
        return self._fetch(db.results, _result, True, endpoint_id, app, segment=segment)

    def latest_metrics(
        self, endpoint_id: str | None = None, app: str | None = None, *, segment: str | None = ENDPOINT_WIDE
    ) -> list[StoredMetric]:
        """The newest metric per (endpoint, app, name, segment); `segment` as in `results`."""
        return self._fetch(db.metrics, _metric, True, endpoint_id, app, segment=segment)

    def failures(
        self, app: str | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[AppFailure]:
        t = db.app_failures
        query = sa.select(t).order_by(t.c.window_start, t.c.endpoint_id, t.c.segment)
        if app is not None:
            query = query.where(t.c.app == app)
        if start is not None:
            query = query.where(t.c.window_start >= db.to_db_time(start))
        if end is not None:
            query = query.where(t.c.window_start < db.to_db_time(end))
        with self.engine.connect() as conn:
            return [
                AppFailure(
                    m["endpoint_id"],
                    m["app"],
                    db.from_db_time(m["window_start"]),
                    db.from_db_time(m["window_end"]),
                    m["error"],
                    m["segment"],
                )
                for m in (r._mapping for r in conn.execute(query))
            ]

    def analysed_at(self, window_start: datetime) -> datetime | None:
        """When the window's stored analysis was written: the earliest `updated_at` (`failed_at`)
        of its results, metrics and failures, any app; None when it was never analysed. A re-run
        replaces an app's rows, so this is the time of the analysis stored before it."""
        start = db.to_db_time(window_start)
        times = []
        with self.engine.connect() as conn:
            for table, column in (
                (db.results, db.results.c.updated_at),
                (db.metrics, db.metrics.c.updated_at),
                (db.app_failures, db.app_failures.c.failed_at),
            ):
                first = conn.execute(
                    sa.select(sa.func.min(column)).where(table.c.window_start == start)
                ).scalar()
                if first is not None:
                    times.append(db.from_db_time(first))
        return min(times, default=None)

    def analysed_apps(self, start: datetime, end: datetime) -> dict[datetime, set[str]]:
        """Apps with stored results, metrics or failures per window starting in [start, end)."""
        analysed: dict[datetime, set[str]] = {}
        with self.engine.connect() as conn:
            for table in (db.results, db.metrics, db.app_failures):
                query = (
                    sa.select(table.c.window_start, table.c.app)
                    .where(
                        table.c.window_start >= db.to_db_time(start),
                        table.c.window_start < db.to_db_time(end),
                    )
                    .distinct()
                )
                for window_start, app in conn.execute(query):
                    analysed.setdefault(db.from_db_time(window_start), set()).add(app)
        return analysed
