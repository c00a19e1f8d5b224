"""The drift page of one (endpoint, window): a row per feature and overlaid histograms."""

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.reports.html import figure_div, page, status_cell
from mm_dagster.stats.distances import normalise
from mm_dagster.stats.drift import FeatureDrift, FeatureVerdict


def _bin_labels(reference: Mapping[str, Any], bins: int) -> list[str]:
    if "hist" in reference:
        inner = reference["hist"][1][1:-1]
        return ["< min", *[f"{(inner[i] + inner[i + 1]) / 2:.3g}" for i in range(len(inner) - 1)], "> max"]

    return [*reference.get("freqs", {}), "(other)", "(unseen)"][:bins]


def _summary(stats: Mapping[str, Any] | None) -> str:
    if not stats:
        return ""
    if "mean" in stats:
        return f"{stats['mean']:.4g} ± {stats['std']:.3g} [{stats['min']:.3g}, {stats['max']:.3g}]"
    if "top" in stats:
        return f"top {escape(str(stats['top']))} ({stats['freq']}/{stats['count']})"
    return ""


def render_window_page(
    endpoint_name: str,
    window_key: str,
    rows: int,
    general: tuple[float, ResultStatusApp],
    drifts: Sequence[FeatureDrift],
    verdicts: Sequence[FeatureVerdict],
    reference_stats: Mapping[str, Mapping[str, Any]],
    window_stats: Mapping[str, Mapping[str, Any]],
) -> str:
    import plotly.graph_objects as go

    by_feature = {v.feature: v for v in verdicts}
    order = sorted(drifts, key=lambda d: -d.tvd)
    table = [
        "<table id='features'><tr><th>feature</th><th>kind</th><th>reference</th><th>window</th>"
        "<th>rows</th><th>TVD</th><th>Hellinger</th><th>KLD</th><th>method</th><th>distance</th>"
        "<th>threshold</th><th>p-value</th><th>status</th></tr>"
    ]
    for d in order:
        v = by_feature.get(d.feature)
        verdict = (
            f"<td>{v.method}</td><td>{v.distance:.4f}</td><td>{v.threshold:.4g}</td>"
            f"<td>{v.p_value:.2e}</td>{status_cell(v.status)}"
            if v
            else "<td colspan='5'>excluded</td>"
        )
        table.append(
            f"<tr><td class='name'>{escape(d.feature)}</td><td>{d.kind}</td>"
            f"<td>{_summary(reference_stats.get(d.feature))}</td><td>{_summary(window_stats.get(d.feature))}</td>"
            f"<td>{d.window_rows}</td><td>{d.tvd:.4f}</td><td>{d.hellinger:.4f}</td><td>{d.kld:.4f}</td>"
            f"{verdict}</tr>"
        )
    table.append("</table>")
    plots = []
    for i, d in enumerate(order):
        labels = _bin_labels(reference_stats[d.feature], len(d.reference_counts))
        fig = go.Figure()
        fig.add_bar(x=labels, y=normalise(d.reference_counts), name="reference", opacity=0.6)
        fig.add_bar(x=labels, y=normalise(d.window_counts), name="window", opacity=0.6)
        fig.update_layout(
            barmode="overlay",
            title=f"{d.feature}: TVD {d.tvd:.3f}",
            height=300,
            margin={"l": 40, "r": 10, "t": 40, "b": 60},
            legend={"orientation": "h"},
        )
        plots.append(figure_div(fig, f"hist-{i}"))
    value, status = general
    flagged = [v.feature for v in verdicts if v.status >= ResultStatusApp.potential_detection]
    head = (
        f"<p>window <b>{escape(window_key)}</b> · {rows} events · general_drift "
        f"<b>{value:.4f}</b> ({status.name}) · drifting features: "
        f"<b>{escape(', '.join(flagged) or 'none')}</b></p>"
    )
    return page(
        f"Drift of {endpoint_name}", head + "".join(table) + f"<div class='grid'>{''.join(plots)}</div>"
    )


def window_stats_of(
    reference_stats: Mapping[str, Mapping[str, Any]], drifts: Sequence[FeatureDrift], sample: Any
) -> dict[str, dict[str, Any]]:
    """Summary stats of the window's columns, for the table (mean/std/min/max or top)."""
    out: dict[str, dict[str, Any]] = {}
    for d in drifts:
        col = sample[d.feature]
        if d.kind == "numeric":
            values = np.asarray(col, dtype=np.float64)
            values = values[~np.isnan(values)]
            if values.size:
                out[d.feature] = {
                    "mean": float(values.mean()),
                    "std": float(values.std()),
                    "min": float(values.min()),
                    "max": float(values.max()),
                }
        else:
            counts = col.value_counts()
            if len(counts):
                out[d.feature] = {
                    "top": str(counts.index[0]),
                    "freq": int(counts.iloc[0]),
                    "count": int(counts.sum()),
                }
    return out
