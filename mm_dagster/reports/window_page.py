"""The page of one (endpoint, app, window): the app's results, a row per feature worst first, and
overlaid reference/window histograms, rendered from stored data (results and the histograms apps
stored with them, see `core.histograms`)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from types import MappingProxyType
from typing import Any

from mm_dagster.core.histograms import NUMERIC, FeatureHistogram, Summary
from mm_dagster.core.results import StoredMetric, StoredResult
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.reports.html import STATUS_COLOURS, figure_div, page, status_cell

# Results whose extra_data carry per-feature verdicts ({"features": {name: {...}}}).
FAMILY_RESULTS = ("feature_drift", "prediction_drift")
GENERAL_DRIFT = "general_drift"
DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        GENERAL_DRIFT: "mean of the Hellinger and TVD means over every column, against fixed thresholds",
        "feature_drift": "worst per-feature verdict over the model's inputs (window false-alarm budget)",
        "prediction_drift": "worst per-feature verdict over the model's outputs (window false-alarm budget)",
    }
)


@dataclass(frozen=True)
class WindowLinks:
    """Where the page's navigation goes (None: no such page)."""

    endpoint: str
    previous: str | None = None
    next: str | None = None
    dagster_runs: str | None = None


@dataclass(frozen=True)
class FeatureRow:
    feature: str
    result: str | None  # the family result that tested it
    verdict: Mapping[str, Any] | None
    distances: Mapping[str, Any]
    histogram: FeatureHistogram | None

    @property
    def status(self) -> ResultStatusApp | None:
        return None if self.verdict is None else ResultStatusApp(int(self.verdict["status"]))

    def sort_key(self) -> tuple[int, float, float]:
        """Worst first: status, then the smaller p-value, then the larger TVD."""
        status = -1 if self.status is None else int(self.status)
        p_value = float(self.verdict["p_value"]) if self.verdict is not None else 1.0
        return (-status, p_value, -float(self.distances.get("tvd", 0.0)))


def feature_rows(results: Sequence[StoredResult], histograms: Sequence[FeatureHistogram]) -> list[FeatureRow]:
    """One row per feature with a verdict, distances or a histogram, worst first."""
    by_name = {r.name: r for r in results}
    general = by_name.get(GENERAL_DRIFT)
    distances: Mapping[str, Mapping[str, Any]] = general.extra_data.get("features", {}) if general else {}
    verdicts: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for name in FAMILY_RESULTS:
        if name in by_name:
            for feature, verdict in by_name[name].extra_data.get("features", {}).items():
                verdicts[feature] = (name, verdict)
    histogram_of = {h.feature: h for h in histograms}
    features = list(dict.fromkeys([*histogram_of, *verdicts, *distances]))
    rows = [
        FeatureRow(
            f,
            verdicts[f][0] if f in verdicts else None,
            verdicts[f][1] if f in verdicts else None,
            distances.get(f, {}),
            histogram_of.get(f),
        )
        for f in features
    ]
    return sorted(rows, key=FeatureRow.sort_key)


def _summary(stats: Summary) -> str:
    if stats.get("mean") is not None:
        std = stats.get("std")
        spread = "" if std is None else f" ± {std:.3g}"
        return f"{stats['mean']:.4g}{spread} [{stats['min']:.3g}, {stats['max']:.3g}]"
    if "top" in stats:
        return f"top {escape(str(stats['top']))} ({stats['freq']}/{stats['count']})"
    return ""


def _number(value: Any, spec: str) -> str:
    return "" if value is None else format(float(value), spec)


def _chip(status: ResultStatusApp) -> str:
    return f"<span class='chip' style='background:{STATUS_COLOURS[status]}'>{escape(status.name)}</span>"


def _results_table(results: Sequence[StoredResult]) -> str:
    rows = []
    for r in sorted(results, key=lambda r: (-int(r.status), r.name)):
        drifting = r.extra_data.get("drifting_features")
        flagged = "" if drifting is None else escape(", ".join(drifting) or "none")
        rows.append(
            f"<tr><td class='name'>{escape(r.name)}</td>{status_cell(r.status)}"
            f"<td>{r.value:.4f}</td><td style='text-align:left'>{flagged}</td>"
            f"<td style='text-align:left'>{escape(DESCRIPTIONS.get(r.name, ''))}</td></tr>"
        )
    return (
        "<table id='results'><tr><th>result</th><th>status</th><th>value</th>"
        "<th>drifting features it flags</th><th>what it measures</th></tr>" + "".join(rows) + "</table>"
    )


def _metrics_table(metrics: Sequence[StoredMetric]) -> str:
    rows = "".join(
        f"<tr><td class='name'>{escape(m.name)}</td><td>{m.value:.6g}</td></tr>"
        for m in sorted(metrics, key=lambda m: m.name)
    )
    return f"<table id='metrics'><tr><th>metric</th><th>value</th></tr>{rows}</table>"


