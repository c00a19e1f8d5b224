"""What a Prometheus scrape reads: a few aggregate queries over every endpoint at once (never a
query per endpoint, so a scrape stays fast with thousands of endpoints). Segment rows are left
out: the export is endpoint-wide, its label cardinality bounded."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.latency import LatencyHistogram
from mm_dagster.storage import database as db


@dataclass(frozen=True)
class EndpointCounters:
    endpoint_id: str
    name: str
    model: str
    events: int
    errors: int
    last_request: datetime | None


@dataclass(frozen=True)
class LatestValue:
    """An endpoint-wide result or metric of the newest window analysed for it."""

    endpoint_id: str
    app: str
    name: str
    value: float
    status: int | None  # results only
    window_end: datetime


@dataclass(frozen=True)
class ScrapeSnapshot:
    endpoints: list[EndpointCounters]
    results: list[LatestValue]
    metrics: list[LatestValue]
    latencies: dict[str, LatencyHistogram]  # by endpoint id; endpoints with a latency recorded


def _latest(heads: sa.Table, with_status: bool, per_feature: bool) -> sa.Select[Any]:
    """The endpoint-wide heads (newest row of each series, kept by the results store). Without
    `per_feature`, metrics named `<family>__<feature>` are left out (one series per feature)."""
    columns = [heads.c.endpoint_id, heads.c.app, heads.c.name, heads.c.value, heads.c.window_end]
    if with_status:
        columns.append(heads.c.status)
    query = sa.select(*columns).where(heads.c.segment == "")
    if not per_feature:
        query = query.where(heads.c.name.not_like("%\\_\\_%", escape="\\"))
    return query


def _latest_values(
    conn: sa.Connection, table: sa.Table, with_status: bool, per_feature: bool = False
) -> list[LatestValue]:
    to_time = db.from_db_time
    if with_status:
        return [
            LatestValue(endpoint_id, app, name, float(value), int(status), to_time(end))
            for endpoint_id, app, name, value, end, status in conn.execute(_latest(table, True, per_feature))
        ]
    return [
        LatestValue(endpoint_id, app, name, float(value), None, to_time(end))
        for endpoint_id, app, name, value, end in conn.execute(_latest(table, False, per_feature))
    ]


def _endpoints(conn: sa.Connection) -> list[EndpointCounters]:
    t = db.endpoints
    query = sa.select(t.c.id, t.c.name, t.c.model_name, t.c.event_count, t.c.error_count, t.c.last_request)
    return [
        EndpointCounters(
            endpoint_id=row.id,
            name=row.name,
            model=row.model_name or "",
            events=int(row.event_count or 0),
            errors=int(row.error_count or 0),
            last_request=db.from_db_time(row.last_request),
        )
        for row in conn.execute(query)
    ]


def _latencies(conn: sa.Connection) -> dict[str, LatencyHistogram]:
    t = db.latency_buckets
    per_endpoint: dict[str, dict[str, tuple[int, float]]] = {}
    for endpoint_id, le, count, seconds in conn.execute(
        sa.select(t.c.endpoint_id, t.c.le, t.c.count, t.c.sum_seconds)
    ):
        per_endpoint.setdefault(endpoint_id, {})[le] = (int(count), float(seconds))
    return {endpoint_id: LatencyHistogram.from_buckets(b) for endpoint_id, b in per_endpoint.items()}


def scrape_snapshot(engine: Engine, per_feature_metrics: bool = False) -> ScrapeSnapshot:
    """Everything a scrape exports, read in one transaction (four queries)."""
    with engine.connect() as conn, conn.begin():
        return ScrapeSnapshot(
            endpoints=_endpoints(conn),
            results=_latest_values(conn, db.result_heads, with_status=True),
            metrics=_latest_values(conn, db.metric_heads, False, per_feature_metrics),
            latencies=_latencies(conn),
        )
