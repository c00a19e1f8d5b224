"""The per-endpoint page: drift timelines against thresholds and traffic against the previous period."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape

from mm_dagster.core.results import StoredResult
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.reports.html import STATUS_COLOURS, figure_div, page


def render_endpoint_page(
    endpoint_name: str,
    general: Sequence[StoredResult],
    feature: Sequence[StoredResult],
    thresholds: tuple[float, float],
    counts: Mapping[datetime, int],
    previous_counts: Mapping[datetime, int],
    period: timedelta,
) -> str:
    import plotly.graph_objects as go

    potential, detected = thresholds
    figures = []
    for div_id, title, results in (
        ("general-drift", "general_drift (mean of Hellinger and TVD means)", general),
        ("feature-drift", "feature_drift (largest feature TVD)", feature),
    ):
        fig = go.Figure()
        fig.add_scatter(
            x=[r.window_start for r in results],
            y=[r.value for r in results],
            mode="lines+markers",
            name=results[0].name if results else title,
            marker={"color": [STATUS_COLOURS[r.status] for r in results], "size": 9},
        )
        if div_id == "general-drift":
            fig.add_hline(
                y=potential,
                line_dash="dash",
                line_color=STATUS_COLOURS[ResultStatusApp.potential_detection],
                annotation_text="potential",
            )
            fig.add_hline(
                y=detected,
                line_dash="dash",
                line_color=STATUS_COLOURS[ResultStatusApp.detected],
                annotation_text="detected",
            )
        fig.update_layout(title=title, height=320, margin={"l": 40, "r": 10, "t": 40, "b": 40})
        figures.append(figure_div(fig, div_id))
    traffic = go.Figure()
    now_x = sorted(counts)
    traffic.add_bar(x=now_x, y=[counts[t] for t in now_x], name="this period")
    before_x = sorted(previous_counts)
    traffic.add_scatter(
        x=[t + period for t in before_x],
        y=[previous_counts[t] for t in before_x],
        mode="lines",
        name=f"previous period (shifted {period})",
    )
    traffic.update_layout(
        title="events per window vs the previous period",
        height=320,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
    )
    figures.append(figure_div(traffic, "traffic"))
    total, before = sum(counts.values()), sum(previous_counts.values())
    change = f"{(total - before) / before:+.0%}" if before else "n/a"
    head = (
        f"<p>{len(general)} windows · {total} events ({change} vs the previous period) · "
        f"thresholds potential {potential}, detected {detected}</p>"
    )
    return page(f"Monitoring of {escape(endpoint_name)}", head + "".join(figures))
