"""The dashboard's endpoints overview and endpoint pages (server-rendered HTML)."""

from datetime import datetime, timedelta
from html import escape
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.links import endpoint_path
from mm_dagster.reports.endpoint_dashboard import EndpointPageData, render_endpoint_dashboard, version_changes
from mm_dagster.reports.overview_page import (
    OverviewQuery,
    OverviewRow,
    render_overview,
    select_rows,
    status_counts,
)
from mm_dagster.service.settings import ServiceSettings
from mm_dagster.service.state import ServiceState, service_state
from mm_dagster.service.static import PLOTLY_PATH
from mm_dagster.service.time_range import span_before, to_utc
from mm_dagster.storage import dashboard_queries as queries

router = APIRouter(include_in_schema=False)
State = Annotated[ServiceState, Depends(service_state)]
STATUS_LOOKBACK = timedelta(days=7)
MAX_RANGE = timedelta(days=92)
RANGES = (("6 h", 6), ("24 h", 24), ("3 days", 72), ("7 days", 168), ("30 days", 720))


def nav_bar(settings: ServiceSettings) -> str:
    links = [("/", "Endpoints"), ("/openapi.json", "API (OpenAPI)"), ("/metrics", "Prometheus metrics")]
    if settings.dagster_url:
        links.append((settings.dagster_url, "Dagster"))
    return (
        "<nav>" + "".join(f"<a href='{escape(href)}'>{escape(text)}</a>" for href, text in links) + "</nav>"
    )


def _bad_request(exc: MonitoringError) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


@router.get("/", response_class=HTMLResponse)
def overview(
    state: State,
    status: str = "all",
    sort: str = "status",
    order: str = "desc",
    q: str = "",
    page: int = 1,
    page_size: int = 50,
    hours: Annotated[float, Query(gt=0, le=24 * 92)] = 24,
) -> HTMLResponse:
    if order not in ("asc", "desc"):
        raise HTTPException(status_code=400, detail=f"order {order!r} must be asc or desc")
    try:
        query = OverviewQuery(status, sort, order == "desc", q, page, page_size)
    except MonitoringError as exc:
        raise _bad_request(exc) from exc
    mm = state.monitoring
    now = mm.clock()
    statuses = queries.latest_app_statuses(mm.engine, now - STATUS_LOOKBACK)
    rows = [
        OverviewRow(h.id, h.name, h.model_name, h.model_version, h.last_request, statuses.get(h.id, {}))
        for h in queries.endpoint_headlines(mm.engine)
    ]
    selected, total = select_rows(rows, query)
    traffic = queries.traffic(mm.engine, [r.endpoint_id for r in selected], now, timedelta(hours=hours))
    apps = list(state.settings.apps) or queries.known_apps(mm.engine, now - STATUS_LOOKBACK)
    html = render_overview(
        selected,
        total,
        status_counts(rows),
        traffic,
        apps,
        query,
        hours,
        now,
        plotly_src=PLOTLY_PATH,
        nav=nav_bar(state.settings),
    )
    return HTMLResponse(html)


def _parse_time(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            status_code=400, detail=f"{what} {value!r} is not an ISO time such as 2026-12-01T08:00"
        ) from None
    return to_utc(parsed, what)


def page_range(
    now: datetime, hours: float | None, start: str | None, end: str | None
) -> tuple[datetime, datetime]:
    """[start, end) of the endpoint page: explicit `start`/`end`, else the last `hours` (24)."""
    stop = _parse_time(end, "end") if end else now
    begin = _parse_time(start, "start") if start else span_before(stop, timedelta(hours=hours or 24), "hours")
    if begin >= stop:
        detail = f"start {begin:%Y-%m-%d %H:%M} is not before end {stop:%Y-%m-%d %H:%M}"
        raise HTTPException(status_code=400, detail=detail)
    if stop - begin > MAX_RANGE:
        raise HTTPException(status_code=400, detail=f"the range may span at most {MAX_RANGE.days} days")
    return begin, stop


@router.get("/endpoints/{name}", response_class=HTMLResponse)
def endpoint_page(
    state: State,
    name: str,
    hours: Annotated[float | None, Query(gt=0, le=24 * 92)] = None,
    start: str | None = None,
    end: str | None = None,
) -> HTMLResponse:
    mm = state.monitoring
    endpoint = mm.endpoints.find(name)
    if endpoint is None:
        raise HTTPException(status_code=404, detail=f"unknown endpoint {name!r}")
    begin, stop = page_range(mm.clock(), hours, start, end)
    period = stop - begin
    results = mm.results.results(endpoint.id, start=begin, end=stop)
    data = EndpointPageData(
        name=endpoint.name,
        model=endpoint.model_name,
        model_version=endpoint.model_version,
        reference_version=endpoint.reference_version,
        last_request=endpoint.last_request,
        start=begin,
        end=stop,
        results=results,
        metrics=mm.results.metrics(endpoint.id, start=begin, end=stop),
        previous_metrics=mm.results.metrics(endpoint.id, start=begin - period, end=begin),
        traffic=mm.arrivals.slot_counts(endpoint.id, begin, stop),
        previous_traffic=mm.arrivals.slot_counts(endpoint.id, begin - period, begin),
        thresholds=state.settings.thresholds,
        changes=version_changes(results, mm.endpoints.reference_history(endpoint.id), begin, stop),
    )
    base = endpoint_path(endpoint.name)
    ranges = [(label, f"{base}?{urlencode({'hours': h})}") for label, h in RANGES]
    html = render_endpoint_dashboard(
        data, endpoint.feature_names, plotly_src=PLOTLY_PATH, nav=nav_bar(state.settings), ranges=ranges
    )
    return HTMLResponse(html)
