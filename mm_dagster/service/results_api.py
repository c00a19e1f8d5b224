"""The results API: endpoints, and their results and metrics over a time range, in the shape of
MLRun's `metrics` / `metrics-values` (series named `<project>.<app>.<result|metric>.<name>`)."""

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from mm_dagster.core.endpoint import ModelEndpoint
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.service.state import ServiceState, service_state
from mm_dagster.service.time_range import span_before, to_utc
from mm_dagster.storage import dashboard_queries as queries
from mm_dagster.storage.dashboard_queries import SeriesKind as SeriesType

router = APIRouter(prefix="/v1", tags=["results"])
State = Annotated[ServiceState, Depends(service_state)]
DEFAULT_RANGE = timedelta(hours=24)
MAX_RESULTS = 10_000


class EndpointSummary(BaseModel):
    id: str
    name: str
    model_name: str
    model_version: str
    last_request: datetime | None
    events_total: int
    errors_total: int


class EndpointDetail(EndpointSummary):
    model_uri: str
    feature_names: list[str]
    label_names: list[str]
    reference_version: int
    reference_rows: int
    created_at: datetime | None
    task: dict[str, object] | None
    segment_columns: list[str]


class MonitoringSeries(BaseModel):
    """One result or metric series of an endpoint (MLRun's ModelEndpointMonitoringMetric)."""

    project: str
    app: str
    type: SeriesType
    name: str
    full_name: str


class SeriesValues(BaseModel):
    """Values of one series in the range: `[window start, value, status]` for a result,
    `[window start, value]` for a metric; `data` false when there is none."""

    full_name: str
    type: SeriesType
    data: bool
    result_kind: int | None = None
    values: list[tuple[datetime, float, int]] | list[tuple[datetime, float]] = Field(default_factory=list)


class ResultRow(BaseModel):
    endpoint_id: str
    endpoint: str
    app: str
    name: str
    window_start: datetime
    window_end: datetime
    kind: str
    status: str
    value: float
    model_version: str | None
    reference_version: int | None
    extra_data: dict[str, object]


def _summary(e: ModelEndpoint) -> dict[str, object]:
    return {
        "id": e.id,
        "name": e.name,
        "model_name": e.model_name,
        "model_version": e.model_version,
        "last_request": e.last_request,
        "events_total": e.event_count,
        "errors_total": e.error_count,
    }


def _endpoint(state: ServiceState, name: str) -> ModelEndpoint:
    endpoint = state.monitoring.endpoints.find(name)
    if endpoint is None:
        raise HTTPException(status_code=404, detail=f"unknown endpoint {name!r}")
    return endpoint