def _headline(window_key: str, rows: int | None, results: Sequence[StoredResult]) -> str:
    """One line per result status, each naming its result, so a feature flagged by feature_drift
    beside a general_drift of no_detection reads as two tests, not a contradiction."""
    parts = [f"window <b>{escape(window_key)}</b> (UTC start)"]
    if rows is not None:
        parts.append(f"{rows} events")
    for r in sorted(results, key=lambda r: r.name):
        if r.name == GENERAL_DRIFT or r.name in FAMILY_RESULTS:
            drifting = r.extra_data.get("drifting_features")
            flags = "" if drifting is None else f": drifting {escape(', '.join(drifting) or 'none')}"
            parts.append(f"{escape(r.name)} {_chip(r.status)}{flags}")
    return "<p id='headline'>" + " · ".join(parts) + "</p>"


def _features_table(rows: Sequence[FeatureRow]) -> str:
    lines = [
        "<table id='features'><tr><th>feature</th><th>kind</th><th>tested by</th><th>reference</th>"
        "<th>window</th><th>rows</th><th>TVD</th><th>Hellinger</th><th>KLD</th><th>method</th>"
        "<th>distance</th><th>threshold</th><th>p-value</th><th>status</th></tr>"
    ]
    for row in rows:
        h, v, d = row.histogram, row.verdict, row.distances
        verdict = (
            f"<td>{escape(str(v['method']))}</td><td>{_number(v['distance'], '.4f')}</td>"
            f"<td>{_number(v['threshold'], '.4g')}</td><td>{_number(v['p_value'], '.2e')}</td>"
            f"{status_cell(ResultStatusApp(int(v['status'])))}"
            if v is not None
            else "<td colspan='5'>not tested (excluded)</td>"
        )
        lines.append(
            f"<tr><td class='name'>{escape(row.feature)}</td><td>{escape(h.kind) if h else ''}</td>"
            f"<td>{escape(row.result or '')}</td>"
            f"<td>{_summary(h.reference_summary) if h else ''}</td>"
            f"<td>{_summary(h.window_summary) if h else ''}</td><td>{h.window_rows if h else ''}</td>"
            f"<td>{_number(d.get('tvd'), '.4f')}</td><td>{_number(d.get('hellinger'), '.4f')}</td>"
            f"<td>{_number(d.get('kld'), '.4f')}</td>{verdict}</tr>"
        )
    lines.append("</table>")
    return "".join(lines)


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def _histogram(row: FeatureRow, index: int) -> str:
    import plotly.graph_objects as go

    h = row.histogram
    assert h is not None
    fig = go.Figure()
    fig.add_bar(x=list(h.labels), y=_shares(h.reference_counts), name="reference", opacity=0.6)
    fig.add_bar(x=list(h.labels), y=_shares(h.window_counts), name="window", opacity=0.6)
    status = "" if row.status is None else f" ({row.status.name})"
    tvd = row.distances.get("tvd")
    fig.update_layout(
        barmode="overlay",
        title={"text": f"{h.feature}{status}" + ("" if tvd is None else f", TVD {tvd:.3f}")},
        height=340,
        margin={"l": 60, "r": 40, "t": 50, "b": 10},  # the modebar sits in the right margin
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        modebar={"orientation": "v"},  # beside the plot, off the title
        xaxis={
            "title": {"text": "bin midpoint" if h.kind == NUMERIC else "category"},
            "type": "category",
            "tickangle": -45,
            "automargin": True,
        },
        yaxis={"title": {"text": "share of rows"}, "tickformat": ".0%", "automargin": True},
    )
    return figure_div(fig, f"hist-{index}")


def _nav(links: WindowLinks) -> str:
    items = [f"<a id='endpoint-link' href='{escape(links.endpoint)}'>endpoint</a>"]
    if links.previous:
        items.append(f"<a id='previous-window' href='{escape(links.previous)}'>&larr; previous window</a>")
    if links.next:
        items.append(f"<a id='next-window' href='{escape(links.next)}'>next window &rarr;</a>")
    if links.dagster_runs:
        items.append(f"<a id='dagster-runs' href='{escape(links.dagster_runs)}'>Dagster runs</a>")
    return "<nav>" + "".join(items) + "</nav>"


def render_window_page(
    endpoint_name: str,
    window_key: str,
    app: str,
    segment: str,
    results: Sequence[StoredResult],
    histograms: Sequence[FeatureHistogram],
    links: WindowLinks,
    metrics: Sequence[StoredMetric] = (),
    *,
    plotly_src: str,
    site_nav: str = "",
) -> str:
    """`site_nav`: the service's own navigation bar, above the window's links."""
    rows = feature_rows(results, histograms)
    general = next((r for r in results if r.name == GENERAL_DRIFT), None)
    events = general.extra_data.get("rows") if general else None
    body = [
        _headline(window_key, events, results),
        f"<p>app <b>{escape(app)}</b>" + (f" · segment <b>{escape(segment)}</b>" if segment else "") + "</p>",
        _results_table(results) if results else "<p>No results stored for this window.</p>",
    ]
    if metrics:
        body.append(_metrics_table(metrics))
    if rows:
        body.append("<h2>Features, worst first</h2>" + _features_table(rows))
    plots = [_histogram(row, i) for i, row in enumerate(r for r in rows if r.histogram is not None)]
    if plots:
        body.append("<h2>Reference and window histograms</h2><div class='grid'>" + "".join(plots) + "</div>")
    return page(
        f"{endpoint_name}: window {window_key}",
        "".join(body),
        plotly_src=plotly_src,
        nav=site_nav + _nav(links),
    )
