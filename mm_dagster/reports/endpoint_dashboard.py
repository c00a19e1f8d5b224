"""The endpoint page of the service: one timeline per result and metric against its thresholds,
a features x windows heatmap of per-feature drift (a click opens the window page), traffic,
errors and latency per window against the previous period, and reference / model version
changes marked on every time axis."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from types import MappingProxyType
from typing import Any

from mm_dagster.core.links import window_path
from mm_dagster.core.results import StoredMetric, StoredResult
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.reports.html import STATUS_COLOURS, figure_div, page
from mm_dagster.reports.overview_page import DASHBOARD_STYLE, chip

LATENCY_METRICS = ("latency_p50_us", "latency_p95_us", "latency_p99_us")
MARGIN = MappingProxyType({"l": 70, "r": 20, "t": 50, "b": 60})
# Heatmap cells coloured by status: -1 irrelevant .. 2 detected, discrete bands.
STATUS_SCALE = tuple(
    (edge, STATUS_COLOURS[status])
    for i, status in enumerate(sorted(ResultStatusApp))
    for edge in (i / 4, (i + 1) / 4)
)


@dataclass(frozen=True)
class VersionChange:
    at: datetime
    label: str


@dataclass(frozen=True)
class EndpointPageData:
    name: str
    model: str
    model_version: str
    reference_version: int | None
    last_request: datetime | None
    start: datetime
    end: datetime
    results: Sequence[StoredResult]
    metrics: Sequence[StoredMetric]
    previous_metrics: Sequence[StoredMetric]
    traffic: Mapping[datetime, tuple[int, int]]
    previous_traffic: Mapping[datetime, tuple[int, int]]
    thresholds: Mapping[tuple[str, str], tuple[float, float]]
    changes: Sequence[VersionChange]

    @property
    def period(self) -> timedelta:
        return self.end - self.start

    @property
    def axis_start(self) -> datetime:
        """Where the time axes start: the range's start, or a little before the first window
        with data when the range reaches further back (a 24 h range over 3 h of history)."""
        times = [r.window_start for r in self.results] + [m.window_start for m in self.metrics]
        times += list(self.traffic)
        if not times:
            return self.start
        return max(self.start, min(times) - self.period / 50)


def version_changes(
    results: Sequence[StoredResult], references: Sequence[Mapping[str, Any]], start: datetime, end: datetime
) -> list[VersionChange]:
    """Where the model version or the reference changed: references created within [start, end)
    and the first window analysed under a new model version."""
    changes = [
        VersionChange(
            ref["created_at"], f"reference v{ref['version']} ({ref['model_version'] or 'no version'})"
        )
        for ref in references
        if start <= ref["created_at"] < end
    ]
    seen: str | None = None
    for r in sorted(results, key=lambda r: r.window_start):
        if r.model_version is None:
            continue
        if seen is not None and r.model_version != seen:
            changes.append(VersionChange(r.window_start, f"model {r.model_version}"))
        seen = r.model_version
    return sorted(changes, key=lambda c: c.at)


def _layout(fig: Any, title: str, y_title: str, data: EndpointPageData, height: int = 300) -> None:
    for change in data.changes:
        fig.add_vline(x=change.at, line_dash="dot", line_color="#555")
        fig.add_annotation(
            x=change.at,
            y=1,
            yref="paper",
            text=escape(change.label),
            showarrow=False,
            yanchor="bottom",
            font={"size": 10},
        )
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(MARGIN),
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        xaxis={"range": [data.axis_start, data.end], "title": "window start (UTC)"},
        yaxis={"title": y_title, "automargin": True},
    )


def _result_figure(key: tuple[str, str], results: Sequence[StoredResult], data: EndpointPageData) -> str:
    import plotly.graph_objects as go

    app, name = key
    ordered = sorted(results, key=lambda r: r.window_start)
    assessed = [r for r in ordered if r.status != ResultStatusApp.irrelevant]
    fig = go.Figure()
    fig.add_scatter(
        x=[r.window_start for r in ordered],
        # an irrelevant window (too few rows, no labels yet) was not assessed: a gap, not a value
        y=[None if r.status == ResultStatusApp.irrelevant else r.value for r in ordered],
        mode="lines+markers",
        name=name,
        marker={"color": [STATUS_COLOURS[r.status] for r in ordered], "size": 9},
        line={"color": "#90a4ae"},
        text=[r.status.name for r in ordered],
        hovertemplate="%{x}<br>value %{y:.4g}<br>%{text}<extra></extra>",
        customdata=[window_path(data.name, r.window_start, app) for r in ordered],
    )
    bounds = data.thresholds.get(key)
    if bounds is not None:
        for value, status, label in (
            (bounds[0], ResultStatusApp.potential_detection, "potential"),
            (bounds[1], ResultStatusApp.detected, "detected"),
        ):
            fig.add_scatter(
                x=[data.start, data.end],
                y=[value, value],
                mode="lines",
                name=f"{label} threshold {value:g}",
                line={"dash": "dash", "color": STATUS_COLOURS[status]},
                hoverinfo="skip",
            )
    if assessed:
        latest = assessed[-1]
        summary = f"latest assessed {latest.value:.4g} ({latest.status.name})"
    else:
        summary = "no window assessed"
    unassessed = len(ordered) - len(assessed)
    if unassessed:
        summary += f" · {unassessed} window(s) not assessed (irrelevant)"
    _layout(fig, f"{name} · {app} · {summary}", "value", data)
    return figure_div(fig, f"result-{app}-{name}")


def metric_groups(metrics: Sequence[StoredMetric]) -> dict[tuple[str, str], dict[str, list[StoredMetric]]]:
    """Metrics per (app, family) and series: per-feature metrics named `<family>__<feature>`
    share one figure (one line per feature)."""
    groups: dict[tuple[str, str], dict[str, list[StoredMetric]]] = defaultdict(lambda: defaultdict(list))
    for m in metrics:
        family, _, member = m.name.partition("__")
        groups[(m.app, family)][member or family].append(m)
    return groups


def _metric_figure(
    key: tuple[str, str], series: Mapping[str, Sequence[StoredMetric]], data: EndpointPageData
) -> str:
    import plotly.graph_objects as go

    app, family = key
    fig = go.Figure()
    for member, points in sorted(series.items()):
        ordered = sorted(points, key=lambda m: m.window_start)
        fig.add_scatter(
            x=[m.window_start for m in ordered],
            y=[m.value for m in ordered],
            mode="lines+markers",
            name=member if len(series) > 1 else "this period",
        )
    if len(series) == 1:
        before = sorted(
            (m for m in data.previous_metrics if (m.app, m.name) == key), key=lambda m: m.window_start
        )
        if before:
            fig.add_scatter(
                x=[m.window_start + data.period for m in before],
                y=[m.value for m in before],
                mode="lines",
                name="previous period",
                line={"dash": "dot", "color": "#9e9e9e"},
            )
    title = f"{family} · {app}" + (" (per feature)" if len(series) > 1 else "")
    _layout(fig, title, family, data, height=260)
    return figure_div(fig, f"metric-{app}-{family}")


def _heatmap(results: Sequence[StoredResult], features: Sequence[str], data: EndpointPageData) -> str:
    """Features x windows of one per-feature drift result (feature_drift's extra_data)."""
    import plotly.graph_objects as go

    ordered = sorted(results, key=lambda r: r.window_start)
    present = [f for f in features if any(f in r.extra_data.get("features", {}) for r in ordered)]
    extra = sorted({f for r in ordered for f in r.extra_data.get("features", {})} - set(present))
    rows = [*present, *extra]
    status = [[None] * len(ordered) for _ in rows]
    text = [[""] * len(ordered) for _ in rows]
    for j, r in enumerate(ordered):
        per_feature = r.extra_data.get("features", {})
        for i, feature in enumerate(rows):
            verdict = per_feature.get(feature)
            if verdict is not None:
                status[i][j] = verdict.get("status", 0)
                name = ResultStatusApp(verdict.get("status", 0)).name
                text[i][j] = f"TVD {verdict.get('tvd', float('nan')):.3f} · {name}"
    fig = go.Figure(
        go.Heatmap(
            x=[r.window_start for r in ordered],
            y=rows,
            z=status,
            zmin=-1.5,
            zmax=2.5,
            colorscale=[list(band) for band in STATUS_SCALE],
            text=text,
            hovertemplate="%{y}<br>%{x}<br>%{text}<extra>click: window page</extra>",
            xgap=1,
            ygap=1,
            colorbar={
                "tickvals": [-1, 0, 1, 2],
                "ticktext": ["irrelevant", "no detection", "potential", "detected"],
                "title": "status",
            },
            customdata=[[window_path(data.name, r.window_start, r.app) for r in ordered] for _ in rows],
        )
    )
    _layout(
        fig,
        "per-feature drift (TVD, coloured by status) — click a cell for its window",
        "feature",
        data,
        height=max(260, 80 + 22 * len(rows)),
    )
    fig.update_yaxes(autorange="reversed")
    return figure_div(fig, "feature-heatmap")


def _traffic_figures(data: EndpointPageData) -> list[str]:
    import plotly.graph_objects as go

    out = []
    for index, what in ((0, "events"), (1, "errors")):
        fig = go.Figure()
        now_x = sorted(data.traffic)
        fig.add_bar(x=now_x, y=[data.traffic[t][index] for t in now_x], name="this period")
        before_x = sorted(data.previous_traffic)
        if before_x:
            fig.add_scatter(
                x=[t + data.period for t in before_x],
                y=[data.previous_traffic[t][index] for t in before_x],
                mode="lines",
                name="previous period",
                line={"dash": "dot", "color": "#616161"},
            )
        _layout(fig, f"{what} per window vs the previous period", what, data, height=260)
        fig.update_yaxes(rangemode="tozero")
        out.append(figure_div(fig, f"traffic-{what}"))
    return out


def _latency_figure(data: EndpointPageData) -> str | None:
    import plotly.graph_objects as go

    series: dict[str, list[StoredMetric]] = defaultdict(list)
    for m in data.metrics:
        if m.name in LATENCY_METRICS:
            series[m.name].append(m)
    if not series:
        return None
    fig = go.Figure()
    for name in LATENCY_METRICS:
        points = sorted(series.get(name, []), key=lambda m: m.window_start)
        if points:
            fig.add_scatter(
                x=[m.window_start for m in points],
                y=[m.value / 1000 for m in points],
                mode="lines+markers",
                name=name.removeprefix("latency_").removesuffix("_us"),
            )
        before = sorted((m for m in data.previous_metrics if m.name == name), key=lambda m: m.window_start)
        if before:
            fig.add_scatter(
                x=[m.window_start + data.period for m in before],
                y=[m.value / 1000 for m in before],
                mode="lines",
                name=f"{name.removeprefix('latency_').removesuffix('_us')} previous period",
                line={"dash": "dot"},
            )
    _layout(fig, "latency per window (ms) vs the previous period", "ms", data)
    return figure_div(fig, "latency")


CLICK_SCRIPT = """<script>
document.querySelectorAll('.js-plotly-plot').forEach(function (plot) {
  plot.on('plotly_click', function (event) {
    var point = event.points[0];
    var target = point && point.customdata;
    if (typeof target === 'string' && target) { window.location.href = target; }
  });
});
</script>"""


def render_endpoint_dashboard(
    data: EndpointPageData,
    features: Sequence[str],
    *,
    plotly_src: str,
    nav: str,
    ranges: Sequence[tuple[str, str]],
) -> str:
    by_result: dict[tuple[str, str], list[StoredResult]] = defaultdict(list)
    for r in data.results:
        by_result[(r.app, r.name)].append(r)
    by_metric = metric_groups([m for m in data.metrics if m.name not in LATENCY_METRICS])
    events = sum(n for n, _ in data.traffic.values())
    errors = sum(e for _, e in data.traffic.values())
    before = sum(n for n, _ in data.previous_traffic.values())
    change = f"{(events - before) / before:+.0%}" if before else "n/a"
    latest = {key: max(results, key=lambda r: r.window_start) for key, results in sorted(by_result.items())}
    chips = " ".join(
        chip(r.status, f"{app} · {name}: {r.status.name.replace('_', ' ')}")
        for (app, name), r in latest.items()
    )
    picker = " ".join(f"<a href='{escape(href)}'>{escape(label)}</a>" for label, href in ranges)
    last = f"{data.last_request:%Y-%m-%d %H:%M} UTC" if data.last_request else "never"
    reference = "-" if data.reference_version is None else f"v{data.reference_version}"
    head = (
        DASHBOARD_STYLE + f"<p>model <b>{escape(data.model)}</b> {escape(data.model_version)} · reference "
        f"{reference} · last request {last}</p>"
    )
    head += (
        f"<p>{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC · {events:,} events "
        f"({change} vs the previous period) · {errors:,} errors</p>"
        f"<form method='get' class='search'>range: {picker} · from <input type='datetime-local' name='start' "
        f"value='{data.start:%Y-%m-%dT%H:%M}'> to <input type='datetime-local' name='end' "
        f"value='{data.end:%Y-%m-%dT%H:%M}'> <button type='submit'>show</button></form>"
        f"<p>latest: {chips or 'no results in this range'}</p>"
    )
    figures: list[str] = []
    drift = [r for key, results in by_result.items() if key[1] == "feature_drift" for r in results]
    if drift:
        figures.append(_heatmap(drift, features, data))
    figures += [_result_figure(key, by_result[key], data) for key in sorted(by_result)]
    figures += _traffic_figures(data)
    latency = _latency_figure(data)
    if latency:
        figures.append(latency)
    figures += [
        _metric_figure(key, by_metric[key], data)
        for key in sorted(by_metric)
        if key[1] not in LATENCY_METRICS
    ]
    return page(
        f"Endpoint {data.name}",
        head + "".join(f"<div class='figure'>{f}</div>" for f in figures) + CLICK_SCRIPT,
        plotly_src=plotly_src,
        nav=nav,
    )
