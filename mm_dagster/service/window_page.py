"""The window page: `GET /endpoints/{name}/windows/{window key}?app=...&segment=...`, rendered on
request from the app's stored results and histograms of that window (`reports.window_page`)."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.links import endpoint_path, window_path
from mm_dagster.core.segments import ENDPOINT_WIDE
from mm_dagster.core.windows import Window
from mm_dagster.reports.window_page import WindowLinks, render_window_page
from mm_dagster.service.pages import nav_bar
from mm_dagster.service.state import ServiceState, service_state
from mm_dagster.service.static import PLOTLY_PATH
from mm_dagster.storage.window_histograms import WindowHistogramStore

DEFAULT_APP = "histogram-data-drift"
router = APIRouter(include_in_schema=False)


def dagster_runs_url(dagster_url: str, window_key: str) -> str:
    """The Dagster UI's runs of the window's partition."""
    return f"{dagster_url}/runs?{urlencode({'q[]': f'tag:dagster/partition={window_key}'})}"


@router.get("/endpoints/{name}/windows/{window_key}", response_class=HTMLResponse)
def window_page(
    name: str,
    window_key: str,
    state: Annotated[ServiceState, Depends(service_state)],
    app: Annotated[str, Query(max_length=128)] = DEFAULT_APP,
    segment: Annotated[str, Query(max_length=255)] = ENDPOINT_WIDE,
) -> HTMLResponse:
    """One endpoint's window as one app saw it: results, per-feature table, histograms."""
    try:
        window = Window.from_key(window_key, state.settings.base_period)
    except MonitoringError as exc:
        raise HTTPException(422, f"window key: {exc}") from None
    mm = state.monitoring
    endpoint = mm.endpoints.find(name)
    if endpoint is None:
        raise HTTPException(404, f"unknown endpoint {name!r}")
    results = mm.results.results(endpoint.id, app, start=window.start, end=window.end, segment=segment)
    metrics = mm.results.metrics(endpoint.id, app, start=window.start, end=window.end, segment=segment)
    store = WindowHistogramStore(mm.engine)
    stored = store.window(endpoint.id, app, window.start, segment)
    if not results and not metrics and stored is None:
        where = f" segment {segment!r}," if segment else ""
        raise HTTPException(
            404, f"nothing stored for endpoint {name!r}, app {app!r},{where} window {window.key}"
        )
    previous, following = store.neighbours(endpoint.id, app, window.start, segment)
    links = WindowLinks(
        endpoint=endpoint_path(endpoint.name),
        previous=None if previous is None else window_path(endpoint.name, previous, app, segment),
        next=None if following is None else window_path(endpoint.name, following, app, segment),
        dagster_runs=None
        if state.settings.dagster_url is None
        else dagster_runs_url(state.settings.dagster_url, window.key),
    )
    html = render_window_page(
        endpoint.name,
        window.key,
        app,
        segment,
        results,
        [] if stored is None else stored.features,
        links,
        metrics,
        plotly_src=PLOTLY_PATH,
        site_nav=nav_bar(state.settings),
    )
    return HTMLResponse(html)
