"""Aggregate reads behind the service's overview and endpoint pages: a few queries whatever the
number of endpoints (no query per endpoint)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.storage import database as db
from mm_dagster.storage.series_names import OutputKind, stored_series


@dataclass(frozen=True)
class EndpointHeadline:
    """An endpoint as the overview lists it (no reference statistics loaded)."""

    id: str
    name: str
    model_name: str
    model_version: str
    last_request: datetime | None
    event_count: int
    error_count: int


@dataclass(frozen=True)
class Traffic:
    """Events and errors of one endpoint in a period and in the period before it."""

    events: int = 0
    errors: int = 0
    previous_events: int = 0
    previous_errors: int = 0


def endpoint_headlines(engine: Engine) -> list[EndpointHeadline]:
    t = db.endpoints
    query = sa.select(
        t.c.id,
        t.c.name,
        t.c.model_name,
        t.c.model_version,
        t.c.last_request,
        t.c.event_count,
        t.c.error_count,
    ).order_by(t.c.name)
    with engine.connect() as conn:
        return [
            EndpointHeadline(i, n, m, v, db.from_db_time(last), int(events), int(errors))
            for i, n, m, v, last, events, errors in conn.execute(query)
        ]


def latest_app_statuses(engine: Engine, since: datetime) -> dict[str, dict[str, ResultStatusApp]]:
    """Per endpoint and app, the worst status among the newest values of the app's results
    (endpoint-wide) from windows that started at or after `since` (one read of the heads)."""
    h = db.result_heads
    query = (
        sa.select(h.c.endpoint_id, h.c.app, sa.func.max(h.c.status))
        .where(h.c.segment == ENDPOINT_WIDE, h.c.window_start >= db.to_db_time(since))
        .group_by(h.c.endpoint_id, h.c.app)
    )
    statuses: dict[str, dict[str, ResultStatusApp]] = {}
    with engine.connect() as conn:
        for endpoint_id, app, status in conn.execute(query):
            statuses.setdefault(endpoint_id, {})[app] = ResultStatusApp(int(status))
    return statuses


def traffic(
    engine: Engine, endpoint_ids: Sequence[str], end: datetime, period: timedelta
) -> dict[str, Traffic]:
    """Events and errors per endpoint in [end - period, end) and in the period before, from the
    arrival log (by arrival slot)."""
    a = db.arrivals
    start, before = end - period, end - 2 * period
    current = a.c.slot_start >= db.to_db_time(start)
    out: dict[str, Traffic] = {}
    with engine.connect() as conn:
        for chunk in db.in_chunks(list(endpoint_ids)):
            query = (
                sa.select(
                    a.c.endpoint_id,
                    sa.func.sum(sa.case((current, a.c.events), else_=0)),
                    sa.func.sum(sa.case((current, a.c.errors), else_=0)),
                    sa.func.sum(sa.case((current, 0), else_=a.c.events)),
                    sa.func.sum(sa.case((current, 0), else_=a.c.errors)),
                )
                .where(
                    a.c.endpoint_id.in_(chunk),
                    a.c.slot_start >= db.to_db_time(before),
                    a.c.slot_start < db.to_db_time(end),
                )
                .group_by(a.c.endpoint_id)
            )
            for endpoint_id, *sums in conn.execute(query):
                out[endpoint_id] = Traffic(*(int(s or 0) for s in sums))
    return out


def known_apps(engine: Engine, since: datetime) -> list[str]:
    """Apps with results from windows that started at or after `since`."""
    h = db.result_heads
    query = sa.select(h.c.app).where(h.c.window_start >= db.to_db_time(since)).distinct().order_by(h.c.app)
    with engine.connect() as conn:
        return [app for (app,) in conn.execute(query)]


SeriesKind = OutputKind


def series_names(engine: Engine, endpoint_id: str) -> list[tuple[SeriesKind, str, str]]:
    """(type "result" or "metric", app, name) of every series stored for an endpoint
    (endpoint-wide), sorted."""
    kinds: tuple[SeriesKind, ...] = ("result", "metric")
    return sorted(
        (kind, app, name)
        for kind in kinds
        for app, name, segment in stored_series(engine, kind, endpoint_id)
        if segment == ENDPOINT_WIDE
    )