def _range(state: ServiceState, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    stop = to_utc(end, "end") if end else state.monitoring.clock()
    begin = to_utc(start, "start") if start else span_before(stop, DEFAULT_RANGE, "the default range")
    if begin >= stop:
        raise HTTPException(
            status_code=400, detail=f"start {begin.isoformat()} is not before end {stop.isoformat()}"
        )
    return begin, stop


def full_name(project: str, app: str, kind: str, name: str) -> str:
    return f"{project}.{app}.{kind}.{name}"


def parse_full_name(value: str) -> tuple[str, SeriesType, str]:
    """(app, type, name) of `<project>.<app>.<result|metric>.<name>`."""
    parts = value.rsplit(".", 3)
    if len(parts) != 4 or parts[2] not in ("result", "metric") or not all(parts):
        raise HTTPException(
            status_code=400,
            detail=f"series name {value!r} is not of the form <project>.<app>.<result|metric>.<name>",
        )
    kind: SeriesType = "result" if parts[2] == "result" else "metric"
    return parts[1], kind, parts[3]


@router.get("/endpoints", response_model=list[EndpointSummary], summary="Every model endpoint")
def list_endpoints(state: State) -> list[dict[str, object]]:
    return [
        {
            "id": h.id,
            "name": h.name,
            "model_name": h.model_name,
            "model_version": h.model_version,
            "last_request": h.last_request,
            "events_total": h.event_count,
            "errors_total": h.error_count,
        }
        for h in queries.endpoint_headlines(state.monitoring.engine)
    ]


@router.get(
    "/endpoints/{name}",
    response_model=EndpointDetail,
    summary="One endpoint",
    responses={404: {"description": "unknown endpoint"}},
)
def get_endpoint(state: State, name: str) -> dict[str, object]:
    e = _endpoint(state, name)
    return {
        **_summary(e),
        "model_uri": e.model_uri,
        "feature_names": e.feature_names,
        "label_names": e.label_names,
        "reference_version": e.reference_version,
        "reference_rows": e.reference_rows,
        "created_at": e.created_at,
        "task": e.task.to_json() if e.task is not None else None,
        "segment_columns": e.segment_columns,
    }


@router.get(
    "/endpoints/{name}/metrics",
    response_model=list[MonitoringSeries],
    summary="The result and metric series stored for an endpoint",
    responses={404: {"description": "unknown endpoint"}},
)
def list_series(state: State, name: str) -> list[MonitoringSeries]:
    e = _endpoint(state, name)
    project = state.settings.project
    return [
        MonitoringSeries(
            project=project, app=app, type=kind, name=n, full_name=full_name(project, app, kind, n)
        )
        for kind, app, n in queries.series_names(state.monitoring.engine, e.id)
    ]


@router.get(
    "/endpoints/{name}/metrics-values",
    response_model=list[SeriesValues],
    summary="Values of result and metric series over a time range (window starts in [start, end))",
    responses={
        400: {"description": "malformed series name or range"},
        404: {"description": "unknown endpoint"},
    },
)
def series_values(
    state: State,
    name: str,
    series: Annotated[list[str], Query(alias="name", description="series full names; all when omitted")] = [],  # noqa: B006
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[SeriesValues]:
    e = _endpoint(state, name)
    begin, stop = _range(state, start, end)
    project = state.settings.project
    wanted = (
        [parse_full_name(s) for s in series]
        if series
        else [(app, kind, n) for kind, app, n in queries.series_names(state.monitoring.engine, e.id)]
    )
    out = []
    for app, kind, n in wanted:
        label = full_name(project, app, kind, n)
        if kind == "result":
            results = state.monitoring.results.results(e.id, app, n, begin, stop)
            out.append(
                SeriesValues(
                    full_name=label,
                    type="result",
                    data=bool(results),
                    result_kind=results[-1].kind.value if results else None,
                    values=[(r.window_start, r.value, int(r.status)) for r in results],
                )
            )
        else:
            metrics = state.monitoring.results.metrics(e.id, app, n, begin, stop)
            out.append(
                SeriesValues(
                    full_name=label,
                    type="metric",
                    data=bool(metrics),
                    values=[(m.window_start, m.value) for m in metrics],
                )
            )
    return out


@router.get(
    "/results",
    response_model=list[ResultRow],
    summary="Results of every endpoint over a time range, optionally of one app, name or worse than a status",
    responses={400: {"description": "malformed range"}},
)
def results(
    state: State,
    start: datetime | None = None,
    end: datetime | None = None,
    app: str | None = None,
    name: str | None = None,
    min_status: Annotated[
        Literal["irrelevant", "no_detection", "potential_detection", "detected"] | None,
        Query(description="only results at or above this status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 1000,
) -> list[ResultRow]:
    begin, stop = _range(state, start, end)
    names = state.monitoring.endpoints.names()
    floor = ResultStatusApp[min_status] if min_status else ResultStatusApp.irrelevant
    rows = []
    for r in state.monitoring.results.results(None, app, name, begin, stop):
        if r.status < floor:
            continue
        rows.append(
            ResultRow(
                endpoint_id=r.endpoint_id,
                endpoint=names.get(r.endpoint_id, r.endpoint_id),
                app=r.app,
                name=r.name,
                window_start=r.window_start,
                window_end=r.window_end,
                kind=r.kind.name,
                status=r.status.name,
                value=r.value,
                model_version=r.model_version,
                reference_version=r.reference_version,
                extra_data=r.extra_data,
            )
        )
        if len(rows) >= limit:
            break
    return rows
